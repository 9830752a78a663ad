//! Per-example SGD on a tied sigmoid autoencoder (the parallel-SGD paper's
//! setting): the fused kernel over plain slices, and the ways of running it on
//! several threads. It knows no model type: a model hands it a [`TiedShape`]
//! and its parameters as [`TiedParams`] slices.
//!
//! - `split`: exact per-example SGD. Each worker owns a 16-aligned block of
//!   hidden units (its columns of W, its slice of b) in its own cache; per
//!   example every worker encodes its block, the decoder sums are combined
//!   block by block (see [`SplitSync`]), then each back-propagates into and
//!   updates only its block. Equal to one-thread SGD up to the order in which
//!   the decoder's partial sums are added.
//! - `rows`: exact per-example SGD split the other way. Each worker owns a
//!   block of visible units: whole rows of W (every hidden unit) and its
//!   slice of b′. Per example the workers meet once, to add up two
//!   hidden-length vectors (the last example's δh and the next one's partial
//!   pre-activation, with two scalars; see [`RowSync`]); everything else a
//!   worker does touches its own rows only, so half of a 784×500 W stays in
//!   each core's 1 MiB L2. Equal to one-thread SGD up to the order of those
//!   sums.
//! - `hogwild` (Niu et al. 2011; the parallel-SGD paper's scheme): workers take
//!   examples from one shuffled order and update the shared W, b and b′ with
//!   no locks. Sound Rust: the shared parameters are f32 bits in `AtomicU32`,
//!   read and written with relaxed ordering, so there is no data race on
//!   non-atomic memory; a lost update is possible, as in the paper. Rows are
//!   copied into a local buffer for the arithmetic, but the loads and stores
//!   themselves stay scalar (LLVM does not vectorise atomics).
//! - `minibatch`: synchronous data parallelism. Workers split each minibatch,
//!   compute gradients with one-threaded GEMM, and the gradients are summed in
//!   worker order before one update, so the run is deterministic.
//!
//! The files: `kernel.rs` (the fused step's maths and its public face),
//! `state.rs` (its state and the step's body, written once), `simd.rs` (the
//! body's instruction-set copies and their primitives: the only `unsafe` in
//! aekit), `isa.rs`, `sync.rs` (what lock-step workers share),
//! `hogwild.rs`, `drivers.rs` (one epoch by each plan) and `mode.rs` (the
//! `--parallel` modes and how work is shared out). `untied.rs` is the plain
//! one-thread step for an autoencoder with its own decoder W′, which the
//! fused sweep cannot take.

mod drivers;
mod hogwild;
mod isa;
mod kernel;
mod mode;
mod pin;
mod simd;
mod state;
mod sync;
mod untied;

pub use drivers::{run_epoch, Job, Plan};
pub use hogwild::{HogwildParams, HogwildWorker};
pub use kernel::{FusedTiedSgd, TiedParams, TiedParamsMut, TiedShape};
pub use mode::{balance_every, hidden_blocks, lockstep_workers, rebalanced};
pub use simd::{axpy_rows, update_dot4, Isa};
pub use sync::{Dispenser, RowSync, SpinBarrier, SplitLink, SplitSync};
pub use untied::{run_epoch_untied, UntiedJob, UntiedParamsMut, UntiedShape};

/// FLOPs of one plain per-example step of a tied autoencoder, counted dense:
/// encode 2·V·H, decode 2·V·H, back-propagate 2·V·H, update 4·V·H. The fused
/// kernel skips zero inputs, so its real count is lower; the rates the
/// benches and reports give are this dense-equivalent count over time.
pub fn step_flops(n_vis: usize, n_hid: usize) -> f64 {
    10.0 * n_vis as f64 * n_hid as f64
}
