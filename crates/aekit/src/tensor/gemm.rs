//! The one door to matrix multiplication: a safe function over row-major
//! slices, dims, transpose flags and accumulate, backed by faer. No other
//! module multiplies matrices, so a faster kernel or a route around a slow
//! faer shape changes one place. A left operand that is mostly zeros (the
//! pixels of MNIST-like inputs) goes to [`super::spmm`]'s kernels instead.

use super::{spmm, Real};
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
    if sparse_left(m, n, k, alpha, a, trans_a, b, trans_b, accumulate, c, par) {
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
    match par {
        Par::Seq => faer::linalg::matmul::matmul(c, accum, a, b, alpha, faer::Par::Seq),
        Par::Threads(t) => match split_for(m, n, k, t) {
            Split::Faer => faer::linalg::matmul::matmul(c, accum, a, b, alpha, par.faer()),
            Split::Columns => by_columns(c, accum, a, b, alpha, t),
            Split::Rows => by_rows(c, accum, a, b, alpha, t),
        },
    }
}

/// Inner dimensions up to which [`gemm_at_b_step`] fuses the product with
/// the step (a minibatch's weight gradient).
pub const STEP_MAX_K: usize = 32;

/// A layer's weight gradient g = aᵀ·b (`a` `[k,m]`, the batch's inputs;
/// `b` `[k,n]`, its output deltas) used at once by a momentum step:
/// v ← β·v + α·g (v ← α·g when `beta` is `None`), θ ← θ + v, v ← μ·v, for
/// `v` and `theta` `[m,n]`. For a thin batch (k ≤ [`STEP_MAX_K`]) and dense
/// inputs each tile of g is stepped as soon as it is summed
/// ([`super::fused`]), threads taking runs of rows; otherwise the product
/// goes through [`gemm`] (sparse inputs by their non-zeros) and the step
/// follows as its own pass. Either way each element is summed in order
/// over the batch, whatever the thread count.
#[allow(clippy::too_many_arguments)]
pub fn gemm_at_b_step(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    v: &mut [f32],
    theta: &mut [f32],
    w: super::fused::StepWrite,
    par: Par,
) {
    use rayon::prelude::*;
    assert_eq!(
        a.len(),
        k * m,
        "gemm_at_b_step: a has {} elements, want {k}x{m}",
        a.len()
    );
    assert_eq!(
        b.len(),
        k * n,
        "gemm_at_b_step: b has {} elements, want {k}x{n}",
        b.len()
    );
    assert_eq!(
        v.len(),
        m * n,
        "gemm_at_b_step: v has {} elements, want {m}x{n}",
        v.len()
    );
    assert_eq!(
        theta.len(),
        m * n,
        "gemm_at_b_step: θ has {} elements, want {m}x{n}",
        theta.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    let sparse = spmm::worth(m, n, k) && k <= spmm::MAX_ROWS && spmm::looks_sparse(a, m);
    if k == 0 || k > STEP_MAX_K || sparse {
        if let Some(beta) = w.write.beta.filter(|&b| b != 1.0) {
            super::par::chunks(v, |_, c| super::simd::scale(c, beta));
        }
        gemm(
            m,
            n,
            k,
            w.write.alpha,
            a,
            true,
            b,
            false,
            w.write.beta.is_some(),
            v,
            par,
        );
        super::par::chunks2(theta, v, |_, t, v| super::simd::add_then_scale(t, v, w.mu));
        return;
    }
    // aᵀ row-major: a tile's rows of it side by side.
    let mut at = vec![0.0f32; m * k];
    for (kk, row) in a.chunks_exact(m).enumerate() {
        for (i, &x) in row.iter().enumerate() {
            at[i * k + kk] = x;
        }
    }
    let threads = match par {
        Par::Seq => 1,
        Par::Threads(t) => t.min(m / MIN_SLAB).max(1),
    };
    let rows = m.div_ceil(threads).div_ceil(4) * 4;
    let run =
        |((v, t), at): ((&mut [f32], &mut [f32]), &[f32])| super::fused::at_b_step(v, t, at, b, n, k, w);
    if threads == 1 {
        run(((v, theta), &at));
    } else {
        v.par_chunks_mut(rows * n)
            .zip(theta.par_chunks_mut(rows * n))
            .zip(at.par_chunks(rows * k))
            .for_each(run);
    }
}

/// The non-zeros of a left operand that many products share, indexed once
/// (the data set of a full-batch cost, multiplied in every evaluation):
/// [`gemm_indexed`] then multiplies by them through [`spmm::Panels`]. It
/// knows the slice it was built from, and a product of any other slice goes
/// to [`gemm`]. It knows that slice by its address and length only, so its
/// user keeps the slice alive and unchanged while the index is in use
/// (crate-internal for that reason: a fit's inputs).
#[derive(Debug, Clone, Default)]
pub(crate) struct SparseIndex {
    at: usize,
    len: usize,
    panels: Option<spmm::Panels>,
}

impl SparseIndex {
    /// `a` (`[rows, cols]`, row-major) indexed when it is f32, the sparse
    /// path is on and [`spmm::looks_sparse`] finds it mostly zeros; an index
    /// that sends every product to [`gemm`] otherwise.
    pub fn new<T: Real>(a: &[T], rows: usize, cols: usize) -> SparseIndex {
        assert_eq!(a.len(), rows * cols);
        let panels = as_f32(a)
            .filter(|a| spmm::enabled() && spmm::looks_sparse(a, cols))
            .map(|a| spmm::Panels::build(a, rows, cols));
        SparseIndex {
            at: a.as_ptr() as usize,
            len: a.len(),
            panels,
        }
    }

    /// Whether products go through the index.
    #[cfg(test)]
    pub fn is_sparse(&self) -> bool {
        self.panels.is_some()
    }

    fn of<T>(&self, a: &[T]) -> Option<&spmm::Panels> {
        self.panels
            .as_ref()
            .filter(|_| a.as_ptr() as usize == self.at && a.len() == self.len)
    }
}

/// [`gemm`] with `b` not transposed and `a` the operand `index` was built
/// from (`[m, k]`, or `[k, m]` when `trans_a`): by its non-zeros when the
/// index holds them, `a·b` by blocks of output rows, `aᵀ·b` by panels of
/// output rows, each on one thread, so that the result is the same for any
/// thread count.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_indexed<T: Real>(
    index: &SparseIndex,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: &[T],
    trans_a: bool,
    b: &[T],
    accumulate: bool,
    c: &mut [T],
    par: Par,
) {
    use rayon::prelude::*;
    let (Some(pan), Some(bf), Some(cf)) = (index.of(a), as_f32(b), as_f32_mut(c)) else {
        return gemm(m, n, k, alpha, a, trans_a, b, false, accumulate, c, par);
    };
    let (rows, cols) = if trans_a { (k, m) } else { (m, k) };
    assert!(
        pan.rows() == rows && pan.cols() == cols,
        "gemm_indexed: the index is {}×{}, a is {rows}×{cols}",
        pan.rows(),
        pan.cols()
    );
    assert_eq!(
        b.len(),
        k * n,
        "gemm_indexed: b has {} elements, want {k}x{n}",
        b.len()
    );
    assert_eq!(
        cf.len(),
        m * n,
        "gemm_indexed: c has {} elements, want {m}x{n}",
        cf.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    let alpha = alpha.f64() as f32;
    if !trans_a {
        let block = |i: usize, c: &mut [f32]| {
            let r0 = i * spmm::ROW_BLOCK;
            if alpha == 1.0 && !accumulate {
                c.fill(0.0);
                spmm::panels_times_dense(c, pan, r0, bf, n);
            } else {
                let mut s = vec![0.0f32; c.len()];
                spmm::panels_times_dense(&mut s, pan, r0, bf, n);
                for (c, s) in c.iter_mut().zip(s) {
                    *c = if accumulate { *c + alpha * s } else { alpha * s };
                }
            }
        };
        match par {
            Par::Seq => cf
                .chunks_mut(spmm::ROW_BLOCK * n)
                .enumerate()
                .for_each(|(i, c)| block(i, c)),
            Par::Threads(_) => cf
                .par_chunks_mut(spmm::ROW_BLOCK * n)
                .enumerate()
                .for_each(|(i, c)| block(i, c)),
        }
    } else {
        if !accumulate {
            cf.fill(0.0);
        }
        transpose_by_columns(pan, cf, bf, n, alpha, par);
    }
}

/// `c += α·aᵀ·b` for `a` in `pan` (`c` `[a's columns, n]`, `b` `[a's rows,
/// n]`), each thread a run of `c`'s rows holding about equal shares of the
/// non-zeros; each element is summed over `a`'s rows in order, whatever the
/// split.
fn transpose_by_columns(pan: &spmm::Panels, c: &mut [f32], b: &[f32], n: usize, alpha: f32, par: Par) {
    use rayon::prelude::*;
    let groups = match par {
        Par::Seq => 1,
        Par::Threads(t) => t.max(1),
    };
    let bounds = pan.column_groups(groups);
    let mut runs = Vec::with_capacity(bounds.len());
    let mut rest = c;
    for w in bounds.windows(2) {
        let (run, tail) = rest.split_at_mut((w[1] - w[0]) * n);
        runs.push((w[0], run));
        rest = tail;
    }
    let run = |(j0, c): (usize, &mut [f32])| spmm::columns_transpose_times(c, pan, j0, b, n, alpha);
    match par {
        Par::Seq => runs.into_iter().for_each(run),
        Par::Threads(_) => runs.into_par_iter().for_each(run),
    }
}

/// `f32` slices as themselves; `None` for any other scalar (the sparse
/// kernels are written for f32, the gradient checks' f64 stays dense).
#[allow(unsafe_code)]
fn as_f32<T: Real>(s: &[T]) -> Option<&[f32]> {
    // SAFETY: T is f32 whenever the type ids agree.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

#[allow(unsafe_code)]
fn as_f32_mut<T: Real>(s: &mut [T]) -> Option<&mut [f32]> {
    // SAFETY: as above; the borrow is moved into the result.
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

/// The product through [`spmm`] when `op(a)` is mostly zeros, has at most
/// [`spmm::MAX_ROWS`] rows of examples, and `b` is not transposed (`x·W`
/// and `xᵀ·δ` of a first layer); `false`, having done nothing, otherwise.
/// Threads take slabs of the output's rows (`x·W`) or bands of its
/// columns (`xᵀ·δ`).
#[allow(clippy::too_many_arguments)]
fn sparse_left<T: Real>(
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
) -> bool {
    use rayon::prelude::*;
    if trans_b || !spmm::worth(m, n, k) {
        return false;
    }
    let (Some(a), Some(b), Some(c)) = (as_f32(a), as_f32(b), as_f32_mut(c)) else {
        return false;
    };
    let alpha = alpha.f64() as f32;
    let threads = match par {
        Par::Seq => 1,
        Par::Threads(t) => t.min(m.max(k) / 16).max(1),
    };
    // The first rows of `a` decide (whatever the split), each slab then
    // indexes the rows it needs.
    let (sparse_rows, sparse_cols) = if trans_a { (k, m) } else { (m, k) };
    if sparse_rows > spmm::MAX_ROWS {
        return false;
    }
    if !spmm::looks_sparse(a, sparse_cols) {
        return false;
    }
    if !trans_a {
        let rows = m.div_ceil(threads);
        c.par_chunks_mut(rows * n)
            .zip(a.par_chunks(rows * k))
            .for_each(|(c, a)| {
                let csr = spmm::Csr::build(a, c.len() / n, k);
                spmm::rows_times_dense(c, &csr, b, n, alpha, accumulate);
            });
    } else {
        // `a` indexed by its columns (the output's rows), in row order.
        let index = spmm::Panels::by_columns(a, sparse_rows, sparse_cols, threads > 1);
        if !accumulate {
            c.fill(0.0);
        }
        transpose_by_columns(&index, c, b, n, alpha, Par::from_threads(threads));
    }
    true
}

/// How a threaded product is shared out: by faer, or cut by the door into
/// one slab of the output per thread (see [`split_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    Faer,
    Columns,
    Rows,
}

/// Output rows up to which a product counts as short (the minibatch's
/// forward and backward products at batch 20–100).
const SHORT_M: usize = 128;
/// Inner dimension up to which a product counts as thin (the weight
/// gradients at batch 20).
const THIN_K: usize = 32;
/// Rows or columns each slab gets at least.
const MIN_SLAB: usize = 64;

/// faer threads short, thin and long-inner products poorly; the door cuts
/// those into slabs. Measured as GFLOP/s, faer's threads against the slabs
/// (the ignored speed test below): on 16 Xeon cores M = 20, N = 1000,
/// K = 784: 245 against 552; M = 100, N = 784, K = 500 with b transposed:
/// 361 against 782; M = 196, N = 784, K = 10,000 (a sparse-autoencoder
/// gradient): 387 against 596; M = N = 1000, K = 20: 320 against 557 in
/// rows (376 in columns), and on 2 Zen 5 cores faer's two threads ran
/// slower than one (91 against 100), the slabs 143. Square-ish products
/// (M = 784, N = 500, K = 100: faer 713, slabs 421–643) and tall ones
/// (M = 10,000: faer 1,070–1,190) stay with faer. Thin and long-inner
/// products are cut along their longer side.
fn split_for(m: usize, n: usize, k: usize, threads: usize) -> Split {
    let cols = n >= 2 * MIN_SLAB;
    let rows = m >= 2 * MIN_SLAB;
    if threads <= 1 {
        Split::Faer
    } else if m <= SHORT_M && cols {
        Split::Columns
    } else if k <= THIN_K && (cols || rows) {
        if rows && m >= n {
            Split::Rows
        } else if cols {
            Split::Columns
        } else {
            Split::Rows
        }
    } else if k >= 4 * m.max(n) && (cols || rows) {
        // A long inner dimension: cut the longer side.
        if cols && n >= m {
            Split::Columns
        } else if rows {
            Split::Rows
        } else {
            Split::Columns
        }
    } else {
        Split::Faer
    }
}

/// `c = accum(c) + α·a·b` with the columns of `c` and `b` cut into one
/// slab per thread (up to `threads`, each at least [`MIN_SLAB`] wide and a
/// multiple of 16), each slab a sequential faer product on the rayon pool.
fn by_columns<T: Real>(
    c: MatMut<'_, T>,
    accum: Accum,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    alpha: T,
    threads: usize,
) {
    use rayon::prelude::*;
    let n = c.ncols();
    let slabs = threads.min(n / MIN_SLAB).max(1);
    let width = n.div_ceil(slabs).div_ceil(16) * 16;
    let mut parts = Vec::with_capacity(slabs);
    let (mut rest, mut start) = (c, 0);
    while start < n {
        let w = width.min(n - start);
        let (left, right) = rest.split_at_col_mut(w);
        parts.push((start, w, left));
        rest = right;
        start += w;
    }
    parts.into_par_iter().for_each(|(start, w, c)| {
        faer::linalg::matmul::matmul(c, accum, a, b.subcols(start, w), alpha, faer::Par::Seq);
    });
}

/// As [`by_columns`], cutting the rows of `c` and `a` instead: the slabs of
/// cᵀ = bᵀ·aᵀ by its columns.
fn by_rows<T: Real>(
    c: MatMut<'_, T>,
    accum: Accum,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    alpha: T,
    threads: usize,
) {
    by_columns(
        c.transpose_mut(),
        accum,
        b.transpose(),
        a.transpose(),
        alpha,
        threads,
    );
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
    fn products_cut_into_slabs_match_one_thread_bit_for_bit() {
        // Products cut into slabs of the output: every element is the same
        // sequential dot product as on one thread.
        let mut rng = crate::tensor::rng::seeded(9);
        for &(m, n, k, split) in &[
            (20, 1000, 784, Split::Columns),
            (7, 130, 33, Split::Columns),
            (100, 784, 500, Split::Columns),
            (128, 200, 1, Split::Columns),
            (1000, 300, 20, Split::Rows),
            (300, 1000, 20, Split::Columns),
            (196, 784, 3200, Split::Columns),
            (784, 196, 3200, Split::Rows),
            (131, 20, 600, Split::Rows),
        ] {
            assert_eq!(split_for(m, n, k, 3), split, "m={m} n={n} k={k}");
            for flags in 0..8 {
                let (ta, tb, acc) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
                let a = random(m * k, &mut rng);
                let b = random(k * n, &mut rng);
                let c0 = random(m * n, &mut rng);
                let (mut one, mut three) = (c0.clone(), c0.clone());
                gemm(m, n, k, 0.5, &a, ta, &b, tb, acc, &mut one, Par::Seq);
                gemm(m, n, k, 0.5, &a, ta, &b, tb, acc, &mut three, Par::Threads(3));
                assert_eq!(one, three, "m={m} n={n} k={k} ta={ta} tb={tb} acc={acc}");
            }
        }
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

    /// Not a test: `cargo test --release -p aekit --lib -- --ignored --nocapture small_m`.
    /// The minibatch products (M = 20 and 100) on all cores, faer's own
    /// threading against the split over columns, best of 20.
    #[test]
    #[ignore]
    fn small_m_products_faer_threads_against_column_split() {
        let t = std::thread::available_parallelism().map_or(1, |n| n.get());
        // The minibatch products (M = 20 or 100), then for comparison the
        // weight gradients (K = the batch) and the sparse exercise's (K = 10k),
        // which the door leaves to faer.
        for &(m, n, k, ta, tb) in &[
            (20, 1000, 784, false, false),
            (20, 1000, 1000, false, false),
            (20, 784, 1000, false, true),
            (100, 500, 784, false, false),
            (100, 784, 500, false, true),
            (100, 784, 500, false, false),
            (784, 500, 100, true, false),
            (1000, 1000, 20, true, false),
            (196, 784, 10000, true, false),
            (784, 196, 10000, true, false),
            (10000, 196, 784, false, false),
            (10000, 784, 196, false, false),
            (10000, 196, 784, false, true),
        ] {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; k * n];
            let mut c = vec![0.0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let mut time = |f: &mut dyn FnMut(&mut [f32])| {
                let mut best = f64::MAX;
                for _ in 0..20 {
                    let s = std::time::Instant::now();
                    f(&mut c);
                    best = best.min(s.elapsed().as_secs_f64());
                }
                flops / best / 1e9
            };
            let b_ref = if tb {
                MatRef::from_row_major_slice(&b, n, k).transpose()
            } else {
                MatRef::from_row_major_slice(&b, k, n)
            };
            let a_ref = if ta {
                MatRef::from_row_major_slice(&a, k, m).transpose()
            } else {
                MatRef::from_row_major_slice(&a, m, k)
            };
            let one = time(&mut |c| gemm(m, n, k, 1.0, &a, ta, &b, tb, false, c, Par::Seq));
            let faer_t = time(&mut |c| {
                let c = MatMut::from_row_major_slice_mut(c, m, n);
                faer::linalg::matmul::matmul(c, Accum::Replace, a_ref, b_ref, 1.0, faer::Par::rayon(t))
            });
            let cols = time(&mut |c| {
                let c = MatMut::from_row_major_slice_mut(c, m, n);
                by_columns(c, Accum::Replace, a_ref, b_ref, 1.0, t)
            });
            let rows = time(&mut |c| {
                let c = MatMut::from_row_major_slice_mut(c, m, n);
                by_rows(c, Accum::Replace, a_ref, b_ref, 1.0, t)
            });
            let door = time(&mut |c| gemm(m, n, k, 1.0, &a, ta, &b, tb, false, c, Par::Threads(t)));
            println!(
                "m={m} n={n} k={k} ta={ta} tb={tb}: 1 thread {one:.1}, {t} threads: faer {faer_t:.1}, \
                 columns {cols:.1}, rows {rows:.1}, the door ({:?}) {door:.1} GFLOP/s",
                split_for(m, n, k, t)
            );
        }
    }
}
