//! Bad values are caught where they enter: data that is not finite, data
//! outside [0, 1] under cross-entropy, a loss that runs away while staying
//! finite, and models with non-finite weights (never saved, never loaded).

use aekit::data::builtin::builtin_mnist;
use aekit::layers::Loss;
use aekit::models::{DaeConfig, DenoisingAutoencoder};
use aekit::ndarray::Array2;
use aekit::train::{Silent, TrainConfig};
use std::collections::HashMap;

fn digits(n: usize) -> Array2<f32> {
    let d = builtin_mnist().unwrap();
    Array2::from_shape_vec((n, 784), d.x[..n * 784].to_vec()).unwrap()
}

fn dae(loss: Loss, lr: f32) -> DenoisingAutoencoder {
    let cfg = DaeConfig {
        n_hid: 16,
        loss,
        ..DaeConfig::default()
    };
    let train = TrainConfig {
        epochs: 3,
        lr,
        patience: 0,
        ..TrainConfig::default()
    };
    DenoisingAutoencoder::new(cfg, train)
}

#[test]
fn data_that_is_not_finite_or_not_in_0_1_under_cross_entropy_is_refused() {
    let mut x = digits(100);
    x[[37, 400]] = f32::NAN;
    let e = dae(Loss::Squared, 0.1)
        .fit(x.view(), None, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 37, column 400") && e.contains("finite"), "{e}");
    let mut x = digits(100);
    x[[5, 3]] = 2.0;
    let e = dae(Loss::CrossEntropy, 0.1)
        .fit(x.view(), None, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 5, column 3") && e.contains("[0, 1]"), "{e}");
    // Squared loss takes real values.
    dae(Loss::Squared, 0.1).fit(x.view(), None, &mut Silent).unwrap();
    // A fitted cross-entropy model evaluates only what it could train on.
    let mut m = dae(Loss::CrossEntropy, 0.1);
    m.fit(digits(100).view(), None, &mut Silent).unwrap();
    let e = m.evaluate(x.view()).unwrap_err().to_string();
    assert!(
        e.contains("evaluation data") && e.contains("row 5, column 3"),
        "{e}"
    );
    // Validation data is checked too.
    let mut v = digits(20);
    v[[1, 1]] = f32::INFINITY;
    let e = dae(Loss::Squared, 0.1)
        .fit(digits(100).view(), Some(v.view()), &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("validation data") && e.contains("row 1, column 1"),
        "{e}"
    );
}

#[test]
fn a_loss_that_runs_away_is_divergence_even_while_finite() {
    // Cross-entropy from logits stays finite as the weights explode: before
    // the bound, this trained "successfully" to a test loss of ~1e31.
    let mut m = dae(Loss::CrossEntropy, 1e30);
    let e = m
        .fit(digits(200).view(), None, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(e.contains("diverged") && e.contains("train.lr"), "{e}");
}

#[test]
fn non_finite_weights_are_never_saved_nor_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = dae(Loss::Squared, 0.1);
    m.fit(digits(50).view(), None, &mut Silent).unwrap();
    let good = tmp.path().join("good.safetensors");
    m.save(&good).unwrap();
    m.params_mut()[7] = f32::NAN;
    let bad = tmp.path().join("bad.safetensors");
    let e = m.save(&bad).unwrap_err().to_string();
    assert!(e.contains("not saved") && e.contains("encoder.weight"), "{e}");
    assert!(!bad.exists(), "nothing is written");
    // A file written elsewhere with a NaN weight is refused on loading.
    let bytes = std::fs::read(&good).unwrap();
    let f = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = f
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let enc = owned.iter_mut().find(|(n, _, _)| n == "encoder.weight").unwrap();
    enc.2[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = owned
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    let md: HashMap<String, String> = meta.metadata().clone().unwrap_or_default();
    std::fs::write(&bad, safetensors::serialize(views, Some(md)).unwrap()).unwrap();
    let e = DenoisingAutoencoder::load(&bad).unwrap_err().to_string();
    assert!(
        e.contains("bad.safetensors") && e.contains("encoder.weight") && e.contains("NaN"),
        "{e}"
    );
    DenoisingAutoencoder::load(&good).unwrap();
}

/// `path` written again with its metadata entry `key` passed through `edit`.
fn rewrite_metadata(path: &std::path::Path, out: &std::path::Path, key: &str, edit: impl Fn(&str) -> String) {
    let bytes = std::fs::read(path).unwrap();
    let f = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut md: HashMap<String, String> = meta.metadata().clone().unwrap_or_default();
    let v = edit(&md[key]);
    md.insert(key.into(), v);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = f.tensors();
    std::fs::write(out, safetensors::serialize(views, Some(md)).unwrap()).unwrap();
}

#[test]
fn sizes_are_checked_before_anything_is_allocated() {
    // A model the machine cannot hold is refused with what it would need.
    let mut m = DenoisingAutoencoder::new(
        DaeConfig {
            n_hid: 1_000_000_000,
            ..DaeConfig::default()
        },
        TrainConfig::default(),
    );
    let e = m
        .fit(digits(10).view(), None, &mut Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.n_hid") && e.contains("GiB") && e.contains("memory"),
        "{e}"
    );
    // A small model file whose metadata declares a huge model is refused by
    // its tensors' shapes, not allocated from the metadata.
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.safetensors");
    let mut small = dae(Loss::Squared, 0.1);
    small.fit(digits(50).view(), None, &mut Silent).unwrap();
    small.save(&good).unwrap();
    let lying = tmp.path().join("lying.safetensors");
    rewrite_metadata(&good, &lying, "config", |c| {
        c.replace("n_hid = 16", "n_hid = 1000000000")
    });
    let e = DenoisingAutoencoder::load(&lying).unwrap_err().to_string();
    assert!(
        e.contains("lying.safetensors") && e.contains("1000000000") && e.contains("encoder.weight"),
        "{e}"
    );
}
