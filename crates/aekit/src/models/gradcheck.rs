//! Numerical gradient checks over a model's whole flat parameter vector, in
//! f64: ‖g − ĝ‖ / ‖g + ĝ‖ between the analytic gradient g and central
//! differences ĝ of fourth order, ĝ = [8(f(x+h) − f(x−h)) − (f(x+2h) −
//! f(x−2h))] / 12h with h = 1e-3. The exercise's two-point difference with
//! h = 1e-4 leaves about 1e-9 of truncation error on variants with small
//! gradients (measured 1.25e-9 for β = 0), and h = 1e-5 drowns in rounding
//! (1.1e-8); the fourth-order stencil's error is O(h⁴) with 100× less
//! rounding, so what it measures is the analytic gradient's own error.
//!
//! ReLU units are left out of these suites: a finite difference that crosses
//! the kink measures nothing. They keep their check on a model small enough
//! to avoid it (`tests/dae.rs`, relative error < 1e-6).

use crate::layers::Corruption;
use crate::layers::{Activation, Loss};
use crate::models::dae::{objective, DaeConfig, Examples, Layout, Workspace};
use crate::models::sparse_ae::{sparse_cost, SparseConfig, SparseLayout, SparseWorkspace};
use crate::tensor::gemm::Par;
use crate::tensor::rng::seeded;
use rand::Rng as _;

/// ‖g − ĝ‖ / ‖g + ĝ‖ for cost `f` at `p`, given its analytic gradient `g`.
pub fn relative_difference(mut f: impl FnMut(&[f64]) -> f64, p: &[f64], g: &[f64]) -> f64 {
    let h = 1e-3;
    let mut q = p.to_vec();
    let (mut diff, mut sum) = (0.0f64, 0.0f64);
    for i in 0..p.len() {
        let mut at = |d: f64| {
            q[i] = p[i] + d;
            let v = f(&q);
            q[i] = p[i];
            v
        };
        let (f1, fm1, f2, fm2) = (at(h), at(-h), at(2.0 * h), at(-2.0 * h));
        let num = (8.0 * (f1 - fm1) - (f2 - fm2)) / (12.0 * h);
        diff += (g[i] - num).powi(2);
        sum += (g[i] + num).powi(2);
    }
    if sum == 0.0 {
        0.0
    } else {
        (diff / sum).sqrt()
    }
}

/// Random data for a check: in (0, 1) for sigmoid outputs, around 0 otherwise.
fn data(n: usize, unit: bool, seed: u64) -> Vec<f64> {
    let mut rng = seeded(seed);
    (0..n)
        .map(|_| {
            if unit {
                rng.random_range(0.05..0.95)
            } else {
                rng.random_range(-1.0..1.0)
            }
        })
        .collect()
}

/// Checks the sparse autoencoder's cost on `samples` random examples.
pub fn check_sparse(cfg: &SparseConfig, samples: usize, seed: u64) -> f64 {
    let lay = SparseLayout::new(cfg.n_vis, cfg.n_hid);
    let mut rng = seeded(seed);
    let r = (6.0 / (cfg.n_vis + cfg.n_hid + 1) as f64).sqrt();
    let p: Vec<f64> = (0..lay.len).map(|_| rng.random_range(-r..r)).collect();
    let x = data(
        samples * cfg.n_vis,
        cfg.output_activation == Activation::Sigmoid,
        seed + 1,
    );
    let mut ws = SparseWorkspace::default();
    let mut g = vec![0.0; lay.len];
    sparse_cost(cfg, &p, Some(&mut g), &x, samples, &mut ws, Par::Seq);
    relative_difference(
        |q| sparse_cost(cfg, q, None, &x, samples, &mut ws, Par::Seq).total,
        &p,
        &g,
    )
}

/// Checks the denoising autoencoder's objective (mean loss plus weight
/// decay) with a frozen corruption of `samples` random examples.
pub fn check_dae(cfg: &DaeConfig, weight_decay: f64, samples: usize, seed: u64) -> f64 {
    let lay = Layout::new(cfg);
    let mut rng = seeded(seed);
    let p: Vec<f64> = (0..lay.len).map(|_| rng.random_range(-0.5..0.5)).collect();
    let x = data(samples * cfg.n_vis, true, seed + 1);
    let clean: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let mut noisy32 = vec![0.0f32; clean.len()];
    cfg.noise.apply(&mut noisy32, &clean, &mut seeded(seed + 2));
    let noisy: Vec<f64> = noisy32.iter().map(|&v| v as f64).collect();
    let mut ws = Workspace::<f64>::new(cfg, samples);
    let mut g = vec![0.0; lay.len];
    objective(
        cfg,
        &lay,
        &p,
        &mut g,
        Examples {
            input: &noisy,
            target: &x,
            n: samples,
        },
        weight_decay,
        &mut ws,
        Par::Seq,
    );
    let mut scratch = vec![0.0; lay.len];
    relative_difference(
        |q| {
            objective(
                cfg,
                &lay,
                q,
                &mut scratch,
                Examples {
                    input: &noisy,
                    target: &x,
                    n: samples,
                },
                weight_decay,
                &mut ws,
                Par::Seq,
            )
            .1
        },
        &p,
        &g,
    )
}

/// Every sparse-autoencoder variant aekit offers: sigmoid or linear output,
/// with and without each penalty. (label, relative difference)
pub fn sparse_suite(n_vis: usize, n_hid: usize, samples: usize, seed: u64) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for output in [Activation::Sigmoid, Activation::Identity] {
        for (beta, lambda) in [(3.0, 3e-3), (0.0, 3e-3), (3.0, 0.0), (0.0, 0.0)] {
            let cfg = SparseConfig {
                n_vis,
                n_hid,
                sparsity_target: 0.1,
                sparsity_weight: beta,
                weight_decay: lambda,
                output_activation: output,
                standardize: false,
                seed,
            };
            let label = format!("sparse {n_vis}-{n_hid}, {output:?} output, β={beta}, λ={lambda}");
            out.push((label, check_sparse(&cfg, samples, seed)));
        }
    }
    out
}

/// Every denoising-autoencoder variant: tied or not, each loss and output,
/// each corruption, with and without weight decay.
pub fn dae_suite(n_vis: usize, n_hid: usize, samples: usize, seed: u64) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for tied in [true, false] {
        for (hidden, output, loss) in [
            (Activation::Sigmoid, Activation::Sigmoid, Loss::CrossEntropy),
            (Activation::Sigmoid, Activation::Sigmoid, Loss::Squared),
            (Activation::Tanh, Activation::Identity, Loss::Squared),
            (Activation::Tanh, Activation::Sigmoid, Loss::CrossEntropy),
        ] {
            for (noise, wd) in [
                (Corruption::Mask(0.3), 1e-2),
                (Corruption::Gauss(0.1), 0.0),
                (Corruption::SaltPepper(0.2), 1e-3),
            ] {
                let cfg = DaeConfig {
                    n_vis,
                    n_hid,
                    tied,
                    hidden_activation: hidden,
                    output_activation: output,
                    loss,
                    noise,
                    init_scale: 0.0,
                    standardize: false,
                };
                let label = format!(
                    "dae {n_vis}-{n_hid} {}, {hidden:?}/{output:?}, {loss}, {noise}, λ={wd}",
                    if tied { "tied" } else { "untied" }
                );
                out.push((label, check_dae(&cfg, wd, samples, seed)));
            }
        }
    }
    out
}
