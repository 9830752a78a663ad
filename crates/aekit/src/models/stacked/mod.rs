//! Stacked denoising autoencoders: greedy (stacked), gradual and hybrid
//! pretraining (Kalmanovich & Chechik), then supervised fine-tuning with a
//! softmax on top (the SdA of Vincent et al. 2010 and the Theano tutorial).
//!
//! The trunk's weights `[W₁ b₁ … W_L b_L]` are one flat vector. Layer j's
//! pretraining DAE is tied: it encodes with (W_j, b_j), the very weights the
//! deep network then uses, and decodes with W_jᵀ and its own b′_j.
//!
//! Schedules, for layer k ≥ 2 with a budget of n epochs (layer 1 is a plain
//! DAE on x in every schedule):
//! - stacked: layers below are frozen; the clean representation h_{k−1} is
//!   corrupted and the tied DAE k reconstructs it;
//! - gradual: layers 1..k train jointly; noise goes on x only; x is
//!   reconstructed from h_k through a new decoder (W′, b′) that is dropped
//!   when the next layer comes;
//! - hybrid f: 2·n·f epochs of stacked training, then n·(1−f) of gradual
//!   (f = 1 is stacked, f = 0 gradual). Every weight update is counted.
//!
//! The files: `schedule.rs`, `model.rs` (the stack), `pretrain.rs`,
//! `finetune.rs`, and `objective.rs` (the deep objective both train through).

mod finetune;
mod model;
mod objective;
mod pretrain;
mod schedule;

pub use finetune::{FinetuneConfig, FinetuneEpoch, FinetuneReport};
pub use model::StackedDae;
pub use pretrain::{PretrainEpoch, PretrainLog};
pub use schedule::{PretrainConfig, Schedule};
