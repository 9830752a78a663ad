//! One epoch of per-example SGD on a tied sigmoid autoencoder, by each plan:
//! the fused kernel on one thread, lock-step workers (`split`, `rows`,
//! `balanced`) and lock-free workers (`hogwild`). Every plan shuffles the
//! examples with the caller's random stream and draws each example's
//! corruption from it in order, so a one-thread epoch is bit-for-bit the same
//! SGD as the layer-by-layer path with batch 1.

use super::hogwild::{HogwildParams, HogwildWorker};
use super::kernel::{FusedTiedSgd, TiedParams, TiedParamsMut, TiedShape};
use super::mode::{balance_every, hidden_blocks, rebalanced};
use super::sync::{Dispenser, RowSync, SpinBarrier, SplitLink, SplitSync};
use crate::layers::Corruption;
use crate::tensor::rng::{seeded, shuffle, Rng};
use crate::train::Observer;
use rand::Rng as _;
use std::time::Instant;

/// What a per-example epoch steps with, besides the data and the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Job {
    pub shape: TiedShape,
    /// Learning rate η.
    pub lr: f32,
    /// L2 weight decay λ on W.
    pub weight_decay: f32,
    /// The corruption drawn for each example.
    pub noise: Corruption,
}

/// How a per-example epoch runs; the numbers are workers (exactly that many,
/// whatever the core count: the caller caps them, see
/// [`lockstep_workers`](super::lockstep_workers)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// One thread, fused kernel.
    Fused,
    /// Hidden units split over this many workers.
    Split(usize),
    /// Visible units (rows of W) split over this many workers.
    Rows(usize),
    /// As `Rows`, with the rows shared out again by measured speed.
    Balanced(usize),
    /// Lock-free workers on one shared W.
    Hogwild(usize),
}

/// One shuffled epoch over the `x.len() / n_vis` examples of `x` by `plan`,
/// updating `params`; returns the mean training loss per example.
pub fn run_epoch(
    job: &Job,
    plan: Plan,
    params: TiedParamsMut<'_>,
    x: &[f32],
    rng: &mut Rng,
    obs: &mut dyn Observer,
) -> f64 {
    let n = x.len() / job.shape.n_vis;
    assert_eq!(x.len(), n * job.shape.n_vis, "x holds whole examples");
    let total = match plan {
        Plan::Fused => fused(job, params, x, rng, obs),
        Plan::Split(t) => split(job, params, x, t, rng, obs),
        Plan::Rows(t) => rows(job, params, x, t, false, rng, obs),
        Plan::Balanced(t) => rows(job, params, x, t, true, rng, obs),
        Plan::Hogwild(t) => hogwild(job, params, x, t, rng, obs),
    };
    total / n.max(1) as f64
}

/// The epoch's order of the `n` examples, drawn from `rng` (every plan's
/// first draw).
pub(super) fn order(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, rng);
    order
}

/// One thread through the fused kernel.
fn fused(job: &Job, mut p: TiedParamsMut<'_>, x: &[f32], rng: &mut Rng, obs: &mut dyn Observer) -> f64 {
    let nv = job.shape.n_vis;
    let n = x.len() / nv;
    let mut k = FusedTiedSgd::new(job.shape, p.view(), job.lr, job.weight_decay)
        .expect("shapes checked by the model");
    let order = order(n, rng);
    let mut noisy = vec![0.0f32; nv];
    let mut total = 0.0f64;
    let report_every = (n / 100).max(1);
    for (t, &i) in order.iter().enumerate() {
        let xi = &x[i * nv..(i + 1) * nv];
        job.noise.apply(&mut noisy, xi, rng);
        total += k.step(xi, &noisy) as f64;
        if (t + 1) % report_every == 0 || t + 1 == n {
            obs.on_progress(t + 1, n);
        }
    }
    k.write_params(p.reborrow());
    total
}

/// The `split` mode: one worker per block of hidden units, each stepping
/// every example.
fn split(
    job: &Job,
    p: TiedParamsMut<'_>,
    x: &[f32],
    workers: usize,
    rng: &mut Rng,
    obs: &mut dyn Observer,
) -> f64 {
    let n = x.len() / job.shape.n_vis;
    let blocks = hidden_blocks(job.shape.n_hid, workers);
    let ws: Vec<FusedTiedSgd> = blocks
        .iter()
        .map(|b| {
            FusedTiedSgd::new_block(job.shape, p.view(), job.lr, job.weight_decay, b.clone())
                .expect("blocks cover the hidden units")
        })
        .collect();
    let sync = SplitSync::new(ws.len(), job.shape.n_vis);
    let order = order(n, rng);
    // Every worker computes the whole example's loss; count worker 0's.
    lockstep(
        job,
        p,
        x,
        &order,
        n.max(1),
        ws,
        rng,
        obs,
        |k, w, xi, noisy| {
            let l = w.step_linked(xi, noisy, Some(SplitLink { sync: &sync, me: k }));
            if k == 0 {
                l
            } else {
                0.0
            }
        },
        |_, _, _| {},
    )
}

/// The `rows` mode: one worker per block of visible units, each stepping
/// every example on its slice. With `balance`, the epoch runs in segments of
/// [`balance_every`] examples and the rows are shared out again after each,
/// in proportion to the speed each worker showed (its rows over its time
/// less its waits): the same SGD, but the sums' order, and so the last bits,
/// then depend on timing.
fn rows(
    job: &Job,
    p: TiedParamsMut<'_>,
    x: &[f32],
    workers: usize,
    balance: bool,
    rng: &mut Rng,
    obs: &mut dyn Observer,
) -> f64 {
    let nv = job.shape.n_vis;
    let n = x.len() / nv;
    let t = workers.clamp(1, nv);
    let hp = job.shape.n_hid.div_ceil(16) * 16;
    let order = order(n, rng);
    let build = |params: TiedParams<'_>, bounds: &[usize]| -> Vec<FusedTiedSgd> {
        let sync = std::sync::Arc::new(RowSync::new(t, hp));
        (0..t)
            .map(|k| {
                let vis = bounds[k]..bounds[k + 1];
                FusedTiedSgd::new_rows(job.shape, params, job.lr, job.weight_decay, vis, sync.clone(), k)
                    .expect("shapes checked by the model")
            })
            .collect()
    };
    // Contiguous blocks of rows, as equal as can be.
    let ws = build(p.view(), &(0..=t).map(|k| k * nv / t).collect::<Vec<_>>());
    let segment = if balance && t > 1 {
        balance_every(n)
    } else {
        n.max(1)
    };
    // Each worker's loss covers its own rows; the shares add up.
    lockstep(
        job,
        p,
        x,
        &order,
        segment,
        ws,
        rng,
        obs,
        |_, w, xi, noisy| {
            let r = w.visible();
            w.step(&xi[r.clone()], &noisy[r])
        },
        |params, workers, seconds| {
            let mut bounds: Vec<usize> = workers.iter().map(|w| w.visible().start).collect();
            bounds.push(nv);
            let busy: Vec<f64> = workers
                .iter()
                .zip(seconds)
                .map(|(w, s)| (s - w.waited()).max(1e-9))
                .collect();
            *workers = build(params, &rebalanced(&bounds, &busy));
        },
    )
}

/// Workers in lock step over `order`: every worker steps every example,
/// drawing the same corruption from its own copy of the random state;
/// `step(k, worker, x, x̃)` returns worker k's share of the example's loss.
/// Worker 0 runs on this thread and reports progress. The threads live for
/// the whole of `order`, which they take in segments of `segment` examples;
/// between two segments the workers are flushed and written back, and
/// `between(params, workers, seconds)` may replace them (it sees each
/// worker's seconds for the segment). Returns the summed loss.
#[allow(clippy::too_many_arguments)]
fn lockstep(
    job: &Job,
    mut p: TiedParamsMut<'_>,
    x: &[f32],
    order: &[usize],
    segment: usize,
    workers: Vec<FusedTiedSgd>,
    rng: &mut Rng,
    obs: &mut dyn Observer,
    step: impl Fn(usize, &mut FusedTiedSgd, &[f32], &[f32]) -> f32 + Sync,
    mut between: impl FnMut(TiedParams<'_>, &mut Vec<FusedTiedSgd>, &[f64]),
) -> f64 {
    use std::sync::Mutex;
    let (nv, n, t) = (job.shape.n_vis, order.len(), workers.len());
    let noise = job.noise;
    let report_every = (n / 100).max(1);
    let segments = n.div_ceil(segment.max(1));
    // Each worker sits in its slot between segments; its thread takes it out
    // for a segment.
    let slots: Vec<Mutex<Option<FusedTiedSgd>>> = workers.into_iter().map(|w| Mutex::new(Some(w))).collect();
    let seconds: Vec<Mutex<f64>> = (0..t).map(|_| Mutex::new(0.0)).collect();
    let barrier = SpinBarrier::new(t);
    let take = |k: usize| {
        slots[k]
            .lock()
            .expect("a worker panicked")
            .take()
            .expect("worker in its slot")
    };
    let put = |k: usize, w: FusedTiedSgd| *slots[k].lock().expect("a worker panicked") = Some(w);
    // One segment of worker k, on its own random stream.
    let run = |k: usize, chunk: &[usize], rng: &mut Rng, noisy: &mut [f32], tick: &mut dyn FnMut(usize)| {
        let mut w = take(k);
        let start = Instant::now();
        let mut total = 0.0f64;
        for (j, &i) in chunk.iter().enumerate() {
            let xi = &x[i * nv..(i + 1) * nv];
            noise.apply(noisy, xi, rng);
            total += step(k, &mut w, xi, noisy) as f64;
            tick(j);
        }
        *seconds[k].lock().expect("a worker panicked") = start.elapsed().as_secs_f64();
        put(k, w);
        total
    };
    let mut rng0 = rng.clone();
    let (run, barrier) = (&run, &barrier);
    // Worker k on the k-th allowed CPU; this thread gets its CPUs back after.
    let cpus = super::pin::plan(t);
    let home = super::pin::allowed_cpus();
    let cpus = &cpus;
    let total = std::thread::scope(|s| {
        let handles: Vec<_> = (1..t)
            .map(|k| {
                let mut rng = rng.clone();
                s.spawn(move || {
                    crate::tensor::ftz::enable_for_thread();
                    if let Some(c) = cpus {
                        super::pin::pin_to(&c[k..k + 1]);
                    }
                    let mut noisy = vec![0.0f32; nv];
                    let mut total = 0.0f64;
                    for chunk in order.chunks(segment.max(1)) {
                        total += run(k, chunk, &mut rng, &mut noisy, &mut |_| {});
                        barrier.wait();
                        barrier.wait();
                    }
                    total
                })
            })
            .collect();
        if let Some(c) = cpus {
            super::pin::pin_to(&c[..1]);
        }
        let mut noisy = vec![0.0f32; nv];
        let mut total = 0.0f64;
        for (s, chunk) in order.chunks(segment.max(1)).enumerate() {
            let done = s * segment;
            total += run(0, chunk, &mut rng0, &mut noisy, &mut |j| {
                let t = done + j + 1;
                if t.is_multiple_of(report_every) || t == n {
                    obs.on_progress(t, n);
                }
            });
            barrier.wait();
            let mut ws: Vec<FusedTiedSgd> = (0..t).map(take).collect();
            FusedTiedSgd::flush_all(&mut ws);
            for w in &mut ws {
                w.write_params(p.reborrow());
            }
            if s + 1 == segments && std::env::var_os("AEKIT_PROBE_ROWS").is_some() {
                // Where the lock-step workers' time went: the last segment's
                // seconds of each, and its waits for peers over the epoch.
                for (k, w) in ws.iter().enumerate() {
                    let secs = *seconds[k].lock().expect("a worker panicked");
                    eprintln!(
                        "probe: worker {k} of {t}: {secs:.3} s in its last segment, {:.3} s waiting for peers this epoch",
                        w.waited()
                    );
                }
            }
            if s + 1 < segments {
                let secs: Vec<f64> = seconds
                    .iter()
                    .map(|v| *v.lock().expect("a worker panicked"))
                    .collect();
                between(p.view(), &mut ws, &secs);
            }
            for (k, w) in ws.into_iter().enumerate() {
                put(k, w);
            }
            barrier.wait();
        }
        total
            + handles
                .into_iter()
                .map(|h| h.join().expect("a worker panicked"))
                .sum::<f64>()
    });
    if cpus.is_some() {
        super::pin::pin_to(&home);
    }
    *rng = rng0;
    total
}

/// The `hogwild` mode: workers share W, b and b′ without locks.
fn hogwild(
    job: &Job,
    p: TiedParamsMut<'_>,
    x: &[f32],
    threads: usize,
    rng: &mut Rng,
    obs: &mut dyn Observer,
) -> f64 {
    let nv = job.shape.n_vis;
    let n = x.len() / nv;
    let shared = HogwildParams::new(p.w, p.b, p.c);
    let order = order(n, rng);
    let seeds: Vec<u64> = (0..threads.max(1)).map(|_| rng.random()).collect();
    let dispenser = Dispenser::new(n);
    let (noise, lr, decay) = (job.noise, job.lr, job.weight_decay);
    let xent = job.shape.loss == crate::layers::Loss::CrossEntropy;
    let report_every = (n / 100).max(1);
    let work = |seed: u64, obs: Option<&mut dyn Observer>| -> f64 {
        let mut rng = seeded(seed);
        let mut worker = HogwildWorker::new(&shared);
        let mut noisy = vec![0.0f32; nv];
        let mut total = 0.0f64;
        let mut obs = obs;
        while let Some(t) = dispenser.take() {
            let i = order[t];
            let xi = &x[i * nv..(i + 1) * nv];
            noise.apply(&mut noisy, xi, &mut rng);
            total += worker.step(&shared, xi, &noisy, lr, decay, xent) as f64;
            if let Some(o) = obs.as_deref_mut() {
                if (t + 1) % report_every == 0 {
                    o.on_progress((t + 1).min(n), n);
                }
            }
        }
        total
    };
    let total: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = seeds[1..]
            .iter()
            .map(|&sd| {
                s.spawn(move || {
                    crate::tensor::ftz::enable_for_thread();
                    work(sd, None)
                })
            })
            .collect();
        let mine = work(seeds[0], Some(obs));
        mine + handles
            .into_iter()
            .map(|h| h.join().expect("hogwild worker"))
            .sum::<f64>()
    });
    obs.on_progress(n, n);
    shared.write(p.w, p.b, p.c);
    total
}
