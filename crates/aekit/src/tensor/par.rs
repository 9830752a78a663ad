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

/// Keeps the pool's other threads awake while it lives: a training loop's
/// parallel loops come every few microseconds to milliseconds, and rayon
/// puts an idle thread to sleep after a few dozen rounds of looking for
/// work, so every loop after a sequential stretch paid a wake-up of each
/// thread (a system call and, on a virtual machine, an interrupt to a
/// halted virtual CPU). While a guard lives, each of the pool's threads
/// but the caller's runs a job that keeps taking the pool's work as it
/// comes ([`rayon::yield_now`]) and spins between, offering its core to
/// the system after a while without work, never sleeping. No result
/// changes: which thread runs a piece of a loop never does.
///
/// Only for the thread of index 0 of its pool (the `aekit` command's main
/// thread, see [`super::pool_includes_this_thread`]) when the pool has at
/// least [`KeepAwake::FROM_THREADS`] threads, outside another guard, and
/// not with `AEKIT_SPIN=0`; otherwise the guard does nothing. With two
/// threads there is little to wake (W2 on 2 cores ran 1.00× the time with
/// and without), and a spinning thread would take half a core from any
/// other program sharing two. Loops that run threads of their own (the
/// per-example lock-step workers) must not be run under one.
pub struct KeepAwake {
    shared: Option<std::sync::Arc<Awake>>,
}

/// What a guard shares with its spinning jobs.
#[derive(Default)]
struct Awake {
    stop: std::sync::atomic::AtomicBool,
    /// Spinning jobs running now.
    running: std::sync::atomic::AtomicUsize,
}

thread_local! {
    static AWAKE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl KeepAwake {
    /// Spins between pieces of work before offering the core to others.
    const SPINS: u32 = 1 << 12;

    /// The fewest threads in the pool for which a guard keeps them awake.
    pub const FROM_THREADS: usize = 4;

    pub fn new() -> KeepAwake {
        use std::sync::atomic::Ordering;
        let wanted = rayon::current_thread_index() == Some(0)
            && rayon::current_num_threads() >= Self::FROM_THREADS
            && !AWAKE.with(|a| a.get())
            && std::env::var("AEKIT_SPIN").map_or(true, |v| v != "0");
        if !wanted {
            return KeepAwake { shared: None };
        }
        AWAKE.with(|a| a.set(true));
        let shared = std::sync::Arc::new(Awake::default());
        let job = shared.clone();
        rayon::spawn_broadcast(move |ctx| {
            // The caller's own share of the broadcast: it has work to do.
            if ctx.index() == 0 {
                return;
            }
            job.running.fetch_add(1, Ordering::AcqRel);
            let mut idle = 0u32;
            while !job.stop.load(Ordering::Acquire) {
                match rayon::yield_now() {
                    Some(rayon::Yield::Executed) => idle = 0,
                    _ if idle < Self::SPINS => {
                        idle += 1;
                        std::hint::spin_loop();
                    }
                    _ => std::thread::yield_now(),
                }
            }
            job.running.fetch_sub(1, Ordering::AcqRel);
        });
        KeepAwake { shared: Some(shared) }
    }

    /// Whether this guard keeps threads awake (see [`KeepAwake`] for when).
    pub fn is_active(&self) -> bool {
        self.shared.is_some()
    }
}

impl Default for KeepAwake {
    fn default() -> Self {
        KeepAwake::new()
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            // Every loop the caller ran has returned, so no spinning job is
            // in the middle of a piece of work: each stops at its next look.
            shared.stop.store(true, std::sync::atomic::Ordering::Release);
            AWAKE.with(|a| a.set(false));
        }
    }
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

    /// Waits up to 20 s for `done()`.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        let t0 = std::time::Instant::now();
        while !done() {
            assert!(t0.elapsed().as_secs() < 20, "{what}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn keep_awake_holds_the_other_threads_until_dropped_and_changes_no_result() {
        use std::sync::atomic::Ordering;
        // Outside any pool a guard does nothing.
        assert!(!KeepAwake::new().is_active());
        // Nor with fewer threads than it takes.
        std::thread::spawn(|| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(KeepAwake::FROM_THREADS - 1)
                .use_current_thread()
                .build()
                .expect("a pool");
            assert!(!KeepAwake::new().is_active());
            drop(pool);
        })
        .join()
        .expect("the pool's thread");
        // A thread of its own is index 0 of a 4-thread pool, as the aekit
        // command's main thread is of the global pool.
        std::thread::spawn(|| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(KeepAwake::FROM_THREADS)
                .use_current_thread()
                .build()
                .expect("a pool");
            assert_eq!(rayon::current_thread_index(), Some(0));
            let a: Vec<f32> = (0..5 * CHUNK + 7).map(|i| (i as f32 * 0.37).sin()).collect();
            let want: Vec<f32> = a.iter().map(|v| v * 3.0 - 1.0).collect();
            let guard = KeepAwake::new();
            assert!(guard.is_active());
            assert!(
                !KeepAwake::new().is_active(),
                "a second guard on the same thread is inert"
            );
            let shared = guard.shared.clone().expect("active");
            eventually("the three other threads spin", || {
                shared.running.load(Ordering::Acquire) == KeepAwake::FROM_THREADS - 1
            });
            for _ in 0..20 {
                let mut b = a.clone();
                chunks(&mut b, |_, c| c.iter_mut().for_each(|v| *v = *v * 3.0 - 1.0));
                assert_eq!(b, want);
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
            drop(guard);
            eventually("the spinning jobs stop once the guard is dropped", || {
                shared.running.load(Ordering::Acquire) == 0
            });
            // The pool still works, and a new guard may start.
            let mut b = a.clone();
            chunks(&mut b, |_, c| c.iter_mut().for_each(|v| *v = *v * 3.0 - 1.0));
            assert_eq!(b, want);
            assert!(KeepAwake::new().is_active());
            drop(pool);
        })
        .join()
        .expect("the pool's thread");
    }

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
