//! The verbs that apply a trained model to a dataset: encode, reconstruct, eval.

use crate::cli::{EncodeArgs, EvalArgs, ModelData, ReconstructArgs, Split};
use aekit::data::{load_train_test, DataSource, Dataset};
use aekit::models::DenoisingAutoencoder;
use anyhow::{Context, Result};

fn load(input: &ModelData) -> Result<(DenoisingAutoencoder, Dataset)> {
    let model = DenoisingAutoencoder::load(&aekit::run::dir::model_file(&input.model)?)?;
    let name = input.data.data.as_deref().unwrap_or("builtin");
    let source: DataSource = name.parse().map_err(|e: String| anyhow::anyhow!("--data: {e}"))?;
    let (train, test) = load_train_test(&source, input.data.data_dir.as_deref())
        .with_context(|| format!("loading data `{name}`"))?;
    let data = if input.split == Split::Train { train } else { test };
    if data.dim != model.config.n_vis {
        anyhow::bail!(
            "{} expects {} inputs but data `{name}` has {} features per example",
            input.model.display(),
            model.config.n_vis,
            data.dim
        );
    }
    Ok((model, data))
}

pub fn encode(a: EncodeArgs) -> Result<()> {
    let (model, data) = load(&a.input)?;
    let codes = model.transform(data.view())?;
    let (n, h) = codes.dim();
    aekit::data::npy::write_npy(&a.out, &[n, h], codes.as_slice().expect("owned"))?;
    eprintln!("wrote {n}×{h} codes to {}", a.out.display());
    Ok(())
}

pub fn reconstruct(a: ReconstructArgs) -> Result<()> {
    let (model, data) = load(&a.input)?;
    let img = aekit::viz::reconstructions_picture(&model, data.view(), a.count, a.seed, data.image)?;
    aekit::viz::save_png(&a.out, &img)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let (model, data) = load(&a.input)?;
    let m = model.evaluate(data.view())?;
    let mut j = aekit::run::train::test_metrics_json(&m, data.n);
    j["model"] = a.input.model.display().to_string().into();
    j["data"] = a.input.data.data.unwrap_or_else(|| "builtin".into()).into();
    j["split"] = format!("{:?}", a.input.split).to_lowercase().into();
    println!("{}", serde_json::to_string_pretty(&j)?);
    Ok(())
}
