//! A weight gradient's product fused with the momentum step that uses it.
//!
//! At batch 20 a layer's weight gradient aᵀ·δ has an inner dimension of
//! 20: each output element costs 20 multiply-adds, about what it costs to
//! read and write it. Written by a product into SGD's velocity and then
//! added to the weights by a second pass, each step reads and writes the
//! velocity twice and the weights once, all from L3 for a 1000 × 1000 layer.
//! Here each tile of the gradient is finished in registers and stepped at
//! once: v ← β·v + α·g, θ ← θ + v, v ← μ·v, one read and one write of each.
//!
//! Every output element is summed over the batch in order with fused
//! multiply-adds, so every instruction set (and thread count) gives the
//! same bits.
#![allow(unsafe_code)]

use super::simd::multiversion;
use super::GradWrite;

/// Tile rows (one broadcast of `a` each per batch row).
const R: usize = 4;
/// Columns of `b` per block: whole rows up to 4,096 columns, so that the
/// weights and the velocity stream through in long runs; `b` (20 × 1,000
/// floats at batch 20) stays in L2.
const JB: usize = 4096;

/// How the finished gradient `g` of an element enters the velocity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepWrite {
    /// v ← β·v + α·g, or v ← α·g when `beta` is `None`.
    pub write: GradWrite<f32>,
    /// v ← μ·v after θ ← θ + v.
    pub mu: f32,
}

/// The step of one element from its finished gradient sum `g`.
#[inline(always)]
fn step(theta: &mut f32, v: &mut f32, g: f32, w: StepWrite) {
    let GradWrite { alpha, beta } = w.write;
    let vn = match beta {
        Some(b) => alpha.mul_add(g, b * *v),
        None => alpha * g,
    };
    *theta += vn;
    *v = w.mu * vn;
}

/// How far ahead (in floats along a row) a tile asks for its rows' lines.
const AHEAD: usize = 64;

/// A hint that the cache line holding `x` will be read soon (none off x86).
#[inline(always)]
fn prefetch(x: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints; it neither reads nor faults, and `x` is
    // a valid reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((x as *const f32).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// What every tile reads: `at` (aᵀ, `[rows, k]`), `b` (`[k, n]`) and how
/// the sums enter the velocity.
#[derive(Clone, Copy)]
struct Src<'a> {
    at: &'a [f32],
    b: &'a [f32],
    n: usize,
    k: usize,
    w: StepWrite,
}

/// Rows `i..i + r` and columns `j..j + c` of the output (`v` and `theta`),
/// any shape: the last columns of a band.
#[inline(always)]
fn edge(v: &mut [f32], theta: &mut [f32], s: Src<'_>, (i, r): (usize, usize), (j, c): (usize, usize)) {
    let Src { at, b, n, k, w } = s;
    for ii in i..i + r {
        for jj in j..j + c {
            let mut g = 0.0f32;
            for kk in 0..k {
                g = at[ii * k + kk].mul_add(b[kk * n + jj], g);
            }
            step(&mut theta[ii * n + jj], &mut v[ii * n + jj], g, w);
        }
    }
}

/// A full RR × CC tile at rows `i..`, columns `j..` (`i + RR` ≤ the rows
/// of `at`, `j + CC ≤ n`, checked first).
#[inline(always)]
fn tile<const RR: usize, const CC: usize>(v: &mut [f32], theta: &mut [f32], s: Src<'_>, i: usize, j: usize) {
    let Src { at, b, n, k, w } = s;
    assert!((i + RR) * k <= at.len() && j + CC <= n && k * n <= b.len());
    // The weights and velocity a few tiles ahead start on their way from
    // memory while this tile sums.
    for rr in 0..RR {
        let o = (i + rr) * n + j + AHEAD;
        if o < v.len() {
            prefetch(&v[o]);
            prefetch(&theta[o]);
        }
    }
    let mut acc = [[0.0f32; CC]; RR];
    for kk in 0..k {
        // SAFETY: kk < k and j + CC ≤ n, so kk·n + j + CC ≤ k·n ≤ b.len();
        // (i + rr)·k + kk < (i + RR)·k ≤ at.len(): both checked above.
        let bk = unsafe { &*b.as_ptr().add(kk * n + j).cast::<[f32; CC]>() };
        for (rr, acc) in acc.iter_mut().enumerate() {
            let x = unsafe { *at.get_unchecked((i + rr) * k + kk) };
            for cc in 0..CC {
                acc[cc] = x.mul_add(bk[cc], acc[cc]);
            }
        }
    }
    for (rr, acc) in acc.iter().enumerate() {
        let o = (i + rr) * n + j;
        let th: &mut [f32; CC] = (&mut theta[o..o + CC]).try_into().expect("CC columns");
        let vv: &mut [f32; CC] = (&mut v[o..o + CC]).try_into().expect("CC columns");
        for cc in 0..CC {
            step(&mut th[cc], &mut vv[cc], acc[cc], w);
        }
    }
}

/// Rows `i..i + RR` of the output, columns `j0..j1`: tiles of 16 columns
/// (two AVX2 vectors: eight accumulators with four rows), then one of 8,
/// then one column at a time.
#[inline(always)]
fn row_band<const RR: usize>(
    v: &mut [f32],
    theta: &mut [f32],
    s: Src<'_>,
    i: usize,
    (j0, j1): (usize, usize),
) {
    let mut j = j0;
    while j + 16 <= j1 {
        tile::<RR, 16>(v, theta, s, i, j);
        j += 16;
    }
    if j + 8 <= j1 {
        tile::<RR, 8>(v, theta, s, i, j);
        j += 8;
    }
    edge(v, theta, s, (i, RR), (j, j1 - j));
}

multiversion! {
    /// For the rows of `v` and `theta` (`[rows, n]`, the same rows of the
    /// output) with `at` those rows of aᵀ (`[rows, k]`) and `b` `[k, n]`:
    /// g = at·b, then v ← β·v + α·g, θ ← θ + v, v ← μ·v.
    pub fn at_b_step(v: &mut [f32], theta: &mut [f32], at: &[f32], b: &[f32], n: usize, k: usize, w: StepWrite) -> () {
        let rows = v.len() / n.max(1);
        assert!(v.len() == rows * n && theta.len() == v.len() && at.len() == rows * k && b.len() == k * n);
        let s = Src { at, b, n, k, w };
        for j0 in (0..n).step_by(JB) {
            let j1 = (j0 + JB).min(n);
            let mut i = 0;
            while i + R <= rows {
                row_band::<R>(v, theta, s, i, (j0, j1));
                i += R;
            }
            while i < rows {
                row_band::<1>(v, theta, s, i, (j0, j1));
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The step written out in f64 from the unfused maths.
    fn reference(
        v: &[f32],
        theta: &[f32],
        at: &[f32],
        b: &[f32],
        n: usize,
        k: usize,
        w: StepWrite,
    ) -> (Vec<f64>, Vec<f64>) {
        let rows = v.len() / n;
        let (mut vo, mut to) = (vec![0.0; v.len()], vec![0.0; v.len()]);
        for i in 0..rows {
            for j in 0..n {
                let g: f64 = (0..k)
                    .map(|kk| at[i * k + kk] as f64 * b[kk * n + j] as f64)
                    .sum();
                let vn =
                    w.write.beta.map_or(0.0, |b| b as f64 * v[i * n + j] as f64) + w.write.alpha as f64 * g;
                to[i * n + j] = theta[i * n + j] as f64 + vn;
                vo[i * n + j] = w.mu as f64 * vn;
            }
        }
        (vo, to)
    }

    #[test]
    fn the_fused_step_is_the_product_then_the_step_on_every_shape() {
        use rand::Rng as _;
        let mut rng = crate::tensor::rng::seeded(7);
        // Full tiles, edges in rows and columns, several column blocks.
        for &(rows, n, k) in &[(8, 32, 20), (7, 37, 5), (3, 300, 20), (13, 530, 1), (1, 16, 64)] {
            let mut draw = |len: usize| {
                (0..len)
                    .map(|_| rng.random_range(-1.0f32..1.0))
                    .collect::<Vec<_>>()
            };
            let (at, b, v0, t0) = (draw(rows * k), draw(k * n), draw(rows * n), draw(rows * n));
            for w in [
                StepWrite {
                    write: GradWrite {
                        alpha: -0.05,
                        beta: Some(1.0),
                    },
                    mu: 0.9,
                },
                StepWrite {
                    write: GradWrite {
                        alpha: -0.1,
                        beta: Some(0.9),
                    },
                    mu: 0.5,
                },
                StepWrite {
                    write: GradWrite {
                        alpha: 0.3,
                        beta: None,
                    },
                    mu: 0.0,
                },
            ] {
                let (rv, rt) = reference(&v0, &t0, &at, &b, n, k, w);
                let (mut v, mut t) = (v0.clone(), t0.clone());
                at_b_step(&mut v, &mut t, &at, &b, n, k, w);
                for i in 0..v.len() {
                    assert!(
                        (v[i] as f64 - rv[i]).abs() <= 5e-5,
                        "{rows}x{n}x{k}: v[{i}] {} vs {}",
                        v[i],
                        rv[i]
                    );
                    assert!(
                        (t[i] as f64 - rt[i]).abs() <= 5e-5,
                        "{rows}x{n}x{k}: θ[{i}] {} vs {}",
                        t[i],
                        rt[i]
                    );
                }
            }
        }
    }

    /// Not a test: `cargo test --release -p aekit --lib -- --ignored --nocapture fused_step_against`.
    /// A weight gradient's product and the momentum step, fused against the
    /// product into the velocity through the door followed by the step's own
    /// pass, in turns, one thread; each route on its own layers, one (in
    /// L3) or four in turn (32 MB each route, as in training, so every call
    /// finds its layer out of cache); median of 41 of each.
    #[test]
    #[ignore]
    fn fused_step_against_product_then_pass() {
        use crate::tensor::gemm::{gemm, gemm_at_b_step, Par};
        use crate::tensor::simd::add_then_scale;
        let w = StepWrite {
            write: GradWrite {
                alpha: -0.01,
                beta: Some(1.0),
            },
            mu: 0.9,
        };
        for &(m, n, k) in &[(1000, 1000, 20), (1000, 784, 20), (500, 784, 32)] {
            for layers in [1usize, 4] {
                let a: Vec<f32> = (0..k * m).map(|i| (i % 7) as f32 * 0.1).collect();
                let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.01).collect();
                let mut sets: Vec<(Vec<f32>, Vec<f32>)> = (0..2 * layers)
                    .map(|_| (vec![0.0; m * n], vec![0.0; m * n]))
                    .collect();
                let (mut fused, mut plain) = (Vec::new(), Vec::new());
                for rep in 0..41 {
                    let (t, v) = &mut sets[2 * (rep % layers)];
                    let s = std::time::Instant::now();
                    gemm_at_b_step(m, n, k, &a, &b, v, t, w, Par::Seq);
                    fused.push(s.elapsed().as_secs_f64());
                    let (t, v) = &mut sets[2 * (rep % layers) + 1];
                    let s = std::time::Instant::now();
                    gemm(m, n, k, w.write.alpha, &a, true, &b, false, true, v, Par::Seq);
                    add_then_scale(t, v, w.mu);
                    plain.push(s.elapsed().as_secs_f64());
                }
                let median = |x: &mut Vec<f64>| {
                    x.sort_by(f64::total_cmp);
                    x[x.len() / 2] * 1e3
                };
                let (f, p) = (median(&mut fused), median(&mut plain));
                println!(
                    "{m}x{n}, k = {k}, {layers} layer(s) in turn: fused {f:.3} ms, product then pass {p:.3} ms ({:.2}x)",
                    p / f
                );
            }
        }
    }
}
