//! The one door to matrix multiplication: a safe function over row-major
//! slices, dims, transpose flags and accumulate, backed by faer. No other
//! module multiplies matrices, so a faster kernel or a route around a slow
//! faer shape changes one place.

use super::Real;
use faer::{Accum, MatMut, MatRef};

/// How many threads one product may use. Off inside Hogwild workers and
/// ensemble members, which are parallel already.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Par {
    #[default]
    Seq,
    Threads(usize),
}

impl Par {
    /// `Seq` for 0 or 1 thread, otherwise that many rayon threads.
    pub fn from_threads(n: usize) -> Par {
        if n <= 1 {
            Par::Seq
        } else {
            Par::Threads(n)
        }
    }

    fn faer(self) -> faer::Par {
        match self {
            Par::Seq => faer::Par::Seq,
            Par::Threads(n) => faer::Par::rayon(n),
        }
    }
}

/// `c[m,n] = (accumulate ? c : 0) + alpha · op(a)[m,k] · op(b)[k,n]`.
///
/// `a` holds `op(a)` row-major as `[m,k]`, or as `[k,m]` when `trans_a`;
/// likewise `b` is `[k,n]`, or `[n,k]` when `trans_b`.
///
/// Panics when a slice length disagrees with the dims: callers validate user
/// input before any kernel runs, so a mismatch here is a bug.
pub fn gemm<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    trans_a: bool,
    b: &[T],
    trans_b: bool,
    accumulate: bool,
    c: &mut [T],
    par: Par,
) {
    assert_eq!(a.len(), m * k, "gemm: a has {} elements, want {m}x{k}", a.len());
    assert_eq!(b.len(), k * n, "gemm: b has {} elements, want {k}x{n}", b.len());
    assert_eq!(c.len(), m * n, "gemm: c has {} elements, want {m}x{n}", c.len());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    let a = if trans_a {
        MatRef::from_row_major_slice(a, k, m).transpose()
    } else {
        MatRef::from_row_major_slice(a, m, k)
    };
    let b = if trans_b {
        MatRef::from_row_major_slice(b, n, k).transpose()
    } else {
        MatRef::from_row_major_slice(b, k, n)
    };
    let c = MatMut::from_row_major_slice_mut(c, m, n);
    let accum = if accumulate { Accum::Add } else { Accum::Replace };
    faer::linalg::matmul::matmul(c, accum, a, b, alpha, par.faer());
}

/// The naive triple loop that [`gemm`] is tested against (f64 accumulation).
pub fn gemm_reference<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    trans_a: bool,
    b: &[T],
    trans_b: bool,
    accumulate: bool,
    c: &mut [T],
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                let av = if trans_a { a[p * m + i] } else { a[i * k + p] };
                let bv = if trans_b { b[j * k + p] } else { b[p * n + j] };
                s += av.f64() * bv.f64();
            }
            let prev = if accumulate { c[i * n + j].f64() } else { 0.0 };
            c[i * n + j] = T::of(prev + alpha.f64() * s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    fn random(len: usize, rng: &mut crate::tensor::rng::Rng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn matches_reference_over_a_grid_of_shapes() {
        let sizes = [0usize, 1, 2, 7, 16, 33, 130];
        let mut rng = crate::tensor::rng::seeded(7);
        for &m in &sizes {
            for &n in &sizes {
                for &k in &sizes {
                    for flags in 0..8 {
                        let (ta, tb, acc) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
                        let a = random(m * k, &mut rng);
                        let b = random(k * n, &mut rng);
                        let c0 = random(m * n, &mut rng);
                        let (mut c, mut r) = (c0.clone(), c0.clone());
                        let par = if m * n * k > 10_000 {
                            Par::Threads(2)
                        } else {
                            Par::Seq
                        };
                        gemm(m, n, k, 0.75, &a, ta, &b, tb, acc, &mut c, par);
                        gemm_reference(m, n, k, 0.75, &a, ta, &b, tb, acc, &mut r);
                        for (x, y) in c.iter().zip(&r) {
                            assert!(
                                (x - y).abs() <= 1e-5 * (1.0 + k as f32),
                                "m={m} n={n} k={k} ta={ta} tb={tb} acc={acc}: {x} vs {y}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn large_product_matches_reference() {
        let (m, n, k) = (100, 500, 784);
        let mut rng = crate::tensor::rng::seeded(3);
        let a = random(m * k, &mut rng);
        let b = random(k * n, &mut rng);
        let mut c = vec![0.0f32; m * n];
        let mut r = vec![0.0f32; m * n];
        gemm(m, n, k, 1.0, &a, false, &b, false, false, &mut c, Par::Seq);
        gemm_reference(m, n, k, 1.0, &a, false, &b, false, false, &mut r);
        let err = c.iter().zip(&r).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn f64_is_exact_on_small_integers() {
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]], by hand.
        let a = [1.0f64, 2.0, 3.0, 4.0];
        let b = [5.0f64, 6.0, 7.0, 8.0];
        let mut c = [0.0f64; 4];
        gemm(2, 2, 2, 1.0, &a, false, &b, false, false, &mut c, Par::Seq);
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
    }

    #[test]
    #[should_panic(expected = "gemm: a has")]
    fn wrong_length_panics_with_a_message() {
        let mut c = [0.0f32; 4];
        gemm(
            2,
            2,
            2,
            1.0,
            &[1.0; 3],
            false,
            &[1.0; 4],
            false,
            false,
            &mut c,
            Par::Seq,
        );
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// Not a test: `cargo test --release -p aekit --lib -- --ignored --nocapture gemm_shapes`.
    #[test]
    #[ignore]
    fn gemm_shapes() {
        for &(m, n, k, ta, tb) in &[
            (784, 196, 10000, true, false),
            (784, 196, 10000, false, false),
            (196, 784, 10000, true, false),
            (10000, 196, 784, false, false),
            (10000, 784, 196, false, true),
        ] {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; k * n];
            let mut c = vec![0.0f32; m * n];
            for par in [Par::Seq, Par::Threads(2)] {
                gemm(m, n, k, 1.0, &a, ta, &b, tb, false, &mut c, par);
                let t = std::time::Instant::now();
                for _ in 0..3 {
                    gemm(m, n, k, 1.0, &a, ta, &b, tb, false, &mut c, par);
                }
                let gf = 3.0 * 2.0 * (m * n * k) as f64 / t.elapsed().as_secs_f64() / 1e9;
                println!("m={m} n={n} k={k} ta={ta} tb={tb} {par:?}: {gf:.1} GFLOP/s");
            }
        }
    }
}
