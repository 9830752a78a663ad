//! The DAE's maths: its settings, where each parameter lives, the batch
//! workspace, and the loss and gradient of a batch (f32 for training, f64
//! for gradient checks).

use crate::error::{Error, Result};
use crate::layers::activation::Activation;
use crate::layers::dense::{weight_grads, Dense, Grads};
use crate::layers::loss::{self, Loss};
use crate::layers::Corruption;
use crate::per_example::{TiedParams, TiedParamsMut, UntiedParamsMut};
use crate::tensor::gemm::Par;
use crate::tensor::{GradWrite, Real};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// A denoising autoencoder's shape and units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaeConfig {
    /// Visible units; 0 means "from the data" (set by `fit`).
    pub n_vis: usize,
    /// Hidden units.
    pub n_hid: usize,
    /// Decode with Wᵀ (true) or a separate W′.
    pub tied: bool,
    /// Hidden non-linearity f.
    pub hidden_activation: Activation,
    /// Output non-linearity g (cross-entropy needs sigmoid).
    pub output_activation: Activation,
    /// Reconstruction loss: `squared` or `xent`.
    pub loss: Loss,
    /// Input corruption during training: `none`, `mask:P`, `gauss:S`, `saltpepper:P`.
    pub noise: Corruption,
    /// Half-width r of the U(−r, r) initialisation of the weights; 0 picks
    /// 4·√(6/(n_vis+n_hid)) for sigmoid hidden units and √(6/(n_vis+n_hid))
    /// otherwise (Glorot & Bengio 2010). Biases start at 0.
    pub init_scale: f32,
    /// Standardise each input feature by the training data's mean and
    /// standard deviation (kept in the model; inputs are standardised and
    /// outputs put back in the data's units). Needs a linear output and
    /// squared loss; the loss is then in standardised units, and Gaussian
    /// noise is relative to each feature's standard deviation.
    pub standardize: bool,
}

impl Default for DaeConfig {
    fn default() -> Self {
        DaeConfig {
            n_vis: 0,
            n_hid: 500,
            tied: true,
            hidden_activation: Activation::Sigmoid,
            output_activation: Activation::Sigmoid,
            loss: Loss::CrossEntropy,
            noise: Corruption::Mask(0.25),
            init_scale: 0.0,
            standardize: false,
        }
    }
}

impl DaeConfig {
    /// Refuses a model the machine cannot hold (its parameters, gradient,
    /// optimizer state and best-epoch copy), before anything is allocated.
    pub fn check_size(&self) -> Result<()> {
        let (v, h) = (self.n_vis as u128, self.n_hid as u128);
        let weights = v * h * if self.tied { 1 } else { 2 };
        crate::tensor::memory::check_f32s("model.n_hid", 4 * (weights + v + h))
    }

    pub fn validate(&self) -> Result<()> {
        if self.n_hid == 0 {
            return Err(Error::config("model.n_hid", "hidden units must be at least 1"));
        }
        if self.loss == Loss::CrossEntropy && self.output_activation != Activation::Sigmoid {
            return Err(Error::config(
                "model.loss",
                "cross-entropy needs a sigmoid output; use loss = \"squared\" for other outputs",
            ));
        }
        if self.standardize && (self.loss != Loss::Squared || self.output_activation != Activation::Identity)
        {
            return Err(Error::config(
                "model.standardize",
                "standardised data is real-valued: it needs output_activation = \"identity\" and loss = \"squared\" \
                 (--output identity --loss squared)",
            ));
        }
        crate::train::check_non_negative("model.init_scale", self.init_scale, "automatic")?;
        self.noise.validate("model.noise")
    }

    /// The initialisation half-width in force.
    pub fn init_range(&self) -> f32 {
        if self.init_scale > 0.0 {
            return self.init_scale;
        }
        let r = (6.0 / (self.n_vis + self.n_hid) as f32).sqrt();
        if self.hidden_activation == Activation::Sigmoid {
            4.0 * r
        } else {
            r
        }
    }
}

/// Where each parameter lives in the flat vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub w: Range<usize>,
    pub b_hid: Range<usize>,
    pub b_vis: Range<usize>,
    pub w_dec: Option<Range<usize>>,
    pub len: usize,
}

impl Layout {
    pub fn new(cfg: &DaeConfig) -> Layout {
        let (v, h) = (cfg.n_vis, cfg.n_hid);
        let w = 0..v * h;
        let b_hid = w.end..w.end + h;
        let b_vis = b_hid.end..b_hid.end + v;
        let w_dec = (!cfg.tied).then(|| b_vis.end..b_vis.end + h * v);
        let len = w_dec.as_ref().map_or(b_vis.end, |r| r.end);
        Layout {
            w,
            b_hid,
            b_vis,
            w_dec,
            len,
        }
    }

    /// W, b and b′ of a tied model's flat vector, for the fused kernel.
    pub fn tied<'a>(&self, p: &'a [f32]) -> TiedParams<'a> {
        TiedParams {
            w: &p[self.w.clone()],
            b: &p[self.b_hid.clone()],
            c: &p[self.b_vis.clone()],
        }
    }

    /// [`Layout::tied`], to write into.
    pub fn tied_mut<'a>(&self, p: &'a mut [f32]) -> TiedParamsMut<'a> {
        let (w, rest) = p.split_at_mut(self.b_hid.start);
        let (b, rest) = rest.split_at_mut(self.b_hid.len());
        TiedParamsMut {
            w: &mut w[self.w.clone()],
            b,
            c: &mut rest[..self.b_vis.len()],
        }
    }

    /// W, b, b′ and W′ of an untied model's flat vector, for the untied
    /// per-example step; `None` for a tied model.
    pub fn untied_mut<'a>(&self, p: &'a mut [f32]) -> Option<UntiedParamsMut<'a>> {
        let dec = self.w_dec.clone()?;
        let (head, rest) = p.split_at_mut(dec.start);
        let TiedParamsMut { w, b, c } = self.tied_mut(head);
        Some(UntiedParamsMut {
            w,
            b,
            c,
            w_dec: &mut rest[..dec.len()],
        })
    }

    /// Ranges that weight decay applies to.
    pub fn weight_ranges(&self) -> Vec<Range<usize>> {
        std::iter::once(self.w.clone())
            .chain(self.w_dec.clone())
            .collect()
    }
}

/// Activations of one batch, allocated once per batch size.
#[derive(Debug, Clone, Default)]
pub struct Workspace<T> {
    /// `[batch, n_hid]` hidden units, then δh.
    pub(crate) h: Vec<T>,
    pub(crate) dh: Vec<T>,
    /// `[batch, n_vis]` output pre-activations, outputs, δa.
    pub(crate) a: Vec<T>,
    pub(crate) z: Vec<T>,
    pub(crate) da: Vec<T>,
}

impl<T: Real> Workspace<T> {
    pub fn new(cfg: &DaeConfig, batch: usize) -> Self {
        let z = T::ZERO;
        Workspace {
            h: vec![z; batch * cfg.n_hid],
            dh: vec![z; batch * cfg.n_hid],
            a: vec![z; batch * cfg.n_vis],
            z: vec![z; batch * cfg.n_vis],
            da: vec![z; batch * cfg.n_vis],
        }
    }

    pub(crate) fn fit(&mut self, cfg: &DaeConfig, batch: usize) {
        if self.h.len() < batch * cfg.n_hid || self.a.len() < batch * cfg.n_vis {
            *self = Workspace::new(cfg, batch);
        }
    }
}

/// Encodes `input` into `h` (`[batch, n_hid]`).
pub(crate) fn encode<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    h: &mut [T],
    input: &[T],
    batch: usize,
    par: Par,
) {
    Dense::new(&p[lay.w.clone()], cfg.n_vis, cfg.n_hid).forward(h, input, &p[lay.b_hid.clone()], batch, par);
    cfg.hidden_activation.forward(h);
}

/// Decoder pre-activation `a` (`[batch, n_vis]`) from `h`.
pub(crate) fn decode_pre<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    a: &mut [T],
    h: &[T],
    batch: usize,
    par: Par,
) {
    decoder(cfg, lay, p).forward(a, h, &p[lay.b_vis.clone()], batch, par);
}

/// The decoder's weight: the encoder's through its transpose (tied), or W′.
fn decoder<'p, T: Real>(cfg: &DaeConfig, lay: &Layout, p: &'p [T]) -> Dense<'p, T> {
    match &lay.w_dec {
        None => Dense::tied(&p[lay.w.clone()], cfg.n_hid, cfg.n_vis),
        Some(r) => Dense::new(&p[r.clone()], cfg.n_hid, cfg.n_vis),
    }
}

/// The `n` examples of one batch: the (corrupted) `input` rows and the
/// `target` rows they are to be reconstructed as, `n` × n_vis values each.
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a, T> {
    pub input: &'a [T],
    pub target: &'a [T],
    pub n: usize,
}

/// The forward pass of a batch: its summed loss of reconstructing `target`
/// from `input`, the hidden units in `ws.h` and, with `with_grad`, the
/// loss's gradient with respect to the output pre-activations in `ws.da`.
fn forward_loss<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    with_grad: bool,
    ex: Examples<'_, T>,
    ws: &mut Workspace<T>,
    par: Par,
) -> T {
    let Examples {
        input,
        target,
        n: batch,
    } = ex;
    ws.fit(cfg, batch);
    let (nv, nh) = (cfg.n_vis, cfg.n_hid);
    let h = &mut ws.h[..batch * nh];
    let a = &mut ws.a[..batch * nv];
    let da = &mut ws.da[..batch * nv];
    encode(cfg, lay, p, h, input, batch, par);
    decode_pre(cfg, lay, p, a, h, batch, par);
    match cfg.loss {
        Loss::CrossEntropy => loss::xent(with_grad.then_some(da), a, target),
        Loss::Squared => {
            let z = &mut ws.z[..batch * nv];
            z.copy_from_slice(a);
            cfg.output_activation.forward(z);
            if with_grad {
                loss::squared_backward(da, z, target);
                cfg.output_activation.backward(da, z);
            }
            loss::squared_forward(z, target)
        }
    }
}

/// δh: the loss's gradient with respect to the hidden pre-activations, from
/// `ws.da` through the decoder's weight, into `ws.dh`.
fn hidden_delta<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    batch: usize,
    ws: &mut Workspace<T>,
    par: Par,
) {
    let (nv, nh) = (cfg.n_vis, cfg.n_hid);
    let dh = &mut ws.dh[..batch * nh];
    decoder(cfg, lay, p).backward_input(dh, &ws.da[..batch * nv], batch, par);
    cfg.hidden_activation.backward(dh, &ws.h[..batch * nh]);
}

/// Sum over the batch of the loss of reconstructing `target` from `input`.
/// With `grad`, writes the gradient of that sum as its [`GradWrite`] says
/// (added into the buffer, or scaled and written over it or into a
/// multiple of it: every entry is written once, so a buffer written over
/// needs no clearing first).
pub fn batch_loss_grad<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    grad: Option<(&mut [T], GradWrite<T>)>,
    ex: Examples<'_, T>,
    ws: &mut Workspace<T>,
    par: Par,
) -> T {
    let l = forward_loss(cfg, lay, p, grad.is_some(), ex, ws, par);
    let Some((grad, write)) = grad else { return l };
    hidden_delta(cfg, lay, p, ex.n, ws, par);
    write_weight_grads(cfg, lay, grad, write, ex, ws, par);
    l
}

/// Writes the weight and bias gradients of the batch in `ws` (its hidden
/// units, δa and δh) into `grad`, laid out as the parameters, as `write`
/// says. Reads no parameter, so `grad` may be the parameters themselves.
fn write_weight_grads<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    grad: &mut [T],
    write: GradWrite<T>,
    ex: Examples<'_, T>,
    ws: &Workspace<T>,
    par: Par,
) {
    let (input, batch) = (ex.input, ex.n);
    let (nv, nh) = (cfg.n_vis, cfg.n_hid);
    let (h, da, dh) = (&ws.h[..batch * nh], &ws.da[..batch * nv], &ws.dh[..batch * nh]);
    let (gw, rest) = grad.split_at_mut(lay.b_hid.start);
    let (gb_hid, rest) = rest.split_at_mut(nh);
    let (gb_vis, gw_dec) = rest.split_at_mut(nv);
    let untied = lay.w_dec.is_some();
    let dec_grads = Grads {
        dw: if untied { gw_dec } else { &mut *gw },
        db: gb_vis,
        write,
    };
    // The decoder maps n_hid to n_vis: through W′ `[n_hid, n_vis]`, or
    // through the transpose of the tied W `[n_vis, n_hid]`.
    weight_grads(dec_grads, da, h, (nh, nv, !untied), batch, par);
    let encoder = if untied {
        Grads {
            dw: gw,
            db: gb_hid,
            write,
        }
    } else {
        // The tied weight already holds the decoder's share: the encoder's
        // adds into it, and b_hid takes the write's β first.
        match write.beta {
            None => gb_hid.fill(T::ZERO),
            Some(b) if b != T::ONE => T::scale_slice(gb_hid, b),
            Some(_) => {}
        }
        Grads {
            dw: gw,
            db: gb_hid,
            write: GradWrite {
                alpha: write.alpha,
                beta: Some(T::ONE),
            },
        }
    };
    weight_grads(encoder, dh, input, (nv, nh, false), batch, par);
}

/// One step of plain SGD on a batch without weight decay, taken in place:
/// θ ← θ − η·g, g the gradient of the batch's mean loss. δh is computed
/// from the weights first; then each weight product adds −η/n times its
/// share straight into the weights, so no gradient buffer is written, read
/// back and stepped along. The same step as [`batch_loss_grad`] into a
/// buffer followed by SGD's, but for the order of the roundings: a tied
/// weight is rounded once per product instead of once per step. (With
/// weight decay a third rounding per step, the decay's, made the weights
/// drift measurably from the per-example kernels' over a few hundred
/// steps, so decay keeps the buffered route.) Returns the mean loss at the
/// weights before the step.
pub fn batch_sgd_step<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &mut [T],
    lr: T,
    ex: Examples<'_, T>,
    ws: &mut Workspace<T>,
    par: Par,
) -> T {
    let sum = forward_loss(cfg, lay, p, true, ex, ws, par);
    hidden_delta(cfg, lay, p, ex.n, ws, par);
    let inv = T::ONE / T::of(ex.n as f64);
    let write = GradWrite {
        alpha: -lr * inv,
        beta: Some(T::ONE),
    };
    write_weight_grads(cfg, lay, p, write, ex, ws, par);
    sum * inv
}

/// The training objective of one batch: mean loss + ½·λ·‖weights‖². Writes
/// its gradient into `grad` (overwriting); returns (mean loss, objective).
#[allow(clippy::too_many_arguments)]
pub fn objective<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    grad: &mut [T],
    ex: Examples<'_, T>,
    weight_decay: T,
    ws: &mut Workspace<T>,
    par: Par,
) -> (T, T) {
    grad.fill(T::ZERO);
    let loss_sum = batch_loss_grad(cfg, lay, p, Some((&mut *grad, GradWrite::ADD)), ex, ws, par);
    finish_objective(lay, p, grad, loss_sum, ex.n, weight_decay)
}

/// Turns a summed loss and gradient over `batch` examples into the mean plus
/// weight decay (in place); returns (mean loss, objective).
pub fn finish_objective<T: Real>(
    lay: &Layout,
    p: &[T],
    grad: &mut [T],
    loss_sum: T,
    batch: usize,
    weight_decay: T,
) -> (T, T) {
    let inv = T::ONE / T::of(batch as f64);
    let mean_loss = loss_sum * inv;
    crate::tensor::par::chunks(grad, |_, c| T::scale_slice(c, inv));
    (mean_loss, penalty(lay, p, grad, weight_decay, T::ONE, mean_loss))
}

/// Adds `scale`·λ·W to the weights' gradient (biases excluded) and returns
/// `loss` plus the penalty ½·λ·‖weights‖².
pub fn penalty<T: Real>(lay: &Layout, p: &[T], grad: &mut [T], weight_decay: T, scale: T, loss: T) -> T {
    let mut obj = loss;
    if weight_decay > T::ZERO {
        for r in lay.weight_ranges() {
            let mut sq = T::ZERO;
            for (g, &w) in grad[r.clone()].iter_mut().zip(&p[r]) {
                *g += scale * (weight_decay * w);
                sq += w * w;
            }
            obj += T::of(0.5) * weight_decay * sq;
        }
    }
    obj
}
