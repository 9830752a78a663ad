//! An autoencoder without non-linear activations, trained with squared loss
//! by L-BFGS, learns PCA's subspace (the lecture's claim): the largest
//! principal angle between its decoder's rows and PCA's top components is
//! below 1e-2.

use aekit::layers::{Activation, Corruption, Loss};
use aekit::models::dae::DaeConfig;
use aekit::models::pca::Pca;
use aekit::models::DenoisingAutoencoder;
use aekit::optim::lbfgs::LbfgsConfig;
use aekit::train::{Optimizer, Silent, TrainConfig};
use ndarray::Array2;

/// Orthonormal rows (Gram-Schmidt, in f64).
fn orthonormal(rows: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::new();
    for mut r in rows {
        for q in &out {
            let d: f64 = r.iter().zip(q).map(|(a, b)| a * b).sum();
            r.iter_mut().zip(q).for_each(|(a, b)| *a -= d * b);
        }
        let n = r.iter().map(|a| a * a).sum::<f64>().sqrt();
        out.push(r.into_iter().map(|a| a / n).collect());
    }
    out
}

#[test]
fn a_linear_autoencoder_learns_the_principal_subspace() {
    // 300 rows of 8 columns: three latent factors mixed in, plus a little noise.
    let (n, d, k) = (300, 8, 3);
    let mut state = 7u64;
    let mut u = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let mix: Vec<f64> = (0..k * d).map(|_| u()).collect();
    let x = Array2::from_shape_fn((n, d), |_| 0.0f32);
    let mut x = x;
    for r in 0..n {
        let z: Vec<f64> = (0..k).map(|i| u() * (3 - i) as f64).collect();
        for j in 0..d {
            let v: f64 = (0..k).map(|i| z[i] * mix[i * d + j]).sum::<f64>() + 0.05 * u();
            x[[r, j]] = v as f32;
        }
    }
    let mut pca = Pca::new(k, false);
    pca.fit_rows(x.view()).unwrap();
    let cfg = DaeConfig {
        n_vis: d,
        n_hid: k,
        tied: false,
        hidden_activation: Activation::Identity,
        output_activation: Activation::Identity,
        loss: Loss::Squared,
        noise: Corruption::None,
        ..DaeConfig::default()
    };
    let train = TrainConfig {
        optimizer: Optimizer::Lbfgs,
        threads: 1,
        ..TrainConfig::default()
    };
    let mut ae = DenoisingAutoencoder::new(cfg, train);
    let lbfgs = LbfgsConfig {
        max_iter: 2000,
        grad_tol: 1e-7,
        cost_tol: 1e-14,
        ..LbfgsConfig::default()
    };
    ae.fit_lbfgs(x.view(), &lbfgs, &mut Silent).unwrap();
    // The decoder W′ is [k, d]: its rows span the reconstructions.
    let lay = ae.layout().clone();
    let p = ae.params();
    let dec = &p[lay.w_dec.clone().expect("untied")];
    let q1 = orthonormal(
        (0..k)
            .map(|i| dec[i * d..(i + 1) * d].iter().map(|&v| v as f64).collect())
            .collect(),
    );
    let q2: Vec<&[f64]> = (0..k).map(|i| pca.component(i)).collect();
    // cos of the principal angles: the singular values of Q1·Q2ᵀ.
    let m = faer::Mat::<f64>::from_fn(k, k, |a, b| q1[a].iter().zip(q2[b]).map(|(x, y)| x * y).sum());
    let mtm = m.transpose() * &m;
    let eig = mtm.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    let smallest_cos = eig
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(0.0)
        .sqrt()
        .min(1.0);
    let angle = smallest_cos.acos();
    eprintln!("largest principal angle {angle:.3e} rad");
    assert!(angle < 1e-2, "largest principal angle {angle} (cosines² {eig:?})");
}
