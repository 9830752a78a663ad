//! 2-d convolution and transposed convolution over NCHW batches, each image
//! by im2col and one GEMM (square kernels; one stride and padding for both
//! axes).
//!
//! Conv2d, x `[n, c_in, h, w]`, W `[c_out, c_in, k, k]`, b `[c_out]`:
//!   y[i, o, oy, ox] = b[o] + Σ_{c,ky,kx} W[o, c, ky, kx] · x[i, c, oy·s − p + ky, ox·s − p + kx]
//! which per image is y_i = W·col(x_i) + b with col `[c_in·k·k, oh·ow]`.
//! Backward: dW += dy_i·col(x_i)ᵀ, db += Σ_{oy,ox} dy_i, dx_i = col2im(Wᵀ·dy_i).
//!
//! ConvTranspose2d, x `[n, c_in, h_in, w_in]`, W `[c_in, c_out, k, k]` (PyTorch's
//! layout), output `h_out = (h_in − 1)·s − 2p + k + output_padding`:
//!   y[i, o, iy·s − p + ky, ix·s − p + kx] += W[c, o, ky, kx] · x[i, c, iy, ix]
//! It is the adjoint of a Conv2d from `[c_out, h_out, w_out]` to
//! `[·, h_in, w_in]`, so per image y_i = col2im(Wᵀ·x_i) + b with that conv's
//! geometry. Backward: dx_i = W·col(dy_i), dW += x_i·col(dy_i)ᵀ, db += Σ dy_i.
//!
//! Nothing here allocates: the caller passes a `col` buffer of
//! `c·k·k · oh·ow` elements for the geometry involved.

use crate::tensor::gemm::{gemm, Par};
use crate::tensor::im2col::{col2im, im2col, ConvGeom};
use crate::tensor::Real;

/// The geometry of a transposed convolution as the conv it is the adjoint
/// of: from its output `[c_out, h_out, w_out]` to its input `[·, h_in, w_in]`.
/// `None` when the sizes do not fit, or `output_padding ≥ stride` (which
/// PyTorch refuses too: the extra rows would not be reachable).
pub fn conv_transpose_geom(
    c_out: usize,
    h_in: usize,
    w_in: usize,
    k: usize,
    stride: usize,
    pad: usize,
    output_padding: usize,
) -> Option<ConvGeom> {
    if output_padding >= stride || h_in == 0 || w_in == 0 {
        return None;
    }
    let out = |n: usize| {
        ((n - 1) * stride + k + output_padding)
            .checked_sub(2 * pad)
            .filter(|&o| o > 0)
    };
    let g = ConvGeom::new(c_out, out(h_in)?, out(w_in)?, k, stride, pad)?;
    (g.oh == h_in && g.ow == w_in).then_some(g)
}

fn add_channel_bias<T: Real>(y: &mut [T], bias: &[T], plane: usize) {
    for (ch, &b) in y.chunks_exact_mut(plane).zip(bias) {
        ch.iter_mut().for_each(|v| *v += b);
    }
}

fn add_channel_sums<T: Real>(db: &mut [T], dy: &[T], plane: usize) {
    for (d, ch) in db.iter_mut().zip(dy.chunks_exact(plane)) {
        *d += lane_sum(ch);
    }
}

/// Σ v in eight running sums (element i into sum i mod 8), which vectorise
/// where one running sum would wait on each addition; a fixed order, so the
/// same bits on every CPU.
fn lane_sum<T: Real>(v: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = v.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    tail.iter().fold(s, |s, &x| s + x)
}

/// y `[n, c_out, oh, ow]` = conv(x `[n, c, h, w]`) with `g` the geometry of x.
pub fn conv2d_forward<T: Real>(
    y: &mut [T],
    x: &[T],
    weight: &[T],
    bias: &[T],
    col: &mut [T],
    g: &ConvGeom,
    c_out: usize,
    batch: usize,
) {
    let (kk, p) = (g.col_rows(), g.col_cols());
    assert_eq!(x.len(), batch * g.input_len(), "conv2d: input length");
    assert_eq!(y.len(), batch * c_out * p, "conv2d: output length");
    assert_eq!(bias.len(), c_out, "conv2d: bias length");
    for (yi, xi) in y.chunks_exact_mut(c_out * p).zip(x.chunks_exact(g.input_len())) {
        im2col(col, xi, g);
        gemm(
            c_out,
            p,
            kk,
            T::ONE,
            weight,
            false,
            col,
            false,
            false,
            yi,
            Par::Seq,
        );
        add_channel_bias(yi, bias, p);
    }
}

/// Writes dx when asked (`None` for a network's first layer) and adds into
/// dW and db.
pub fn conv2d_backward<T: Real>(
    mut dx: Option<&mut [T]>,
    dweight: &mut [T],
    dbias: &mut [T],
    dy: &[T],
    x: &[T],
    weight: &[T],
    col: &mut [T],
    g: &ConvGeom,
    c_out: usize,
    batch: usize,
) {
    let (kk, p, n_in) = (g.col_rows(), g.col_cols(), g.input_len());
    assert_eq!(dy.len(), batch * c_out * p, "conv2d: output gradient length");
    for i in 0..batch {
        let dyi = &dy[i * c_out * p..(i + 1) * c_out * p];
        im2col(col, &x[i * n_in..(i + 1) * n_in], g);
        gemm(
            c_out,
            kk,
            p,
            T::ONE,
            dyi,
            false,
            col,
            true,
            true,
            dweight,
            Par::Seq,
        );
        add_channel_sums(dbias, dyi, p);
        if let Some(dx) = dx.as_deref_mut() {
            gemm(
                kk,
                p,
                c_out,
                T::ONE,
                weight,
                true,
                dyi,
                false,
                false,
                col,
                Par::Seq,
            );
            let dxi = &mut dx[i * n_in..(i + 1) * n_in];
            dxi.fill(T::ZERO);
            col2im(dxi, col, g);
        }
    }
}

/// y `[n, c_out, h_out, w_out]` = conv_transpose(x `[n, c_in, h_in, w_in]`),
/// with `g` from [`conv_transpose_geom`].
pub fn conv_transpose2d_forward<T: Real>(
    y: &mut [T],
    x: &[T],
    weight: &[T],
    bias: &[T],
    col: &mut [T],
    g: &ConvGeom,
    c_in: usize,
    batch: usize,
) {
    let (kk, p, n_out) = (g.col_rows(), g.col_cols(), g.input_len());
    assert_eq!(x.len(), batch * c_in * p, "conv_transpose2d: input length");
    assert_eq!(y.len(), batch * n_out, "conv_transpose2d: output length");
    assert_eq!(bias.len(), g.c, "conv_transpose2d: bias length");
    for (yi, xi) in y.chunks_exact_mut(n_out).zip(x.chunks_exact(c_in * p)) {
        gemm(kk, p, c_in, T::ONE, weight, true, xi, false, false, col, Par::Seq);
        yi.fill(T::ZERO);
        col2im(yi, col, g);
        add_channel_bias(yi, bias, g.h * g.w);
    }
}

/// Writes dx when asked and adds into dW and db.
pub fn conv_transpose2d_backward<T: Real>(
    mut dx: Option<&mut [T]>,
    dweight: &mut [T],
    dbias: &mut [T],
    dy: &[T],
    x: &[T],
    weight: &[T],
    col: &mut [T],
    g: &ConvGeom,
    c_in: usize,
    batch: usize,
) {
    let (kk, p, n_out) = (g.col_rows(), g.col_cols(), g.input_len());
    assert_eq!(
        dy.len(),
        batch * n_out,
        "conv_transpose2d: output gradient length"
    );
    for i in 0..batch {
        let dyi = &dy[i * n_out..(i + 1) * n_out];
        let xi = &x[i * c_in * p..(i + 1) * c_in * p];
        im2col(col, dyi, g);
        gemm(c_in, kk, p, T::ONE, xi, false, col, true, true, dweight, Par::Seq);
        add_channel_sums(dbias, dyi, g.h * g.w);
        if let Some(dx) = dx.as_deref_mut() {
            let dxi = &mut dx[i * c_in * p..(i + 1) * c_in * p];
            gemm(
                c_in,
                p,
                kk,
                T::ONE,
                weight,
                false,
                col,
                false,
                false,
                dxi,
                Par::Seq,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{max_rel_error, random_vec};

    /// Σ y ⊙ r for a fixed random r: a scalar whose gradient wrt y is r.
    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    type Fwd = fn(&mut [f64], &[f64], &[f64], &[f64], &mut [f64], &ConvGeom, usize, usize);
    type Bwd = fn(
        Option<&mut [f64]>,
        &mut [f64],
        &mut [f64],
        &[f64],
        &[f64],
        &[f64],
        &mut [f64],
        &ConvGeom,
        usize,
        usize,
    );

    /// Checks dx, dW and db of a (forward, backward) pair against central
    /// differences of Σ y ⊙ r for a fixed random r; `c` is the pair's
    /// channel argument, `lens` the lengths of x, W, b and y.
    fn check_pair(fwd: Fwd, bwd: Bwd, g: &ConvGeom, c: usize, batch: usize, lens: [usize; 4]) {
        let [nx, nw, nb, ny] = lens;
        let (x, wt, b, r) = (
            random_vec(nx, 1.0, 1),
            random_vec(nw, 0.5, 2),
            random_vec(nb, 0.5, 3),
            random_vec(ny, 1.0, 4),
        );
        let mut col = vec![0.0; g.col_rows() * g.col_cols()];
        let f = |x: &[f64], wt: &[f64], b: &[f64]| {
            let mut y = vec![0.0; ny];
            let mut col = vec![0.0; g.col_rows() * g.col_cols()];
            fwd(&mut y, x, wt, b, &mut col, g, c, batch);
            dot(&y, &r)
        };
        let (mut dx, mut dw, mut db) = (vec![0.0; nx], vec![0.0; nw], vec![0.0; nb]);
        bwd(
            Some(&mut dx),
            &mut dw,
            &mut db,
            &r,
            &x,
            &wt,
            &mut col,
            g,
            c,
            batch,
        );
        assert!(max_rel_error(|v| f(v, &wt, &b), &x, &dx) < 1e-6, "dx {g:?}");
        assert!(max_rel_error(|v| f(&x, v, &b), &wt, &dw) < 1e-6, "dW {g:?}");
        assert!(max_rel_error(|v| f(&x, &wt, v), &b, &db) < 1e-6, "db {g:?}");
    }

    #[test]
    fn conv2d_gradients_match_finite_differences() {
        for (c_in, c_out, h, w, k, s, p) in [
            (2, 3, 5, 4, 3, 1, 1),
            (1, 2, 6, 6, 3, 2, 1),
            (3, 2, 4, 5, 2, 2, 0),
        ] {
            let g = ConvGeom::new(c_in, h, w, k, s, p).unwrap();
            let batch = 2;
            let lens = [
                batch * g.input_len(),
                c_out * g.col_rows(),
                c_out,
                batch * c_out * g.col_cols(),
            ];
            check_pair(
                conv2d_forward::<f64>,
                conv2d_backward::<f64>,
                &g,
                c_out,
                batch,
                lens,
            );
        }
    }

    #[test]
    fn conv_transpose2d_gradients_match_finite_differences() {
        for (c_in, c_out, h, w, k, s, p, op) in [
            (3, 2, 3, 2, 3, 2, 1, 1),
            (2, 2, 4, 4, 2, 2, 0, 0),
            (2, 3, 3, 3, 3, 1, 1, 0),
        ] {
            let g = conv_transpose_geom(c_out, h, w, k, s, p, op).unwrap();
            let batch = 2;
            let lens = [
                batch * c_in * h * w,
                c_in * g.col_rows(),
                c_out,
                batch * g.input_len(),
            ];
            check_pair(
                conv_transpose2d_forward::<f64>,
                conv_transpose2d_backward::<f64>,
                &g,
                c_in,
                batch,
                lens,
            );
        }
    }

    #[test]
    fn conv2d_golden_stride_and_padding() {
        // x = 1..16 as a 4×4 plane, W = the 3×3 box of ones, b = 0.5,
        // stride 2, padding 1: output 2×2, each the sum of a clipped
        // window plus 0.5. Worked by hand: window rows/cols {−1,0,1} → 1+2+5+6,
        // rows {−1,0,1} cols {1,2,3} → 2+3+4+6+7+8, rows {1,2,3} cols {−1,0,1}
        // → 5+6+9+10+13+14, rows/cols {1,2,3} → 6+7+8+10+11+12+14+15+16.
        let g = ConvGeom::new(1, 4, 4, 3, 2, 1).unwrap();
        let x: Vec<f64> = (1..=16).map(f64::from).collect();
        let mut y = vec![0.0; 4];
        let mut col = vec![0.0; 9 * 4];
        conv2d_forward(&mut y, &x, &[1.0; 9], &[0.5], &mut col, &g, 1, 1);
        assert_eq!(y, vec![14.5, 30.5, 57.5, 99.5]);
    }

    #[test]
    fn conv_transpose2d_golden_output_padding() {
        // x = [[1,2],[3,4]], W = [[1,2,3],[4,5,6],[7,8,9]], stride 2, padding 1,
        // output_padding 1 → 4×4 (PyTorch's (2−1)·2 − 2 + 3 + 1). Each input
        // pixel (iy,ix) adds x·W[ky,kx] at (2·iy − 1 + ky, 2·ix − 1 + kx);
        // computed from that rule with numpy (scatter into a 5×5 grid, then
        // drop the first row and column).
        let g = conv_transpose_geom(1, 2, 2, 3, 2, 1, 1).unwrap();
        assert_eq!((g.h, g.w), (4, 4));
        let w: Vec<f64> = (1..=9).map(f64::from).collect();
        let mut y = vec![0.0; 16];
        let mut col = vec![0.0; 9 * 4];
        conv_transpose2d_forward(&mut y, &[1.0, 2.0, 3.0, 4.0], &w, &[0.0], &mut col, &g, 1, 1);
        let want = [
            5.0, 14.0, 10.0, 12.0, //
            14.0, 36.0, 24.0, 30.0, //
            15.0, 34.0, 20.0, 24.0, //
            24.0, 55.0, 32.0, 36.0,
        ];
        assert_eq!(y, want);
        // Without output padding the same input gives 3×3, the top-left of it.
        let g3 = conv_transpose_geom(1, 2, 2, 3, 2, 1, 0).unwrap();
        assert_eq!((g3.h, g3.w), (3, 3));
        assert_eq!(
            conv_transpose_geom(1, 2, 2, 3, 2, 1, 2),
            None,
            "output_padding must be < stride"
        );
    }
}
