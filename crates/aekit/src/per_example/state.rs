//! The fused kernel's state and the body of its step, written once and
//! instantiated per instruction set in `simd.rs`. See `kernel.rs` for the
//! maths.

use super::isa::Isa;
use super::sync::RowSync;
use crate::layers::Loss;

pub(super) const L: usize = 16;
/// Blocks per group that a linked (`split`) worker publishes at once (64 rows).
pub(super) const GROUP: usize = 4;
/// Blocks a linked worker runs ahead of the block it finishes (192 rows): a
/// peer may fall two groups behind before anyone waits, and the rows to
/// finish come back from L2. With the lag equal to the group (32 rows, still
/// in L1) a worker waited at every group for the group its peer had just
/// published; the probe's linked pair took a median 28.3 µs a step against
/// 25.5 µs for this shape (18 rounds each, in turns).
pub(super) const LAG: usize = 3 * GROUP;
// A worker finishing a group's first block must itself have published it.
const _: () = assert!(LAG >= GROUP);
/// Rows decoded together in the sweep (a whole number of 16-slot lines, so
/// that a block's decoder sums fill whole lines in the `split` mode).
pub(super) const BLOCK: usize = 16;
const _: () = assert!(BLOCK.is_multiple_of(16));

/// The body of one step, instantiated once per instruction set with that
/// set's primitives.
macro_rules! step_body {
    ($self:ident, $x:ident, $xt:ident, $link:ident, $update_dot:path, $update_dot4:path, $dot:path, $axpy:path, $axpy4:path, $axpy_rows:path, $nonzero:path) => {{
        let (nv, nh, hp, lr) = ($self.n_vis, $self.n_hid, $self.hp, $self.lr);
        // ηλ, its own term (w − ηλ·w): 1 − ηλ rounded to f32 loses small decays.
        let decay = lr * $self.decay;
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
        // 3. δh of t, its bias updates, and h_{t+1}: with W_i' = W_i − ηλ·W_i −
        //    η(δa_i·h_t + x̃_{t,i}·δh_t), Σ x̃_{t+1,i}·W_i' = P − ηλ·P − ηα·h_t − ηβ·δh_t.
        if pending {
            $self.settle_biases();
            let (ga, gb) = (lr * alpha, lr * beta);
            let terms = $self.h_new.iter_mut().zip(&$self.b).zip(&$self.h).zip(&$self.dh);
            if decay == 0.0 {
                for (((p, &b), &h), &d) in terms {
                    *p = b + *p - ga * h - gb * d;
                }
            } else {
                for (((p, &b), &h), &d) in terms {
                    *p = b + *p - (decay * *p + ga * h + gb * d);
                }
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
                            simd::prefetch(&line.0[0], true);
                        }
                    }
                }
                let mut r = 0;
                while r + 4 <= rows {
                    // Four rows at once; with nothing pending the update is the
                    // identity (0, 0, 0).
                    let (mut sh, mut ga, mut gb) = ([0.0f32; 4], [0.0f32; 4], [0.0f32; 4]);
                    for q in 0..4 {
                        let i = i0 + r + q;
                        if pending {
                            sh[q] = decay;
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
                            decay,
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
                                simd::prefetch(&line.0[0], false);
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
pub(super) use step_body;

/// Tied-autoencoder SGD state with one update pending, for all hidden units
/// or (in the `split` mode) one block of them.
#[derive(Debug, Clone)]
pub struct FusedTiedSgd {
    pub(super) n_vis: usize,
    /// Hidden units in this worker's block, and where the block starts.
    pub(super) n_hid: usize,
    pub(super) hid_start: usize,
    /// Row stride: n_hid rounded up to 16.
    pub(super) hp: usize,
    /// `[n_vis, hp]`, padding columns zero.
    pub(super) w: Buf,
    /// `[hp]`.
    pub(super) b: Buf,
    /// `[n_vis]` (every worker keeps an identical copy).
    pub(super) c: Vec<f32>,
    pub(super) lr: f32,
    pub(super) decay: f32,
    pub(super) loss: Loss,
    pub(super) isa: Isa,
    pub(super) pending: bool,
    /// Examples stepped so far.
    pub(super) examples: u64,
    /// Pending example's h, δh `[hp]`, δa and x̃ `[n_vis]`.
    pub(super) h: Buf,
    pub(super) dh: Buf,
    pub(super) da: Vec<f32>,
    pub(super) xt: Vec<f32>,
    /// Scratch for the example being processed.
    pub(super) h_new: Buf,
    pub(super) dh_acc: Buf,
    pub(super) da_new: Vec<f32>,
    /// `[n_vis]` this block's decoder sums.
    pub(super) part: Vec<f32>,
    /// `[workers, n_vis]` peers' decoder sums (split mode), sized on first use.
    pub(super) gathered: Vec<f32>,
    /// `[n_vis]` the indices of the next example's non-zero inputs.
    pub(super) nz: Vec<u32>,
    /// `[2·hp + 16]` the `rows` mode's all-reduction: δh_acc, P, α, β.
    pub(super) reduce: Vec<f32>,
    /// The `rows` mode: the shared sums and this worker's index; its rows of
    /// W start at visible unit `vis_start`.
    pub(super) rows: Option<(std::sync::Arc<RowSync>, usize)>,
    pub(super) vis_start: usize,
}

impl FusedTiedSgd {
    /// The pending example's δh from its summed δh_acc, and its updates of
    /// b and b′ (inlined into each instruction set's step).
    #[inline(always)]
    pub(super) fn settle_biases(&mut self) {
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
}

/// f32s whose first element sits on a 64-byte boundary (one cache line, one
/// AVX-512 vector), whatever address the allocator returns: with rows padded
/// to 16 lanes, no vector load or store of the sweep then splits across two
/// cache lines. (A 784×500 W one allocation placed 16 bytes off a line ran
/// its epoch about 20% slower than one placed on it.)
#[derive(Debug)]
pub(super) struct Buf {
    raw: Vec<f32>,
    off: usize,
    len: usize,
}

impl Buf {
    pub(super) fn zeros(len: usize) -> Buf {
        let raw = vec![0.0f32; len + 15];
        let off = (64 - raw.as_ptr() as usize % 64) % 64 / 4;
        Buf { raw, off, len }
    }

    pub(super) fn from_slice(s: &[f32]) -> Buf {
        let mut b = Buf::zeros(s.len());
        b.copy_from_slice(s);
        b
    }
}

impl Clone for Buf {
    /// A new allocation, aligned afresh.
    fn clone(&self) -> Buf {
        Buf::from_slice(self)
    }
}

impl std::ops::Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.raw[self.off..self.off + self.len]
    }
}

impl std::ops::DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.raw[self.off..self.off + self.len]
    }
}

impl<'a> IntoIterator for &'a Buf {
    type Item = &'a f32;
    type IntoIter = std::slice::Iter<'a, f32>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut Buf {
    type Item = &'a mut f32;
    type IntoIter = std::slice::IterMut<'a, f32>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}
