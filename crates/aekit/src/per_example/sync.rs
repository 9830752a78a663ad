//! What the lock-step workers share: the `split` mode's published decoder
//! sums, the `rows` mode's all-reduction, a spinning barrier, and the Hogwild
//! example dispenser.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering, Ordering::Relaxed};

/// Shared state of the `split` parallel mode: each worker publishes the
/// partial decoder sums of its hidden block, a block of rows at a time, and a
/// progress counter that orders them (release on publish, acquire on read).
pub struct SplitSync {
    pub(super) threads: usize,
    /// `[threads][2 parities][n_vis rounded up to 16]` f32 bits, in whole
    /// cache lines so no two workers or groups share one.
    pub(super) partials: Vec<Line>,
    /// Blocks published by each worker, counted over the epoch.
    pub(super) progress: Vec<Padded>,
    pub(super) n_vis: usize,
}

/// A counter alone on its cache lines, so workers do not share them.
#[repr(align(128))]
pub(super) struct Padded(pub(super) AtomicUsize);

/// 16 f32 slots on one 64-byte cache line.
#[repr(align(64))]
pub(super) struct Line(pub(super) [AtomicU32; 16]);

impl SplitSync {
    pub fn new(threads: usize, n_vis: usize) -> SplitSync {
        let lines = n_vis.div_ceil(16);
        SplitSync {
            threads,
            partials: (0..threads * 2 * lines)
                .map(|_| Line(std::array::from_fn(|_| AtomicU32::new(0))))
                .collect(),
            progress: (0..threads).map(|_| Padded(AtomicUsize::new(0))).collect(),
            n_vis,
        }
    }

    /// The lines of `worker`'s sums for examples of this parity: visible
    /// unit i is slot i % 16 of line i / 16.
    pub(super) fn lines(&self, worker: usize, parity: usize) -> &[Line] {
        let lines = self.n_vis.div_ceil(16);
        &self.partials[(worker * 2 + parity) * lines..][..lines]
    }

    /// Waits until every worker has published `seq` blocks, and returns the
    /// least count seen (at least `seq`): blocks below it may be read
    /// without asking again.
    pub(super) fn wait_all(&self, seq: usize) -> usize {
        wait_all(&self.progress, seq)
    }
}

/// Waits until every counter reaches `seq` (acquire), and returns the least
/// count seen. Spins briefly, then yields, so oversubscribed runs (more
/// workers than cores) still move.
fn wait_all(progress: &[Padded], seq: usize) -> usize {
    // Ask for every peer's counter line at once: the misses then overlap
    // instead of costing one cross-core trip per peer in turn.
    for p in progress {
        prefetch_line(&p.0);
    }
    let mut least = usize::MAX;
    for p in progress {
        let mut seen = 0;
        spin_until(2000, || {
            seen = p.0.load(Ordering::Acquire);
            seen >= seq
        });
        least = least.min(seen);
    }
    least
}

/// Spins until `done()`, yielding the core after `spins` tries (a peer that
/// is not running cannot be waited for by spinning).
pub(crate) fn spin_until(spins: u32, mut done: impl FnMut() -> bool) {
    let mut n = 0u32;
    while !done() {
        if n < spins {
            std::hint::spin_loop();
            n += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

/// A worker's link to its peers in the `split` mode.
#[derive(Clone, Copy)]
pub struct SplitLink<'a> {
    pub sync: &'a SplitSync,
    pub me: usize,
}

/// Shared state of the `rows` parallel mode: each worker owns a block of
/// visible units (whole rows of W, every hidden unit), so the workers only
/// need to add up, once per example, two hidden-length vectors (the last
/// example's back-propagated δh and the next one's partial pre-activation)
/// and two scalars (see the module notes).
///
/// With few workers each publishes its partial vector and every worker adds
/// all of them (`flat`: each reads P payloads, one wait). From
/// [`RowSync::TWO_PHASE_FROM`] workers on, the reduction is split in two
/// (reduce-scatter, then all-gather): worker k adds up only its share of
/// the cache lines from every peer and publishes that share of the total,
/// then every worker reads the P shares. Each worker then reads two
/// payloads whatever P is, for one more wait. Either way every line is
/// added in worker order from zero, so all workers hold the same bits, and
/// the same bits under both schemes.
pub struct RowSync {
    pub(super) threads: usize,
    /// `[threads][2 parities][payload]` f32 bits, whole cache lines.
    pub(super) slots: Vec<Line>,
    /// `[threads][2 parities][payload]`: the shares of the total (two-phase).
    pub(super) totals: Vec<Line>,
    /// Phases published by each worker: 2·seq − 1 after its partial sums,
    /// 2·seq after its share of the total (flat: 2·seq at once).
    pub(super) progress: Vec<Padded>,
    /// Nanoseconds each worker has spent waiting for its peers.
    pub(super) waits: Vec<Padded>,
    pub(super) hp: usize,
    pub(super) two_phase: bool,
}

impl std::fmt::Debug for RowSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RowSync {{ threads: {}, hp: {} }}", self.threads, self.hp)
    }
}

impl RowSync {
    /// For `threads` workers and hidden vectors of padded length `hp` (a
    /// multiple of 16).
    /// `AEKIT_ROWS_REDUCE=flat` or `two-phase` picks the scheme whatever
    /// the count (for timing them against each other; the bits are the
    /// same).
    pub fn new(threads: usize, hp: usize) -> RowSync {
        let setting = std::env::var("AEKIT_ROWS_REDUCE").ok();
        let two_phase = Self::two_phase_for(threads, setting.as_deref()).unwrap_or_else(|| {
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                eprintln!(
                    "note: AEKIT_ROWS_REDUCE={} is not flat or two-phase; the count of workers decides",
                    setting.as_deref().unwrap_or_default()
                )
            });
            threads >= Self::TWO_PHASE_FROM
        });
        RowSync::with_scheme(threads, hp, two_phase)
    }

    /// Whether `threads` workers reduce in two phases under the setting
    /// `AEKIT_ROWS_REDUCE` (`None` for a setting that names no scheme).
    fn two_phase_for(threads: usize, setting: Option<&str>) -> Option<bool> {
        match setting {
            None | Some("") => Some(threads >= Self::TWO_PHASE_FROM),
            Some("flat") => Some(false),
            Some("two-phase") => Some(true),
            Some(_) => None,
        }
    }

    /// Workers from which the all-reduction runs in two phases: at 2 a
    /// worker reads one peer's payload either way, and the second wait
    /// costs more than the reads it saves.
    pub const TWO_PHASE_FROM: usize = 4;

    /// As [`RowSync::new`], with the scheme chosen.
    pub fn with_scheme(threads: usize, hp: usize, two_phase: bool) -> RowSync {
        assert_eq!(hp % 16, 0, "the hidden length is padded to 16");
        let lines = |k: usize| {
            (0..k * 2 * Self::payload(hp) / 16)
                .map(|_| Line(std::array::from_fn(|_| AtomicU32::new(0))))
                .collect()
        };
        RowSync {
            threads,
            slots: lines(threads),
            totals: lines(if two_phase { threads } else { 0 }),
            progress: (0..threads).map(|_| Padded(AtomicUsize::new(0))).collect(),
            waits: (0..threads).map(|_| Padded(AtomicUsize::new(0))).collect(),
            hp,
            two_phase,
        }
    }

    /// Seconds worker `me` has spent waiting in all-reductions so far.
    pub fn waited(&self, me: usize) -> f64 {
        self.waits[me].0.load(Ordering::Relaxed) as f64 * 1e-9
    }

    /// Floats per all-reduction: δh_acc and P (`hp` each), then α and β
    /// padded to a cache line.
    pub(super) fn payload(hp: usize) -> usize {
        2 * hp + 16
    }

    /// The `seq`-th all-reduction (1, 2, …) of worker `me`: `buf` holds its
    /// partial sums on entry and the total on return. A slot is reused two
    /// reductions later, when every peer has already read it (they must have
    /// published the reduction in between).
    pub(super) fn allreduce(&self, me: usize, seq: usize, buf: &mut [f32]) {
        let lines = Self::payload(self.hp) / 16;
        assert_eq!(buf.len(), 16 * lines);
        let base = |w: usize| (w * 2 + seq % 2) * lines;
        publish(&self.slots[base(me)..base(me) + lines], buf);
        if !self.two_phase {
            self.announce_and_wait(me, 2 * seq);
            for w in (0..self.threads).filter(|&w| w != me) {
                for l in 0..lines {
                    prefetch_line(&self.slots[base(w) + l].0[0]);
                }
            }
            for (l, chunk) in buf.chunks_exact_mut(16).enumerate() {
                let sum = self.line_sum(me, chunk, |w| &self.slots[base(w) + l]);
                chunk.copy_from_slice(&sum);
            }
            return;
        }
        // Reduce-scatter: this worker's share of the lines, from every peer.
        self.announce_and_wait(me, 2 * seq - 1);
        let share = |w: usize| w * lines / self.threads..(w + 1) * lines / self.threads;
        let mine = share(me);
        // Every peer's lines of this share, asked for together before any
        // is added, so that the cross-core misses overlap.
        for w in (0..self.threads).filter(|&w| w != me) {
            for l in mine.clone() {
                prefetch_line(&self.slots[base(w) + l].0[0]);
            }
        }
        for l in mine.clone() {
            let chunk = &mut buf[16 * l..16 * (l + 1)];
            let sum = self.line_sum(me, chunk, |w| &self.slots[base(w) + l]);
            chunk.copy_from_slice(&sum);
        }
        publish(
            &self.totals[base(me) + mine.start..base(me) + mine.end],
            &buf[16 * mine.start..16 * mine.end],
        );
        // All-gather: every other worker's share of the total.
        self.announce_and_wait(me, 2 * seq);
        for w in (0..self.threads).filter(|&w| w != me) {
            for l in share(w) {
                prefetch_line(&self.totals[base(w) + l].0[0]);
            }
        }
        for w in (0..self.threads).filter(|&w| w != me) {
            for l in share(w) {
                for (v, slot) in buf[16 * l..16 * (l + 1)]
                    .iter_mut()
                    .zip(&self.totals[base(w) + l].0)
                {
                    *v = f32::from_bits(slot.load(Ordering::Relaxed));
                }
            }
        }
    }

    /// Publishes phase `phase` of worker `me` and waits for every peer to
    /// reach it, adding the time waited to `me`'s count.
    fn announce_and_wait(&self, me: usize, phase: usize) {
        self.progress[me].0.store(phase, Ordering::Release);
        for p in &self.progress {
            prefetch_line(&p.0);
        }
        // The clock is read only when a peer is still behind.
        if self.progress.iter().any(|p| p.0.load(Ordering::Acquire) < phase) {
            let t0 = std::time::Instant::now();
            wait_all(&self.progress, phase);
            // Only worker `me` writes its own counter.
            let w = &self.waits[me].0;
            w.store(
                w.load(Ordering::Relaxed) + t0.elapsed().as_nanos() as usize,
                Ordering::Relaxed,
            );
        }
    }

    /// One line of the total, added in worker order from zero (`own` is
    /// worker `me`'s line, `line(w)` any other's published one).
    fn line_sum<'s>(&self, me: usize, own: &[f32], line: impl Fn(usize) -> &'s Line) -> [f32; 16] {
        let mut sum = [0.0f32; 16];
        for w in 0..self.threads {
            if w == me {
                sum.iter_mut().zip(own).for_each(|(s, &v)| *s += v);
            } else {
                sum.iter_mut()
                    .zip(&line(w).0)
                    .for_each(|(s, v)| *s += f32::from_bits(v.load(Ordering::Relaxed)));
            }
        }
        sum
    }
}

/// Hints that this core will soon read the cache line holding `a`.
#[inline(always)]
fn prefetch_line<T>(a: &T) {
    super::simd::prefetch(a, false);
}

/// Stores `values` into `lines`, 16 to a line.
fn publish(lines: &[Line], values: &[f32]) {
    // Take ownership of every line first (the peers read them two
    // reductions ago), so the stores do not each wait for an invalidation.
    for line in lines {
        super::simd::prefetch(&line.0[0], true);
    }
    for (line, chunk) in lines.iter().zip(values.chunks_exact(16)) {
        for (slot, &v) in line.0.iter().zip(chunk) {
            slot.store(v.to_bits(), Ordering::Relaxed);
        }
    }
}

/// A barrier whose waiters spin instead of sleeping, so that a worker keeps
/// its core between two segments: a thread woken from a sleep may be placed
/// on its peer's core for milliseconds, which lock-step workers cannot
/// afford. After a long wait it yields, so a descheduled peer can run.
pub struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    /// Returns once all `n` threads have called it.
    pub fn wait(&self) {
        use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};
        let generation = self.generation.load(Acquire);
        if self.arrived.fetch_add(1, AcqRel) + 1 == self.n {
            self.arrived.store(0, Relaxed);
            self.generation.fetch_add(1, Release);
            return;
        }
        spin_until(20_000, || self.generation.load(Acquire) != generation);
    }
}

/// Hands out example indices to Hogwild workers, one at a time.
pub struct Dispenser {
    next: AtomicUsize,
    pub len: usize,
}

impl Dispenser {
    pub fn new(len: usize) -> Dispenser {
        Dispenser {
            next: AtomicUsize::new(0),
            len,
        }
    }

    pub fn take(&self) -> Option<usize> {
        let t = self.next.fetch_add(1, Relaxed);
        (t < self.len).then_some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_barrier_holds_every_thread_until_all_arrive() {
        let (n, rounds) = (3, 20);
        let barrier = SpinBarrier::new(n);
        let counter = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(|| {
                    for r in 0..rounds {
                        counter.fetch_add(1, Relaxed);
                        barrier.wait();
                        // Everyone has counted round r before anyone goes on.
                        assert!(counter.load(Relaxed) >= (r + 1) * n);
                        barrier.wait();
                    }
                });
            }
        });
        assert_eq!(counter.load(Relaxed), n * rounds);
    }

    /// Every worker's total over `rounds` reductions, under one scheme.
    fn reduce_all(threads: usize, hp: usize, two_phase: bool, rounds: usize) -> Vec<Vec<Vec<f32>>> {
        let sync = RowSync::with_scheme(threads, hp, two_phase);
        let len = RowSync::payload(hp);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|me| {
                    let sync = &sync;
                    s.spawn(move || {
                        (1..=rounds)
                            .map(|seq| {
                                // Values whose sum depends on the order of addition.
                                let mut buf: Vec<f32> = (0..len)
                                    .map(|i| {
                                        ((me * 7919 + i * 104_729 + seq * 31) % 1000) as f32 * 1e-3
                                            + 1e4 * (me % 2) as f32
                                    })
                                    .collect();
                                sync.allreduce(me, seq, &mut buf);
                                buf
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn the_reduction_setting_picks_a_scheme_or_is_named_wrong() {
        let from = RowSync::TWO_PHASE_FROM;
        assert_eq!(RowSync::two_phase_for(from - 1, None), Some(false));
        assert_eq!(RowSync::two_phase_for(from, None), Some(true));
        assert_eq!(RowSync::two_phase_for(from, Some("")), Some(true));
        assert_eq!(RowSync::two_phase_for(16, Some("flat")), Some(false));
        assert_eq!(RowSync::two_phase_for(2, Some("two-phase")), Some(true));
        assert_eq!(RowSync::two_phase_for(16, Some("Flat")), None);
        assert_eq!(RowSync::two_phase_for(16, Some("tree")), None);
    }

    #[test]
    fn both_reduction_schemes_give_every_worker_the_same_bits() {
        let (hp, rounds) = (48, 25);
        for threads in [1, 2, 3, 5] {
            let flat = reduce_all(threads, hp, false, rounds);
            let two = reduce_all(threads, hp, true, rounds);
            for seq in 0..rounds {
                for w in 0..threads {
                    assert_eq!(flat[w][seq], flat[0][seq], "flat, {threads} workers, worker {w}");
                    assert_eq!(
                        two[w][seq], flat[0][seq],
                        "two-phase, {threads} workers, worker {w}"
                    );
                }
                // The total against a sum in f64: right up to f32 rounding.
                let len = RowSync::payload(hp);
                for i in 0..len {
                    let want: f64 = (0..threads)
                        .map(|me| {
                            ((me * 7919 + i * 104_729 + (seq + 1) * 31) % 1000) as f64 * 1e-3
                                + 1e4 * (me % 2) as f64
                        })
                        .sum();
                    let got = flat[0][seq][i] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6 * want.abs().max(1.0) * threads as f64 + 1e-6,
                        "{got} vs {want}"
                    );
                }
            }
        }
    }
}
