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
//! Weight decay λ takes ηλ·W_i from each row as it is updated (and ηλ·P from
//! P), as its own term: a factor 1 − ηλ rounded to f32 would be off by up to
//! half a unit in 2⁻²⁴, a third of a decay ηλ = 10⁻⁷.
//!
//! Rows are padded to a multiple of 16 lanes with zero weights and zero
//! hidden units, so the inner loops have no remainder. The loops are written
//! for the auto-vectoriser; [`FusedTiedSgd::step`] runs them compiled for
//! AVX-512 or AVX2+FMA when the CPU has them (checked at run time), and as
//! portable code otherwise.

use super::isa::Isa;
use super::simd;
pub use super::state::FusedTiedSgd;
use super::state::{Buf, L};
use super::sync::{RowSync, SplitLink};
use crate::error::{Error, Result};
use crate::layers::Loss;

impl FusedTiedSgd {
    /// Takes all the weights of a model.
    pub fn new(shape: TiedShape, p: TiedParams<'_>, lr: f32, weight_decay: f32) -> Result<Self> {
        Self::new_block(shape, p, lr, weight_decay, 0..shape.n_hid)
    }

    /// Takes hidden units `hid` (their columns of W and their biases) and all
    /// of b′.
    pub fn new_block(
        shape: TiedShape,
        p: TiedParams<'_>,
        lr: f32,
        weight_decay: f32,
        hid: std::ops::Range<usize>,
    ) -> Result<Self> {
        p.check(shape)?;
        if hid.end > shape.n_hid || hid.is_empty() {
            return Err(Error::shape(
                "hidden block",
                format!("a non-empty range within 0..{}", shape.n_hid),
                format!("{hid:?}"),
            ));
        }
        let nv = shape.n_vis;
        let nh = hid.len();
        let hp = nh.div_ceil(L) * L;
        let mut w = Buf::zeros(nv * hp);
        for (dst, src) in w.chunks_exact_mut(hp).zip(p.w.chunks_exact(shape.n_hid)) {
            dst[..nh].copy_from_slice(&src[hid.clone()]);
        }
        let mut b = Buf::zeros(hp);
        b[..nh].copy_from_slice(&p.b[hid.clone()]);
        Ok(FusedTiedSgd {
            n_vis: nv,
            n_hid: nh,
            hid_start: hid.start,
            hp,
            w,
            b,
            c: p.c.to_vec(),
            lr,
            decay: weight_decay,
            loss: shape.loss,
            isa: Isa::active(),
            pending: false,
            examples: 0,
            h: Buf::zeros(hp),
            dh: Buf::zeros(hp),
            da: vec![0.0; nv],
            xt: vec![0.0; nv],
            h_new: Buf::zeros(hp),
            dh_acc: Buf::zeros(hp),
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
        shape: TiedShape,
        p: TiedParams<'_>,
        lr: f32,
        weight_decay: f32,
        vis: std::ops::Range<usize>,
        sync: std::sync::Arc<RowSync>,
        me: usize,
    ) -> Result<Self> {
        let mut k = Self::new(shape, p, lr, weight_decay)?;
        assert!(
            me < sync.threads && sync.hp == k.hp,
            "rows worker {me} does not fit its RowSync"
        );
        let hp = k.hp;
        k.w = Buf::from_slice(&k.w[vis.start * hp..vis.end * hp]);
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
        simd::step(self, x, xt, link)
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
        let decay = lr * self.decay;
        for i in 0..self.n_vis {
            let row = &mut self.w[i * hp..(i + 1) * hp];
            simd::portable::update_row(row, decay, lr * self.da[i], lr * self.xt[i], &self.h, &self.dh);
        }
        self.pending = false;
    }

    /// Flushes, then writes this worker's W columns, b and (all of) b′ back
    /// into a model's parameters.
    pub fn write_params(&mut self, p: TiedParamsMut<'_>) {
        self.flush();
        let (nh, j0) = (self.n_hid, self.hid_start);
        let total = p.b.len();
        if self.rows.is_some() {
            // This worker's rows (all hidden units), its b′ slice, and b
            // (every worker holds the same b).
            let v0 = self.vis_start;
            let w = &mut p.w[v0 * total..(v0 + self.n_vis) * total];
            for (dst, src) in w.chunks_exact_mut(total).zip(self.w.chunks_exact(self.hp)) {
                dst.copy_from_slice(&src[..total]);
            }
            p.b.copy_from_slice(&self.b[..total]);
            p.c[v0..v0 + self.n_vis].copy_from_slice(&self.c);
            return;
        }
        for (dst, src) in p.w.chunks_exact_mut(total).zip(self.w.chunks_exact(self.hp)) {
            dst[j0..j0 + nh].copy_from_slice(&src[..nh]);
        }
        p.b[j0..j0 + nh].copy_from_slice(&self.b[..nh]);
        p.c.copy_from_slice(&self.c);
    }
}

/// The shape of a tied sigmoid autoencoder (sigmoid hidden and output units),
/// the only model the fused kernel steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TiedShape {
    pub n_vis: usize,
    pub n_hid: usize,
    pub loss: Loss,
}

/// A tied model's parameters: W `[n_vis, n_hid]` (column j is hidden unit j's
/// filter), b `[n_hid]`, b′ `[n_vis]`.
#[derive(Debug, Clone, Copy)]
pub struct TiedParams<'a> {
    pub w: &'a [f32],
    pub b: &'a [f32],
    pub c: &'a [f32],
}

/// [`TiedParams`], to write into.
#[derive(Debug)]
pub struct TiedParamsMut<'a> {
    pub w: &'a mut [f32],
    pub b: &'a mut [f32],
    pub c: &'a mut [f32],
}

impl TiedParamsMut<'_> {
    /// Read-only views of the same slices.
    pub fn view(&self) -> TiedParams<'_> {
        TiedParams {
            w: self.w,
            b: self.b,
            c: self.c,
        }
    }

    /// The same slices, for a shorter borrow.
    pub fn reborrow(&mut self) -> TiedParamsMut<'_> {
        TiedParamsMut {
            w: self.w,
            b: self.b,
            c: self.c,
        }
    }
}

impl TiedParams<'_> {
    pub(crate) fn check(&self, s: TiedShape) -> Result<()> {
        let want = [s.n_vis * s.n_hid, s.n_hid, s.n_vis];
        let got = [self.w.len(), self.b.len(), self.c.len()];
        if want != got || s.n_vis == 0 || s.n_hid == 0 {
            return Err(Error::shape(
                "tied parameters (W, b, b′)",
                format!("{want:?} values for {}×{} units", s.n_vis, s.n_hid),
                format!("{got:?}"),
            ));
        }
        Ok(())
    }
}
