//! Per-example SGD for an autoencoder with a decoder of its own (W′, not
//! Wᵀ), on one thread: the step the layer-by-layer path takes with batch 1,
//! without the GEMM door's set-up per example or a gradient buffer the size
//! of the weights.
//!
//! Per example x̃ (corrupted) and x (clean), with W `[V, H]` and
//! W′ `[H, V]` stored by rows:
//!
//! 1. h = f(b + Σᵢ x̃ᵢ·Wᵢ), skipping the rows of zero inputs;
//! 2. a = b′ + Σⱼ hⱼ·W′ⱼ; the loss and δa = ∂L/∂a;
//! 3. for each row j of W′ in one pass: δhⱼ = W′ⱼ·δa, then
//!    W′ⱼ ← W′ⱼ − ηλ·W′ⱼ − η·hⱼ·δa;
//! 4. δh ← δh ⊙ f′; b′ ← b′ − η·δa; b ← b − η·δh;
//! 5. Wᵢ ← Wᵢ − ηλ·Wᵢ − η·x̃ᵢ·δh (rows of zero inputs only decay).
//!
//! This is the same SGD as the layer path with batch 1 and no momentum
//! (each example's gradient from the weights before its update, λ on the
//! weights only); the sums run in another order, so the two agree to
//! rounding, not bit for bit. The random stream is used the same way (the
//! epoch's order, then each example's corruption), so a run that switches
//! path keeps its examples and noise. Every instruction set gives the same
//! bits (see [`crate::tensor::simd`]).

use crate::layers::{Activation, Corruption, Loss};
use crate::tensor::rng::Rng;
use crate::tensor::simd::{axpy_decay, dot_then_axpy_decay, shrink};
use crate::train::Observer;

/// The shape of an untied autoencoder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UntiedShape {
    pub n_vis: usize,
    pub n_hid: usize,
    pub hidden: Activation,
    /// The output units (sigmoid under cross-entropy).
    pub output: Activation,
    pub loss: Loss,
}

/// What an untied per-example epoch steps with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UntiedJob {
    pub shape: UntiedShape,
    /// Learning rate η.
    pub lr: f32,
    /// L2 weight decay λ on W and W′.
    pub weight_decay: f32,
    /// The corruption drawn for each example.
    pub noise: Corruption,
}

/// An untied model's parameters: W `[n_vis, n_hid]`, b `[n_hid]`,
/// b′ `[n_vis]`, W′ `[n_hid, n_vis]`.
pub struct UntiedParamsMut<'a> {
    pub w: &'a mut [f32],
    pub b: &'a mut [f32],
    pub c: &'a mut [f32],
    pub w_dec: &'a mut [f32],
}

/// The vectors one step works in, allocated once per epoch.
struct Scratch {
    noisy: Vec<f32>,
    h: Vec<f32>,
    dh: Vec<f32>,
    a: Vec<f32>,
    z: Vec<f32>,
    da: Vec<f32>,
}

/// One shuffled epoch of per-example SGD over the `x.len() / n_vis` rows of
/// `x`; returns the mean training loss per example (each measured before
/// its own update). A stop request (Ctrl-C) ends it early with a NaN loss,
/// as a minibatch epoch ends: the caller sees the request and keeps the
/// last checkpoint.
pub fn run_epoch_untied(
    job: &UntiedJob,
    mut p: UntiedParamsMut<'_>,
    x: &[f32],
    rng: &mut Rng,
    obs: &mut dyn Observer,
) -> f64 {
    let UntiedShape {
        n_vis: nv, n_hid: nh, ..
    } = job.shape;
    let n = x.len() / nv;
    assert_eq!(x.len(), n * nv, "x holds whole examples");
    assert!(p.w.len() == nv * nh && p.w_dec.len() == nh * nv && p.b.len() == nh && p.c.len() == nv);
    let order = super::drivers::order(n, rng);
    let mut s = Scratch {
        noisy: vec![0.0; nv],
        h: vec![0.0; nh],
        dh: vec![0.0; nh],
        a: vec![0.0; nv],
        z: vec![0.0; nv],
        da: vec![0.0; nv],
    };
    let report_every = (n / 100).max(1);
    let mut total = 0.0f64;
    for (t, &i) in order.iter().enumerate() {
        if crate::train::checkpoint::stop_requested() {
            return f64::NAN;
        }
        let xi = &x[i * nv..(i + 1) * nv];
        job.noise.apply(&mut s.noisy, xi, rng);
        total += step(job, &mut p, xi, &mut s);
        if (t + 1) % report_every == 0 || t + 1 == n {
            obs.on_progress(t + 1, n);
        }
    }
    total / n.max(1) as f64
}

/// One example's step (module docs); returns its loss.
fn step(job: &UntiedJob, p: &mut UntiedParamsMut<'_>, x: &[f32], s: &mut Scratch) -> f64 {
    let UntiedShape {
        n_vis: nv,
        n_hid: nh,
        hidden,
        output,
        loss,
    } = job.shape;
    let (eta, k) = (job.lr, job.lr * job.weight_decay);
    // 1. Encode, skipping zero inputs (their rows add nothing).
    s.h.copy_from_slice(p.b);
    for (&v, row) in s.noisy.iter().zip(p.w.chunks_exact(nh)) {
        if v != 0.0 {
            axpy_decay(&mut s.h, 0.0, v, row);
        }
    }
    hidden.forward_seq(&mut s.h);
    // 2. Decode; the loss and δa.
    s.a.copy_from_slice(p.c);
    for (&hj, row) in s.h.iter().zip(p.w_dec.chunks_exact(nv)) {
        axpy_decay(&mut s.a, 0.0, hj, row);
    }
    let l = match loss {
        Loss::CrossEntropy => crate::tensor::simd::xent(&mut s.da, &s.a, x),
        Loss::Squared => {
            s.z.copy_from_slice(&s.a);
            output.forward_seq(&mut s.z);
            crate::layers::loss::squared_backward(&mut s.da, &s.z, x);
            output.backward_seq(&mut s.da, &s.z);
            crate::layers::loss::squared_forward(&s.z, x) as f64
        }
    };
    // 3. Back-propagate through W′ and update it, a row per hidden unit.
    for ((dh, &hj), row) in s.dh.iter_mut().zip(&s.h).zip(p.w_dec.chunks_exact_mut(nv)) {
        *dh = dot_then_axpy_decay(row, &s.da, k, -eta * hj);
    }
    // 4. Through f, and the biases.
    hidden.backward_seq(&mut s.dh, &s.h);
    axpy_decay(p.c, 0.0, -eta, &s.da);
    axpy_decay(p.b, 0.0, -eta, &s.dh);
    // 5. The encoder's rows: zero inputs get no gradient, only the decay.
    for (&v, row) in s.noisy.iter().zip(p.w.chunks_exact_mut(nh)) {
        if v != 0.0 {
            axpy_decay(row, k, -eta * v, &s.dh);
        } else if k != 0.0 {
            shrink(row, k);
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::rng::seeded;
    use crate::train::Silent;
    use rand::Rng as _;

    /// The plain step written out in f64 with explicit matrices.
    #[allow(clippy::too_many_arguments)]
    fn reference_step(
        w: &mut [f64],
        b: &mut [f64],
        c: &mut [f64],
        wd: &mut [f64],
        xt: &[f32],
        x: &[f32],
        nv: usize,
        nh: usize,
        eta: f64,
        lam: f64,
    ) {
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let h: Vec<f64> = (0..nh)
            .map(|j| sig(b[j] + (0..nv).map(|i| xt[i] as f64 * w[i * nh + j]).sum::<f64>()))
            .collect();
        let da: Vec<f64> = (0..nv)
            .map(|k| sig(c[k] + (0..nh).map(|j| h[j] * wd[j * nv + k]).sum::<f64>()) - x[k] as f64)
            .collect();
        let dh: Vec<f64> = (0..nh)
            .map(|j| (0..nv).map(|k| wd[j * nv + k] * da[k]).sum::<f64>() * h[j] * (1.0 - h[j]))
            .collect();
        for j in 0..nh {
            for k in 0..nv {
                wd[j * nv + k] -= eta * (h[j] * da[k] + lam * wd[j * nv + k]);
            }
        }
        for i in 0..nv {
            for j in 0..nh {
                w[i * nh + j] -= eta * (xt[i] as f64 * dh[j] + lam * w[i * nh + j]);
            }
        }
        (0..nv).for_each(|k| c[k] -= eta * da[k]);
        (0..nh).for_each(|j| b[j] -= eta * dh[j]);
    }

    #[test]
    fn a_step_is_plain_sgd_on_the_untied_cross_entropy() {
        // Odd sizes (not multiples of 16) exercise the tails; zero inputs
        // the skipped rows; λ > 0 the decay of rows the input skips.
        let (nv, nh) = (37, 21);
        for lam in [0.0f32, 0.01] {
            let mut r = seeded(3);
            let mut w: Vec<f32> = (0..nv * nh).map(|_| r.random_range(-0.3..0.3)).collect();
            let mut wd: Vec<f32> = (0..nh * nv).map(|_| r.random_range(-0.3..0.3)).collect();
            let mut b: Vec<f32> = (0..nh).map(|_| r.random_range(-0.1..0.1)).collect();
            let mut c: Vec<f32> = (0..nv).map(|_| r.random_range(-0.1..0.1)).collect();
            let x: Vec<f32> = (0..nv)
                .map(|i| if i % 3 == 0 { 0.0 } else { r.random_range(0.0..1.0) })
                .collect();
            let to64 = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<f64>>();
            let (w0, wd0) = (w.clone(), wd.clone());
            let (mut w64, mut wd64, mut b64, mut c64) = (to64(&w), to64(&wd), to64(&b), to64(&c));
            let job = UntiedJob {
                shape: UntiedShape {
                    n_vis: nv,
                    n_hid: nh,
                    hidden: Activation::Sigmoid,
                    output: Activation::Sigmoid,
                    loss: Loss::CrossEntropy,
                },
                lr: 0.5,
                weight_decay: lam,
                noise: Corruption::None,
            };
            // Two steps on one example: the second sees the first's update.
            for _ in 0..2 {
                let p = UntiedParamsMut {
                    w: &mut w,
                    b: &mut b,
                    c: &mut c,
                    w_dec: &mut wd,
                };
                run_epoch_untied(&job, p, &x, &mut seeded(1), &mut Silent);
                reference_step(
                    &mut w64, &mut b64, &mut c64, &mut wd64, &x, &x, nv, nh, 0.5, lam as f64,
                );
            }
            for (got, want) in [(&w, &w64), (&wd, &wd64), (&b, &b64), (&c, &c64)] {
                let worst = got
                    .iter()
                    .zip(want.iter())
                    .map(|(&g, &w)| (g as f64 - w).abs())
                    .fold(0.0, f64::max);
                assert!(worst < 1e-5, "λ = {lam}: worst difference {worst}");
            }
            // The steps moved the weights well beyond that tolerance, so
            // agreeing is not trivial.
            for (now, before) in [(&w, &w0), (&wd, &wd0)] {
                let moved = now
                    .iter()
                    .zip(before.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(moved > 1e-2, "λ = {lam}: the weights moved only {moved}");
            }
        }
    }
}
