//! Products whose left operand is mostly zeros: MNIST-like inputs (81% of
//! the pixels are 0, more after masking noise) in the first layer's forward
//! product `x·W` and weight gradient `xᵀ·δ` of a minibatch. [`super::gemm::gemm`] hands
//! them here when it finds few enough non-zeros; the work then grows with
//! the non-zeros instead of the whole matrix.
//!
//! The non-zeros of the sparse operand are gathered once per product (a
//! compressed-row index), or once for many products ([`Panels`], a data set
//! that every evaluation of a full-batch cost multiplies); the kernels then
//! add rows of the dense operand in column blocks of [`BLOCK`] that stay in
//! registers, compiled for
//! AVX-512, AVX2 + FMA and portably ([`super::simd`]'s `multiversion!`;
//! no fused multiply-add, so every instruction set gives the same bits).
//! Every output element is summed over the inner dimension in order,
//! whichever thread computes it, so a result never depends on the thread
//! count.
#![allow(unsafe_code)]

use super::simd::multiversion;
use std::sync::OnceLock;

/// Columns of the output that one pass keeps in registers (8 AVX2 or 4
/// AVX-512 registers of accumulators).
const BLOCK: usize = 64;

/// At most this fraction of non-zeros for the sparse path: a non-zero
/// costs about twice what a dense product spends per element (its row of
/// the dense operand comes from L2, not from registers), measured on
/// 784-wide MNIST batches (see `docs/results/two-cores.md`).
const MAX_DENSITY: f64 = 0.30;

/// The most rows (examples) of a sparse operand that [`super::gemm::gemm`]
/// indexes for one product: a minibatch's. Over a whole data set (the
/// sparse exercise's 10,000 MNIST images) rebuilding the index from 31 MB
/// of inputs for every product gained nothing in whole runs; such an
/// operand is indexed once for all its products ([`Panels`], through
/// [`super::gemm::gemm_indexed`]).
pub const MAX_ROWS: usize = 4096;

/// Rows of the sparse operand that decide whether it is sparse.
const PROBE_ROWS: usize = 64;

/// The output is at least this wide (shorter rows do not fill a vector).
const MIN_N: usize = 16;

/// Whether the sparse path may be taken: `AEKIT_SPARSE=off` turns it off
/// for the whole process (to time and test the dense path on the same data);
/// a value other than `on`/`off`/`1`/`0` is ignored with a note on stderr,
/// as `AEKIT_ISA` does.
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| match std::env::var("AEKIT_SPARSE") {
        Ok(s) => parse_switch(&s).unwrap_or_else(|| {
            eprintln!("note: AEKIT_SPARSE={s} is not on or off; the sparse path stays on");
            true
        }),
        Err(_) => true,
    })
}

/// `on`/`1` and `off`/`0`.
fn parse_switch(s: &str) -> Option<bool> {
    match s.trim() {
        "on" | "1" => Some(true),
        "off" | "0" => Some(false),
        _ => None,
    }
}

/// A matrix's non-zeros by rows (compressed sparse rows).
#[derive(Debug, Default)]
pub struct Csr {
    /// Row `r`'s entries are `start[r]..start[r + 1]`.
    pub start: Vec<usize>,
    pub col: Vec<u32>,
    pub val: Vec<f32>,
}

impl Csr {
    /// The non-zeros of row-major `a` (`rows × cols`).
    pub fn build(a: &[f32], rows: usize, cols: usize) -> Csr {
        assert!(a.len() == rows * cols && cols <= u32::MAX as usize);
        let mut m = Csr {
            start: Vec::with_capacity(rows + 1),
            col: Vec::new(),
            val: Vec::new(),
        };
        m.start.push(0);
        let mut n = 0;
        for row in a.chunks_exact(cols) {
            // Every entry is written and the count moves on past the
            // non-zeros (no branch per entry).
            m.col.resize(n + cols, 0);
            m.val.resize(n + cols, 0.0);
            let (col, val) = (&mut m.col[n..], &mut m.val[n..]);
            let mut here = 0;
            for (j, &v) in row.iter().enumerate() {
                col[here] = j as u32;
                val[here] = v;
                here += (v != 0.0) as usize;
            }
            n += here;
            m.start.push(n);
        }
        m.col.truncate(n);
        m.val.truncate(n);
        m
    }

    /// Rows of the matrix.
    pub fn rows(&self) -> usize {
        self.start.len() - 1
    }

    fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let s = self.start[r]..self.start[r + 1];
        (&self.col[s.clone()], &self.val[s])
    }
}

/// Whether row-major `a` (rows of `cols`) is sparse enough for the
/// kernels here, judged by its first [`PROBE_ROWS`] rows alone, so that the
/// choice never depends on how threads split the rest.
pub fn looks_sparse(a: &[f32], cols: usize) -> bool {
    if cols == 0 || a.is_empty() {
        return false;
    }
    let probe = &a[..a.len().min(PROBE_ROWS * cols)];
    // A dense first row settles it at once (hidden activations, weights).
    let first = probe[..cols].iter().filter(|&&v| v != 0.0).count();
    if first as f64 > 2.0 * MAX_DENSITY * cols as f64 {
        return false;
    }
    let nnz = probe.iter().filter(|&&v| v != 0.0).count();
    nnz as f64 <= MAX_DENSITY * probe.len() as f64
}

/// Whether a product of these dims is worth the sparse path at all.
pub fn worth(m: usize, n: usize, k: usize) -> bool {
    enabled() && n >= MIN_N && m * n * k >= 1 << 16
}

/// Row `r` of `csr` times the columns `c0..c0 + W` of `b` (`[k, n]`).
#[inline(always)]
fn row_block<const W: usize>(csr: &Csr, r: usize, b: &[f32], n: usize, c0: usize) -> [f32; W] {
    let (cols, vals) = csr.row(r);
    let mut s = [0.0f32; W];
    for (&j, &v) in cols.iter().zip(vals) {
        let brow: &[f32; W] = b[j as usize * n + c0..][..W].try_into().unwrap();
        for l in 0..W {
            s[l] += v * brow[l];
        }
    }
    s
}

multiversion! {
    /// `c = (acc ? c : 0) + α·a·b` for `c` `[rows, n]` with `a`'s rows in
    /// `csr` and `b` row-major `[k, n]` (`n ≥ 8`). Column blocks of
    /// [`BLOCK`], then of 8, the last of which may start inside the one
    /// before and writes only its new columns.
    pub fn rows_times_dense(c: &mut [f32], csr: &Csr, b: &[f32], n: usize, alpha: f32, acc: bool) -> () {
        assert!(n >= 8 && c.len() == csr.rows() * n);
        let rows = csr.rows();
        let mut c0 = 0;
        while c0 + BLOCK <= n {
            for r in 0..rows {
                let s = row_block::<BLOCK>(csr, r, b, n, c0);
                finish(&mut c[r * n + c0..][..BLOCK], &s, alpha, acc);
            }
            c0 += BLOCK;
        }
        while c0 < n {
            let start = c0.min(n - 8);
            let skip = c0 - start;
            for r in 0..rows {
                let s = row_block::<8>(csr, r, b, n, start);
                finish(&mut c[r * n + c0..r * n + start + 8], &s[skip..], alpha, acc);
            }
            c0 = start + 8;
        }
    }
}

#[inline(always)]
fn finish(out: &mut [f32], s: &[f32], alpha: f32, acc: bool) {
    if acc {
        for (o, &s) in out.iter_mut().zip(s) {
            *o += alpha * s;
        }
    } else {
        for (o, &s) in out.iter_mut().zip(s) {
            *o = alpha * s;
        }
    }
}

/// Columns of the sparse operand per [`Panels`] panel: a panel's rows of
/// the dense operand (`PANEL` × 196 floats for the sparse exercise, 25 KB)
/// stay in L1 while the rows of a block pass over them.
pub const PANEL: usize = 32;

/// Rows of the sparse operand per block of [`panels_times_dense`]: the
/// block's output rows (`ROW_BLOCK` × 196 floats, 50 KB) stay in L2 while
/// the panels pass over them.
pub const ROW_BLOCK: usize = 64;

/// Rows of the sparse operand per block of its by-column index: a block's
/// rows of the dense operand (32 × 196 floats, 25 KB) stay in L1 while
/// [`columns_transpose_times`] goes through a thread's output rows (256
/// rows, from L2, ran 2× slower on 2 threads).
pub const COLUMN_BLOCK: usize = 32;

/// A matrix's non-zeros indexed twice, for the two products with it that
/// many evaluations share (a whole data set, multiplied in every
/// evaluation of a full-batch cost), built once: by panels of [`PANEL`]
/// columns and each panel by rows (for `a·b`), and by blocks of
/// [`COLUMN_BLOCK`] rows and each block by columns (for `aᵀ·b`).
#[derive(Debug, Clone)]
pub struct Panels {
    rows: usize,
    cols: usize,
    /// Panel `p`'s row `r`: entries `start[p·(rows + 1) + r]..` to the next.
    start: Vec<usize>,
    /// Each entry's column within the whole matrix.
    col: Vec<u32>,
    val: Vec<f32>,
    /// Row block `q`'s column `j`: entries `t_start[q·(cols + 1) + j]..`
    /// to the next, in row order.
    t_start: Vec<usize>,
    /// Each entry's row within the whole matrix.
    t_row: Vec<u32>,
    t_val: Vec<f32>,
    /// Non-zeros of each column.
    col_nnz: Vec<usize>,
}

impl Panels {
    /// The non-zeros of row-major `a` (`rows × cols`), both indexes.
    pub fn build(a: &[f32], rows: usize, cols: usize) -> Panels {
        let mut m = Panels::by_columns(a, rows, cols, false);
        let panels = cols.div_ceil(PANEL);
        m.start.reserve(panels * (rows + 1));
        for p in 0..panels {
            let lo = p * PANEL;
            let hi = (lo + PANEL).min(cols);
            m.start.push(m.col.len());
            for row in a.chunks_exact(cols.max(1)).take(rows) {
                for (j, &v) in row[lo..hi].iter().enumerate() {
                    if v != 0.0 {
                        m.col.push((lo + j) as u32);
                        m.val.push(v);
                    }
                }
                m.start.push(m.col.len());
            }
        }
        m
    }

    /// The by-columns index alone (for `aᵀ·b` only: a minibatch's weight
    /// gradient, indexed for one product); its row blocks are indexed over
    /// the threads when `parallel`.
    pub fn by_columns(a: &[f32], rows: usize, cols: usize, parallel: bool) -> Panels {
        use rayon::prelude::*;
        assert!(a.len() == rows * cols && cols <= u32::MAX as usize && rows <= u32::MAX as usize);
        let width = cols.max(1);
        let blocks: Vec<&[f32]> = a
            .chunks(COLUMN_BLOCK * width)
            .take(rows.div_ceil(COLUMN_BLOCK))
            .collect();
        let count = |b: &&[f32]| b.iter().filter(|&&v| v != 0.0).count();
        let counts: Vec<usize> = if parallel {
            blocks.par_iter().map(count).collect()
        } else {
            blocks.iter().map(count).collect()
        };
        let nnz: usize = counts.iter().sum();
        let mut t_start = vec![0usize; blocks.len() * (cols + 1)];
        let mut t_row = vec![0u32; nnz];
        let mut t_val = vec![0.0f32; nnz];
        // Each block its own pieces of the three arrays.
        let mut jobs = Vec::with_capacity(blocks.len());
        let (mut st, mut tr, mut tv) = (&mut t_start[..], &mut t_row[..], &mut t_val[..]);
        let mut filled = 0;
        for (q, (&block, &c)) in blocks.iter().zip(&counts).enumerate() {
            let (s0, s1) = st.split_at_mut(cols + 1);
            let (r0, r1) = tr.split_at_mut(c);
            let (v0, v1) = tv.split_at_mut(c);
            jobs.push((q, block, filled, s0, r0, v0));
            (st, tr, tv) = (s1, r1, v1);
            filled += c;
        }
        let index = |(q, block, filled, start, row, val): BlockJob<'_>| {
            // Count each column's entries, then place them in row order.
            let mut next = vec![0usize; cols + 1];
            for r in block.chunks_exact(width) {
                for (j, &v) in r.iter().enumerate() {
                    next[j + 1] += (v != 0.0) as usize;
                }
            }
            for j in 0..cols {
                next[j + 1] += next[j];
            }
            start.iter_mut().zip(&next).for_each(|(s, &n)| *s = filled + n);
            for (r, rv) in block.chunks_exact(width).enumerate() {
                for (j, &v) in rv.iter().enumerate() {
                    if v != 0.0 {
                        row[next[j]] = (q * COLUMN_BLOCK + r) as u32;
                        val[next[j]] = v;
                        next[j] += 1;
                    }
                }
            }
        };
        if parallel {
            jobs.into_par_iter().for_each(index);
        } else {
            jobs.into_iter().for_each(index);
        }
        let mut col_nnz = vec![0usize; cols];
        for s in t_start.chunks_exact(cols + 1) {
            for (n, w) in col_nnz.iter_mut().zip(s.windows(2)) {
                *n += w[1] - w[0];
            }
        }
        Panels {
            rows,
            cols,
            start: Vec::new(),
            col: Vec::new(),
            val: Vec::new(),
            t_start,
            t_row,
            t_val,
            col_nnz,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Panels of [`PANEL`] columns (the last may be narrower).
    pub fn panels(&self) -> usize {
        self.cols.div_ceil(PANEL)
    }

    /// Non-zeros held.
    pub fn nnz(&self) -> usize {
        self.t_val.len()
    }

    /// Row `r`'s entries in panel `p`.
    #[inline(always)]
    fn row(&self, p: usize, r: usize) -> (&[u32], &[f32]) {
        let at = p * (self.rows + 1) + r;
        let s = self.start[at]..self.start[at + 1];
        (&self.col[s.clone()], &self.val[s])
    }

    /// Column `j`'s entries in row block `q`.
    #[inline(always)]
    fn column(&self, q: usize, j: usize) -> (&[u32], &[f32]) {
        let at = q * (self.cols + 1) + j;
        let s = self.t_start[at]..self.t_start[at + 1];
        (&self.t_row[s.clone()], &self.t_val[s])
    }

    /// Bounds `0 = g₀ < … ≤ cols` of `groups` runs of columns holding about
    /// equal shares of the non-zeros: the output rows of `aᵀ·b` that each
    /// thread computes.
    pub fn column_groups(&self, groups: usize) -> Vec<usize> {
        let per_col = &self.col_nnz;
        let total = self.nnz().max(1);
        let mut bounds = vec![0];
        let mut seen = 0;
        for (j, &c) in per_col.iter().enumerate() {
            seen += c;
            if bounds.len() < groups && seen * groups >= total * bounds.len() {
                bounds.push(j + 1);
            }
        }
        bounds.push(self.cols);
        bounds.dedup();
        bounds
    }
}

/// One row block's share of [`Panels::by_columns`]: its number, rows, first
/// entry, and its pieces of the starts, rows and values.
type BlockJob<'a> = (
    usize,
    &'a [f32],
    usize,
    &'a mut [usize],
    &'a mut [u32],
    &'a mut [f32],
);

/// `out[c0..c0 + W] += Σ (α·v)·b[j, c0..c0 + W]` over the entries `(j, v)`,
/// the sum kept in registers and added in entry order.
#[inline(always)]
fn add_entries<const W: usize>(
    out: &mut [f32],
    c0: usize,
    idx: &[u32],
    vals: &[f32],
    b: &[f32],
    n: usize,
    alpha: f32,
) {
    let o: &mut [f32; W] = (&mut out[c0..c0 + W]).try_into().unwrap();
    let mut s = *o;
    for (&j, &v) in idx.iter().zip(vals) {
        let av = alpha * v;
        let brow: &[f32; W] = b[j as usize * n + c0..][..W].try_into().unwrap();
        for l in 0..W {
            s[l] += av * brow[l];
        }
    }
    *o = s;
}

/// `orow += Σ (α·v)·b[j, ..]` over the entries `(j, v)`: column blocks of
/// [`BLOCK`], then 8, then 4, then what is left.
#[inline(always)]
fn add_rows_of(orow: &mut [f32], idx: &[u32], vals: &[f32], b: &[f32], n: usize, alpha: f32) {
    let mut c0 = 0;
    while c0 + BLOCK <= n {
        add_entries::<BLOCK>(orow, c0, idx, vals, b, n, alpha);
        c0 += BLOCK;
    }
    while c0 + 8 <= n {
        add_entries::<8>(orow, c0, idx, vals, b, n, alpha);
        c0 += 8;
    }
    if c0 + 4 <= n {
        add_entries::<4>(orow, c0, idx, vals, b, n, alpha);
        c0 += 4;
    }
    for c in c0..n {
        let mut s = orow[c];
        for (&j, &v) in idx.iter().zip(vals) {
            s += (alpha * v) * b[j as usize * n + c];
        }
        orow[c] = s;
    }
}

multiversion! {
    /// Rows `r0..r0 + out.len() / n` of `a·b` added into `out` (`[rows, n]`,
    /// zeros for the product alone) for `a` in `pan` and `b` row-major
    /// `[cols, n]`, panel by panel over the block's rows. Each output
    /// element adds its row's non-zeros in column order, as
    /// [`rows_times_dense`] does.
    pub fn panels_times_dense(out: &mut [f32], pan: &Panels, r0: usize, b: &[f32], n: usize) -> () {
        assert!(n > 0 && out.len().is_multiple_of(n) && b.len() == pan.cols * n);
        assert!(!pan.start.is_empty() || pan.cols == 0, "an index by columns only");
        let rows = out.len() / n;
        assert!(r0 + rows <= pan.rows);
        for p in 0..pan.panels() {
            for (r, orow) in out.chunks_exact_mut(n).enumerate() {
                let (cols, vals) = pan.row(p, r0 + r);
                if !cols.is_empty() {
                    add_rows_of(orow, cols, vals, b, n, 1.0);
                }
            }
        }
    }
}

multiversion! {
    /// Rows `j0..j0 + out.len() / n` of `α·aᵀ·b` added into `out`, for `a`
    /// in `pan` and `b` row-major `[a's rows, n]`: row block by row block,
    /// each output row gathers the rows of `b` that its column of `a`
    /// names, so each output element adds over the rows of `a` in order.
    pub fn columns_transpose_times(out: &mut [f32], pan: &Panels, j0: usize, b: &[f32], n: usize, alpha: f32) -> () {
        assert!(n > 0 && out.len().is_multiple_of(n) && b.len() == pan.rows * n);
        assert!(j0 + out.len() / n <= pan.cols);
        for q in 0..pan.rows.div_ceil(COLUMN_BLOCK) {
            for (j, orow) in out.chunks_exact_mut(n).enumerate() {
                let (rows, vals) = pan.column(q, j0 + j);
                if !rows.is_empty() {
                    add_rows_of(orow, rows, vals, b, n, alpha);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::gemm::{gemm, gemm_reference, Par};
    use rand::Rng as _;

    /// A `rows × cols` matrix with about `density` of its entries non-zero.
    fn sparse(rows: usize, cols: usize, density: f64, seed: u64) -> Vec<f32> {
        let mut rng = crate::tensor::rng::seeded(seed);
        (0..rows * cols)
            .map(|_| {
                if rng.random::<f64>() < density {
                    rng.random_range(-1.0f32..1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn the_switch_reads_on_and_off_and_nothing_else() {
        assert_eq!(parse_switch("off"), Some(false));
        assert_eq!(parse_switch(" 0 "), Some(false));
        assert_eq!(parse_switch("on"), Some(true));
        assert_eq!(parse_switch("1"), Some(true));
        assert_eq!(parse_switch("false"), None);
        assert_eq!(parse_switch(""), None);
    }

    #[test]
    fn the_probe_tells_sparse_from_dense_and_the_index_holds_every_non_zero() {
        let a = [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0];
        assert!(looks_sparse(&a, 4), "2 of 12 non-zero");
        let m = Csr::build(&a, 3, 4);
        assert_eq!(m.start, [0, 1, 1, 2]);
        assert_eq!(m.col, [1, 0]);
        assert_eq!(m.val, [2.0, -1.0]);
        // Half non-zero: over the limit, whether the first row shows it or not.
        assert!(!looks_sparse(&sparse(50, 40, 0.5, 1), 40));
        let mut late = vec![0.0f32; 50 * 40];
        late[40..].iter_mut().for_each(|v| *v = 1.0);
        assert!(!looks_sparse(&late, 40));
        // Past the probe the index takes whatever comes, dense or not.
        let mut tail = vec![0.0f32; 100 * 40];
        tail[80 * 40..].iter_mut().for_each(|v| *v = 1.0);
        assert!(looks_sparse(&tail, 40), "the first 64 rows are zeros");
        let m = Csr::build(&tail, 100, 40);
        assert_eq!(m.col.len(), 20 * 40);
    }

    #[test]
    fn sparse_products_match_the_reference_and_every_thread_count_bit_for_bit() {
        // Shapes of the first layers (batch 20 and 100, the sparse
        // exercise's weight gradient cut down), widths that are and are not
        // multiples of the register block.
        for (i, &(m, n, k)) in [(20, 1000, 784), (100, 196, 784), (784, 196, 300), (300, 70, 130)]
            .iter()
            .enumerate()
        {
            for flags in 0..4 {
                let (ta, acc) = (flags & 1 != 0, flags & 2 != 0);
                let a = sparse(m, k, 0.15, 10 + i as u64);
                let b = sparse(k, n, 1.0, 20 + i as u64);
                let c0 = sparse(m, n, 1.0, 30 + i as u64);
                let (sa_rows, sa_cols) = if ta { (k, m) } else { (m, k) };
                assert!(looks_sparse(&a, sa_cols) && sa_rows <= MAX_ROWS && worth(m, n, k));
                let mut want = c0.clone();
                gemm_reference(m, n, k, 0.5, &a, ta, &b, false, acc, &mut want);
                let mut one = c0.clone();
                gemm(m, n, k, 0.5, &a, ta, &b, false, acc, &mut one, Par::Seq);
                for (x, y) in one.iter().zip(&want) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + k as f32),
                        "{m}×{n}×{k} ta={ta} acc={acc}: {x} vs {y}"
                    );
                }
                for t in [2, 3, 7] {
                    let mut many = c0.clone();
                    gemm(m, n, k, 0.5, &a, ta, &b, false, acc, &mut many, Par::Threads(t));
                    assert_eq!(one, many, "{m}×{n}×{k} ta={ta} acc={acc} on {t} threads");
                }
            }
        }
    }

    #[test]
    fn indexed_products_match_the_reference_for_any_thread_count_and_other_slices_go_dense() {
        use crate::tensor::gemm::{gemm_indexed, SparseIndex};
        // Widths that fill 64-column blocks, 8s, 4s and single columns;
        // rows over several row blocks, columns over several panels.
        for (i, &(rows, cols, n)) in [(150, 70, 196), (300, 33, 13), (5, 100, 64), (70, 40, 3)]
            .iter()
            .enumerate()
        {
            let a = sparse(rows, cols, 0.2, 40 + i as u64);
            let index = SparseIndex::new(&a, rows, cols);
            assert!(index.is_sparse());
            for flags in 0..4 {
                let (ta, acc) = (flags & 1 != 0, flags & 2 != 0);
                let (m, k) = if ta { (cols, rows) } else { (rows, cols) };
                let b = sparse(k, n, 1.0, 50 + i as u64);
                let c0 = sparse(m, n, 1.0, 60 + i as u64);
                for alpha in [1.0f32, 0.5] {
                    let mut want = c0.clone();
                    gemm_reference(m, n, k, alpha, &a, ta, &b, false, acc, &mut want);
                    let mut one = c0.clone();
                    gemm_indexed(&index, m, n, k, alpha, &a, ta, &b, acc, &mut one, Par::Seq);
                    for (x, y) in one.iter().zip(&want) {
                        assert!(
                            (x - y).abs() <= 1e-5 * (1.0 + k as f32),
                            "{m}×{n}×{k} ta={ta} acc={acc} α={alpha}: {x} vs {y}"
                        );
                    }
                    for t in [2, 3, 7] {
                        let mut many = c0.clone();
                        let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
                        pool.install(|| {
                            gemm_indexed(
                                &index,
                                m,
                                n,
                                k,
                                alpha,
                                &a,
                                ta,
                                &b,
                                acc,
                                &mut many,
                                Par::Threads(t),
                            )
                        });
                        assert_eq!(one, many, "{m}×{n}×{k} ta={ta} acc={acc} on {t} threads");
                    }
                    // A copy of `a` is another slice: multiplied densely, right.
                    let copy = a.clone();
                    let mut other = c0.clone();
                    gemm_indexed(&index, m, n, k, alpha, &copy, ta, &b, acc, &mut other, Par::Seq);
                    for (x, y) in other.iter().zip(&want) {
                        assert!((x - y).abs() <= 1e-5 * (1.0 + k as f32));
                    }
                }
            }
        }
        // A dense operand, or f64, is not indexed.
        assert!(!SparseIndex::new(&sparse(80, 30, 0.9, 1), 80, 30).is_sparse());
        assert!(!SparseIndex::new(&[0.0f64; 120], 4, 30).is_sparse());
    }
}

#[cfg(test)]
mod speed {
    use crate::tensor::gemm::{gemm, Par};

    /// Not a test: `cargo test --release -p aekit --lib -- --ignored --nocapture sparse_left`.
    /// The first-layer products on real MNIST rows (81% zeros, 86% after
    /// masking 25%), the sparse path against faer's dense product, best of 20.
    #[test]
    #[ignore]
    fn sparse_left_against_dense_on_mnist() {
        let dir = std::path::Path::new("../../../shared/datasets/mnist");
        let Ok((train, _)) = crate::data::source::read_idx_dir(dir, Some(10)) else {
            println!("skipped: no MNIST at {}", dir.display());
            return;
        };
        let x = &train.x[..10_000 * 784];
        let masked: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| if i % 4 == 1 { 0.0 } else { v })
            .collect();
        let density = |a: &[f32]| a.iter().filter(|&&v| v != 0.0).count() as f64 / a.len() as f64;
        println!("density: MNIST {:.3}, masked {:.3}", density(x), density(&masked));
        // The same values with no zeros, which the door leaves to faer.
        // UNMASKED=1: MNIST's own zeros only.
        let masked = if std::env::var("UNMASKED").is_ok() {
            x.to_vec()
        } else {
            masked
        };
        let filled: Vec<f32> = masked.iter().map(|&v| if v == 0.0 { 1e-30 } else { v }).collect();
        for &(m, n, k, ta, par) in &[
            (20, 1000, 784, false, Par::Seq),
            (784, 1000, 20, true, Par::Seq),
            (100, 500, 784, false, Par::Seq),
            (784, 500, 100, true, Par::Seq),
            (4096, 196, 784, false, Par::Seq),
            (784, 196, 4096, true, Par::Seq),
            (4096, 196, 784, false, Par::Threads(2)),
            (784, 196, 4096, true, Par::Threads(2)),
        ] {
            let b = vec![0.25f32; k * n];
            let mut c = vec![0.0f32; m * n];
            let flops = 2.0 * (m * n * k) as f64;
            let mut time = |a: &[f32]| {
                let mut best = f64::MAX;
                for _ in 0..20 {
                    let s = std::time::Instant::now();
                    gemm(m, n, k, 1.0, a, ta, &b, false, false, &mut c, par);
                    best = best.min(s.elapsed().as_secs_f64());
                }
                best
            };
            let sp = time(&masked[..m * k]);
            let de = time(&filled[..m * k]);
            println!(
                "m={m} n={n} k={k} ta={ta} {par:?}: sparse {:.3} ms, dense {:.3} ms ({:.1} GFLOP/s): {:.2}×",
                sp * 1e3,
                de * 1e3,
                flops / de / 1e9,
                de / sp
            );
        }
    }

    /// Not a test: `cargo test --release -p aekit --lib -- --ignored --nocapture indexed_against`.
    /// The sparse exercise's two products with its inputs (10,000 MNIST
    /// rows, 784 → 196), through an index built once, against faer, best of 10.
    #[test]
    #[ignore]
    fn indexed_against_dense_on_mnist() {
        use crate::tensor::gemm::{gemm_indexed, SparseIndex};
        let dir = std::path::Path::new("../../../shared/datasets/mnist");
        let Ok((train, _)) = crate::data::source::read_idx_dir(dir, Some(10)) else {
            println!("skipped: no MNIST at {}", dir.display());
            return;
        };
        let (m, v, h) = (10_000, 784, 196);
        let x = &train.x[..m * v];
        let t = std::time::Instant::now();
        let index = SparseIndex::new(x, m, v);
        println!(
            "index built in {:.1} ms, sparse: {}",
            t.elapsed().as_secs_f64() * 1e3,
            index.is_sparse()
        );
        let w = vec![0.25f32; v * h];
        let d = vec![0.5f32; m * h];
        let flops = 2.0 * (m * v * h) as f64;
        for par in [Par::Seq, Par::Threads(2)] {
            let best = |f: &mut dyn FnMut()| {
                (0..10)
                    .map(|_| {
                        let s = std::time::Instant::now();
                        f();
                        s.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min)
            };
            let mut c = vec![0.0f32; m * h];
            let de = best(&mut || gemm(m, h, v, 1.0, x, false, &w, false, false, &mut c, par));
            let sp = best(&mut || gemm_indexed(&index, m, h, v, 1.0, x, false, &w, false, &mut c, par));
            println!(
                "x·W {m}×{h}×{v} {par:?}: indexed {:.2} ms, faer {:.2} ms ({:.1} GFLOP/s): {:.2}×",
                sp * 1e3,
                de * 1e3,
                flops / de / 1e9,
                de / sp
            );
            let mut g = vec![0.0f32; v * h];
            let de = best(&mut || gemm(v, h, m, 1.0, x, true, &d, false, true, &mut g, par));
            let sp = best(&mut || gemm_indexed(&index, v, h, m, 1.0, x, true, &d, true, &mut g, par));
            println!(
                "xᵀ·δ {v}×{h}×{m} {par:?}: indexed {:.2} ms, faer {:.2} ms ({:.1} GFLOP/s): {:.2}×",
                sp * 1e3,
                de * 1e3,
                flops / de / 1e9,
                de / sp
            );
        }
    }
}
