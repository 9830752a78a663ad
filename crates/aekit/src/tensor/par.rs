//! Element-wise passes over long slices (the optimizer's update, the
//! activations, clearing a gradient) split over rayon's pool. Each element is
//! computed alone, so a result never depends on the split or the thread
//! count; short slices, and a pool of one thread, run in place in order.

use rayon::prelude::*;

/// Elements per parallel piece.
const CHUNK: usize = 1 << 13;

/// Whether a pass over `len` elements is worth splitting.
fn split(len: usize) -> bool {
    len >= 4 * CHUNK && rayon::current_num_threads() > 1
}

/// `f(offset, piece)` over the pieces of `a`.
pub fn chunks<T: Send>(a: &mut [T], f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if split(a.len()) {
        a.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, c)| f(i * CHUNK, c));
    } else {
        f(0, a);
    }
}

/// `f(offset, a_piece, b_piece)` over matching pieces of two slices of one
/// length.
pub fn chunks2<T: Send, U: Send>(
    a: &mut [T],
    b: &mut [U],
    f: impl Fn(usize, &mut [T], &mut [U]) + Sync + Send,
) {
    assert_eq!(a.len(), b.len());
    if split(a.len()) {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, (x, y))| f(i * CHUNK, x, y));
    } else {
        f(0, a, b);
    }
}

/// `f(offset, a_piece, b_piece, c_piece)` over matching pieces of three
/// slices of one length.
pub fn chunks3<T: Send, U: Send, V: Send>(
    a: &mut [T],
    b: &mut [U],
    c: &mut [V],
    f: impl Fn(usize, &mut [T], &mut [U], &mut [V]) + Sync + Send,
) {
    assert!(a.len() == b.len() && b.len() == c.len());
    if split(a.len()) {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks_mut(CHUNK))
            .zip(c.par_chunks_mut(CHUNK))
            .enumerate()
            .for_each(|(i, ((x, y), z))| f(i * CHUNK, x, y, z));
    } else {
        f(0, a, b, c);
    }
}

/// `f(first_column, piece)` over blocks of `dst`'s columns (a multiple of
/// 16 wide, one or two per thread), for per-column work over `rows` rows
/// (column sums): each column is still handled by one thread in row order,
/// so the result does not depend on the split.
pub fn column_blocks<T: Send>(dst: &mut [T], rows: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    let cols = dst.len();
    let threads = rayon::current_num_threads();
    if split(rows * cols) && cols >= 32 {
        let width = cols.div_ceil(2 * threads).div_ceil(16).max(1) * 16;
        dst.par_chunks_mut(width)
            .enumerate()
            .for_each(|(i, c)| f(i * width, c));
    } else {
        f(0, dst);
    }
}

/// The sum of `f(offset, piece)` over the pieces of `a`, added in piece
/// order: the same value for any number of threads.
pub fn chunks_sum<T: Send>(a: &mut [T], f: impl Fn(usize, &mut [T]) -> f64 + Sync + Send) -> f64 {
    if split(a.len()) {
        let parts: Vec<f64> = a
            .par_chunks_mut(CHUNK)
            .enumerate()
            .map(|(i, c)| f(i * CHUNK, c))
            .collect();
        parts.iter().sum()
    } else {
        a.chunks_mut(CHUNK)
            .enumerate()
            .map(|(i, c)| f(i * CHUNK, c))
            .sum()
    }
}

/// The sum of `f(range)` over the pieces of `0..len`, in piece order.
pub fn ranges_sum(len: usize, f: impl Fn(std::ops::Range<usize>) -> f64 + Sync + Send) -> f64 {
    let piece = |i: usize| i * CHUNK..((i + 1) * CHUNK).min(len);
    let n = len.div_ceil(CHUNK);
    if split(len) {
        let parts: Vec<f64> = (0..n).into_par_iter().map(|i| f(piece(i))).collect();
        parts.iter().sum()
    } else {
        (0..n).map(|i| f(piece(i))).sum()
    }
}

/// Rows per block of [`row_blocks`].
pub const BLOCK_ROWS: usize = 256;

/// `f(first_row, a_rows, b_rows, sums)` over blocks of [`BLOCK_ROWS`] rows
/// of `a` (`[rows, cols]`) and `b` (of `a`'s shape, or empty: each block then
/// gets an empty `b_rows`), for passes that read a row block once and also
/// reduce over its rows. Each block adds into its own zeroed `sums` (as long
/// as `total`); the blocks' sums are then added into `total`, and f's values
/// summed, in block order: neither depends on the thread count.
pub fn row_blocks<T: crate::tensor::Real>(
    a: &mut [T],
    b: &mut [T],
    cols: usize,
    total: &mut [T],
    f: impl Fn(usize, &mut [T], &mut [T], &mut [T]) -> f64 + Sync + Send,
) -> f64 {
    assert!(cols > 0 && a.len().is_multiple_of(cols));
    assert!(b.is_empty() || b.len() == a.len());
    let block = BLOCK_ROWS * cols;
    let run = |(i, (x, y)): (usize, (&mut [T], &mut [T]))| {
        let mut sums = vec![T::ZERO; total.len()];
        let v = f(i * BLOCK_ROWS, x, y, &mut sums);
        (v, sums)
    };
    let bs: Vec<&mut [T]> = if b.is_empty() {
        a.chunks(block).map(|_| Default::default()).collect()
    } else {
        b.chunks_mut(block).collect()
    };
    let parallel = split(a.len());
    let jobs: Vec<_> = a.chunks_mut(block).zip(bs).enumerate().collect();
    let parts: Vec<(f64, Vec<T>)> = if parallel {
        jobs.into_par_iter().map(run).collect()
    } else {
        jobs.into_iter().map(run).collect()
    };
    let mut value = 0.0;
    for (v, sums) in parts {
        value += v;
        total.iter_mut().zip(&sums).for_each(|(t, &s)| *t += s);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_do_not_depend_on_the_thread_count() {
        let n = 5 * CHUNK + 3;
        let x: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + i as f64)).collect();
        let sum = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut a = vec![0u8; n];
                let s1 = chunks_sum(&mut a, |at, c| x[at..at + c.len()].iter().sum());
                let s2 = ranges_sum(n, |r| x[r].iter().sum());
                (s1, s2)
            })
        };
        let (one, three) = (sum(1), sum(3));
        assert_eq!(one, three);
        assert_eq!(one.0, one.1);
    }

    #[test]
    fn every_element_is_visited_once_at_its_offset() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for n in [0usize, 5, 4 * CHUNK + 17] {
            let mut a = vec![0usize; n];
            let mut b = vec![0u32; n];
            let mut c = vec![0u8; n];
            pool.install(|| {
                chunks3(&mut a, &mut b, &mut c, |off, x, y, z| {
                    for (k, ((x, y), z)) in x.iter_mut().zip(y.iter_mut()).zip(z.iter_mut()).enumerate() {
                        *x += off + k;
                        *y += 1;
                        *z += 1;
                    }
                })
            });
            assert!(a.iter().enumerate().all(|(i, &v)| v == i));
            assert!(b.iter().all(|&v| v == 1) && c.iter().all(|&v| v == 1));
        }
    }

    #[test]
    fn row_blocks_visit_each_row_once_and_sum_alike_for_any_thread_count() {
        let (rows, cols) = (3 * BLOCK_ROWS + 17, 40);
        let run = |threads: usize, with_b: bool| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut a: Vec<f32> = (0..rows * cols).map(|i| (i % 97) as f32 * 0.125).collect();
                let mut b = if with_b {
                    vec![0.0f32; rows * cols]
                } else {
                    Vec::new()
                };
                let mut total = vec![1.0f32; cols];
                let v = row_blocks(&mut a, &mut b, cols, &mut total, |r0, x, y, sums| {
                    assert_eq!(r0 % BLOCK_ROWS, 0);
                    for (k, row) in x.chunks_exact_mut(cols).enumerate() {
                        sums.iter_mut().zip(row.iter()).for_each(|(s, &v)| *s += v);
                        if !y.is_empty() {
                            y[k * cols] = (r0 + k) as f32;
                        }
                        row[0] = -1.0;
                    }
                    x.len() as f64
                });
                (v, total, a, b)
            })
        };
        for with_b in [false, true] {
            let (v1, t1, a1, b1) = run(1, with_b);
            let (v3, t3, a3, b3) = run(3, with_b);
            assert_eq!((v1, &t1, &a1, &b1), (v3, &t3, &a3, &b3));
            assert_eq!(v1, (rows * cols) as f64);
            assert!(a1.chunks(cols).all(|r| r[0] == -1.0));
            // Column 1 of row i holds (i·cols + 1) mod 97 / 8; total starts at 1.
            let want: f32 = 1.0
                + (0..rows)
                    .map(|i| ((i * cols + 1) % 97) as f32 * 0.125)
                    .sum::<f32>();
            assert!((t1[1] - want).abs() <= 1e-3 * want, "{} vs {want}", t1[1]);
            if with_b {
                assert!(b1.chunks(cols).enumerate().all(|(i, r)| r[0] == i as f32));
            }
        }
    }
}
