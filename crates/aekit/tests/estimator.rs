//! Every model through the one estimator surface, as the Python bindings
//! will drive them: fit on a few hundred built-in digits, then transform,
//! reconstruct and score through `&mut dyn Estimator`.

use aekit::data::builtin::builtin_mnist;
use aekit::layers::Loss;
use aekit::models::conv::{CaeSpec, ConvAutoencoder};
use aekit::models::sparse_ae::{SparseAutoencoder, SparseConfig};
use aekit::models::stacked::StackedDae;
use aekit::models::{DaeConfig, DenoisingAutoencoder, Estimator};
use aekit::ndarray::Array2;
use aekit::train::{Silent, TrainConfig};

fn digits(range: std::ops::Range<usize>) -> Array2<f32> {
    let d = builtin_mnist().unwrap();
    let x = d.x[range.start * 784..range.end * 784].to_vec();
    Array2::from_shape_vec((range.len(), 784), x).unwrap()
}

/// Fits `m` and checks what every estimator promises: codes of `code` values
/// per row, reconstructions of the input's shape, a held-out score that
/// training lowered, and the same answers with more threads.
fn check(name: &str, m: &mut dyn Estimator, code: usize, reconstructs: bool) {
    let (train, test) = (digits(0..400), digits(8000..8100));
    let before = m.score(test.view()).unwrap_or(f64::INFINITY);
    let report = m
        .fit(train.view(), Some(digits(400..500).view()), &mut Silent)
        .unwrap();
    assert!(!report.history.is_empty(), "{name}: an epoch was reported");
    assert!(report.history.iter().all(|e| e.train_loss.is_finite()), "{name}");
    let after = m.score(test.view()).unwrap();
    assert!(
        after.is_finite() && after < before,
        "{name}: held-out score {before} -> {after}"
    );
    let codes = m.transform(test.view()).unwrap();
    assert_eq!(codes.dim(), (100, code), "{name}: codes");
    assert!(codes.iter().all(|v| v.is_finite()), "{name}");
    match m.reconstruct(test.view()) {
        Ok(z) => {
            assert!(reconstructs, "{name} reconstructs");
            assert_eq!(z.dim(), (100, 784), "{name}: reconstructions");
        }
        Err(e) => assert!(!reconstructs, "{name}: {e}"),
    }
    m.set_threads(2);
    let again = m.score(test.view()).unwrap();
    assert!(
        (again - after).abs() <= 1e-4 * after.abs(),
        "{name}: {after} vs {again} on 2 threads"
    );
    let bad = Array2::<f32>::zeros((3, 10));
    assert!(m.transform(bad.view()).is_err(), "{name}: wrong width refused");
}

#[test]
fn every_model_fits_transforms_reconstructs_and_scores_through_one_surface() {
    let quick = TrainConfig {
        epochs: 2,
        batch: 20,
        patience: 0,
        ..TrainConfig::default()
    };
    let dae_cfg = DaeConfig {
        n_hid: 32,
        ..DaeConfig::default()
    };
    let mut dae = DenoisingAutoencoder::new(dae_cfg, quick.clone());
    check("dae", &mut dae, 32, true);
    let z = digits(0..5);
    let back =
        Estimator::inverse_transform(&dae, Estimator::transform(&dae, z.view()).unwrap().view()).unwrap();
    assert_eq!(back.dim(), (5, 784));

    let mut sparse = SparseAutoencoder::new(SparseConfig {
        n_hid: 25,
        ..SparseConfig::default()
    });
    sparse.lbfgs.max_iter = 20;
    check("sparse", &mut sparse, 25, true);

    let mut cae = ConvAutoencoder::new(&CaeSpec::preset("cae-mnist").unwrap(), Loss::Squared, 3).unwrap();
    cae.train.train.epochs = 1;
    check("cae", &mut cae, 32 * 7 * 7, true);
    let codes = Estimator::transform(&cae, z.view()).unwrap();
    assert!(Estimator::inverse_transform(&cae, codes.view()).is_err());

    let mut stack = StackedDae::new(784, &[48, 24], 5);
    stack.pretrain.train.epochs = 1;
    stack.pretrain.layer_epochs = 1;
    check("stacked", &mut stack, 24, false);
}

#[test]
fn a_dae_set_to_lbfgs_fits_through_the_same_surface() {
    let train = TrainConfig {
        optimizer: "lbfgs".parse().unwrap(),
        epochs: 10,
        ..TrainConfig::default()
    };
    let mut m = DenoisingAutoencoder::new(
        DaeConfig {
            n_hid: 16,
            ..DaeConfig::default()
        },
        train,
    );
    let x = digits(0..200);
    let r = Estimator::fit(&mut m, x.view(), None, &mut Silent).unwrap();
    assert!(
        r.history.len() >= 5 && r.history.len() <= 10,
        "{} iterations",
        r.history.len()
    );
    let first = r.history[0].train_loss;
    let last = r.history.last().unwrap().train_loss;
    assert!(last < first, "L-BFGS lowers the objective: {first} -> {last}");
}
