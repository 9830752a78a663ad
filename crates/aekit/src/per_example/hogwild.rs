//! Hogwild (Niu et al. 2011; the parallel-SGD paper's scheme): workers take
//! examples from one shuffled order and update the shared W, b and b′ with no
//! locks. Sound Rust: the shared parameters are f32 bits in `AtomicU32`, read
//! and written with relaxed ordering, so there is no data race on non-atomic
//! memory; a lost update is possible, as in the paper.

use crate::tensor::vmath;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

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
        let k = lr * decay;
        for i in 0..nv {
            self.load_row(p, i);
            let (ga, gb) = (lr * self.da[i], lr * xt[i]);
            for ((w, &h), &dh) in self.row.iter_mut().zip(&self.h).zip(&self.dh) {
                *w -= k * *w + ga * h + gb * dh;
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
