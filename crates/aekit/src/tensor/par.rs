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
}
