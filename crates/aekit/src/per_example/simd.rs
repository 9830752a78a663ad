//! The only home of `unsafe` in aekit's kernels: the per-example step and its
//! primitives compiled for AVX-512 or AVX2+FMA, chosen at run time, beside the
//! portable loops that are their reference.
//!
//! `unsafe` here only calls `#[target_feature]` copies of safe code after
//! `is_x86_feature_detected!` has confirmed the CPU supports those features,
//! uses raw-pointer SIMD loads and stores on slices whose lengths are
//! asserted first, and issues prefetch hints.
#![allow(unsafe_code)]

pub use super::isa::Isa;
use super::simd;
use super::state::{step_body, FusedTiedSgd, BLOCK, GROUP, LAG};
use super::sync::SplitLink;
use crate::layers::Loss;
use crate::tensor::vmath;
use std::sync::atomic::Ordering;

/// Hints that this core will soon write (or, with `write` false, only read)
/// the line holding `a`.
#[inline(always)]
pub(super) fn prefetch<T>(a: &T, write: bool) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it never faults and changes no value.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0, _MM_HINT_T0};
        let p = a as *const T as *const i8;
        if write {
            _mm_prefetch::<_MM_HINT_ET0>(p)
        } else {
            _mm_prefetch::<_MM_HINT_T0>(p)
        }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (a, write);
}

/// y += Σ_r coef[r]·rows[r·len(y)..] for up to 8 rows, on `isa` (falling
/// back to the portable loop when the CPU lacks it): the kernel's
/// back-propagation into δh, exposed for the probe in `benches/`. `y`'s
/// length is a multiple of 16.
pub fn axpy_rows(isa: Isa, y: &mut [f32], coef: &[f32], rows: &[f32]) {
    assert!(y.len().is_multiple_of(16) && coef.len() <= 8 && rows.len() == coef.len() * y.len());
    match (isa, Isa::detect()) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU reports AVX-512; lengths are checked above.
        (Isa::Avx512, Isa::Avx512) => unsafe { avx512::axpy_rows(y, coef, rows) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU reports AVX2 and FMA; lengths are checked above.
        (Isa::Avx2Fma | Isa::Avx512, Isa::Avx2Fma | Isa::Avx512) => unsafe { avx2::axpy_rows(y, coef, rows) },
        _ => portable::axpy_rows(y, coef, rows),
    }
}

/// One step of `k` on the instruction set it was given.
pub(super) fn step(k: &mut FusedTiedSgd, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
    match k.isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::Avx512 is only set when the CPU reports avx512f and fma.
        Isa::Avx512 => unsafe { k.step_avx512(x, xt, link) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Isa::Avx2Fma is only set when the CPU reports avx2 and fma.
        Isa::Avx2Fma => unsafe { k.step_avx2(x, xt, link) },
        _ => k.step_portable(x, xt, link),
    }
}

/// Four rows updated for a pending example and dotted with the next hidden
/// vector, on `isa` (falling back to the portable loop when the CPU lacks
/// it): the kernel's inner sweep, exposed for the probe in `benches/`.
/// `rows` is `[4, len(h)]`; every length is a multiple of 16.
pub fn update_dot4(
    isa: Isa,
    rows: &mut [f32],
    (decay, ga, gb): ([f32; 4], [f32; 4], [f32; 4]),
    h: &[f32],
    dh: &[f32],
    hn: &[f32],
) -> [f32; 4] {
    assert!(
        h.len().is_multiple_of(16) && rows.len() == 4 * h.len() && dh.len() == h.len() && hn.len() == h.len()
    );
    match (isa, Isa::detect()) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU reports AVX-512; lengths are checked above.
        (Isa::Avx512, Isa::Avx512) => unsafe { avx512::update_dot4(rows, decay, ga, gb, h, dh, hn) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU reports AVX2 and FMA; lengths are checked above.
        (Isa::Avx2Fma | Isa::Avx512, Isa::Avx2Fma | Isa::Avx512) => unsafe {
            avx2::update_dot4(rows, decay, ga, gb, h, dh, hn)
        },
        _ => portable::update_dot4(rows, decay, ga, gb, h, dh, hn),
    }
}

impl FusedTiedSgd {
    fn step_portable(&mut self, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
        step_body!(
            self,
            x,
            xt,
            link,
            portable::update_dot,
            portable::update_dot4,
            portable::dot,
            portable::axpy,
            portable::axpy4,
            portable::axpy_rows,
            portable::nonzero
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn step_avx512(&mut self, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
        step_body!(
            self,
            x,
            xt,
            link,
            avx512::update_dot,
            avx512::update_dot4,
            avx512::dot,
            avx512::axpy,
            avx512::axpy4,
            avx512::axpy_rows,
            nonzero512
        )
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn step_avx2(&mut self, x: &[f32], xt: &[f32], link: Option<SplitLink<'_>>) -> f32 {
        step_body!(
            self,
            x,
            xt,
            link,
            avx2::update_dot,
            avx2::update_dot4,
            avx2::dot,
            avx2::axpy,
            avx2::axpy4,
            avx2::axpy_rows,
            portable::nonzero
        )
    }
}

/// Portable primitives: plain loops, the reference for the SIMD ones.
pub(super) mod portable {
    /// Writes the indices of the non-zero entries of `x` to the front of
    /// `nz` (at least as long as `x`), in order; returns how many. No branch
    /// per entry: a masked image's zeros fall in no pattern a predictor can
    /// learn.
    pub fn nonzero(x: &[f32], nz: &mut [u32]) -> usize {
        let nz = &mut nz[..x.len()];
        let mut count = 0;
        for (i, &v) in x.iter().enumerate() {
            nz[count] = i as u32;
            count += (v != 0.0) as usize;
        }
        count
    }

    /// row ← row − (decay·row + ga·h + gb·dh), decay = ηλ: the small terms
    /// are added up first and the row rounded once, as the layer path's
    /// step does (a factor 1 − ηλ rounded to f32, or the decay rounded into
    /// the row on its own, biases small decays). Without decay,
    /// row − ga·h − gb·dh.
    pub fn update_row(row: &mut [f32], decay: f32, ga: f32, gb: f32, h: &[f32], dh: &[f32]) {
        if decay == 0.0 {
            for ((w, &h), &dh) in row.iter_mut().zip(h).zip(dh) {
                *w = *w - ga * h - gb * dh;
            }
        } else {
            for ((w, &h), &dh) in row.iter_mut().zip(h).zip(dh) {
                *w -= decay * *w + ga * h + gb * dh;
            }
        }
    }

    /// [`update_row`], then the new row's dot product with `hn`.
    pub fn update_dot(
        row: &mut [f32],
        decay: f32,
        ga: f32,
        gb: f32,
        h: &[f32],
        dh: &[f32],
        hn: &[f32],
    ) -> f32 {
        update_row(row, decay, ga, gb, h, dh);
        dot(row, hn)
    }

    /// [`update_dot`] on 4 consecutive rows with per-row coefficients.
    pub fn update_dot4(
        rows: &mut [f32],
        decay: [f32; 4],
        ga: [f32; 4],
        gb: [f32; 4],
        h: &[f32],
        dh: &[f32],
        hn: &[f32],
    ) -> [f32; 4] {
        let mut out = [0.0f32; 4];
        for (r, row) in rows.chunks_exact_mut(h.len()).enumerate() {
            out[r] = update_dot(row, decay[r], ga[r], gb[r], h, dh, hn);
        }
        out
    }

    /// Σ a·b with 16 running sums (the order the SIMD versions use).
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 16];
        for (a, b) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
            for ((s, &a), &b) in acc.iter_mut().zip(a).zip(b) {
                *s += a * b;
            }
        }
        acc.iter().sum()
    }

    /// y += a·x.
    pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    }

    /// y += c[0]·r[0], then += c[1]·r[1], … (the order of four [`axpy`]s).
    pub fn axpy4(y: &mut [f32], c: [f32; 4], r: [&[f32]; 4]) {
        for (&c, row) in c.iter().zip(r) {
            axpy(y, c, row);
        }
    }

    /// y += Σ_r coef[r]·rows[r·len(y)..].
    pub fn axpy_rows(y: &mut [f32], coef: &[f32], rows: &[f32]) {
        for (&c, row) in coef.iter().zip(rows.chunks_exact(y.len())) {
            axpy(y, c, row);
        }
    }
}

/// Generates the AVX-512 or AVX2 primitives from one text: `$v` is the
/// vector type, `$n` its lanes. Every slice length is a multiple of 16
/// (rows are padded), checked by `debug_assert`, and `assert`ed equal.
macro_rules! simd_primitives {
    ($name:ident, $feat:literal, $v:ty, $n:literal, $load:ident, $store:ident, $set1:ident, $fmadd:ident, $fnmadd:ident, $mul:ident, $zero:ident, $add:ident, $sub:ident, $reduce:path) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use std::arch::x86_64::*;

            /// One lane group's update at `pw`, stored there and returned:
            /// w − a·h − b·δh, or with decay w − (k·w + a·h + b·δh), rounded
            /// into w once (the portable `update_row`'s order). δh is read
            /// from `pd` only `with_dh`.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn update_at(
                scaled: bool,
                with_dh: bool,
                (s, a, b): ($v, $v, $v),
                pw: *mut f32,
                ph: *const f32,
                pd: *const f32,
            ) -> $v {
                // SAFETY: the caller checked that each pointer has a lane
                // group to read (and `pw` to write).
                unsafe {
                    let (wv, hv) = ($load(pw), $load(ph));
                    let v = if scaled {
                        let mut t = $fmadd(a, hv, $mul(s, wv));
                        if with_dh {
                            t = $fmadd(b, $load(pd), t);
                        }
                        $sub(wv, t)
                    } else {
                        let v = $fnmadd(a, hv, wv);
                        if with_dh {
                            $fnmadd(b, $load(pd), v)
                        } else {
                            v
                        }
                    };
                    $store(pw, v);
                    v
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn update_dot(
                row: &mut [f32],
                decay: f32,
                ga: f32,
                gb: f32,
                h: &[f32],
                dh: &[f32],
                hn: &[f32],
            ) -> f32 {
                assert!(h.len() == row.len() && dh.len() == row.len() && hn.len() == row.len());
                debug_assert_eq!(row.len() % 16, 0);
                let (s, a, b) = ($set1(decay), $set1(ga), $set1(gb));
                let (w, h, dh, hn) = (row.as_mut_ptr(), h.as_ptr(), dh.as_ptr(), hn.as_ptr());
                let (mut acc0, mut acc1) = ($zero(), $zero());
                let mut i = 0;
                // Most inputs are zero after masking; then the δh term vanishes
                // and its stream is not read.
                let with_dh = gb != 0.0;
                let scaled = decay != 0.0;
                while i < row.len() {
                    // SAFETY: i + lanes ≤ len (equal lengths, multiple of 16).
                    unsafe {
                        let v = update_at(scaled, with_dh, (s, a, b), w.add(i), h.add(i), dh.add(i));
                        acc0 = $fmadd(v, $load(hn.add(i)), acc0);
                    }
                    i += $n;
                    if i < row.len() {
                        // SAFETY: i < len and len − i is a multiple of the lane count.
                        unsafe {
                            let v = update_at(scaled, with_dh, (s, a, b), w.add(i), h.add(i), dh.add(i));
                            acc1 = $fmadd(v, $load(hn.add(i)), acc1);
                        }
                        i += $n;
                    }
                }
                $reduce($add(acc0, acc1))
            }

            /// [`update_dot`] on 4 consecutive rows (`rows` is `[4, len(h)]`)
            /// with per-row coefficients; h, δh and hn are loaded once for all
            /// four. A row with coefficients (0, 0, 0) is left as it is.
            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn update_dot4(
                rows: &mut [f32],
                decay: [f32; 4],
                ga: [f32; 4],
                gb: [f32; 4],
                h: &[f32],
                dh: &[f32],
                hn: &[f32],
            ) -> [f32; 4] {
                // Without weight decay the decay term is 0, and rows whose
                // inputs were all zero have no δh term: those operations are
                // skipped (the same bits, fewer operations).
                let scaled = decay.iter().any(|&v| v != 0.0);
                let with_dh = gb.iter().any(|&v| v != 0.0);
                // SAFETY: the caller's guarantees are passed on.
                unsafe {
                    match (scaled, with_dh) {
                        (true, true) => update_dot4_with::<true, true>(rows, decay, ga, gb, h, dh, hn),
                        (true, false) => update_dot4_with::<true, false>(rows, decay, ga, gb, h, dh, hn),
                        (false, true) => update_dot4_with::<false, true>(rows, decay, ga, gb, h, dh, hn),
                        (false, false) => update_dot4_with::<false, false>(rows, decay, ga, gb, h, dh, hn),
                    }
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn update_dot4_with<const SCALED: bool, const WITH_DH: bool>(
                rows: &mut [f32],
                decay: [f32; 4],
                ga: [f32; 4],
                gb: [f32; 4],
                h: &[f32],
                dh: &[f32],
                hn: &[f32],
            ) -> [f32; 4] {
                let n = h.len();
                assert!(rows.len() == 4 * n && dh.len() == n && hn.len() == n);
                debug_assert_eq!(n % 16, 0);
                let s = [
                    $set1(decay[0]),
                    $set1(decay[1]),
                    $set1(decay[2]),
                    $set1(decay[3]),
                ];
                let a = [$set1(ga[0]), $set1(ga[1]), $set1(ga[2]), $set1(ga[3])];
                let b = [$set1(gb[0]), $set1(gb[1]), $set1(gb[2]), $set1(gb[3])];
                let (w, h, dh, hn) = (rows.as_mut_ptr(), h.as_ptr(), dh.as_ptr(), hn.as_ptr());
                let mut acc = [$zero(); 4];
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, and row r's element i is at r·n + i < 4·n.
                    unsafe {
                        let (hv, nv) = ($load(h.add(i)), $load(hn.add(i)));
                        let dv = if WITH_DH { $load(dh.add(i)) } else { $zero() };
                        for r in 0..4 {
                            let p = w.add(r * n + i);
                            let w0 = $load(p);
                            let v = if SCALED {
                                // w − (k·w + a·h + b·δh): rounded into w once.
                                let mut t = $fmadd(a[r], hv, $mul(s[r], w0));
                                if WITH_DH {
                                    t = $fmadd(b[r], dv, t);
                                }
                                $sub(w0, t)
                            } else {
                                let mut v = $fnmadd(a[r], hv, w0);
                                if WITH_DH {
                                    v = $fnmadd(b[r], dv, v);
                                }
                                v
                            };
                            $store(p, v);
                            acc[r] = $fmadd(v, nv, acc[r]);
                        }
                    }
                    i += $n;
                }
                [
                    $reduce(acc[0]),
                    $reduce(acc[1]),
                    $reduce(acc[2]),
                    $reduce(acc[3]),
                ]
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn dot(x: &[f32], y: &[f32]) -> f32 {
                assert_eq!(x.len(), y.len());
                debug_assert_eq!(x.len() % 16, 0);
                let (px, py) = (x.as_ptr(), y.as_ptr());
                let (mut acc0, mut acc1) = ($zero(), $zero());
                let mut i = 0;
                while i < x.len() {
                    // SAFETY: i + lanes ≤ len (equal lengths, multiple of 16).
                    unsafe {
                        acc0 = $fmadd($load(px.add(i)), $load(py.add(i)), acc0);
                    }
                    i += $n;
                    if i < x.len() {
                        // SAFETY: as above.
                        unsafe {
                            acc1 = $fmadd($load(px.add(i)), $load(py.add(i)), acc1);
                        }
                        i += $n;
                    }
                }
                $reduce($add(acc0, acc1))
            }

            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
                assert_eq!(x.len(), y.len());
                debug_assert_eq!(x.len() % 16, 0);
                let av = $set1(a);
                let (py, px) = (y.as_mut_ptr(), x.as_ptr());
                let mut i = 0;
                while i < y.len() {
                    // SAFETY: i + lanes ≤ len (equal lengths, multiple of 16).
                    unsafe {
                        $store(py.add(i), $fmadd(av, $load(px.add(i)), $load(py.add(i))));
                    }
                    i += $n;
                }
            }

            /// Four [`axpy`]s from rows anywhere, in order, loading and storing
            /// y once (the same bits as four calls).
            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn axpy4(y: &mut [f32], c: [f32; 4], r: [&[f32]; 4]) {
                let n = y.len();
                assert!(r.iter().all(|r| r.len() == n));
                debug_assert_eq!(n % 16, 0);
                let c = c.map(|v| $set1(v));
                let p = r.map(|r| r.as_ptr());
                let py = y.as_mut_ptr();
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, the length of y and of every row.
                    unsafe {
                        let mut a = $load(py.add(i));
                        a = $fmadd(c[0], $load(p[0].add(i)), a);
                        a = $fmadd(c[1], $load(p[1].add(i)), a);
                        a = $fmadd(c[2], $load(p[2].add(i)), a);
                        a = $fmadd(c[3], $load(p[3].add(i)), a);
                        $store(py.add(i), a);
                    }
                    i += $n;
                }
            }

            /// y += Σ_r coef[r]·rows[r·len(y)..], for up to 8 rows, loading and
            /// storing y once.
            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn axpy_rows(y: &mut [f32], coef: &[f32], rows: &[f32]) {
                if let Ok(c) = <&[f32; 8]>::try_from(coef) {
                    // SAFETY: the caller's guarantees are passed on.
                    return unsafe { axpy_8rows(y, c, rows) };
                }
                let n = y.len();
                let k = coef.len();
                assert!(k <= 8 && rows.len() == k * n);
                debug_assert_eq!(n % 16, 0);
                let mut c = [$zero(); 8];
                for (cv, &v) in c.iter_mut().zip(coef) {
                    *cv = $set1(v);
                }
                let (py, pr) = (y.as_mut_ptr(), rows.as_ptr());
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, and row r's element i is at r·n + i < k·n.
                    unsafe {
                        let mut acc = $load(py.add(i));
                        for r in 0..k {
                            acc = $fmadd(c[r], $load(pr.add(r * n + i)), acc);
                        }
                        $store(py.add(i), acc);
                    }
                    i += $n;
                }
            }

            /// [`axpy_rows`] for exactly 8 rows: the coefficients stay in
            /// registers and two chains of 4 FMAs replace one chain of 8.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn axpy_8rows(y: &mut [f32], coef: &[f32; 8], rows: &[f32]) {
                let n = y.len();
                assert!(rows.len() == 8 * n);
                debug_assert_eq!(n % 16, 0);
                let c = coef.map(|v| $set1(v));
                let (py, pr) = (y.as_mut_ptr(), rows.as_ptr());
                let mut i = 0;
                while i < n {
                    // SAFETY: i + lanes ≤ n, and row r's element i is at r·n + i < 8·n.
                    unsafe {
                        let mut a = $load(py.add(i));
                        let mut b = $mul(c[1], $load(pr.add(n + i)));
                        a = $fmadd(c[0], $load(pr.add(i)), a);
                        a = $fmadd(c[2], $load(pr.add(2 * n + i)), a);
                        b = $fmadd(c[3], $load(pr.add(3 * n + i)), b);
                        a = $fmadd(c[4], $load(pr.add(4 * n + i)), a);
                        b = $fmadd(c[5], $load(pr.add(5 * n + i)), b);
                        a = $fmadd(c[6], $load(pr.add(6 * n + i)), a);
                        b = $fmadd(c[7], $load(pr.add(7 * n + i)), b);
                        $store(py.add(i), $add(a, b));
                    }
                    i += $n;
                }
            }
        }
    };
}

/// [`portable::nonzero`] 16 entries at a time, with a compressing store.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn nonzero512(x: &[f32], nz: &mut [u32]) -> usize {
    use std::arch::x86_64::*;
    let n = x.len();
    assert!(nz.len() >= n);
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let (mut count, mut i) = (0usize, 0usize);
    while i < n {
        let m: __mmask16 = if n - i >= 16 {
            0xffff
        } else {
            ((1u32 << (n - i)) - 1) as u16
        };
        // SAFETY: the mask covers only x[i..n], and the store writes
        // popcount(k) ≤ (entries seen so far) − count slots of nz from
        // `count`, so it ends at or before n ≤ nz.len().
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, x.as_ptr().add(i));
            // Unordered-or-unequal, as `v != 0.0` (true for NaN).
            let k = _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(m, v, _mm512_setzero_ps());
            let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32(i as i32));
            _mm512_mask_compressstoreu_epi32(nz.as_mut_ptr().add(count) as *mut _, k, idx);
            count += k.count_ones() as usize;
        }
        i += 16;
    }
    count
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce512(v: std::arch::x86_64::__m512) -> f32 {
    std::arch::x86_64::_mm512_reduce_add_ps(v)
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
fn reduce256(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

simd_primitives!(
    avx512,
    "avx512f,avx2,fma",
    __m512,
    16,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_fnmadd_ps,
    _mm512_mul_ps,
    _mm512_setzero_ps,
    _mm512_add_ps,
    _mm512_sub_ps,
    super::reduce512
);
simd_primitives!(
    avx2,
    "avx2,fma",
    __m256,
    8,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_fnmadd_ps,
    _mm256_mul_ps,
    _mm256_setzero_ps,
    _mm256_add_ps,
    _mm256_sub_ps,
    super::reduce256
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonzero_indices_agree_on_every_instruction_set() {
        for n in [0usize, 1, 15, 16, 17, 100, 784, 1001] {
            let x: Vec<f32> = (0..n)
                .map(|i| match i % 7 {
                    0 | 3 => 0.0,
                    1 => -0.0,
                    2 => f32::NAN,
                    _ => i as f32 * 0.01,
                })
                .collect();
            let want: Vec<u32> = (0..n as u32).filter(|&i| x[i as usize] != 0.0).collect();
            let mut nz = vec![u32::MAX; n];
            let k = portable::nonzero(&x, &mut nz);
            assert_eq!(&nz[..k], &want[..], "portable, n = {n}");
            #[cfg(target_arch = "x86_64")]
            if Isa::detect() == Isa::Avx512 {
                let mut nz = vec![u32::MAX; n];
                // SAFETY: the CPU has AVX-512.
                let k = unsafe { nonzero512(&x, &mut nz) };
                assert_eq!(&nz[..k], &want[..], "avx512, n = {n}");
            }
        }
    }

    #[test]
    fn update_dot4_agrees_with_the_portable_loop_on_every_instruction_set() {
        let n = 48;
        let f = |i: usize| ((i * 7919) % 101) as f32 / 101.0 - 0.5;
        let (h, dh, hn): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            (0..n).map(f).collect(),
            (0..n).map(|i| f(i + 3)).collect(),
            (0..n).map(|i| f(i + 9)).collect(),
        );
        let rows0: Vec<f32> = (0..4 * n).map(|i| f(i + 17)).collect();
        let coef = (
            [0.01f32, 0.0, 0.02, 0.0],
            [0.1f32, -0.2, 0.0, 0.3],
            [0.0f32, 0.5, -0.1, 0.0],
        );
        let mut want_rows = rows0.clone();
        let want = portable::update_dot4(&mut want_rows, coef.0, coef.1, coef.2, &h, &dh, &hn);
        for isa in [Isa::Portable, Isa::Avx2Fma, Isa::Avx512] {
            let mut rows = rows0.clone();
            let got = update_dot4(isa, &mut rows, coef, &h, &dh, &hn);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-5, "{isa:?}: {got:?} vs {want:?}");
            }
            for (a, b) in rows.iter().zip(&want_rows) {
                assert!((a - b).abs() <= 1e-6, "{isa:?}: rows differ");
            }
        }
    }
}
