//! The denoising autoencoder (Vincent et al. 2008; Theano `dA.py`).
//!
//! Forward, for a batch of corrupted inputs x̃ `[batch, n_vis]`:
//!   h = f(x̃·W + b)            W `[n_vis, n_hid]`, b `[n_hid]`
//!   a = h·Wᵀ + b′  (tied)  or  h·W′ + b′ (untied, W′ `[n_hid, n_vis]`)
//!   z = g(a)
//! Loss against the clean x: ½·Σ(x−z)² or −Σ[x ln z + (1−x) ln(1−z)] (from a).
//! Objective per batch: mean loss + ½·λ·(‖W‖² + ‖W′‖²).
//! Backward: δa = (z−x)·g′(a) (squared) or σ(a)−x (cross-entropy);
//!   δh = δa·W (tied) or δa·W′ᵀ, then ·f′; dW += x̃ᵀ·δh (+ δaᵀ·h when tied);
//!   dW′ += hᵀ·δa; db += Σ δh; db′ += Σ δa; weights add λ·W.
//!
//! Parameters live in one flat vector `[W | b | b′ | W′]`, so every optimizer
//! works on one slice.
//!
//! The files: `maths.rs` (settings, layout, batch loss and gradient),
//! `model.rs` (the estimator), `training.rs` (epoch plans and the objective
//! the shared loops train).

#[cfg(feature = "cuda")]
pub mod gpu;
mod maths;
mod model;
mod training;

pub use maths::{batch_loss_grad, finish_objective, objective, DaeConfig, Examples, Layout, Workspace};
pub use model::{DenoisingAutoencoder, Metrics};
pub use training::{DaeBatch, DaeObjective, EpochPlan};
