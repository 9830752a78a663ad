//! Fused per-example SGD for the tied sigmoid autoencoder (the parallel-SGD
//! paper's setting), touching W about once per example.
//!
//! Plain SGD on example t reads W three times: encode h = σ(Wᵀx̃ + b), decode
//! and back-propagate (a = W·h + c, δa, δh = (Wᵀδa)⊙h⊙(1−h)), then update
//! W −= η(δa·hᵀ + x̃·δhᵀ). Here the update of t is delayed and fused into the
//! passes of t+1, which is exact (the same SGD, step for step):
//!   1. P = Σ x̃_{t+1,i}·W_i over the rows where x̃_{t+1,i} ≠ 0 (≈14% on
//!      masked MNIST), read as they stand, before t's update; also
//!      α = Σ x̃_{t+1,i}·δa_{t,i} and β = Σ x̃_{t+1,i}·x̃_{t,i}.
//!   2. (`rows` mode) one all-reduction adds up every worker's δh_acc of t,
//!      P, α and β.
//!   3. δh_t = δh_acc ⊙ h_t ⊙ (1−h_t); b −= η·δh_t; c −= η·δa_t; since
//!      t's update turns Σ x̃_{t+1,i}·W_i into P − ηα·h_t − ηβ·δh_t, the
//!      pre-activation of t+1 is b + P − ηα·h_t − ηβ·δh_t, and
//!      h_{t+1} = σ(·).
//!   4. Sweep every row once: update it for t, then, with the fresh row,
//!      a_i = W_i·h_{t+1} + c_i, δa_i, and δh_acc += δa_i·W_i (8 rows at a
//!      time, still in L1).
//!   5. The update of t+1 waits for t+2, or for [`FusedTiedSgd::flush`].
//!
//! Weight decay λ scales each row by s = 1 − ηλ as it is updated (and P by s).
//!
//! Rows are padded to a multiple of 16 lanes with zero weights and zero
//! hidden units, so the inner loops have no remainder. The loops are written
//! for the auto-vectoriser; [`FusedTiedSgd::step`] runs them compiled for
//! AVX-512 or AVX2+FMA when the CPU has them (checked at run time), and as
//! portable code otherwise.

// `unsafe` here only calls `#[target_feature]` copies of safe code after
// `is_x86_feature_detected!` has confirmed the CPU supports those features.
#![allow(unsafe_code)]

use crate::error::{Error, Result};
use crate::layers::activation::Activation;
use crate::layers::Loss;
use crate::models::dae::{DaeConfig, Layout};
use crate::tensor::vmath;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const L: usize = 16;
/// Blocks per group that a linked (`split`) worker publishes at once (64 rows).
const GROUP: usize = 4;
/// Blocks a linked worker runs ahead of the block it finishes (192 rows): a
/// peer may fall two groups behind before anyone waits, and the rows to
/// finish come back from L2. With the lag equal to the group (32 rows, still
/// in L1) a worker waited at every group for the group its peer had just
/// published; the probe's linked pair took a median 28.3 µs a step against
/// 25.5 µs for this shape (18 rounds each, in turns).
const LAG: usize = 3 * GROUP;
// A worker finishing a group's first block must itself have published it.
const _: () = assert!(LAG >= GROUP);
/// Rows decoded together in the sweep (a whole number of 16-slot lines, so
/// that a block's decoder sums fill whole lines in the `split` mode).
const BLOCK: usize = 16;
const _: () = assert!(BLOCK.is_multiple_of(16));

/// Which instruction set the kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2Fma,
    Portable,
}

impl Isa {
    /// The best the CPU offers.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Isa::Avx2Fma;
            }
        }
        Isa::Portable
    }
}

/// Shared state of the `split` parallel mode: each worker publishes the
/// partial decoder sums of its hidden block, a block of rows at a time, and a
/// progress counter that orders them (release on publish, acquire on read).
pub struct SplitSync {
    threads: usize,
    /// `[threads][2 parities][n_vis rounded up to 16]` f32 bits, in whole
    /// cache lines so no two workers or groups share one.
    partials: Vec<Line>,
    /// Blocks published by each worker, counted over the epoch.
    progress: Vec<Padded>,
    n_vis: usize,
}

/// A counter alone on its cache lines, so workers do not share them.
#[repr(align(128))]
struct Padded(AtomicUsize);

/// 16 f32 slots on one 64-byte cache line.
#[repr(align(64))]
struct Line([AtomicU32; 16]);

impl SplitSync {
    pub fn new(threads: usize, n_vis: usize) -> SplitSync {
        let lines = n_vis.div_ceil(16);
        SplitSync {
            threads,
            partials: (0..threads * 2 * lines)
                .map(|_| Line(std::array::from_fn(|_| AtomicU32::new(0))))
                .collect(),
            progress: (0..threads).map(|_| Padded(AtomicUsize::new(0))).collect(),
            n_vis,
        }
    }

    /// The lines of `worker`'s sums for examples of this parity: visible
    /// unit i is slot i % 16 of line i / 16.
    fn lines(&self, worker: usize, parity: usize) -> &[Line] {
        let lines = self.n_vis.div_ceil(16);
        &self.partials[(worker * 2 + parity) * lines..][..lines]
    }

    /// Waits until every worker has published `seq` blocks, and returns the
    /// least count seen (at least `seq`): blocks below it may be read
    /// without asking again.
    fn wait_all(&self, seq: usize) -> usize {
        wait_all(&self.progress, seq)
    }
}

/// Waits until every counter reaches `seq` (acquire), and returns the least
/// count seen. Spins briefly, then yields, so oversubscribed runs (more
/// workers than cores) still move.
fn wait_all(progress: &[Padded], seq: usize) -> usize {
    let mut least = usize::MAX;
    for p in progress {
        let mut seen = 0;
        spin_until(2000, || {
            seen = p.0.load(Ordering::Acquire);
            seen >= seq
        });
        least = least.min(seen);
    }
    least
}

/// Spins until `done()`, yielding the core after `spins` tries (a peer that
/// is not running cannot be waited for by spinning).
pub(crate) fn spin_until(spins: u32, mut done: impl FnMut() -> bool) {
    let mut n = 0u32;
    while !done() {
        if n < spins {
            std::hint::spin_loop();
            n += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// Hints that this core will soon write (or, with `write` false, only read)
/// the line holding `a`.
#[inline(always)]
fn prefetch(a: &AtomicU32, write: bool) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults and changes no value.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0, _MM_HINT_T0};
        let p = a as *const AtomicU32 as *const i8;
        if write {
            _mm_prefetch::<_MM_HINT_ET0>(p)
        } else {
            _mm_prefetch::<_MM_HINT_T0>(p)
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (a, write);
}

/// A worker's link to its peers in the `split` mode.
#[derive(Clone, Copy)]
pub struct SplitLink<'a> {
    pub sync: &'a SplitSync,
    pub me: usize,
}

/// Shared state of the `rows` parallel mode: each worker owns a block of
/// visible units (whole rows of W, every hidden unit), so the workers only
/// need to add up, once per example, two hidden-length vectors (the last
/// example's back-propagated δh and the next one's partial pre-activation)
/// and two scalars (see the module notes). Each worker publishes its
/// partial vector, then every worker adds all of them in worker order, so all
/// hold the same bits.
pub struct RowSync {
    threads: usize,
    /// `[threads][2 parities][hp]` f32 bits, whole cache lines.
    slots: Vec<Line>,
    /// All-reductions published by each worker.
    progress: Vec<Padded>,
    /// Nanoseconds each worker has spent waiting for its peers.
    waits: Vec<Padded>,
    hp: usize,
}

impl std::fmt::Debug for RowSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowSync {{ threads: {}, hp: {} }}", self.threads, self.hp)
    }
}

impl RowSync {
    /// For `threads` workers and hidden vectors of padded length `hp` (a
    /// multiple of 16).
    pub fn new(threads: usize, hp: usize) -> RowSync {
        assert_eq!(hp % 16, 0, "the hidden length is padded to 16");
        RowSync {
            threads,
            slots: (0..threads * 2 * Self::payload(hp) / 16)
                .map(|_| Line(std::array::from_fn(|_| AtomicU32::new(0))))
                .collect(),
            progress: (0..threads).map(|_| Padded(AtomicUsize::new(0))).collect(),
            waits: (0..threads).map(|_| Padded(AtomicUsize::new(0))).collect(),
            hp,
        }
    }

    /// Seconds worker `me` has spent waiting in all-reductions so far.
    pub fn waited(&self, me: usize) -> f64 {
        self.waits[me].0.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Floats per all-reduction: δh_acc and P (`hp` each), then α and β
    /// padded to a cache line.
    fn payload(hp: usize) -> usize {
        2 * hp + 16
    }

    /// The `seq`-th all-reduction (1, 2, …) of worker `me`: `buf` holds its
    /// partial sums on entry and the total on return. A slot is reused two
    /// reductions later, when every peer has already read it (they must have
    /// published the reduction in between).
    fn allreduce(&self, me: usize, seq: usize, buf: &mut [f32]) {
        let lines = Self::payload(self.hp) / 16;
        assert_eq!(buf.len(), 16 * lines);
        let base = |w: usize| (w * 2 + seq % 2) * lines;
        for (line, chunk) in self.slots[base(me)..base(me) + lines]
            .iter()
            .zip(buf.chunks_exact(16))
        {
            for (slot, &v) in line.0.iter().zip(chunk) {
                slot.store(v.to_bits(), Ordering::Relaxed);
            }
        }
        self.progress[me].0.store(seq, Ordering::Release);
        // The clock is read only when a peer is still behind.
        if self.progress.iter().any(|p| p.0.load(Ordering::Acquire) < seq) {
            let t0 = std::time::Instant::now();
            wait_all(&self.progress, seq);
            // Only worker `me` writes its own counter.
            let w = &self.waits[me].0;
            w.store(
                w.load(Ordering::Relaxed) + t0.elapsed().as_nanos() as usize,
                Ordering::Relaxed,
            );
        }
        for (l, chunk) in buf.chunks_exact_mut(16).enumerate() {
            let mut sum = [0.0f32; 16];
            for w in 0..self.threads {
                if w == me {
                    sum.iter_mut().zip(chunk.iter()).for_each(|(s, &v)| *s += v);
                } else {
                    let line = &self.slots[base(w) + l].0;
                    sum.iter_mut()
                        .zip(line)
                        .for_each(|(s, v)| *s += f32::from_bits(v.load(Ordering::Relaxed)));
                }
            }
            chunk.copy_from_slice(&sum);
        }
    }
}

/// The body of one step, instantiated once per instruction set with that
/// set's primitives.
macro_rules! step_body {
    ($self:ident, $x:ident, $xt:ident, $link:ident, $update_dot:path, $update_dot4:path, $dot:path, $axpy:path, $axpy4:path, $axpy_rows:path, $nonzero:path) => {{
        let (nv, nh, hp, lr) = ($self.n_vis, $self.n_hid, $self.hp, $self.lr);
        let shrink = 1.0 - lr * $self.decay;
        let pending = $self.pending;
        // 1. The pre-activation of t+1 from the rows as they stand (t's update
        //    not yet applied): P = Σ x̃_{t+1,i}·W_i over the non-zero inputs,
        //    with the two sums that carry t's update through it.
        let count = $nonzero($xt, &mut $self.nz);
        $self.h_new.fill(0.0);
        let (mut alpha, mut beta) = (0.0f32, 0.0f32);
        let row = |i: usize| &$self.w[i * hp..(i + 1) * hp];
        let mut quads = $self.nz[..count].chunks_exact(4);
        for q in &mut quads {
            let i = [q[0] as usize, q[1] as usize, q[2] as usize, q[3] as usize];
            $axpy4(&mut $self.h_new, i.map(|i| $xt[i]), i.map(row));
        }
        for &i in quads.remainder() {
            let i = i as usize;
            $axpy(&mut $self.h_new, $xt[i], row(i));
        }
        for &i in &$self.nz[..count] {
            let i = i as usize;
            alpha += $xt[i] * $self.da[i];
            beta += $xt[i] * $self.xt[i];
        }
        // 2. The `rows` mode adds up every worker's δh_acc of t, P, α and β in
        //    one all-reduction.
        if let Some((sync, me)) = &$self.rows {
            let red = &mut $self.reduce;
            red[..hp].copy_from_slice(&$self.dh_acc);
            red[hp..2 * hp].copy_from_slice(&$self.h_new);
            red[2 * hp] = alpha;
            red[2 * hp + 1] = beta;
            sync.allreduce(*me, $self.examples as usize + 1, red);
            $self.dh_acc.copy_from_slice(&red[..hp]);
            $self.h_new.copy_from_slice(&red[hp..2 * hp]);
            (alpha, beta) = (red[2 * hp], red[2 * hp + 1]);
        }
        // 3. δh of t, its bias updates, and h_{t+1}: with W_i' = s·W_i −
        //    η(δa_i·h_t + x̃_{t,i}·δh_t), Σ x̃_{t+1,i}·W_i' = s·P − ηα·h_t − ηβ·δh_t.
        if pending {
            $self.settle_biases();
            let (ga, gb) = (lr * alpha, lr * beta);
            for (((p, &b), &h), &d) in $self.h_new.iter_mut().zip(&$self.b).zip(&$self.h).zip(&$self.dh) {
                *p = b + shrink * *p - ga * h - gb * d;
            }
        } else {
            for (p, &b) in $self.h_new.iter_mut().zip(&$self.b) {
                *p += b;
            }
        }
        for v in &mut $self.h_new[..nh] {
            *v = vmath::sigmoid(*v);
        }
        $self.h_new[nh..].fill(0.0);
        // 4. One sweep: update a block of rows for t and decode t+1 with them,
        //    publish its partial sums, then finish the block before it (deltas
        //    from all workers' sums, back-propagation from rows still in L1).
        $self.dh_acc.fill(0.0);
        // One running loss per lane, so the delta loop vectorises.
        let mut loss = [0.0f32; BLOCK];
        let parity = ($self.examples & 1) as usize;
        let blocks = nv.div_ceil(BLOCK);
        let seq0 = $self.examples as usize * blocks;
        // Linked workers publish once per group of GROUP blocks and finish a
        // block LAG blocks later (its rows then come back from L2); a lone
        // worker finishes each block at once, while its rows are in L1.
        let lag = if $link.is_some() { LAG } else { 0 };
        // Blocks every linked worker is known to have published.
        let mut ready = 0usize;
        for k in 0..blocks + lag {
            if k < blocks {
                let i0 = k * BLOCK;
                let rows = BLOCK.min(nv - i0);
                if let Some(l) = $link {
                    if k % GROUP == 0 {
                        // Take ownership of this group's slot lines now, so the
                        // stores below do not each wait for the peer's copy.
                        let mine = l.sync.lines(l.me, parity);
                        for line in mine[i0 / 16..].iter().take(GROUP * BLOCK / 16) {
                            prefetch(&line.0[0], true);
                        }
                    }
                }
                let mut r = 0;
                while r + 4 <= rows {
                    // Four rows at once; with nothing pending the update is the
                    // identity (1, 0, 0).
                    let (mut sh, mut ga, mut gb) = ([1.0f32; 4], [0.0f32; 4], [0.0f32; 4]);
                    for q in 0..4 {
                        let i = i0 + r + q;
                        if pending {
                            sh[q] = shrink;
                            ga[q] = lr * $self.da[i];
                            gb[q] = lr * $self.xt[i];
                        }
                    }
                    let i = i0 + r;
                    let rows4 = &mut $self.w[i * hp..(i + 4) * hp];
                    let d = $update_dot4(rows4, sh, ga, gb, &$self.h, &$self.dh, &$self.h_new);
                    $self.part[i..i + 4].copy_from_slice(&d);
                    r += 4;
                }
                for r in r..rows {
                    let i = i0 + r;
                    let row = &mut $self.w[i * hp..(i + 1) * hp];
                    $self.part[i] = if pending {
                        $update_dot(
                            row,
                            shrink,
                            lr * $self.da[i],
                            lr * $self.xt[i],
                            &$self.h,
                            &$self.dh,
                            &$self.h_new,
                        )
                    } else {
                        $dot(row, &$self.h_new)
                    };
                }
                if let Some(l) = $link {
                    let mine = &l.sync.lines(l.me, parity)[i0 / 16..];
                    for (line, part) in mine.iter().zip($self.part[i0..i0 + rows].chunks(16)) {
                        for (slot, &v) in line.0.iter().zip(part) {
                            slot.store(v.to_bits(), Ordering::Relaxed);
                        }
                    }
                    if (k + 1) % GROUP == 0 || k + 1 == blocks {
                        l.sync.progress[l.me].0.store(seq0 + k + 1, Ordering::Release);
                    }
                }
            }
            if k < lag {
                continue;
            }
            // Finish block k − lag.
            let i0 = (k - lag) * BLOCK;
            let rows = BLOCK.min(nv - i0);
            let mut a = [0.0f32; BLOCK];
            match $link {
                None => {
                    for r in 0..rows {
                        a[r] = $self.c[i0 + r] + $self.part[i0 + r];
                    }
                }
                Some(l) => {
                    let j = k - lag;
                    if j % GROUP == 0 {
                        // The group is published whole: wait once, then copy all
                        // its peers' sums in one go so the cache misses overlap.
                        // A peer is usually a group or two ahead, so the count
                        // seen last time often covers this group already, and
                        // the peer's counter line is not fetched again.
                        let end = blocks.min(j + GROUP);
                        if ready < seq0 + end {
                            ready = l.sync.wait_all(seq0 + end);
                        }
                        let hi = nv.min(end * BLOCK);
                        for w in (0..l.sync.threads).filter(|&w| w != l.me) {
                            let theirs = &l.sync.lines(w, parity)[i0 / 16..];
                            let dst = &mut $self.gathered[w * nv + i0..w * nv + hi];
                            for (d, line) in dst.chunks_mut(16).zip(theirs) {
                                for (d, slot) in d.iter_mut().zip(&line.0) {
                                    *d = f32::from_bits(slot.load(Ordering::Relaxed));
                                }
                            }
                            // Ask for the next group's sums now: a peer that
                            // keeps pace published them a group ago, and they
                            // arrive while this group is finished instead of
                            // stalling the next one.
                            for line in theirs.iter().skip((hi - i0) / 16).take(GROUP * BLOCK / 16) {
                                prefetch(&line.0[0], false);
                            }
                        }
                    }
                    // Every worker adds the partial sums in worker order, so all
                    // compute the same bits for a, δa and b′.
                    a[..rows].copy_from_slice(&$self.c[i0..i0 + rows]);
                    for w in 0..l.sync.threads {
                        let src = if w == l.me {
                            &$self.part[i0..i0 + rows]
                        } else {
                            &$self.gathered[w * nv + i0..w * nv + i0 + rows]
                        };
                        for (a, &v) in a.iter_mut().zip(src) {
                            *a += v;
                        }
                    }
                }
            }
            // Fixed-length lanes (a short last block is padded and its extra
            // lanes are dropped), so the sigmoids vectorise.
            // (Whole blocks are copied at a fixed length, inline; a memcpy
            // call per block cost more than the copy.)
            let mut xs = [0.0f32; BLOCK];
            match <&[f32; BLOCK]>::try_from(&$x[i0..i0 + rows]) {
                Ok(whole) => xs = *whole,
                Err(_) => xs[..rows].copy_from_slice(&$x[i0..i0 + rows]),
            }
            let (mut d, mut l) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
            match $self.loss {
                Loss::CrossEntropy => {
                    for r in 0..BLOCK {
                        l[r] = vmath::xent_logit(a[r], xs[r]);
                        d[r] = vmath::sigmoid(a[r]) - xs[r];
                    }
                }
                Loss::Squared => {
                    for r in 0..BLOCK {
                        let z = vmath::sigmoid(a[r]);
                        l[r] = 0.5 * (z - xs[r]) * (z - xs[r]);
                        d[r] = (z - xs[r]) * z * (1.0 - z);
                    }
                }
            }
            for r in 0..BLOCK {
                loss[r] += if r < rows { l[r] } else { 0.0 };
            }
            match <&mut [f32; BLOCK]>::try_from(&mut $self.da_new[i0..i0 + rows]) {
                Ok(whole) => *whole = d,
                Err(_) => $self.da_new[i0..i0 + rows].copy_from_slice(&d[..rows]),
            }
            for r0 in (0..rows).step_by(8) {
                let (a, b) = (i0 + r0, i0 + rows.min(r0 + 8));
                $axpy_rows(&mut $self.dh_acc, &$self.da_new[a..b], &$self.w[a * hp..b * hp]);
            }
        }
        // 5. The update of t+1 is now pending; its δh_acc (this worker's share
        //    in the `rows` mode) waits for step 2 of t+2, or for a flush.
        std::mem::swap(&mut $self.h, &mut $self.h_new);
        std::mem::swap(&mut $self.da, &mut $self.da_new);
        $self.xt.copy_from_slice($xt);
        $self.pending = true;
        $self.examples += 1;
        loss.iter().sum::<f32>()
    }};
}

impl FusedTiedSgd {
    fn step_portable(&mut self, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
        step_body!(
            self,
            x,
            xt,
            link,
            portable::update_dot,
            portable::update_dot4,
            portable::dot,
            portable::axpy,
            portable::axpy4,
            portable::axpy_rows,
            portable::nonzero
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn step_avx512(&mut self, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
        step_body!(
            self,
            x,
            xt,
            link,
            avx512::update_dot,
            avx512::update_dot4,
            avx512::dot,
            avx512::axpy,
            avx512::axpy4,
            avx512::axpy_rows,
            nonzero512
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn step_avx2(&mut self, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
        step_body!(
            self,
            x,
            xt,
            link,
            avx2::update_dot,
            avx2::update_dot4,
            avx2::dot,
            avx2::axpy,
            avx2::axpy4,
            avx2::axpy_rows,
            portable::nonzero
        )
    }
}

/// Tied-autoencoder SGD state with one update pending, for all hidden units
/// or (in the `split` mode) one block of them.
#[derive(Debug, Clone)]
pub struct FusedTiedSgd {
    n_vis: usize,
    /// Hidden units in this worker's block, and where the block starts.
    n_hid: usize,
    hid_start: usize,
    /// Row stride: n_hid rounded up to 16.
    hp: usize,
    /// `[n_vis, hp]`, padding columns zero.
    w: Vec<f32>,
    /// `[hp]`.
    b: Vec<f32>,
    /// `[n_vis]` (every worker keeps an identical copy).
    c: Vec<f32>,
    lr: f32,
    decay: f32,
    loss: Loss,
    isa: Isa,
    pending: bool,
    /// Examples stepped so far.
    examples: u64,
    /// Pending example's h, δh `[hp]`, δa and x̃ `[n_vis]`.
    h: Vec<f32>,
    dh: Vec<f32>,
    da: Vec<f32>,
    xt: Vec<f32>,
    /// Scratch for the example being processed.
    h_new: Vec<f32>,
    dh_acc: Vec<f32>,
    da_new: Vec<f32>,
    /// `[n_vis]` this block's decoder sums.
    part: Vec<f32>,
    /// `[workers, n_vis]` peers' decoder sums (split mode), sized on first use.
    gathered: Vec<f32>,
    /// `[n_vis]` the indices of the next example's non-zero inputs.
    nz: Vec<u32>,
    /// `[2·hp + 16]` the `rows` mode's all-reduction: δh_acc, P, α, β.
    reduce: Vec<f32>,
    /// The `rows` mode: the shared sums and this worker's index; its rows of
    /// W start at visible unit `vis_start`.
    rows: Option<(std::sync::Arc<RowSync>, usize)>,
    vis_start: usize,
}

impl FusedTiedSgd {
    /// Whether a model can use this kernel: tied, sigmoid hidden and output.
    pub fn supports(cfg: &DaeConfig) -> bool {
        cfg.tied
            && cfg.hidden_activation == Activation::Sigmoid
            && cfg.output_activation == Activation::Sigmoid
    }

    /// Takes all the weights from a model's flat parameters.
    pub fn new(cfg: &DaeConfig, lay: &Layout, params: &[f32], lr: f32, weight_decay: f32) -> Result<Self> {
        Self::new_block(cfg, lay, params, lr, weight_decay, 0..cfg.n_hid)
    }

    /// Takes hidden units `hid` (their columns of W and their biases) and all
    /// of b′.
    pub fn new_block(
        cfg: &DaeConfig,
        lay: &Layout,
        params: &[f32],
        lr: f32,
        weight_decay: f32,
        hid: std::ops::Range<usize>,
    ) -> Result<Self> {
        if !Self::supports(cfg) {
            return Err(Error::config(
                "model",
                "the fused per-example kernel needs a tied sigmoid autoencoder",
            ));
        }
        let nv = cfg.n_vis;
        let nh = hid.len();
        let hp = nh.div_ceil(L) * L;
        let mut w = vec![0.0f32; nv * hp];
        for (dst, src) in w
            .chunks_exact_mut(hp)
            .zip(params[lay.w.clone()].chunks_exact(cfg.n_hid))
        {
            dst[..nh].copy_from_slice(&src[hid.clone()]);
        }
        let mut b = vec![0.0f32; hp];
        b[..nh].copy_from_slice(&params[lay.b_hid.clone()][hid.clone()]);
        Ok(FusedTiedSgd {
            n_vis: nv,
            n_hid: nh,
            hid_start: hid.start,
            hp,
            w,
            b,
            c: params[lay.b_vis.clone()].to_vec(),
            lr,
            decay: weight_decay,
            loss: cfg.loss,
            isa: Isa::detect(),
            pending: false,
            examples: 0,
            h: vec![0.0; hp],
            dh: vec![0.0; hp],
            da: vec![0.0; nv],
            xt: vec![0.0; nv],
            h_new: vec![0.0; hp],
            dh_acc: vec![0.0; hp],
            da_new: vec![0.0; nv],
            part: vec![0.0; nv],
            gathered: Vec::new(),
            nz: vec![0; nv],
            reduce: Vec::new(),
            rows: None,
            vis_start: 0,
        })
    }

    /// Takes visible units `vis` (their rows of W, all hidden units, and
    /// their slice of b′) as worker `me` of the `rows` mode. Every worker steps
    /// the same examples, passing only its slice of x and x̃.
    pub fn new_rows(
        cfg: &DaeConfig,
        lay: &Layout,
        params: &[f32],
        lr: f32,
        weight_decay: f32,
        vis: std::ops::Range<usize>,
        sync: std::sync::Arc<RowSync>,
        me: usize,
    ) -> Result<Self> {
        let mut k = Self::new(cfg, lay, params, lr, weight_decay)?;
        assert!(
            me < sync.threads && sync.hp == k.hp,
            "rows worker {me} does not fit its RowSync"
        );
        let hp = k.hp;
        k.w = k.w[vis.start * hp..vis.end * hp].to_vec();
        k.c = k.c[vis.clone()].to_vec();
        let nv = vis.len();
        k.n_vis = nv;
        (k.da, k.xt, k.da_new, k.part) = (vec![0.0; nv], vec![0.0; nv], vec![0.0; nv], vec![0.0; nv]);
        k.nz = vec![0; nv];
        k.reduce = vec![0.0; RowSync::payload(hp)];
        k.rows = Some((sync, me));
        k.vis_start = vis.start;
        Ok(k)
    }

    /// The visible units whose rows this worker holds (all, but for a
    /// `rows` worker).
    pub fn visible(&self) -> std::ops::Range<usize> {
        self.vis_start..self.vis_start + self.n_vis
    }

    /// Seconds this `rows` worker has waited for its peers (0 otherwise).
    pub fn waited(&self) -> f64 {
        self.rows.as_ref().map_or(0.0, |(sync, me)| sync.waited(*me))
    }

    /// The padded hidden length (for sizing a [`RowSync`]).
    pub fn padded_hidden(&self) -> usize {
        self.hp
    }

    /// Forces an instruction set (for tests and benchmarks); `Portable` is
    /// always allowed, the others only if the CPU has them.
    pub fn with_isa(mut self, isa: Isa) -> Self {
        let best = Isa::detect();
        let ok = match isa {
            Isa::Portable => true,
            Isa::Avx2Fma => best != Isa::Portable,
            Isa::Avx512 => best == Isa::Avx512,
        };
        if ok {
            self.isa = isa;
        }
        self
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// One SGD step on clean `x` with corrupted input `xt`; returns the loss
    /// of that example (computed before its own update).
    pub fn step(&mut self, x: &[f32], xt: &[f32]) -> f32 {
        self.step_linked(x, xt, None)
    }

    /// [`step`](Self::step) as one worker of the `split` mode: every worker
    /// must step the same examples in the same order.
    pub fn step_linked(&mut self, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
        assert!(x.len() == self.n_vis && xt.len() == self.n_vis);
        if let Some(l) = link {
            assert!(l.me < l.sync.threads && l.sync.n_vis == self.n_vis);
            if self.gathered.len() != l.sync.threads * self.n_vis {
                self.gathered = vec![0.0; l.sync.threads * self.n_vis];
            }
        }
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx512 is only set when the CPU reports avx512f and fma.
            Isa::Avx512 => unsafe { self.step_avx512(x, xt, link) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: Isa::Avx2Fma is only set when the CPU reports avx2 and fma.
            Isa::Avx2Fma => unsafe { self.step_avx2(x, xt, link) },
            _ => self.step_portable(x, xt, link),
        }
    }

    /// Applies the pending update, so W, b and c are those of plain SGD.
    /// A `rows` worker holds only its share of δh: flush those together with
    /// [`FusedTiedSgd::flush_all`].
    pub fn flush(&mut self) {
        assert!(
            self.rows.is_none() || !self.pending,
            "rows workers are flushed together, with FusedTiedSgd::flush_all"
        );
        self.settle();
    }

    /// Flushes the workers of one run; those of a `rows` run first add up
    /// their shares of δh (in worker order, as the all-reduction does).
    pub fn flush_all(workers: &mut [FusedTiedSgd]) {
        let Some(first) = workers.first() else {
            return;
        };
        if first.rows.is_none() {
            workers.iter_mut().for_each(FusedTiedSgd::flush);
            return;
        }
        let mut total = vec![0.0f32; first.hp];
        for w in workers.iter() {
            total.iter_mut().zip(&w.dh_acc).for_each(|(t, &v)| *t += v);
        }
        for w in workers.iter_mut() {
            w.dh_acc.copy_from_slice(&total);
            w.settle();
        }
    }

    /// Applies the pending update, its δh_acc summed over the workers.
    fn settle(&mut self) {
        if !self.pending {
            return;
        }
        self.settle_biases();
        let (hp, lr) = (self.hp, self.lr);
        let shrink = 1.0 - lr * self.decay;
        for i in 0..self.n_vis {
            let row = &mut self.w[i * hp..(i + 1) * hp];
            portable::update_row(row, shrink, lr * self.da[i], lr * self.xt[i], &self.h, &self.dh);
        }
        self.pending = false;
    }

    /// The pending example's δh from its summed δh_acc, and its updates of
    /// b and b′ (inlined into each instruction set's step).
    #[inline(always)]
    fn settle_biases(&mut self) {
        let lr = self.lr;
        for ((d, &acc), &h) in self.dh.iter_mut().zip(&self.dh_acc).zip(&self.h) {
            *d = acc * h * (1.0 - h);
        }
        for (b, &d) in self.b.iter_mut().zip(&self.dh) {
            *b -= lr * d;
        }
        for (c, &d) in self.c.iter_mut().zip(&self.da) {
            *c -= lr * d;
        }
    }

    /// Flushes, then writes this worker's W columns, b and (all of) b′ back
    /// into a model's flat parameters.
    pub fn write_params(&mut self, lay: &Layout, params: &mut [f32]) {
        self.flush();
        let (nh, j0) = (self.n_hid, self.hid_start);
        let total = lay.b_hid.len();
        if self.rows.is_some() {
            // This worker's rows (all hidden units), its b′ slice, and b
            // (every worker holds the same b).
            let v0 = self.vis_start;
            let w = &mut params[lay.w.clone()][v0 * total..(v0 + self.n_vis) * total];
            for (dst, src) in w.chunks_exact_mut(total).zip(self.w.chunks_exact(self.hp)) {
                dst.copy_from_slice(&src[..total]);
            }
            params[lay.b_hid.clone()].copy_from_slice(&self.b[..total]);
            params[lay.b_vis.clone()][v0..v0 + self.n_vis].copy_from_slice(&self.c);
            return;
        }
        for (dst, src) in params[lay.w.clone()]
            .chunks_exact_mut(total)
            .zip(self.w.chunks_exact(self.hp))
        {
            dst[j0..j0 + nh].copy_from_slice(&src[..nh]);
        }
        params[lay.b_hid.clone()][j0..j0 + nh].copy_from_slice(&self.b[..nh]);
        params[lay.b_vis.clone()].copy_from_slice(&self.c);
    }
}

/// Portable primitives: plain loops, the reference for the SIMD ones.
mod portable {
    /// Writes the indices of the non-zero entries of `x` to the front of
    /// `nz` (at least as long as `x`), in order; returns how many. No branch
    /// per entry: a masked image's zeros fall in no pattern a predictor can
    /// learn.
    pub fn nonzero(x: &[f32], nz: &mut [u32]) -> usize {
        let nz = &mut nz[..x.len()];
        let mut count = 0;
        for (i, &v) in x.iter().enumerate() {
            nz[count] = i as u32;
            count += (v != 0.0) as usize;
        }
        count
    }

    /// row ← shrink·row − ga·h − gb·dh.
    pub fn update_row(row: &mut [f32], shrink: f32, ga: f32, gb: f32, h: &[f32], dh: &[f32]) {
        for ((w, &h), &dh) in row.iter_mut().zip(h).zip(dh) {
            *w = shrink * *w - ga * h - gb * dh;
        }
    }

    /// [`update_row`], then the new row's dot product with `hn`.
    pub fn update_dot(
        row: &mut [f32],
        shrink: f32,
        ga: f32,
        gb: f32,
        h: &[f32],
        dh: &[f32],
        hn: &[f32],
    ) -> f32 {
        update_row(row, shrink, ga, gb, h, dh);
        dot(row, hn)
    }

    /// [`update_dot`] on 4 consecutive rows with per-row coefficients.
    pub fn update_dot4(
        rows: &mut [f32],
        shrink: [f32; 4],
        ga: [f32; 4],
        gb: [f32; 4],
        h: &[f32],
        dh: &[f32],
        hn: &[f32],
    ) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        for (r, row) in rows.chunks_exact_mut(h.len()).enumerate() {
            out[r] = update_dot(row, shrink[r], ga[r], gb[r], h, dh, hn);
        }
        out
    }

    /// Σ a·b with 16 running sums (the order the SIMD versions use).
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 16];
        for (a, b) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
            for ((s, &a), &b) in acc.iter_mut().zip(a).zip(b) {
                *s += a * b;
            }
        }
        acc.iter().sum()
    }

    /// y += a·x.
    pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }

    /// y += c[0]·r[0], then += c[1]·r[1], … (the order of four [`axpy`]s).
    pub fn axpy4(y: &mut [f32], c: [f32; 4], r: [&[f32]; 4]) {
        for (&c, row) in c.iter().zip(r) {
            axpy(y, c, row);
        }
    }

    /// y += Σ_r coef[r]·rows[r·len(y)..].
    pub fn axpy_rows(y: &mut [f32], coef: &[f32], rows: &[f32]) {
        for (&c, row) in coef.iter().zip(rows.chunks_exact(y.len())) {
            axpy(y, c, row);
        }
    }
}

/// Generates the AVX-512 or AVX2 primitives from one text: `$v` is the
/// vector type, `$n` its lanes. Every slice length is a multiple of 16
/// (rows are padded), checked by `debug_assert`, and `assert`ed equal.
macro_rules! simd_primitives {
    ($name:ident, $feat:literal, $v:ty, $n:literal, $load:ident, $store:ident, $set1:ident, $fmadd:ident, $fnmadd:ident, $mul:ident, $zero:ident, $add:ident, $reduce:path) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use std::arch::x86_64::*;

            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn update_dot(
                row: &mut [f32],
                shrink: f32,
                ga: f32,
                gb: f32,
                h: &[f32],
                dh: &[f32],
                hn: &[f32],
            ) -> f32 {
                assert!(h.len() == row.len() && dh.len() == row.len() && hn.len() == row.len());
                debug_assert_eq!(row.len() % 16, 0);
                let (s, a, b) = ($set1(shrink), $set1(ga), $set1(gb));
                let (w, h, dh, hn) = (row.as_mut_ptr(), h.as_ptr(), dh.as_ptr(), hn.as_ptr());
                let (mut acc0, mut acc1) = ($zero(), $zero());
                let mut i = 0;
                // Most inputs are zero after masking; then the δh term vanishes
                // and its stream is not read.
                let with_dh = gb != 0.0;
                while i < row.len() {
                    // SAFETY: i + lanes ≤ len (equal lengths, multiple of 16).
                    unsafe {
                        let mut v = $fnmadd(a, $load(h.add(i)), $mul(s, $load(w.add(i))));
                        if with_dh {
                            v = $fnmadd(b, $load(dh.add(i)), v);
                        }
                        $store(w.add(i), v);
                        acc0 = $fmadd(v, $load(hn.add(i)), acc0);
                    }
                    i += $n;
                    if i < row.len() {
                        // SAFETY: i < len and len − i is a multiple of the lane count.
                        unsafe {
                            let mut v = $fnmadd(a, $load(h.add(i)), $mul(s, $load(w.add(i))));
                            if with_dh {
                                v = $fnmadd(b, $load(dh.add(i)), v);
                            }
                            $store(w.add(i), v);
                            acc1 = $fmadd(v, $load(hn.add(i)), acc1);
                        }
                        i += $n;
                    }
                }
                $reduce($add(acc0, acc1))
            }

            /// [`update_dot`] on 4 consecutive rows (`rows` is `[4, len(h)]`)
            /// with per-row coefficients; h, δh and hn are loaded once for all
            /// four. A row with coefficients (1, 0, 0) is left as it is.
            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn update_dot4(
                rows: &mut [f32],
                shrink: [f32; 4],
                ga: [f32; 4],
                gb: [f32; 4],
                h: &[f32],
                dh: &[f32],
                hn: &[f32],
            ) -> [f32; 4] {
                // Without weight decay the shrink is 1, and rows whose inputs
                // were all zero have no δh term: those multiplications are
                // skipped (the same bits, fewer operations).
                let scaled = shrink.iter().any(|&v| v != 1.0);
                let with_dh = gb.iter().any(|&v| v != 0.0);
                // SAFETY: the caller's guarantees are passed on.
                unsafe {
                    match (scaled, with_dh) {
                        (true, true) => update_dot4_with::<true, true>(rows, shrink, ga, gb, h, dh, hn),
                        (true, false) => update_dot4_with::<true, false>(rows, shrink, ga, gb, h, dh, hn),
                        (false, true) => update_dot4_with::<false, true>(rows, shrink, ga, gb, h, dh, hn),
                        (false, false) => update_dot4_with::<false, false>(rows, shrink, ga, gb, h, dh, hn),
                    }
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn update_dot4_with<const SCALED: bool, const WITH_DH: bool>(
                rows: &mut [f32],
                shrink: [f32; 4],
                ga: [f32; 4],
                gb: [f32; 4],
                h: &[f32],
                dh: &[f32],
                hn: &[f32],
            ) -> [f32; 4] {
                let n = h.len();
                assert!(rows.len() == 4 * n && dh.len() == n && hn.len() == n);
                debug_assert_eq!(n % 16, 0);
                let s = [
                    $set1(shrink[0]),
                    $set1(shrink[1]),
                    $set1(shrink[2]),
                    $set1(shrink[3]),
                ];
                let a = [$set1(ga[0]), $set1(ga[1]), $set1(ga[2]), $set1(ga[3])];
                let b = [$set1(gb[0]), $set1(gb[1]), $set1(gb[2]), $set1(gb[3])];
                let (w, h, dh, hn) = (rows.as_mut_ptr(), h.as_ptr(), dh.as_ptr(), hn.as_ptr());
                let mut acc = [$zero(); 4];
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, and row r's element i is at r·n + i < 4·n.
                    unsafe {
                        let (hv, nv) = ($load(h.add(i)), $load(hn.add(i)));
                        let dv = if WITH_DH { $load(dh.add(i)) } else { $zero() };
                        for r in 0..4 {
                            let p = w.add(r * n + i);
                            let mut v = $load(p);
                            if SCALED {
                                v = $mul(s[r], v);
                            }
                            v = $fnmadd(a[r], hv, v);
                            if WITH_DH {
                                v = $fnmadd(b[r], dv, v);
                            }
                            $store(p, v);
                            acc[r] = $fmadd(v, nv, acc[r]);
                        }
                    }
                    i += $n;
                }
                [
                    $reduce(acc[0]),
                    $reduce(acc[1]),
                    $reduce(acc[2]),
                    $reduce(acc[3]),
                ]
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn dot(x: &[f32], y: &[f32]) -> f32 {
                assert_eq!(x.len(), y.len());
                debug_assert_eq!(x.len() % 16, 0);
                let (px, py) = (x.as_ptr(), y.as_ptr());
                let (mut acc0, mut acc1) = ($zero(), $zero());
                let mut i = 0;
                while i < x.len() {
                    // SAFETY: i + lanes ≤ len (equal lengths, multiple of 16).
                    unsafe {
                        acc0 = $fmadd($load(px.add(i)), $load(py.add(i)), acc0);
                    }
                    i += $n;
                    if i < x.len() {
                        // SAFETY: as above.
                        unsafe {
                            acc1 = $fmadd($load(px.add(i)), $load(py.add(i)), acc1);
                        }
                        i += $n;
                    }
                }
                $reduce($add(acc0, acc1))
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
                assert_eq!(x.len(), y.len());
                debug_assert_eq!(x.len() % 16, 0);
                let av = $set1(a);
                let (py, px) = (y.as_mut_ptr(), x.as_ptr());
                let mut i = 0;
                while i < y.len() {
                    // SAFETY: i + lanes ≤ len (equal lengths, multiple of 16).
                    unsafe {
                        $store(py.add(i), $fmadd(av, $load(px.add(i)), $load(py.add(i))));
                    }
                    i += $n;
                }
            }

            /// Four [`axpy`]s from rows anywhere, in order, loading and storing
            /// y once (the same bits as four calls).
            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn axpy4(y: &mut [f32], c: [f32; 4], r: [&[f32]; 4]) {
                let n = y.len();
                assert!(r.iter().all(|r| r.len() == n));
                debug_assert_eq!(n % 16, 0);
                let c = c.map(|v| $set1(v));
                let p = r.map(|r| r.as_ptr());
                let py = y.as_mut_ptr();
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, the length of y and of every row.
                    unsafe {
                        let mut a = $load(py.add(i));
                        a = $fmadd(c[0], $load(p[0].add(i)), a);
                        a = $fmadd(c[1], $load(p[1].add(i)), a);
                        a = $fmadd(c[2], $load(p[2].add(i)), a);
                        a = $fmadd(c[3], $load(p[3].add(i)), a);
                        $store(py.add(i), a);
                    }
                    i += $n;
                }
            }

            /// y += Σ_r coef[r]·rows[r·len(y)..], for up to 8 rows, loading and
            /// storing y once.
            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn axpy_rows(y: &mut [f32], coef: &[f32], rows: &[f32]) {
                if let Ok(c) = <&[f32; 8]>::try_from(coef) {
                    // SAFETY: the caller's guarantees are passed on.
                    return unsafe { axpy_8rows(y, c, rows) };
                }
                let n = y.len();
                let k = coef.len();
                assert!(k <= 8 && rows.len() == k * n);
                debug_assert_eq!(n % 16, 0);
                let mut c = [$zero(); 8];
                for (cv, &v) in c.iter_mut().zip(coef) {
                    *cv = $set1(v);
                }
                let (py, pr) = (y.as_mut_ptr(), rows.as_ptr());
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, and row r's element i is at r·n + i < k·n.
                    unsafe {
                        let mut acc = $load(py.add(i));
                        for r in 0..k {
                            acc = $fmadd(c[r], $load(pr.add(r * n + i)), acc);
                        }
                        $store(py.add(i), acc);
                    }
                    i += $n;
                }
            }

            /// [`axpy_rows`] for exactly 8 rows: the coefficients stay in
            /// registers and two chains of 4 FMAs replace one chain of 8.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn axpy_8rows(y: &mut [f32], coef: &[f32; 8], rows: &[f32]) {
                let n = y.len();
                assert!(rows.len() == 8 * n);
                debug_assert_eq!(n % 16, 0);
                let c = coef.map(|v| $set1(v));
                let (py, pr) = (y.as_mut_ptr(), rows.as_ptr());
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, and row r's element i is at r·n + i < 8·n.
                    unsafe {
                        let mut a = $load(py.add(i));
                        let mut b = $mul(c[1], $load(pr.add(n + i)));
                        a = $fmadd(c[0], $load(pr.add(i)), a);
                        a = $fmadd(c[2], $load(pr.add(2 * n + i)), a);
                        b = $fmadd(c[3], $load(pr.add(3 * n + i)), b);
                        a = $fmadd(c[4], $load(pr.add(4 * n + i)), a);
                        b = $fmadd(c[5], $load(pr.add(5 * n + i)), b);
                        a = $fmadd(c[6], $load(pr.add(6 * n + i)), a);
                        b = $fmadd(c[7], $load(pr.add(7 * n + i)), b);
                        $store(py.add(i), $add(a, b));
                    }
                    i += $n;
                }
            }
        }
    };
}

/// [`portable::nonzero`] 16 entries at a time, with a compressing store.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn nonzero512(x: &[f32], nz: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    let n = x.len();
    assert!(nz.len() >= n);
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let (mut count, mut i) = (0usize, 0usize);
    while i < n {
        let m: __mmask16 = if n - i >= 16 {
            0xffff
        } else {
            ((1u32 << (n - i)) - 1) as u16
        };
        // SAFETY: the mask covers only x[i..n], and the store writes
        // popcount(k) ≤ (entries seen so far) − count slots of nz from
        // `count`, so it ends at or before n ≤ nz.len().
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, x.as_ptr().add(i));
            // Unordered-or-unequal, as `v != 0.0` (true for NaN).
            let k = _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(m, v, _mm512_setzero_ps());
            let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(i as i32));
            _mm512_mask_compressstoreu_epi32(nz.as_mut_ptr().add(count) as *mut _, k, idx);
            count += k.count_ones() as usize;
        }
        i += 16;
    }
    count
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce512(v: std::arch::x86_64::__m512) -> f32 {
    std::arch::x86_64::_mm512_reduce_add_ps(v)
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

simd_primitives!(
    avx512,
    "avx512f,avx2,fma",
    __m512,
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_fnmadd_ps,
    _mm512_mul_ps,
    _mm512_setzero_ps,
    _mm512_add_ps,
    super::reduce512
);
simd_primitives!(
    avx2,
    "avx2,fma",
    __m256,
    8,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_fnmadd_ps,
    _mm256_mul_ps,
    _mm256_setzero_ps,
    _mm256_add_ps,
    super::reduce256
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Corruption;
    use crate::models::dae::{objective, Workspace};
    use crate::tensor::gemm::Par;
    use crate::tensor::rng::seeded;
    use rand::Rng as _;

    /// 100 steps of the fused kernel against 100 steps of the layer-by-layer
    /// path (batch 1, plain SGD, weight decay in the objective).
    fn agree(n_vis: usize, n_hid: usize, loss: Loss, isa: Isa, data: &[f32], lr: f32) {
        let cfg = DaeConfig {
            n_vis,
            n_hid,
            loss,
            ..DaeConfig::default()
        };
        let lay = Layout::new(&cfg);
        let mut rng = seeded(4);
        let r = cfg.init_range();
        let mut p: Vec<f32> = (0..lay.len).map(|_| rng.random_range(-r..r)).collect();
        p[lay.b_hid.clone()].iter_mut().for_each(|v| *v *= 0.1);
        let wd = 1e-3;
        let mut k = FusedTiedSgd::new(&cfg, &lay, &p, lr, wd).unwrap().with_isa(isa);
        let mut ws = Workspace::<f32>::new(&cfg, 1);
        let mut g = vec![0.0f32; lay.len];
        let mut noisy = vec![0.0f32; n_vis];
        let n = data.len() / n_vis;
        for t in 0..100 {
            let x = &data[(t % n) * n_vis..(t % n + 1) * n_vis];
            Corruption::Mask(0.25).apply(&mut noisy, x, &mut rng);
            let lf = k.step(x, &noisy);
            let (lr_ref, _) = objective(&cfg, &lay, &p, &mut g, &noisy, x, 1, wd, &mut ws, Par::Seq);
            assert!(
                (lf - lr_ref).abs() <= 1e-4 * lr_ref.abs().max(1.0),
                "step {t}: loss {lf} vs {lr_ref}"
            );
            for (pv, gv) in p.iter_mut().zip(&g) {
                *pv -= lr * gv;
            }
        }
        let mut fused = vec![0.0f32; lay.len];
        k.write_params(&lay, &mut fused);
        let worst = fused
            .iter()
            .zip(&p)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-5,
            "{n_vis}x{n_hid} {loss:?} {isa:?}: max |Δθ| = {worst}"
        );
    }

    #[test]
    fn nonzero_indices_agree_on_every_instruction_set() {
        for n in [0usize, 1, 15, 16, 17, 100, 784, 1001] {
            let x: Vec<f32> = (0..n)
                .map(|i| match i % 7 {
                    0 | 3 => 0.0,
                    1 => -0.0,
                    2 => f32::NAN,
                    _ => i as f32 * 0.01,
                })
                .collect();
            let want: Vec<u32> = (0..n as u32).filter(|&i| x[i as usize] != 0.0).collect();
            let mut nz = vec![u32::MAX; n];
            let k = portable::nonzero(&x, &mut nz);
            assert_eq!(&nz[..k], &want[..], "portable, n = {n}");
            #[cfg(target_arch = "x86_64")]
            if Isa::detect() == Isa::Avx512 {
                let mut nz = vec![u32::MAX; n];
                // SAFETY: the CPU has AVX-512.
                let k = unsafe { nonzero512(&x, &mut nz) };
                assert_eq!(&nz[..k], &want[..], "avx512, n = {n}");
            }
        }
    }

    #[test]
    fn matches_the_layer_path_after_100_steps_on_odd_shapes() {
        let mut rng = seeded(8);
        let data: Vec<f32> = (0..20 * 37)
            .map(|_| {
                if rng.random_bool(0.6) {
                    0.0
                } else {
                    rng.random_range(0.0..1.0)
                }
            })
            .collect();
        for isa in [Isa::Portable, Isa::Avx2Fma, Isa::Avx512] {
            for loss in [Loss::Squared, Loss::CrossEntropy] {
                agree(37, 21, loss, isa, &data, 0.1);
                agree(37, 1, loss, isa, &data, 0.1);
            }
        }
    }

    #[test]
    fn matches_the_layer_path_after_100_steps_on_mnist_784x500() {
        let d = crate::data::builtin::builtin_mnist().unwrap();
        for isa in [Isa::Portable, Isa::detect()] {
            agree(784, 500, Loss::Squared, isa, &d.x[..100 * 784], 0.01);
            agree(784, 500, Loss::CrossEntropy, isa, &d.x[..100 * 784], 0.01);
        }
    }
}

#[cfg(test)]
mod floor {
    use super::*;

    /// `update_dot4` on the instruction set the kernel chose (AVX-512 or
    /// the portable loop).
    fn update_dot4_on(
        isa: Isa,
        rows: &mut [f32],
        (sh, ga, gb): ([f32; 4], [f32; 4], [f32; 4]),
        h: &[f32],
        dh: &[f32],
        hn: &[f32],
    ) -> [f32; 4] {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the kernel chose Avx512, so the CPU has it.
            Isa::Avx512 => unsafe { avx512::update_dot4(rows, sh, ga, gb, h, dh, hn) },
            _ => portable::update_dot4(rows, sh, ga, gb, h, dh, hn),
        }
    }

    /// Not a test: `cargo test --release -p aekit --lib -- --ignored --nocapture floor`
    /// prints µs per step of a lone worker at several widths, one worker of a
    /// 2-way split (with its peer on the other core), and bare sweeps over W.
    /// `AEKIT_PROBE_WIDTHS=16,500` picks the widths; with
    /// `AEKIT_PROBE_ONLY_LONE=1` it times only lone workers, 20 times each (for
    /// comparing two builds run in turns on this drifting machine);
    /// `AEKIT_PROBE_SPLIT=1` times, in six rounds, a linked `split` pair, one
    /// worker linked to nobody, one unlinked, and an unlinked pair at once;
    /// `AEKIT_PROBE_LAG=1` times a 784×256 block's sweep with its rows
    /// finished 0 to 192 rows after they were updated.
    #[test]
    #[ignore]
    fn print_floor() {
        // A 784×H squared-loss model with every parameter 0.01.
        let model = |n_hid: usize| {
            let cfg = DaeConfig {
                n_vis: 784,
                n_hid,
                loss: Loss::Squared,
                ..DaeConfig::default()
            };
            let lay = Layout::new(&cfg);
            let p = vec![0.01f32; lay.len];
            (cfg, lay, p)
        };
        let d = crate::data::builtin::builtin_mnist().unwrap();
        let steps = 5000;
        let masks: Vec<Vec<f32>> = {
            let mut rng = crate::tensor::rng::seeded(1);
            (0..steps)
                .map(|s| {
                    let x = &d.x[(s % 10000) * 784..(s % 10000 + 1) * 784];
                    let mut n = vec![0.0f32; 784];
                    crate::data::Corruption::Mask(0.25).apply(&mut n, x, &mut rng);
                    n
                })
                .collect()
        };
        let run = |k: &mut FusedTiedSgd, link: Option<SplitLink<'_>>| {
            let t = std::time::Instant::now();
            for (s, n) in masks.iter().enumerate() {
                k.step_linked(&d.x[(s % 10000) * 784..(s % 10000 + 1) * 784], n, link);
            }
            t.elapsed().as_secs_f64() * 1e6 / steps as f64
        };
        let widths: Vec<usize> = std::env::var("AEKIT_PROBE_WIDTHS")
            .ok()
            .map(|v| v.split(',').filter_map(|w| w.parse().ok()).collect())
            .unwrap_or_else(|| vec![500, 256, 128]);
        if std::env::var("AEKIT_PROBE_ONLY_LONE").is_ok() {
            for &n_hid in &widths {
                let (cfg, lay, p) = model(n_hid);
                let mut k = FusedTiedSgd::new(&cfg, &lay, &p, 0.01, 0.0).unwrap();
                let us: Vec<String> = (0..20).map(|_| format!("{:.1}", run(&mut k, None))).collect();
                println!("lone worker 784x{n_hid}: {} µs/step", us.join(" "));
            }
            return;
        }
        for &n_hid in &widths {
            let (cfg, lay, p) = model(n_hid);
            let mut k = FusedTiedSgd::new(&cfg, &lay, &p, 0.01, 0.0).unwrap();
            println!(
                "lone worker 784x{n_hid}: {:.1} µs/step ({:?})",
                run(&mut k, None),
                k.isa
            );
            let hp = k.hp;
            let t = std::time::Instant::now();
            let (sh, ga, gb) = ([1.0f32; 4], [1e-9f32; 4], [0.0f32; 4]);
            for _ in 0..steps {
                for i in (0..784).step_by(4) {
                    let rows = &mut k.w[i * hp..(i + 4) * hp];
                    update_dot4_on(k.isa, rows, (sh, ga, gb), &k.h, &k.dh, &k.h_new);
                }
            }
            println!(
                "  bare update+dot sweep of W: {:.1} µs",
                t.elapsed().as_secs_f64() * 1e6 / steps as f64
            );
        }
        if std::env::var("AEKIT_PROBE_LAG").is_ok() {
            // What finishing rows late costs a `split` worker: a 784×256 block
            // swept 8 rows at a time (update and decode, then δh += δa·W_i for
            // the 8 rows `lag` rows back), for several lags, in 20 rounds of
            // turns; the median µs per sweep.
            let (cfg, lay, p) = model(256);
            let mut k = FusedTiedSgd::new(&cfg, &lay, &p, 0.01, 0.0).unwrap();
            let (hp, isa) = (k.hp, k.isa);
            let lags = [0usize, 8, 16, 32, 64, 192];
            let coef = [1e-7f32; 8];
            let (sh, ga, gb) = ([1.0f32; 4], [1e-9f32; 4], [0.0f32; 4]);
            let mut times: Vec<Vec<f64>> = vec![Vec::new(); lags.len()];
            for _ in 0..20 {
                for (slot, &lag) in lags.iter().enumerate() {
                    let t = std::time::Instant::now();
                    for _ in 0..200 {
                        for u in 0..(784 + lag) / 8 {
                            let i = u * 8;
                            if i < 784 {
                                for q in [i, i + 4] {
                                    let rows = &mut k.w[q * hp..(q + 4) * hp];
                                    let d = update_dot4_on(isa, rows, (sh, ga, gb), &k.h, &k.dh, &k.h_new);
                                    k.part[q..q + 4].copy_from_slice(&d);
                                }
                            }
                            if i >= lag {
                                let r = i - lag;
                                let rows = &k.w[r * hp..(r + 8) * hp];
                                match isa {
                                    #[cfg(target_arch = "x86_64")]
                                    // SAFETY: as above.
                                    Isa::Avx512 => unsafe { avx512::axpy_rows(&mut k.dh_acc, &coef, rows) },
                                    _ => portable::axpy_rows(&mut k.dh_acc, &coef, rows),
                                }
                            }
                        }
                    }
                    times[slot].push(t.elapsed().as_secs_f64() * 1e6 / 200.0);
                }
            }
            for (lag, mut t) in lags.iter().zip(times) {
                t.sort_by(f64::total_cmp);
                println!(
                    "784x256 sweep, rows finished {lag:3} rows late: {:.1} µs",
                    t[t.len() / 2]
                );
            }
            return;
        }
        if std::env::var("AEKIT_PROBE_SPLIT").is_ok() {
            // The split's costs in turns: a linked pair, one worker linked to
            // nobody, one unlinked, and an unlinked pair at once.
            let (cfg, lay, p) = model(500);
            let block =
                |r: std::ops::Range<usize>| FusedTiedSgd::new_block(&cfg, &lay, &p, 0.01, 0.0, r).unwrap();
            for _ in 0..6 {
                let sync = SplitSync::new(2, 784);
                let (mut a, mut b) = (block(0..256), block(256..500));
                let pair = std::thread::scope(|s| {
                    s.spawn(|| run(&mut b, Some(SplitLink { sync: &sync, me: 1 })));
                    run(&mut a, Some(SplitLink { sync: &sync, me: 0 }))
                });
                let sync1 = SplitSync::new(1, 784);
                let nobody = run(&mut block(0..256), Some(SplitLink { sync: &sync1, me: 0 }));
                let alone = run(&mut block(0..256), None);
                let (mut a, mut b) = (block(0..256), block(256..500));
                let (ua, ub) = std::thread::scope(|s| {
                    let h = s.spawn(|| run(&mut b, None));
                    (run(&mut a, None), h.join().unwrap())
                });
                println!(
                    "split 784x256 µs/step: linked pair {pair:.1}, linked to nobody {nobody:.1}, \
                     alone {alone:.1}, unlinked pair {ua:.1}/{ub:.1}"
                );
            }
            return;
        }
        let (cfg, lay, p) = model(500);
        let sync = SplitSync::new(2, 784);
        let mut a = FusedTiedSgd::new_block(&cfg, &lay, &p, 0.01, 0.0, 0..256).unwrap();
        let mut b = FusedTiedSgd::new_block(&cfg, &lay, &p, 0.01, 0.0, 256..500).unwrap();
        let us = std::thread::scope(|s| {
            s.spawn(|| run(&mut b, Some(SplitLink { sync: &sync, me: 1 })));
            run(&mut a, Some(SplitLink { sync: &sync, me: 0 }))
        });
        println!("split worker 0 of 2 (784x256 each): {us:.1} µs/step");
        let sync1 = SplitSync::new(1, 784);
        let mut a = FusedTiedSgd::new_block(&cfg, &lay, &p, 0.01, 0.0, 0..256).unwrap();
        let us = run(&mut a, Some(SplitLink { sync: &sync1, me: 0 }));
        println!("  one split worker 784x256 linked to nobody: {us:.1} µs/step");
        let mut a = FusedTiedSgd::new_block(&cfg, &lay, &p, 0.01, 0.0, 0..256).unwrap();
        let us = run(&mut a, None);
        println!("  one split worker 784x256 unlinked: {us:.1} µs/step");
        let (cfg, lay, p) = model(256);
        let mut a = FusedTiedSgd::new(&cfg, &lay, &p, 0.01, 0.0).unwrap();
        let mut b = a.clone();
        let (ua, ub) = std::thread::scope(|s| {
            let h = s.spawn(|| run(&mut b, None));
            (run(&mut a, None), h.join().unwrap())
        });
        println!("two independent lone 784x256 workers at once: {ua:.1} and {ub:.1} µs/step");
        // The `rows` decomposition: half the rows each, with and without the
        // all-reduction per example.
        let (cfg, lay, p) = model(500);
        let run_rows = |k: &mut FusedTiedSgd, r: std::ops::Range<usize>| {
            let t = std::time::Instant::now();
            for (s, n) in masks.iter().enumerate() {
                let x = &d.x[(s % 10000) * 784..(s % 10000 + 1) * 784];
                k.step(&x[r.clone()], &n[r.clone()]);
            }
            t.elapsed().as_secs_f64() * 1e6 / steps as f64
        };
        for linked in [false, true] {
            let sync = std::sync::Arc::new(RowSync::new(2, 512));
            let make = |r: std::ops::Range<usize>, me: usize| {
                let mut k = FusedTiedSgd::new_rows(&cfg, &lay, &p, 0.01, 0.0, r, sync.clone(), me).unwrap();
                if !linked {
                    k.rows = None;
                }
                k
            };
            let (mut a, mut b) = (make(0..392, 0), make(392..784, 1));
            let (ua, ub) = std::thread::scope(|s| {
                let h = s.spawn(|| run_rows(&mut b, 392..784));
                (run_rows(&mut a, 0..392), h.join().unwrap())
            });
            println!("rows workers 392x500 (linked: {linked}): {ua:.1} and {ub:.1} µs/step");
        }
    }
}
