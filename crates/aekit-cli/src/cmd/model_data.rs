//! The verbs that apply a trained model to a dataset: encode, reconstruct, eval.

use crate::cli::{DenoiseArgs, EncodeArgs, EvalArgs, InpaintArgs, ModelData, ReconstructArgs, Split};
use aekit::data::{load_train_test, load_whole, DataSource, Dataset};
use aekit::models::deep_ae::DeepAutoencoder;
use aekit::models::pca::Pca;
use aekit::models::{DenoisingAutoencoder, Estimator};
use aekit::ndarray::Array2;
use aekit::tensor::gemm::Par;
use anyhow::{Context, Result};

/// The models besides the DAE that these verbs apply: PCA and the deep
/// autoencoder.
enum Other {
    Pca(Pca),
    Deep(DeepAutoencoder),
}

impl Other {
    fn dim(&self) -> usize {
        match self {
            Other::Pca(p) => p.dim(),
            Other::Deep(d) => d.sizes[0],
        }
    }
    fn transform(&self, x: &Dataset) -> Result<Array2<f32>> {
        Ok(match self {
            Other::Pca(p) => Estimator::transform(p, x.view())?,
            Other::Deep(d) => Array2::from_shape_vec((x.n, d.code_width()), d.encode(&x.x, Par::Seq))?,
        })
    }
    fn reconstruct(&self, x: &Dataset) -> Result<Array2<f32>> {
        Ok(match self {
            Other::Pca(p) => Estimator::reconstruct(p, x.view())?,
            Other::Deep(d) => Array2::from_shape_vec((x.n, x.dim), d.reconstruct(&x.x, Par::Seq))?,
        })
    }
    fn json(&self, x: &Dataset) -> Result<serde_json::Value> {
        Ok(match self {
            Other::Pca(p) => serde_json::json!({
                "n_test": x.n,
                "components": p.k,
                "test_squared_error": Estimator::score(p, x.view())?,
            }),
            Other::Deep(d) => serde_json::json!({
                "n_test": x.n,
                "sizes": d.sizes,
                "test_squared_error": d.squared_error(&x.x, Par::Seq),
            }),
        })
    }
}

/// A PCA or deep autoencoder model file, if `input.model` names one (else
/// a DAE is expected).
fn load_other(input: &ModelData) -> Result<Option<(Other, Dataset)>> {
    let path = aekit::run::dir::model_file(&input.model)?;
    let f = aekit::io::safetensors::load(&path)?;
    let m = match f.metadata.get("format").map(String::as_str) {
        Some("aekit.pca") => Other::Pca(Pca::load(&path)?),
        Some("aekit.deep_ae") => Other::Deep(DeepAutoencoder::load(&path)?),
        _ => return Ok(None),
    };
    let data = load_data(input, m.dim())?;
    Ok(Some((m, data)))
}

/// The source `input` names, resolved with its `--size`.
fn source(input: &ModelData) -> Result<DataSource> {
    let name = input.data.data.as_deref().unwrap_or("builtin");
    let source: DataSource = name.parse().map_err(|e: String| anyhow::anyhow!("--data: {e}"))?;
    let size = super::size_flag(&input.data)?.map(|[h, w]| (h, w));
    Ok(source.resolve(size)?)
}

/// The part of the data `input` asks for: `--split`, else all of a user's
/// file or image folder and the test set of a named dataset.
fn split(input: &ModelData, source: &DataSource) -> Split {
    input.split.unwrap_or(match source {
        DataSource::Npy(_) | DataSource::Csv(_) | DataSource::Images(..) => Split::All,
        _ => Split::Test,
    })
}

/// The dataset `input` names, checked to have `dim` columns.
fn load_data(input: &ModelData, dim: usize) -> Result<Dataset> {
    let name = input.data.data.as_deref().unwrap_or("builtin");
    let source = source(input)?;
    let whole = match split(input, &source) {
        Split::All => load_whole(&source).with_context(|| format!("loading data `{name}`"))?,
        _ => None,
    };
    let data = if let Some(whole) = whole {
        whole
    } else {
        load_part(input, &source, name)?
    };
    if data.dim != dim {
        anyhow::bail!(
            "{} expects {dim} inputs but data `{name}` has {} features per example",
            input.model.display(),
            data.dim
        );
    }
    Ok(data)
}

/// The `--split` part of a dataset that comes split (or of a user's file
/// split as training verbs split it).
fn load_part(input: &ModelData, source: &DataSource, name: &str) -> Result<Dataset> {
    let (train, test) = load_train_test(source, input.data.data_dir.as_deref())
        .with_context(|| format!("loading data `{name}`"))?;
    Ok(match split(input, source) {
        Split::Train => train,
        Split::Test => test,
        Split::All => {
            let mut all = train;
            all.x.extend_from_slice(&test.x);
            all.labels = all.labels.zip(test.labels).map(|(mut a, b)| {
                a.extend(b);
                a
            });
            all.n += test.n;
            all
        }
    })
}

/// The image files behind the rows [`load_data`] gives, when the data is a
/// folder of images.
fn image_files(input: &ModelData) -> Result<Option<Vec<std::path::PathBuf>>> {
    let source = source(input)?;
    let DataSource::Images(dir, _) = &source else {
        return Ok(None);
    };
    use aekit::data::formats::images::{all_files, split_files};
    Ok(Some(match split(input, &source) {
        Split::Train => split_files(dir)?.0,
        Split::Test => split_files(dir)?.1,
        Split::All => all_files(dir)?,
    }))
}

fn load(input: &ModelData) -> Result<(DenoisingAutoencoder, Dataset)> {
    let model = DenoisingAutoencoder::load(&aekit::run::dir::model_file(&input.model)?)?;
    let data = load_data(input, model.config.n_vis)?;
    Ok((model, data))
}

/// Refuses `out` before any work when it is the model or data file this
/// command reads, or (without `force`) any existing file.
fn check_out(input: &ModelData, out: &std::path::Path, force: bool) -> Result<()> {
    let model = aekit::run::dir::model_file(&input.model)?;
    let data = input.data.data.as_deref().map(std::path::Path::new);
    let inputs: Vec<&std::path::Path> = std::iter::once(model.as_path()).chain(data).collect();
    Ok(aekit::io::check_output_file(out, force, &inputs)?)
}

pub fn encode(a: EncodeArgs) -> Result<()> {
    check_out(&a.input, &a.out, a.force)?;
    let codes = match load_other(&a.input)? {
        Some((m, data)) => m.transform(&data)?,
        None => {
            let (model, data) = load(&a.input)?;
            model.transform(data.view())?
        }
    };
    let (n, h) = codes.dim();
    aekit::data::npy::write_npy(&a.out, &[n, h], codes.as_slice().expect("owned"))?;
    eprintln!("wrote {n}×{h} codes to {}", a.out.display());
    Ok(())
}

pub fn reconstruct(a: ReconstructArgs) -> Result<()> {
    check_out(&a.input, &a.out, a.force)?;
    if let Some((m, data)) = load_other(&a.input)? {
        // Originals above their reconstructions.
        let n = a.count.min(data.n);
        let sample = data.select(&(0..n).collect::<Vec<_>>());
        let rec = m.reconstruct(&sample)?;
        let tiles: Vec<Vec<f32>> = (0..n)
            .map(|i| sample.row(i).to_vec())
            .chain(rec.rows().into_iter().map(|r| r.to_vec()))
            .collect();
        let (h, w) = aekit::viz::tile_shape(data.dim, data.image);
        let img = aekit::viz::tile_grid(&tiles, h, w, n.max(1), aekit::viz::Scale::Unit, 2);
        aekit::viz::save_png(&a.out, &img)?;
        eprintln!("wrote {}", a.out.display());
        return Ok(());
    }
    let (model, data) = load(&a.input)?;
    let img = aekit::viz::reconstructions_picture(&model, data.view(), a.count, a.seed, data.image)?;
    aekit::viz::save_png(&a.out, &img)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let mut j = match load_other(&a.input)? {
        Some((m, data)) => m.json(&data)?,
        None => {
            let (model, data) = load(&a.input)?;
            let m = model.evaluate(data.view())?;
            aekit::run::train::test_metrics_json(&m, data.n)
        }
    };
    j["model"] = a.input.model.display().to_string().into();
    j["split"] = format!("{:?}", split(&a.input, &source(&a.input)?))
        .to_lowercase()
        .into();
    j["data"] = a.input.data.data.unwrap_or_else(|| "builtin".into()).into();
    println!("{}", serde_json::to_string_pretty(&j)?);
    Ok(())
}

/// A `--noise` corruption; `gauss:Ksd` is Gaussian noise of K times the
/// standard deviation of all the data's values.
fn relative_noise(s: &str, data: &Dataset) -> Result<aekit::layers::Corruption> {
    if let Some(k) = s.strip_prefix("gauss:").and_then(|r| r.strip_suffix("sd")) {
        let k: f64 = k.parse().map_err(|_| {
            anyhow::anyhow!("--noise: `{s}`: give gauss:Ksd with a number K, e.g. gauss:0.5sd")
        })?;
        let n = data.x.len().max(1) as f64;
        let mean = data.x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let sd = (data.x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        eprintln!(
            "noise {s}: σ = {k} × {sd:.4} (the data's standard deviation) = {:.4}",
            k * sd
        );
        return Ok(aekit::layers::Corruption::Gauss((k * sd) as f32));
    }
    s.parse().map_err(|e| anyhow::anyhow!("--noise: {e}"))
}

pub fn denoise(a: DenoiseArgs) -> Result<()> {
    let model = aekit::run::denoise::Restorer::load(&a.input.model)?;
    let data = load_data(&a.input, model.dim())?;
    let names = image_files(&a.input)?;
    let noise = a.noise.as_deref().map(|s| relative_noise(s, &data)).transpose()?;
    if let Some(c) = &noise {
        c.validate("--noise")?;
    }
    let threads = start_threads(a.threads)?;
    let job = aekit::run::denoise::DenoiseJob {
        model: &model,
        model_path: &a.input.model,
        data: &data,
        noise,
        seed: a.seed,
        count: a.count,
        threads,
        names: names.as_deref(),
    };
    aekit::run::denoise::denoise(&job, &a.out.out())?;
    Ok(())
}

/// `--threads` (0 = all cores) held to the machine's cores, as the
/// training verbs hold it, and the pool started with that many.
fn start_threads(threads: usize) -> Result<usize> {
    let mut t = aekit::train::TrainConfig {
        threads,
        ..Default::default()
    };
    t.hold_threads_to_cores()?;
    let threads = t.resolved_threads();
    aekit::tensor::init_threads(threads);
    Ok(threads)
}

pub fn inpaint(a: InpaintArgs) -> Result<()> {
    let model = aekit::run::denoise::Restorer::load(&a.input.model)?;
    let data = load_data(&a.input, model.dim())?;
    let names = image_files(&a.input)?;
    let mask = aekit::run::inpaint::MaskSource::parse(&a.mask).map_err(|e| anyhow::anyhow!("--mask: {e}"))?;
    let threads = start_threads(a.threads)?;
    let job = aekit::run::inpaint::InpaintJob {
        model: &model,
        model_path: &a.input.model,
        data: &data,
        mask,
        seed: a.seed,
        iterations: a.iterations,
        count: a.count,
        threads,
        names: names.as_deref(),
    };
    aekit::run::inpaint::inpaint(&job, &a.out.out())?;
    Ok(())
}
