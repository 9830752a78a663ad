//! im2col and col2im for one image, so that a convolution becomes one GEMM.
//!
//! For an input plane stack `x` `[c, h, w]`, a square kernel k, a stride s and
//! a zero padding p, the output is `oh = (h + 2p − k)/s + 1` by `ow` (floor).
//! `col` is `[c·k·k, oh·ow]`, row `(ci·k + ky)·k + kx`, column `oy·ow + ox`:
//!
//!   col[(ci,ky,kx), (oy,ox)] = x[ci, oy·s − p + ky, ox·s − p + kx]   (0 outside).
//!
//! col2im is its adjoint: it *adds* every column entry back into the input
//! position it was read from, so overlapping windows accumulate.

use super::Real;

/// The geometry of a convolution from `[c, h, w]` to `[·, oh, ow]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    /// The geometry, or `None` when the kernel does not fit the padded input
    /// or a size is zero.
    pub fn new(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Option<ConvGeom> {
        if c == 0 || k == 0 || stride == 0 || h + 2 * pad < k || w + 2 * pad < k {
            return None;
        }
        Some(ConvGeom {
            c,
            h,
            w,
            k,
            stride,
            pad,
            oh: (h + 2 * pad - k) / stride + 1,
            ow: (w + 2 * pad - k) / stride + 1,
        })
    }

    /// Rows of `col`: c·k·k.
    pub fn col_rows(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Columns of `col`: oh·ow.
    pub fn col_cols(&self) -> usize {
        self.oh * self.ow
    }

    /// Elements of the input `[c, h, w]`.
    pub fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The output columns `[lo, hi)` whose input column `ox·s − p + kx` lies
    /// inside `[0, w)`.
    fn valid_cols(&self, kx: usize) -> (usize, usize) {
        let s = self.stride;
        // ox·s + kx ≥ p  ⇔  ox ≥ ceil((p − kx)/s)
        let lo = if kx >= self.pad {
            0
        } else {
            (self.pad - kx).div_ceil(s)
        }
        .min(self.ow);
        // ox·s + kx − p ≤ w − 1  ⇔  ox ≤ (w − 1 + p − kx)/s
        let hi = if self.w + self.pad > kx {
            ((self.w - 1 + self.pad - kx) / s + 1).min(self.ow)
        } else {
            0
        };
        (lo, hi.max(lo))
    }

    /// The input row of output row `oy` for kernel row `ky`, if inside.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.pad)
            .filter(|&iy| iy < self.h)
    }
}

/// Fills `col` `[c·k·k, oh·ow]` from `x` `[c, h, w]`.
pub fn im2col<T: Real>(col: &mut [T], x: &[T], g: &ConvGeom) {
    assert_eq!(x.len(), g.input_len(), "im2col: input length");
    assert_eq!(col.len(), g.col_rows() * g.col_cols(), "im2col: col length");
    let (k, s, p) = (g.k, g.stride, g.pad);
    let mut rows = col.chunks_exact_mut(g.col_cols());
    for ci in 0..g.c {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..k {
            for kx in 0..k {
                let dst = rows.next().expect("c·k·k rows");
                if s == 1 && g.ow == g.w {
                    same_row(dst, plane, g, ky, kx);
                    continue;
                }
                let (lo, hi) = g.valid_cols(kx);
                for (oy, d) in dst.chunks_exact_mut(g.ow).enumerate() {
                    let Some(iy) = g.input_row(oy, ky) else {
                        d.fill(T::ZERO);
                        continue;
                    };
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    d[..lo].fill(T::ZERO);
                    d[hi..].fill(T::ZERO);
                    if s == 1 && hi > lo {
                        let start = lo + kx - p;
                        d[lo..hi].copy_from_slice(&src[start..start + hi - lo]);
                    } else if s > 1 {
                        for ox in lo..hi {
                            d[ox] = src[ox * s + kx - p];
                        }
                    }
                }
            }
        }
    }
}

/// Where one row of `col` (kernel offset ky, kx) meets the plane at stride 1
/// with an output as wide as the input (k = 2p + 1, "same" padding). Every
/// output position then reads the plane at its own index plus one constant,
/// so the output rows inside the plane are one run: `col[a..b]` is
/// `plane[start..start + (b − a)]`, except at the output columns outside
/// `[lo, hi)`, which wrapped round a row's edge and read padding.
struct SameRun {
    lo: usize,
    hi: usize,
    /// The output rows `[top, bottom)` that read a row of the plane.
    top: usize,
    bottom: usize,
    a: usize,
    b: usize,
    start: usize,
}

impl SameRun {
    /// `None` when this kernel offset reads only padding.
    fn new(g: &ConvGeom, ky: usize, kx: usize) -> Option<SameRun> {
        let (w, p) = (g.w, g.pad);
        let (lo, hi) = g.valid_cols(kx);
        // Output row oy reads input row oy + ky − p, which must lie in [0, h).
        let top = p.saturating_sub(ky).min(g.oh);
        let bottom = (g.h + p).saturating_sub(ky).min(g.oh).max(top);
        (hi > lo && bottom > top).then(|| SameRun {
            lo,
            hi,
            top,
            bottom,
            a: top * w + lo,
            b: (bottom - 1) * w + hi,
            start: (top + ky - p) * w + lo + kx - p,
        })
    }

    /// Zeroes the wrapped columns of the rows inside the plane, column by
    /// column, so that the compiler keeps these few stores inline.
    fn zero_wrapped<T: Real>(&self, row: &mut [T], w: usize) {
        for ox in (0..self.lo).chain(self.hi..w) {
            for oy in self.top..self.bottom {
                row[oy * w + ox] = T::ZERO;
            }
        }
    }
}

/// One row of `col` at stride 1 with "same" padding: one copy instead of
/// one small copy per output row, then zeros where padding was read.
fn same_row<T: Real>(dst: &mut [T], plane: &[T], g: &ConvGeom, ky: usize, kx: usize) {
    let Some(r) = SameRun::new(g, ky, kx) else {
        dst.fill(T::ZERO);
        return;
    };
    dst[..r.top * g.w].fill(T::ZERO);
    dst[r.bottom * g.w..].fill(T::ZERO);
    dst[r.a..r.b].copy_from_slice(&plane[r.start..r.start + (r.b - r.a)]);
    r.zero_wrapped(dst, g.w);
}

/// The adjoint of [`same_row`]: one row of `col` added into its plane in
/// one run. The entries that read padding are zeroed first, so the run adds
/// 0 where they land: x + 0 = x (a −0 becomes +0), and every other sum is
/// the one a row-by-row loop makes, in the same order.
fn same_row_add<T: Real>(plane: &mut [T], src: &mut [T], g: &ConvGeom, ky: usize, kx: usize) {
    if let Some(r) = SameRun::new(g, ky, kx) {
        r.zero_wrapped(src, g.w);
        let run = &mut plane[r.start..r.start + (r.b - r.a)];
        for (d, &v) in run.iter_mut().zip(&src[r.a..r.b]) {
            *d += v;
        }
    }
}

/// Adds `col` `[c·k·k, oh·ow]` back into `x` `[c, h, w]` (the adjoint of
/// [`im2col`]); the caller zeroes `x` first when it wants a plain write.
/// `col` is scratch: at stride 1 with "same" padding the entries that
/// [`im2col`] would have read from the padding are set to zero on the way.
pub fn col2im<T: Real>(x: &mut [T], col: &mut [T], g: &ConvGeom) {
    assert_eq!(x.len(), g.input_len(), "col2im: input length");
    assert_eq!(col.len(), g.col_rows() * g.col_cols(), "col2im: col length");
    let (k, s, p) = (g.k, g.stride, g.pad);
    let mut rows = col.chunks_exact_mut(g.col_cols());
    for ci in 0..g.c {
        let plane = &mut x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ky in 0..k {
            for kx in 0..k {
                let src = rows.next().expect("c·k·k rows");
                if s == 1 && g.ow == g.w {
                    same_row_add(plane, src, g, ky, kx);
                    continue;
                }
                let (lo, hi) = g.valid_cols(kx);
                for (oy, srow) in src.chunks_exact(g.ow).enumerate() {
                    let Some(iy) = g.input_row(oy, ky) else {
                        continue;
                    };
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    if s == 1 && hi > lo {
                        let start = lo + kx - p;
                        for (d, &v) in dst[start..start + hi - lo].iter_mut().zip(&srow[lo..hi]) {
                            *d += v;
                        }
                    } else if s > 1 {
                        for ox in lo..hi {
                            dst[ox * s + kx - p] += srow[ox];
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, index by index: each (col entry, input element) that
    /// im2col copies, in col order; entries reading padding are absent.
    fn read_pairs(g: &ConvGeom) -> Vec<(usize, usize)> {
        let mut pairs = Vec::new();
        for ci in 0..g.c {
            for ky in 0..g.k {
                for kx in 0..g.k {
                    let r = (ci * g.k + ky) * g.k + kx;
                    for oy in 0..g.oh {
                        for ox in 0..g.ow {
                            let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                let i = ci * g.h * g.w + iy as usize * g.w + ix as usize;
                                pairs.push((r * g.col_cols() + oy * g.ow + ox, i));
                            }
                        }
                    }
                }
            }
        }
        pairs
    }

    fn im2col_naive(x: &[f64], g: &ConvGeom) -> Vec<f64> {
        let mut col = vec![0.0; g.col_rows() * g.col_cols()];
        read_pairs(g).into_iter().for_each(|(c, i)| col[c] = x[i]);
        col
    }

    /// col2im by its definition: each entry added where im2col read it.
    fn col2im_naive(col: &[f64], g: &ConvGeom) -> Vec<f64> {
        let mut x = vec![0.0; g.input_len()];
        read_pairs(g).into_iter().for_each(|(c, i)| x[i] += col[c]);
        x
    }

    #[test]
    fn col2im_matches_definition_and_ignores_entries_read_from_padding() {
        let mut checked = 0;
        for c in [1, 2] {
            for (h, w) in [(1, 1), (4, 5), (7, 7), (6, 3), (14, 14)] {
                for k in [1, 2, 3, 5] {
                    for stride in [1, 2, 3] {
                        for pad in [0, 1, 2] {
                            let Some(g) = ConvGeom::new(c, h, w, k, stride, pad) else {
                                continue;
                            };
                            let mut y =
                                crate::layers::gradcheck::random_vec(g.col_rows() * g.col_cols(), 1.0, 5);
                            // Entries im2col fills from padding (0 for an input of ones) carry NaN.
                            let mut ones = vec![0.0; y.len()];
                            im2col(&mut ones, &vec![1.0; g.input_len()], &g);
                            for (v, &o) in y.iter_mut().zip(&ones) {
                                if o == 0.0 {
                                    *v = f64::NAN;
                                }
                            }
                            let want = col2im_naive(&y, &g);
                            let mut got = vec![0.0; g.input_len()];
                            col2im(&mut got, &mut y, &g);
                            assert_eq!(got, want, "{g:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} geometries checked");
    }

    #[test]
    fn im2col_matches_definition_and_col2im_is_its_adjoint() {
        let mut checked = 0;
        for c in [1, 2, 3] {
            for (h, w) in [(1, 1), (4, 5), (7, 7), (6, 3)] {
                for k in [1, 2, 3, 5] {
                    for stride in [1, 2, 3] {
                        for pad in [0, 1, 2] {
                            let Some(g) = ConvGeom::new(c, h, w, k, stride, pad) else {
                                continue;
                            };
                            let x = crate::layers::gradcheck::random_vec(g.input_len(), 1.0, checked);
                            let mut col = vec![f64::NAN; g.col_rows() * g.col_cols()];
                            im2col(&mut col, &x, &g);
                            assert_eq!(col, im2col_naive(&x, &g), "{g:?}");
                            // <im2col(x), y> = <x, col2im(y)> for any y.
                            let y = crate::layers::gradcheck::random_vec(col.len(), 1.0, 99);
                            let mut back = vec![0.0; x.len()];
                            col2im(&mut back, &mut y.clone(), &g);
                            let lhs: f64 = col.iter().zip(&y).map(|(a, b)| a * b).sum();
                            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
                            assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()), "{g:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} geometries checked");
    }

    #[test]
    fn geometry_follows_the_floor_rule() {
        // PyTorch: Conv2d(k=3, s=2, p=1) maps 28 → 14 and 7 → 4.
        assert_eq!(ConvGeom::new(1, 28, 28, 3, 2, 1).map(|g| g.oh), Some(14));
        assert_eq!(ConvGeom::new(1, 7, 7, 3, 2, 1).map(|g| g.oh), Some(4));
        assert_eq!(ConvGeom::new(1, 2, 2, 5, 1, 1), None);
        assert_eq!(ConvGeom::new(1, 2, 2, 3, 0, 1), None);
    }
}
