//! Fully connected layer, optionally through the transpose of its weight.
//!
//! Forward:  y = x·W + b, with x `[batch, n_in]`, W `[n_in, n_out]`, b `[n_out]`.
//! Tied (`trans_w`): y = x·Wᵀ + b, with W stored `[n_out, n_in]` — a tied
//! autoencoder's decoder uses its encoder's `[n_vis, n_hid]` weight this way.
//! Backward: dx = dy·Wᵀ (tied: dy·W); dW += xᵀ·dy (tied: dyᵀ·x); db += Σ_rows dy.

use crate::tensor::gemm::{gemm, Par};
use crate::tensor::{add_column_sums, add_row_bias, Real};

/// y = x·op(W) + b.
pub fn dense_forward<T: Real>(
    y: &mut [T],
    x: &[T],
    w: &[T],
    b: &[T],
    batch: usize,
    n_in: usize,
    n_out: usize,
    trans_w: bool,
    par: Par,
) {
    gemm(batch, n_out, n_in, T::ONE, x, false, w, trans_w, false, y, par);
    add_row_bias(y, b, n_out);
}

/// Writes dx (when asked) and adds into dW and db.
#[allow(clippy::too_many_arguments)]
pub fn dense_backward<T: Real>(
    dx: Option<&mut [T]>,
    dw: &mut [T],
    db: &mut [T],
    dy: &[T],
    x: &[T],
    w: &[T],
    batch: usize,
    n_in: usize,
    n_out: usize,
    trans_w: bool,
    par: Par,
) {
    dense_backward_scaled(
        dx,
        dw,
        db,
        dy,
        x,
        w,
        batch,
        n_in,
        n_out,
        trans_w,
        T::ONE,
        Some(T::ONE),
        par,
    );
}

/// As [`dense_backward`], with dW and db scaled by `alpha` and written over
/// (`beta` `None`: a gradient buffer that needs neither clearing nor
/// rescaling) or into `beta`·(what they held): dW ← β·dW + α·xᵀ·dy (the
/// velocity of SGD with momentum written by the product itself).
#[allow(clippy::too_many_arguments)]
pub fn dense_backward_scaled<T: Real>(
    dx: Option<&mut [T]>,
    dw: &mut [T],
    db: &mut [T],
    dy: &[T],
    x: &[T],
    w: &[T],
    batch: usize,
    n_in: usize,
    n_out: usize,
    trans_w: bool,
    alpha: T,
    beta: Option<T>,
    par: Par,
) {
    if let Some(dx) = dx {
        gemm(batch, n_in, n_out, T::ONE, dy, false, w, !trans_w, false, dx, par);
    }
    if let Some(b) = beta.filter(|&b| b != T::ONE) {
        crate::tensor::par::chunks(dw, |_, c| T::scale_slice(c, b));
        T::scale_slice(db, b);
    }
    let accumulate = beta.is_some();
    if trans_w {
        gemm(n_out, n_in, batch, alpha, dy, true, x, false, accumulate, dw, par);
    } else {
        gemm(n_in, n_out, batch, alpha, x, true, dy, false, accumulate, dw, par);
    }
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
                dense_forward(&mut y, x, w, b, batch, n_in, n_out, trans_w, Par::Seq);
                y.iter().zip(&c).map(|(y, c)| y * c).sum::<f64>()
            };
            let mut dx = vec![0.0; batch * n_in];
            let mut dw = vec![0.0; n_in * n_out];
            let mut db = vec![0.0; n_out];
            dense_backward(
                Some(&mut dx),
                &mut dw,
                &mut db,
                &c,
                &x,
                &w,
                batch,
                n_in,
                n_out,
                trans_w,
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
        let mut dw1 = vec![0.0; n_in * n_out];
        let mut db1 = vec![0.0; n_out];
        dense_backward(
            None,
            &mut dw1,
            &mut db1,
            &dy,
            &x,
            &w,
            batch,
            n_in,
            n_out,
            false,
            Par::Seq,
        );
        let mut dw2 = dw1.clone();
        let mut db2 = db1.clone();
        dense_backward(
            None,
            &mut dw2,
            &mut db2,
            &dy,
            &x,
            &w,
            batch,
            n_in,
            n_out,
            false,
            Par::Seq,
        );
        for (a, b) in dw1.iter().zip(&dw2) {
            assert!((2.0 * a - b).abs() < 1e-12);
        }
        for (a, b) in db1.iter().zip(&db2) {
            assert!((2.0 * a - b).abs() < 1e-12);
        }
    }
}
