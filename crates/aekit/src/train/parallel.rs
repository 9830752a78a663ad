//! Parallel per-example and minibatch training of the tied autoencoder.
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

use crate::tensor::vmath;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};

use super::per_example::spin_until;
pub use super::per_example::{RowSync, SplitLink, SplitSync};

/// How `--threads N` is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParallelMode {
    /// `rows` for per-example SGD (batch 1) on a tied sigmoid model (the
    /// fastest exact mode measured), otherwise threads inside each matrix
    /// product.
    #[default]
    Auto,
    Split,
    /// Exact per-example SGD over blocks of visible units (rows of W).
    Rows,
    /// `rows`, with the rows shared out again by each worker's measured speed
    /// every [`balance_every`] examples (not bit-reproducible run to run).
    Balanced,
    Hogwild,
    Minibatch,
    /// Threads inside each matrix product (faer's own parallelism).
    Gemm,
}

impl std::str::FromStr for ParallelMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ParallelMode::Auto),
            "split" => Ok(ParallelMode::Split),
            "rows" => Ok(ParallelMode::Rows),
            "balanced" => Ok(ParallelMode::Balanced),
            "hogwild" => Ok(ParallelMode::Hogwild),
            "minibatch" => Ok(ParallelMode::Minibatch),
            "gemm" => Ok(ParallelMode::Gemm),
            _ => Err(format!(
                "unknown parallel mode `{s}` (expected auto, split, rows, balanced, hogwild, minibatch or gemm)"
            )),
        }
    }
}

impl std::fmt::Display for ParallelMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ParallelMode::Auto => "auto",
            ParallelMode::Split => "split",
            ParallelMode::Rows => "rows",
            ParallelMode::Balanced => "balanced",
            ParallelMode::Hogwild => "hogwild",
            ParallelMode::Minibatch => "minibatch",
            ParallelMode::Gemm => "gemm",
        };
        f.write_str(s)
    }
}

/// Splits `n_hid` hidden units into at most `threads` blocks whose starts
/// are multiples of 16, as equal as that allows.
pub fn hidden_blocks(n_hid: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    let chunks = n_hid.div_ceil(16);
    let t = threads.clamp(1, chunks.max(1));
    (0..t)
        .map(|k| {
            let a = (chunks * k / t * 16).min(n_hid);
            let b = (chunks * (k + 1) / t * 16).min(n_hid);
            a..b
        })
        .collect()
}

/// Examples between two re-sharings of the rows in the `balanced` mode, for
/// an epoch of `n`: 4000 (a fraction of a second at 784×500), or an eighth of
/// a short epoch, but at least 200.
pub fn balance_every(n: usize) -> usize {
    (n / 8).clamp(200, 4000)
}

/// New contiguous row bounds for the `balanced` mode: each worker's share
/// moves halfway towards its speed's share (its rows over `busy` seconds),
/// on multiples of 16 rows, and every worker keeps at least one block.
pub fn rebalanced(bounds: &[usize], busy: &[f64]) -> Vec<usize> {
    let t = busy.len();
    assert_eq!(bounds.len(), t + 1);
    let nv = bounds[t];
    if !busy.iter().all(|b| b.is_finite() && *b > 0.0) {
        return bounds.to_vec();
    }
    let rows: Vec<f64> = (0..t).map(|k| (bounds[k + 1] - bounds[k]) as f64).collect();
    let speed: Vec<f64> = rows.iter().zip(busy).map(|(r, b)| r / b).collect();
    let total: f64 = speed.iter().sum();
    let unit = if nv >= 16 * t { 16 } else { 1 };
    let mut out = vec![0usize; t + 1];
    let mut acc = 0.0f64;
    for k in 0..t {
        acc += 0.5 * rows[k] + 0.5 * nv as f64 * speed[k] / total;
        let cut = ((acc / unit as f64).round() as usize * unit).min(nv);
        // At least `unit` rows for this worker and for each one after it.
        out[k + 1] = cut.clamp(out[k] + unit, nv - (t - 1 - k) * unit);
    }
    out[t] = nv;
    out
}

/// A barrier whose waiters spin instead of sleeping, so that a worker keeps
/// its core between two segments: a thread woken from a sleep may be placed
/// on its peer's core for milliseconds, which lock-step workers cannot
/// afford. After a long wait it yields, so a descheduled peer can run.
pub struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Returns once all `n` threads have called it.
    pub fn wait(&self) {
        use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
        let generation = self.generation.load(Acquire);
        if self.arrived.fetch_add(1, AcqRel) + 1 == self.n {
            self.arrived.store(0, Relaxed);
            self.generation.fetch_add(1, Release);
            return;
        }
        spin_until(20_000, || self.generation.load(Acquire) != generation);
    }
}

/// Shared parameters of a Hogwild run: `[n_vis, hp]` W (padded rows), b, b′.
pub struct HogwildParams {
    pub n_vis: usize,
    pub n_hid: usize,
    pub hp: usize,
    pub w: Vec<AtomicU32>,
    pub b: Vec<AtomicU32>,
    pub c: Vec<AtomicU32>,
}

fn atomics(v: impl IntoIterator<Item = f32>) -> Vec<AtomicU32> {
    v.into_iter().map(|x| AtomicU32::new(x.to_bits())).collect()
}

#[inline(always)]
fn get(a: &AtomicU32) -> f32 {
    f32::from_bits(a.load(Relaxed))
}

#[inline(always)]
fn set(a: &AtomicU32, v: f32) {
    a.store(v.to_bits(), Relaxed)
}

impl HogwildParams {
    /// From W `[n_vis, n_hid]`, b and b′.
    pub fn new(w: &[f32], b: &[f32], c: &[f32]) -> HogwildParams {
        let (nv, nh) = (c.len(), b.len());
        let hp = nh.div_ceil(16) * 16;
        let padded = w
            .chunks_exact(nh.max(1))
            .flat_map(|row| row.iter().copied().chain(std::iter::repeat_n(0.0, hp - nh)));
        HogwildParams {
            n_vis: nv,
            n_hid: nh,
            hp,
            w: atomics(padded),
            b: atomics(b.iter().copied().chain(std::iter::repeat_n(0.0, hp - nh))),
            c: atomics(c.iter().copied()),
        }
    }

    /// Writes W, b and b′ out (when no worker is running).
    pub fn write(&self, w: &mut [f32], b: &mut [f32], c: &mut [f32]) {
        let (nh, hp) = (self.n_hid, self.hp);
        for (i, row) in w.chunks_exact_mut(nh).enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = get(&self.w[i * hp + j]);
            }
        }
        for (v, a) in b.iter_mut().zip(&self.b) {
            *v = get(a);
        }
        for (v, a) in c.iter_mut().zip(&self.c) {
            *v = get(a);
        }
    }
}

/// One worker's buffers for Hogwild steps.
pub struct HogwildWorker {
    h: Vec<f32>,
    dh: Vec<f32>,
    da: Vec<f32>,
    row: Vec<f32>,
}

impl HogwildWorker {
    pub fn new(p: &HogwildParams) -> HogwildWorker {
        HogwildWorker {
            h: vec![0.0; p.hp],
            dh: vec![0.0; p.hp],
            da: vec![0.0; p.n_vis],
            row: vec![0.0; p.hp],
        }
    }

    fn load_row(&mut self, p: &HogwildParams, i: usize) {
        for (d, a) in self.row.iter_mut().zip(&p.w[i * p.hp..(i + 1) * p.hp]) {
            *d = get(a);
        }
    }

    /// The plain three-pass step (encode; decode and back-propagate; update)
    /// on shared parameters that other workers change meanwhile. Returns the
    /// example's loss.
    pub fn step(&mut self, p: &HogwildParams, x: &[f32], xt: &[f32], lr: f32, decay: f32, xent: bool) -> f32 {
        let (nv, nh, hp) = (p.n_vis, p.n_hid, p.hp);
        for (h, b) in self.h.iter_mut().zip(&p.b) {
            *h = get(b);
        }
        for i in 0..nv {
            if xt[i] != 0.0 {
                self.load_row(p, i);
                for (h, &w) in self.h.iter_mut().zip(&self.row) {
                    *h += xt[i] * w;
                }
            }
        }
        for v in &mut self.h[..nh] {
            *v = vmath::sigmoid(*v);
        }
        self.h[nh..].fill(0.0);
        self.dh.fill(0.0);
        let mut loss = 0.0f32;
        for i in 0..nv {
            self.load_row(p, i);
            let mut acc = [0.0f32; 16];
            for (w, h) in self.row.chunks_exact(16).zip(self.h.chunks_exact(16)) {
                for ((s, &w), &h) in acc.iter_mut().zip(w).zip(h) {
                    *s += w * h;
                }
            }
            let a = acc.iter().sum::<f32>() + get(&p.c[i]);
            let z = vmath::sigmoid(a);
            let d = if xent {
                loss += vmath::xent_logit(a, x[i]);
                z - x[i]
            } else {
                loss += 0.5 * (z - x[i]) * (z - x[i]);
                (z - x[i]) * z * (1.0 - z)
            };
            self.da[i] = d;
            for (g, &w) in self.dh.iter_mut().zip(&self.row) {
                *g += d * w;
            }
        }
        for (d, &h) in self.dh.iter_mut().zip(&self.h) {
            *d *= h * (1.0 - h);
        }
        let shrink = 1.0 - lr * decay;
        for i in 0..nv {
            self.load_row(p, i);
            let (ga, gb) = (lr * self.da[i], lr * xt[i]);
            for ((w, &h), &dh) in self.row.iter_mut().zip(&self.h).zip(&self.dh) {
                *w = shrink * *w - ga * h - gb * dh;
            }
            for (a, &w) in p.w[i * hp..(i + 1) * hp].iter().zip(&self.row) {
                set(a, w);
            }
        }
        for (b, &d) in p.b.iter().zip(&self.dh) {
            set(b, get(b) - lr * d);
        }
        for (c, &d) in p.c.iter().zip(&self.da) {
            set(c, get(c) - lr * d);
        }
        loss
    }
}

/// Hands out example indices to Hogwild workers, one at a time.
pub struct Dispenser {
    next: AtomicUsize,
    pub len: usize,
}

impl Dispenser {
    pub fn new(len: usize) -> Dispenser {
        Dispenser {
            next: AtomicUsize::new(0),
            len,
        }
    }

    pub fn take(&self) -> Option<usize> {
        let t = self.next.fetch_add(1, Relaxed);
        (t < self.len).then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebalancing_moves_rows_to_the_faster_worker() {
        // Worker 1 took twice as long for the same rows: its share moves
        // halfway from 392 towards 784/3.
        let b = rebalanced(&[0, 392, 784], &[1.0, 2.0]);
        assert_eq!(b, vec![0, 464, 784]);
        // Equal speeds keep equal shares; bounds stay on 16-row steps.
        assert_eq!(rebalanced(&[0, 400, 784], &[1.0, 0.96]), vec![0, 400, 784]);
        // A hopeless worker loses half its rows per round, and keeps one block.
        assert_eq!(rebalanced(&[0, 16, 784], &[1.0, 1e9]), vec![0, 400, 784]);
        assert_eq!(rebalanced(&[0, 768, 784], &[1.0, 1e9]), vec![0, 768, 784]);
        // Tiny layers step by single rows.
        assert_eq!(rebalanced(&[0, 3, 6], &[1.0, 1.0]), vec![0, 3, 6]);
        // No timing (zero or NaN) changes nothing.
        assert_eq!(rebalanced(&[0, 392, 784], &[0.0, 1.0]), vec![0, 392, 784]);
        assert_eq!(rebalanced(&[0, 392, 784], &[f64::NAN, 1.0]), vec![0, 392, 784]);
    }

    #[test]
    fn spin_barrier_holds_every_thread_until_all_arrive() {
        let (n, rounds) = (3, 20);
        let barrier = SpinBarrier::new(n);
        let counter = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    for r in 0..rounds {
                        counter.fetch_add(1, Relaxed);
                        barrier.wait();
                        // Everyone has counted round r before anyone goes on.
                        assert!(counter.load(Relaxed) >= (r + 1) * n);
                        barrier.wait();
                    }
                });
            }
        });
        assert_eq!(counter.load(Relaxed), n * rounds);
    }

    #[test]
    fn hidden_blocks_cover_everything_aligned() {
        assert_eq!(hidden_blocks(500, 2), vec![0..256, 256..500]);
        assert_eq!(hidden_blocks(100, 3), vec![0..32, 32..64, 64..100]);
        assert_eq!(hidden_blocks(20, 8), vec![0..16, 16..20]);
        assert_eq!(hidden_blocks(500, 1), vec![0..500]);
    }
}
