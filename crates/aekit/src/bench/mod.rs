//! The measurements behind `aekit bench`: the parallel-SGD paper's Fig. 3
//! (seconds per epoch against threads and hidden units) and Fig. 2
//! (training error against elapsed time), with the achieved GFLOP/s set
//! against the GEMM rate the same binary reaches on one core.

pub mod commands;

pub use commands::{BenchCurve, BenchSparse, BenchThreads};

use crate::error::Result;
use crate::layers::Corruption;
use crate::layers::Loss;
use crate::models::{DaeConfig, DenoisingAutoencoder};
use crate::tensor::gemm::{gemm, Par};
use crate::train::ParallelMode;
use crate::train::TrainConfig;
use ndarray::ArrayView2;
use serde::Serialize;
use std::time::Instant;

/// GFLOP/s of a 100×784 by 784×500 f32 product (a batch-100 encoder pass)
/// on one thread: the best of several timed repetitions.
pub fn gemm_gflops_one_core() -> f64 {
    let (m, k, n) = (100, 784, 500);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.01).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.01).collect();
    let mut c = vec![0.0f32; m * n];
    let flops = 2.0 * (m * k * n) as f64;
    let mut best = 0.0f64;
    for _ in 0..5 {
        let reps = 40;
        let t = Instant::now();
        for _ in 0..reps {
            gemm(m, n, k, 1.0, &a, false, &b, false, false, &mut c, Par::Seq);
        }
        best = best.max(flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// The machine's own two-core scaling, measured now: µs per step of a
/// per-example worker on a 256-unit hidden layer (a `split` worker's share
/// of 500 units; its W fits in one core's L2), alone and as two independent
/// workers on two threads at once. Nothing is shared between the two, so on
/// a quiet host they run as fast together as alone and the scaling is about
/// 2; on these virtual machines it fell to about 1 in spells, when two at
/// once each ran at half speed. A speed-up measured in such a spell says
/// more about the host than about the mode.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TwoCoreCheck {
    pub alone_us: f64,
    pub together_us: [f64; 2],
    /// 2 · alone / the slower of the two together.
    pub scaling: f64,
}

/// Runs [`TwoCoreCheck`] on the first (up to 500) examples of `x`, with
/// masking noise 0.25, each figure the median of 8 passes over them.
pub fn two_core_check(x: ArrayView2<f32>) -> Result<TwoCoreCheck> {
    use crate::per_example::FusedTiedSgd;
    let (n, nv) = (x.nrows().min(500), x.ncols());
    if n == 0 {
        return Err(crate::error::Error::config("data", "no examples to time"));
    }
    // The paper's model at 256 units, initialised as `train` would.
    let m = paper_model(nv, 256, 1, ParallelMode::Auto, 7);
    let clean: Vec<f32> = x.slice(ndarray::s![..n, ..]).iter().copied().collect();
    let mut noisy = vec![0.0f32; clean.len()];
    let mut rng = crate::tensor::rng::seeded(7);
    for (o, c) in noisy.chunks_exact_mut(nv).zip(clean.chunks_exact(nv)) {
        m.config.noise.apply(o, c, &mut rng);
    }
    let worker = || -> Result<f64> {
        let shape = m.tied_shape().expect("the paper's model is tied and sigmoid");
        let mut k = FusedTiedSgd::new(
            shape,
            m.layout().tied(m.params()),
            m.train.lr,
            m.train.weight_decay,
        )?;
        let passes: Vec<f64> = (0..8)
            .map(|_| {
                let t = Instant::now();
                for (c, o) in clean.chunks_exact(nv).zip(noisy.chunks_exact(nv)) {
                    k.step(c, o);
                }
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            })
            .collect();
        Ok(median(&passes))
    };
    let alone_us = worker()?;
    let (a, b) = std::thread::scope(|s| {
        let other = s.spawn(worker);
        (worker(), other.join().expect("the timing thread panicked"))
    });
    let together_us = [a?, b?];
    Ok(TwoCoreCheck {
        alone_us,
        together_us,
        scaling: 2.0 * alone_us / together_us[0].max(together_us[1]),
    })
}

pub use crate::per_example::step_flops;

/// The paper's setting: tied sigmoid, squared loss, masking 0.25, per-example
/// SGD with learning rate 0.01.
pub fn paper_model(
    n_vis: usize,
    hidden: usize,
    threads: usize,
    mode: ParallelMode,
    seed: u64,
) -> DenoisingAutoencoder {
    let cfg = DaeConfig {
        n_vis,
        n_hid: hidden,
        loss: Loss::Squared,
        noise: Corruption::Mask(0.25),
        ..DaeConfig::default()
    };
    let train = TrainConfig {
        epochs: 1,
        batch: 1,
        lr: 0.01,
        momentum: 0.0,
        weight_decay: 0.0,
        patience: 0,
        seed,
        threads,
        parallel: mode,
        ..TrainConfig::default()
    };
    DenoisingAutoencoder::new(cfg, train)
}

/// One row of the Fig. 3 grid.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadsRow {
    pub hidden: usize,
    pub threads: usize,
    pub mode: String,
    pub examples: usize,
    /// Seconds for one epoch over `examples` (the median of the rounds).
    pub seconds: f64,
    /// Dense-equivalent GFLOP/s of the training step, at `seconds`.
    pub gflops: f64,
    /// `gflops` over the one-core GEMM rate.
    pub gemm_ratio: f64,
    /// Seconds at 1 thread (same mode and hidden units) over seconds at
    /// `threads`, taken within each round: the median, lowest and highest
    /// over the rounds.
    pub speedup: f64,
    pub speedup_min: f64,
    pub speedup_max: f64,
    /// Epochs timed for this row.
    pub rounds: usize,
}

/// Times one epoch of per-example SGD over `x` (`[n, n_vis]`).
pub fn time_epoch(
    x: ArrayView2<f32>,
    hidden: usize,
    threads: usize,
    mode: ParallelMode,
    seed: u64,
) -> Result<f64> {
    let mut m = paper_model(x.ncols(), hidden, threads, mode, seed);
    let t = Instant::now();
    m.partial_fit(x)?;
    Ok(t.elapsed().as_secs_f64())
}

/// The median of a non-empty list.
fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len();
    if k % 2 == 1 {
        s[k / 2]
    } else {
        0.5 * (s[k / 2 - 1] + s[k / 2])
    }
}

/// The Fig. 3 grid. For each mode and width, every thread count is timed
/// once per round, the counts taking turns, so that a drift in the machine's
/// speed reaches all of them alike; a speed-up is a ratio of two epochs of
/// the same round. `on_round` sees every epoch timed (mode, hidden, threads,
/// round, seconds); `on_row` sees each row when its rounds are done.
#[allow(clippy::too_many_arguments)]
pub fn threads_grid(
    x: ArrayView2<f32>,
    hidden: &[usize],
    threads: &[usize],
    modes: &[ParallelMode],
    seed: u64,
    rounds: usize,
    gemm_gflops: f64,
    on_round: &mut dyn FnMut(ParallelMode, usize, usize, usize, f64),
    on_row: &mut dyn FnMut(&ThreadsRow),
) -> Result<Vec<ThreadsRow>> {
    let rounds = rounds.max(1);
    let mut rows = Vec::new();
    for &mode in modes {
        for &h in hidden {
            // seconds[round][k] for thread count threads[k].
            let mut seconds = vec![vec![0.0f64; threads.len()]; rounds];
            for (r, times) in seconds.iter_mut().enumerate() {
                for (k, &t) in threads.iter().enumerate() {
                    times[k] = time_epoch(x, h, t, mode, seed)?;
                    on_round(mode, h, t, r + 1, times[k]);
                }
            }
            let base = threads.iter().position(|&t| t == 1);
            for (k, &t) in threads.iter().enumerate() {
                let secs: Vec<f64> = seconds.iter().map(|v| v[k]).collect();
                // Without a one-thread run there is nothing to compare with.
                let ratios: Vec<f64> = match base {
                    Some(b) => seconds.iter().map(|v| v[b] / v[k]).collect(),
                    None => vec![f64::NAN; rounds],
                };
                let spread = |f: fn(f64, f64) -> f64| ratios.iter().copied().reduce(f).unwrap_or(f64::NAN);
                let sec = median(&secs);
                let gflops = step_flops(x.ncols(), h) * x.nrows() as f64 / sec / 1e9;
                let row = ThreadsRow {
                    hidden: h,
                    threads: t,
                    mode: mode.to_string(),
                    examples: x.nrows(),
                    seconds: sec,
                    gflops,
                    gemm_ratio: gflops / gemm_gflops,
                    speedup: median(&ratios),
                    speedup_min: spread(f64::min),
                    speedup_max: spread(f64::max),
                    rounds,
                };
                on_row(&row);
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// One point of the Fig. 2 curves.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub threads: usize,
    pub mode: String,
    pub epoch: usize,
    /// Training seconds so far (evaluation excluded).
    pub seconds: f64,
    /// Mean squared-error loss ½·Σ(x−z)² per example on the clean training set.
    pub train_error: f64,
}

/// Fig. 2: for each thread count, `epochs` epochs on `x`, the training error
/// after each (and before the first, at 0 s).
pub fn curves(
    x: ArrayView2<f32>,
    hidden: usize,
    threads: &[usize],
    mode: ParallelMode,
    epochs: usize,
    seed: u64,
    on_point: &mut dyn FnMut(&CurvePoint),
) -> Result<Vec<CurvePoint>> {
    let mut out = Vec::new();
    for &t in threads {
        let mut m = paper_model(x.ncols(), hidden, t, mode, seed);
        let mut seconds = 0.0;
        for epoch in 0..=epochs {
            // Epoch 0 scores the initial weights (drawn by `paper_model`).
            if epoch > 0 {
                let start = Instant::now();
                m.partial_fit(x)?;
                seconds += start.elapsed().as_secs_f64();
            }
            let p = CurvePoint {
                threads: t,
                mode: mode.to_string(),
                epoch,
                seconds,
                train_error: m.score(x)?,
            };
            on_point(&p);
            out.push(p);
        }
    }
    Ok(out)
}

/// Seconds per cost-and-gradient evaluation of the sparse autoencoder.
#[derive(Debug, Clone, Serialize)]
pub struct SparseEvalTimes {
    pub examples: usize,
    pub gemm_one_thread: f64,
    pub gemm_threads: f64,
    pub threads: usize,
    /// The plain per-example path (f64 loops), measured on `plain_examples`
    /// examples and scaled to `examples`.
    pub plain: f64,
    pub plain_examples: usize,
}

/// Times [`crate::models::sparse_ae::sparse_cost`] (best of `reps`) against
/// [`crate::models::sparse_ae::sparse_cost_plain`] on `x`.
pub fn sparse_eval_times(x: ArrayView2<f32>, hidden: usize, threads: usize, reps: usize) -> SparseEvalTimes {
    use crate::models::sparse_ae::{
        sparse_cost, sparse_cost_plain, SparseAutoencoder, SparseConfig, SparseWorkspace,
    };
    let xs = x.as_standard_layout();
    let (xd, m, v) = (xs.as_slice().expect("standard layout"), xs.nrows(), xs.ncols());
    let cfg = SparseConfig {
        n_vis: v,
        n_hid: hidden,
        ..SparseConfig::default()
    };
    let model = SparseAutoencoder::new(cfg.clone());
    let p = model.params();
    let mut g = vec![0.0f32; p.len()];
    let mut ws = SparseWorkspace::default();
    let mut best = |par: Par| {
        (0..reps.max(1))
            .map(|_| {
                let t = Instant::now();
                sparse_cost(&cfg, p, Some(&mut g), xd, m, &mut ws, par);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let one = best(Par::Seq);
    let many = best(Par::from_threads(threads));
    let pm = m.min(500);
    let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
    let x64: Vec<f64> = xd[..pm * v].iter().map(|&v| v as f64).collect();
    let mut g64 = vec![0.0f64; p.len()];
    let t = Instant::now();
    sparse_cost_plain(&cfg, &p64, &mut g64, &x64, pm);
    let plain = t.elapsed().as_secs_f64() * m as f64 / pm as f64;
    SparseEvalTimes {
        examples: m,
        gemm_one_thread: one,
        gemm_threads: many,
        threads,
        plain,
        plain_examples: pm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_core_check_refuses_no_examples_and_times_some() {
        let none = ndarray::Array2::<f32>::zeros((0, 784));
        let e = two_core_check(none.view()).unwrap_err().to_string();
        assert!(e.contains("no examples"), "{e}");
        // Few and narrow examples: every figure is a positive time. (No bound
        // on the scaling: other tests share the machine while it is timed.)
        let x = ndarray::Array2::from_shape_fn((20, 32), |(i, j)| ((i + j) % 3) as f32 * 0.5);
        let c = two_core_check(x.view()).unwrap();
        assert!(
            c.alone_us > 0.0 && c.together_us.iter().all(|&t| t > 0.0),
            "{c:?}"
        );
        assert!(c.scaling.is_finite() && c.scaling > 0.0, "{c:?}");
    }
}
