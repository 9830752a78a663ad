//! Max pooling with indices, max unpooling and nearest upsampling over NCHW
//! batches. Every plane (one channel of one image) is pooled on its own, so
//! the functions take the number of planes `n·c` and the plane size.
//!
//! MaxPool2d (kernel = stride = s, no padding, floor): y[oy,ox] = max of the
//! s×s window at (oy·s, ox·s); idx records where the max was, as a flat index
//! into the input plane (PyTorch's convention; the first max in scan order
//! wins a tie). Backward: dx = 0 except dx[idx] += dy.
//! MaxUnpool2d: y = 0 except y[idx] = x; backward dx = dy[idx].
//! Upsample (nearest, factor s): y[oy,ox] = x[oy/s, ox/s]; backward dx[iy,ix]
//! = Σ of dy over its s×s block.

use crate::tensor::Real;

/// y `[planes, h/s, w/s]` and `idx` (same shape) from x `[planes, h, w]`.
pub fn maxpool2d_forward<T: Real>(
    y: &mut [T],
    idx: &mut [u32],
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    s: usize,
) {
    let (oh, ow) = (h / s, w / s);
    assert_eq!(x.len(), planes * h * w, "maxpool2d: input length");
    assert_eq!(y.len(), planes * oh * ow, "maxpool2d: output length");
    assert_eq!(idx.len(), y.len(), "maxpool2d: index length");
    if s == 2 {
        maxpool2x2_forward(y, idx, x, planes, h, w);
    } else {
        maxpool_any_forward(y, idx, x, planes, h, w, s);
    }
}

/// [`maxpool2d_forward`] for any s, one window element at a time.
fn maxpool_any_forward<T: Real>(
    y: &mut [T],
    idx: &mut [u32],
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    s: usize,
) {
    let (oh, ow) = (h / s, w / s);
    for pl in 0..planes {
        let xp = &x[pl * h * w..(pl + 1) * h * w];
        let base = pl * oh * ow;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = oy * s * w + ox * s;
                let mut bv = xp[best];
                for dy in 0..s {
                    let row = (oy * s + dy) * w + ox * s;
                    for (dx, &v) in xp[row..row + s].iter().enumerate() {
                        if v > bv {
                            bv = v;
                            best = row + dx;
                        }
                    }
                }
                y[base + oy * ow + ox] = bv;
                idx[base + oy * ow + ox] = best as u32;
            }
        }
    }
}

/// [`maxpool2d_forward`] at s = 2, the pooling of every convolutional
/// autoencoder here: the same scan of each window (left to right, then the
/// next row, a value replacing the best only when greater, so ties and
/// NaNs end where they do there), written for a fixed 2×2 window over two
/// row slices taken once per output row. The general loop's window walk,
/// inner loops and index arithmetic per element took a fifth of a
/// `cae-mnist` epoch on one thread of an AMD Zen 1; this one, still
/// scalar, about a twentieth.
fn maxpool2x2_forward<T: Real>(y: &mut [T], idx: &mut [u32], x: &[T], planes: usize, h: usize, w: usize) {
    let (oh, ow) = (h / 2, w / 2);
    for pl in 0..planes {
        let xp = &x[pl * h * w..(pl + 1) * h * w];
        for oy in 0..oh {
            let top = 2 * oy * w;
            let (r0, r1) = (&xp[top..top + 2 * ow], &xp[top + w..top + w + 2 * ow]);
            let o = (pl * oh + oy) * ow;
            let (yr, ir) = (&mut y[o..o + ow], &mut idx[o..o + ow]);
            for (ox, (((yv, iv), p0), p1)) in yr
                .iter_mut()
                .zip(ir.iter_mut())
                .zip(r0.chunks_exact(2))
                .zip(r1.chunks_exact(2))
                .enumerate()
            {
                let (mut bv, mut bi) = (p0[0], 0);
                if p0[1] > bv {
                    (bv, bi) = (p0[1], 1);
                }
                if p1[0] > bv {
                    (bv, bi) = (p1[0], w);
                }
                if p1[1] > bv {
                    (bv, bi) = (p1[1], w + 1);
                }
                *yv = bv;
                *iv = (top + 2 * ox + bi) as u32;
            }
        }
    }
}

/// dx `[planes, h, w]` from dy `[planes, h/s, w/s]` and the forward's indices.
pub fn maxpool2d_backward<T: Real>(dx: &mut [T], dy: &[T], idx: &[u32], planes: usize, h: usize, w: usize) {
    assert_eq!(dx.len(), planes * h * w, "maxpool2d: input gradient length");
    assert_eq!(dy.len(), idx.len(), "maxpool2d: index length");
    dx.fill(T::ZERO);
    if planes == 0 {
        return;
    }
    let per = dy.len() / planes;
    for pl in 0..planes {
        let dxp = &mut dx[pl * h * w..(pl + 1) * h * w];
        for (&d, &i) in dy[pl * per..(pl + 1) * per]
            .iter()
            .zip(&idx[pl * per..(pl + 1) * per])
        {
            dxp[i as usize] += d;
        }
    }
}

/// y `[planes, h, w]` = 0 except at the pooled indices, which receive x
/// `[planes, n_in]`.
pub fn max_unpool2d_forward<T: Real>(y: &mut [T], x: &[T], idx: &[u32], planes: usize, h: usize, w: usize) {
    assert_eq!(y.len(), planes * h * w, "max_unpool2d: output length");
    assert_eq!(x.len(), idx.len(), "max_unpool2d: index length");
    y.fill(T::ZERO);
    if planes == 0 {
        return;
    }
    let per = x.len() / planes;
    for pl in 0..planes {
        let yp = &mut y[pl * h * w..(pl + 1) * h * w];
        for (&v, &i) in x[pl * per..(pl + 1) * per]
            .iter()
            .zip(&idx[pl * per..(pl + 1) * per])
        {
            yp[i as usize] = v;
        }
    }
}

/// dx `[planes, n_in]` = dy at the pooled indices.
pub fn max_unpool2d_backward<T: Real>(
    dx: &mut [T],
    dy: &[T],
    idx: &[u32],
    planes: usize,
    h: usize,
    w: usize,
) {
    assert_eq!(dy.len(), planes * h * w, "max_unpool2d: output gradient length");
    assert_eq!(dx.len(), idx.len(), "max_unpool2d: index length");
    if planes == 0 {
        return;
    }
    let per = dx.len() / planes;
    for pl in 0..planes {
        let dyp = &dy[pl * h * w..(pl + 1) * h * w];
        for (d, &i) in dx[pl * per..(pl + 1) * per]
            .iter_mut()
            .zip(&idx[pl * per..(pl + 1) * per])
        {
            *d = dyp[i as usize];
        }
    }
}

/// y `[planes, h·s, w·s]` = nearest upsampling of x `[planes, h, w]`.
pub fn upsample_forward<T: Real>(y: &mut [T], x: &[T], planes: usize, h: usize, w: usize, s: usize) {
    assert_eq!(x.len(), planes * h * w, "upsample: input length");
    assert_eq!(y.len(), planes * h * w * s * s, "upsample: output length");
    let ow = w * s;
    for (yrow, xrow) in y.chunks_exact_mut(ow * s).zip(x.chunks_exact(w)) {
        let (first, rest) = yrow.split_at_mut(ow);
        for (o, &v) in first.chunks_exact_mut(s).zip(xrow) {
            o.fill(v);
        }
        for r in rest.chunks_exact_mut(ow) {
            r.copy_from_slice(first);
        }
    }
}

/// dx `[planes, h, w]` = block sums of dy `[planes, h·s, w·s]`.
pub fn upsample_backward<T: Real>(dx: &mut [T], dy: &[T], planes: usize, h: usize, w: usize, s: usize) {
    assert_eq!(dx.len(), planes * h * w, "upsample: input gradient length");
    assert_eq!(
        dy.len(),
        planes * h * w * s * s,
        "upsample: output gradient length"
    );
    let ow = w * s;
    for (dyrows, dxrow) in dy.chunks_exact(ow * s).zip(dx.chunks_exact_mut(w)) {
        dxrow.fill(T::ZERO);
        for r in dyrows.chunks_exact(ow) {
            for (d, blk) in dxrow.iter_mut().zip(r.chunks_exact(s)) {
                *d += blk.iter().fold(T::ZERO, |a, &v| a + v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{max_rel_error, random_vec};

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn the_two_by_two_path_gives_the_general_scans_maxima_and_indices() {
        // Values from a set of five (many ties), NaNs among them, odd plane
        // sizes (the floor rule drops the last row and column), three
        // planes: the 2×2 path must pick what the one-element-at-a-time
        // scan picks, bit for bit, indices included.
        use rand::Rng as _;
        let mut rng = crate::tensor::rng::seeded(7);
        let (planes, h, w) = (3, 7, 9);
        let x: Vec<f32> = (0..planes * h * w)
            .map(|_| match rng.random_range(0..6) {
                5 => f32::NAN,
                k => k as f32 - 2.0,
            })
            .collect();
        let n = planes * (h / 2) * (w / 2);
        let (mut y2, mut i2) = (vec![0.0f32; n], vec![0u32; n]);
        let (mut ya, mut ia) = (vec![0.0f32; n], vec![0u32; n]);
        maxpool2d_forward(&mut y2, &mut i2, &x, planes, h, w, 2);
        maxpool_any_forward(&mut ya, &mut ia, &x, planes, h, w, 2);
        assert_eq!(i2, ia);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y2), bits(&ya));
        assert!(x.iter().any(|v| v.is_nan()) && i2.windows(2).any(|p| p[0] != p[1]));
    }

    #[test]
    fn maxpool_golden_indices_and_ties() {
        // One 4×5 plane (the odd last column is dropped by the floor rule).
        // Window (0,0) holds 1,3 / 3,2: a tie at 3, the first in scan order
        // (flat index 1) wins, as in PyTorch. Worked by hand.
        #[rustfmt::skip]
        let x = [
            1.0, 3.0, 0.0, -1.0, 9.0,
            3.0, 2.0, -2.0, -3.0, 9.0,
            5.0, 0.0, 7.0, 7.5, 9.0,
            0.0, 6.0, 8.0, 1.0, 9.0,
        ];
        let mut y = [0.0f64; 4];
        let mut idx = [0u32; 4];
        maxpool2d_forward(&mut y, &mut idx, &x, 1, 4, 5, 2);
        assert_eq!(y, [3.0, 0.0, 6.0, 8.0]);
        assert_eq!(idx, [1, 2, 16, 17]);
        let mut dx = [f64::NAN; 20];
        maxpool2d_backward(&mut dx, &[1.0, 2.0, 3.0, 4.0], &idx, 1, 4, 5);
        let mut want = [0.0; 20];
        (want[1], want[2], want[16], want[17]) = (1.0, 2.0, 3.0, 4.0);
        assert_eq!(dx, want);
        // Unpooling puts the maxima back where they came from.
        let mut up = [f64::NAN; 20];
        max_unpool2d_forward(&mut up, &y, &idx, 1, 4, 5);
        let mut want = [0.0; 20];
        (want[1], want[2], want[16], want[17]) = (3.0, 0.0, 6.0, 8.0);
        assert_eq!(up, want);
    }

    #[test]
    fn upsample_golden() {
        let mut y = [0.0f64; 16];
        upsample_forward(&mut y, &[1.0, 2.0, 3.0, 4.0], 1, 2, 2, 2);
        assert_eq!(
            y,
            [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 3.0, 3.0, 4.0, 4.0]
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (planes, h, w, s) = (3, 4, 6, 2);
        // Distinct values, so no window has a tie that a nudge could flip.
        let x: Vec<f64> = random_vec(planes * h * w, 1.0, 11)
            .iter()
            .enumerate()
            .map(|(i, v)| v + i as f64 * 1e-3)
            .collect();
        let n_out = planes * (h / s) * (w / s);
        let r = random_vec(n_out, 1.0, 12);
        let mut idx = vec![0u32; n_out];
        let mut y = vec![0.0; n_out];
        maxpool2d_forward(&mut y, &mut idx, &x, planes, h, w, s);
        let mut dx = vec![0.0; x.len()];
        maxpool2d_backward(&mut dx, &r, &idx, planes, h, w);
        let pool = |v: &[f64]| {
            let (mut y, mut i) = (vec![0.0; n_out], vec![0u32; n_out]);
            maxpool2d_forward(&mut y, &mut i, v, planes, h, w, s);
            dot(&y, &r)
        };
        assert!(max_rel_error(pool, &x, &dx) < 1e-6);

        // Unpooling with fixed indices is linear in its input.
        let r_big = random_vec(x.len(), 1.0, 13);
        let mut du = vec![0.0; n_out];
        max_unpool2d_backward(&mut du, &r_big, &idx, planes, h, w);
        let unpool = |v: &[f64]| {
            let mut out = vec![0.0; planes * h * w];
            max_unpool2d_forward(&mut out, v, &idx, planes, h, w);
            dot(&out, &r_big)
        };
        assert!(max_rel_error(unpool, &y, &du) < 1e-6);

        let small = random_vec(planes * h * w, 1.0, 14);
        let r_up = random_vec(planes * h * w * s * s, 1.0, 15);
        let mut dup = vec![0.0; small.len()];
        upsample_backward(&mut dup, &r_up, planes, h, w, s);
        let up = |v: &[f64]| {
            let mut out = vec![0.0; r_up.len()];
            upsample_forward(&mut out, v, planes, h, w, s);
            dot(&out, &r_up)
        };
        assert!(max_rel_error(up, &small, &dup) < 1e-6);
    }
}
