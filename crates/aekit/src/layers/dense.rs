//! Fully connected layer, optionally through the transpose of its weight.
//!
//! Forward:  y = x·W + b, with x `[batch, n_in]`, W `[n_in, n_out]`, b `[n_out]`.
//! Tied (`trans_w`): y = x·Wᵀ + b, with W stored `[n_out, n_in]` — a tied
//! autoencoder's decoder uses its encoder's `[n_vis, n_hid]` weight this way.
//! Backward: dx = dy·Wᵀ (tied: dy·W); dW gets xᵀ·dy (tied: dyᵀ·x) and db Σ_rows dy,
//! added in or written as a [`GradWrite`] says.

use crate::tensor::fused::StepWrite;
use crate::tensor::gemm::{gemm, Par};
use crate::tensor::{add_column_sums, add_row_bias, GradWrite, Real};

/// A fully connected layer's weight with its shape: `n_in` inputs to
/// `n_out` outputs. W is stored `[n_in, n_out]` ([`Dense::new`]), or
/// `[n_out, n_in]` and used through its transpose ([`Dense::tied`]).
#[derive(Clone, Copy, Debug)]
pub struct Dense<'a, T> {
    w: &'a [T],
    n_in: usize,
    n_out: usize,
    trans_w: bool,
}

/// A layer's weight and bias gradients, and how the backward pass writes
/// them.
#[derive(Debug)]
pub struct Grads<'g, T> {
    pub dw: &'g mut [T],
    pub db: &'g mut [T],
    pub write: GradWrite<T>,
}

impl<'g, T: Real> Grads<'g, T> {
    /// Gradients added into `dw` and `db`.
    pub fn add(dw: &'g mut [T], db: &'g mut [T]) -> Self {
        Self {
            dw,
            db,
            write: GradWrite::ADD,
        }
    }
}

impl<'a, T: Real> Dense<'a, T> {
    /// W stored `[n_in, n_out]`: y = x·W + b.
    pub fn new(w: &'a [T], n_in: usize, n_out: usize) -> Self {
        debug_assert_eq!(w.len(), n_in * n_out);
        Self {
            w,
            n_in,
            n_out,
            trans_w: false,
        }
    }

    /// W stored `[n_out, n_in]`: y = x·Wᵀ + b (a tied decoder).
    pub fn tied(w: &'a [T], n_in: usize, n_out: usize) -> Self {
        Self {
            trans_w: true,
            ..Self::new(w, n_in, n_out)
        }
    }

    /// y = x·op(W) + b for `batch` rows.
    pub fn forward(&self, y: &mut [T], x: &[T], b: &[T], batch: usize, par: Par) {
        gemm(
            batch,
            self.n_out,
            self.n_in,
            T::ONE,
            x,
            false,
            self.w,
            self.trans_w,
            false,
            y,
            par,
        );
        add_row_bias(y, b, self.n_out);
    }

    /// Writes dx (when asked), and dW and db as `g.write` says.
    pub fn backward(&self, dx: Option<&mut [T]>, g: Grads<'_, T>, dy: &[T], x: &[T], batch: usize, par: Par) {
        if let Some(dx) = dx {
            self.backward_input(dx, dy, batch, par);
        }
        weight_grads(g, dy, x, (self.n_in, self.n_out, self.trans_w), batch, par);
    }

    /// dx = dy·Wᵀ (tied: dy·W).
    pub fn backward_input(&self, dx: &mut [T], dy: &[T], batch: usize, par: Par) {
        let Self {
            w,
            n_in,
            n_out,
            trans_w,
        } = *self;
        gemm(batch, n_in, n_out, T::ONE, dy, false, w, !trans_w, false, dx, par);
    }
}

/// The weight and bias gradients of [`Dense::backward`] for a layer of
/// `shape` = (n_in, n_out, trans_w), written as `g.write` says, without
/// reading the weight: `g.dw` may be the weight itself (a plain SGD step
/// taken in place, α = −η, β = 1, once dx has been computed).
pub fn weight_grads<T: Real>(
    g: Grads<'_, T>,
    dy: &[T],
    x: &[T],
    shape: (usize, usize, bool),
    batch: usize,
    par: Par,
) {
    let (n_in, n_out, trans_w) = shape;
    let Grads { dw, db, write } = g;
    let GradWrite { alpha, beta } = write;
    if let Some(b) = beta.filter(|&b| b != T::ONE) {
        crate::tensor::par::chunks(dw, |_, c| T::scale_slice(c, b));
    }
    let accumulate = beta.is_some();
    if trans_w {
        gemm(n_out, n_in, batch, alpha, dy, true, x, false, accumulate, dw, par);
    } else {
        gemm(n_in, n_out, batch, alpha, x, true, dy, false, accumulate, dw, par);
    }
    write_bias_grad(db, dy, batch, write);
}

/// db's write of Σ_rows dy (`dy` `[batch, db.len()]`) as `write` says.
fn write_bias_grad<T: Real>(db: &mut [T], dy: &[T], batch: usize, write: GradWrite<T>) {
    let GradWrite { alpha, beta } = write;
    let n_out = db.len();
    if let Some(b) = beta.filter(|&b| b != T::ONE) {
        T::scale_slice(db, b);
    }
    let accumulate = beta.is_some();
    if accumulate && alpha == T::ONE {
        add_column_sums(db, dy, batch, n_out);
    } else {
        let mut sums = vec![T::ZERO; n_out];
        add_column_sums(&mut sums, dy, batch, n_out);
        for (d, s) in db.iter_mut().zip(sums) {
            *d = if accumulate { *d + alpha * s } else { alpha * s };
        }
    }
}

/// A layer's parameters and SGD's velocity for them, each `(weight, bias)`.
#[derive(Debug)]
pub struct StepParams<'p> {
    pub theta: (&'p mut [f32], &'p mut [f32]),
    pub velocity: (&'p mut [f32], &'p mut [f32]),
}

/// The momentum step of an untied layer (W `[n_in, n_out]`) from its
/// inputs `x` and output deltas `dy` over `batch` rows: its weight and bias
/// gradients (xᵀ·dy and Σ_rows dy) enter the velocity as `w` says and the
/// parameters take the step, the weight's fused with its product
/// ([`crate::tensor::gemm::gemm_at_b_step`]). The layer's dx must be
/// computed first: it reads the weight this changes.
pub fn step_untied(
    p: StepParams<'_>,
    dy: &[f32],
    x: &[f32],
    n_in: usize,
    n_out: usize,
    batch: usize,
    w: StepWrite,
    par: Par,
) {
    let StepParams {
        theta: (tw, tb),
        velocity: (vw, vb),
    } = p;
    crate::tensor::gemm::gemm_at_b_step(n_in, n_out, batch, x, dy, vw, tw, w, par);
    write_bias_grad(vb, dy, batch, w.write);
    crate::tensor::simd::add_then_scale(tb, vb, w.mu);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{max_rel_error, random_vec};

    #[test]
    fn gradients_match_finite_differences() {
        let (batch, n_in, n_out) = (3, 5, 4);
        for trans_w in [false, true] {
            let x = random_vec(batch * n_in, 1.0, 1);
            let w = random_vec(n_in * n_out, 1.0, 2);
            let b = random_vec(n_out, 1.0, 3);
            let c = random_vec(batch * n_out, 1.0, 4);
            // L = Σ c ⊙ y.
            let loss = |x: &[f64], w: &[f64], b: &[f64]| {
                let mut y = vec![0.0; batch * n_out];
                let layer = if trans_w {
                    Dense::tied(w, n_in, n_out)
                } else {
                    Dense::new(w, n_in, n_out)
                };
                layer.forward(&mut y, x, b, batch, Par::Seq);
                y.iter().zip(&c).map(|(y, c)| y * c).sum::<f64>()
            };
            let mut dx = vec![0.0; batch * n_in];
            let mut dw = vec![0.0; n_in * n_out];
            let mut db = vec![0.0; n_out];
            let layer = if trans_w {
                Dense::tied(&w, n_in, n_out)
            } else {
                Dense::new(&w, n_in, n_out)
            };
            layer.backward(
                Some(&mut dx),
                Grads::add(&mut dw, &mut db),
                &c,
                &x,
                batch,
                Par::Seq,
            );
            let ex = max_rel_error(|v| loss(v, &w, &b), &x, &dx);
            let ew = max_rel_error(|v| loss(&x, v, &b), &w, &dw);
            let eb = max_rel_error(|v| loss(&x, &w, v), &b, &db);
            assert!(ex < 1e-6 && ew < 1e-6 && eb < 1e-6, "{ex} {ew} {eb}");
        }
    }

    #[test]
    fn backward_accumulates_into_parameter_gradients() {
        let (batch, n_in, n_out) = (2, 3, 2);
        let x = random_vec(batch * n_in, 1.0, 5);
        let w = random_vec(n_in * n_out, 1.0, 6);
        let dy = random_vec(batch * n_out, 1.0, 7);
        let layer = Dense::new(&w, n_in, n_out);
        let mut dw1 = vec![0.0; n_in * n_out];
        let mut db1 = vec![0.0; n_out];
        layer.backward(None, Grads::add(&mut dw1, &mut db1), &dy, &x, batch, Par::Seq);
        let mut dw2 = dw1.clone();
        let mut db2 = db1.clone();
        layer.backward(None, Grads::add(&mut dw2, &mut db2), &dy, &x, batch, Par::Seq);
        for (a, b) in dw1.iter().zip(&dw2) {
            assert!((2.0 * a - b).abs() < 1e-12);
        }
        for (a, b) in db1.iter().zip(&db2) {
            assert!((2.0 * a - b).abs() < 1e-12);
        }
    }
}
