//! Timings of the per-example kernel's parts, for comparing two builds or
//! two shapes on a drifting machine (run in turns, read the medians):
//!
//! ```sh
//! cargo bench -p aekit --bench probe                      # lone, split, rows
//! AEKIT_PROBE_WIDTHS=16,500 cargo bench -p aekit --bench probe
//! AEKIT_PROBE_ONLY_LONE=1 cargo bench -p aekit --bench probe   # 20 lone timings each
//! AEKIT_PROBE_SPLIT=1 cargo bench -p aekit --bench probe       # split's costs in turns
//! AEKIT_PROBE_LAG=1 cargo bench -p aekit --bench probe         # finishing rows late
//! ```
//!
//! What the figures meant when they were taken: docs/per-example-sgd.md.

use aekit::data::builtin::builtin_mnist;
use aekit::layers::{Corruption, Loss};
use aekit::per_example::{self, FusedTiedSgd, Isa, RowSync, SplitLink, SplitSync, TiedParams, TiedShape};
use aekit::tensor::rng::seeded;
use std::sync::Arc;
use std::time::Instant;

/// A 784×H squared-loss model with every parameter 0.01.
struct Model {
    shape: TiedShape,
    w: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Model {
    fn new(n_hid: usize) -> Model {
        Model {
            shape: TiedShape {
                n_vis: 784,
                n_hid,
                loss: Loss::Squared,
            },
            w: vec![0.01; 784 * n_hid],
            b: vec![0.01; n_hid],
            c: vec![0.01; 784],
        }
    }

    fn params(&self) -> TiedParams<'_> {
        TiedParams {
            w: &self.w,
            b: &self.b,
            c: &self.c,
        }
    }

    fn lone(&self) -> FusedTiedSgd {
        FusedTiedSgd::new(self.shape, self.params(), 0.01, 0.0).unwrap()
    }

    fn block(&self, hid: std::ops::Range<usize>) -> FusedTiedSgd {
        FusedTiedSgd::new_block(self.shape, self.params(), 0.01, 0.0, hid).unwrap()
    }

    /// Rows `vis` alone, as an unlinked worker of their own.
    fn rows_unlinked(&self, vis: std::ops::Range<usize>) -> FusedTiedSgd {
        let nh = self.shape.n_hid;
        let shape = TiedShape {
            n_vis: vis.len(),
            ..self.shape
        };
        let p = TiedParams {
            w: &self.w[vis.start * nh..vis.end * nh],
            b: &self.b,
            c: &self.c[vis],
        };
        FusedTiedSgd::new(shape, p, 0.01, 0.0).unwrap()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let d = builtin_mnist().unwrap();
    let steps = 5000;
    let example = |s: usize| &d.x[(s % 10000) * 784..(s % 10000 + 1) * 784];
    let masks: Vec<Vec<f32>> = {
        let mut rng = seeded(1);
        (0..steps)
            .map(|s| {
                let mut n = vec![0.0f32; 784];
                Corruption::Mask(0.25).apply(&mut n, example(s), &mut rng);
                n
            })
            .collect()
    };
    let run = |k: &mut FusedTiedSgd, link: Option<SplitLink<'_>>| {
        let t = Instant::now();
        for (s, n) in masks.iter().enumerate() {
            k.step_linked(example(s), n, link);
        }
        t.elapsed().as_secs_f64() * 1e6 / steps as f64
    };
    let widths: Vec<usize> = std::env::var("AEKIT_PROBE_WIDTHS")
        .ok()
        .map(|v| v.split(',').filter_map(|w| w.parse().ok()).collect())
        .unwrap_or_else(|| vec![500, 256, 128]);
    let isa = Isa::detect();
    println!("instruction set: {isa:?}");
    if std::env::var("AEKIT_PROBE_ONLY_LONE").is_ok() {
        for &n_hid in &widths {
            let mut k = Model::new(n_hid).lone();
            let us: Vec<String> = (0..20).map(|_| format!("{:.1}", run(&mut k, None))).collect();
            println!("lone worker 784x{n_hid}: {} µs/step", us.join(" "));
        }
        return;
    }
    // A bare sweep over a padded 784×hp W: update 4 rows and dot them with
    // the next hidden vector, as the kernel's sweep does.
    let bare = |hp: usize| {
        let (h, dh, hn) = (vec![0.5f32; hp], vec![0.0f32; hp], vec![0.5f32; hp]);
        (vec![0.01f32; 784 * hp], h, dh, hn)
    };
    for &n_hid in &widths {
        let mut k = Model::new(n_hid).lone();
        println!("lone worker 784x{n_hid}: {:.1} µs/step", run(&mut k, None));
        let hp = k.padded_hidden();
        let (mut w, h, dh, hn) = bare(hp);
        let coef = ([0.0f32; 4], [1e-9f32; 4], [0.0f32; 4]);
        let t = Instant::now();
        for _ in 0..steps {
            for i in (0..784).step_by(4) {
                per_example::update_dot4(isa, &mut w[i * hp..(i + 4) * hp], coef, &h, &dh, &hn);
            }
        }
        println!(
            "  bare update+dot sweep of W: {:.1} µs",
            t.elapsed().as_secs_f64() * 1e6 / steps as f64
        );
    }
    if std::env::var("AEKIT_PROBE_LAG").is_ok() {
        // What finishing rows late costs a `split` worker: a 784×256 block
        // swept 8 rows at a time (update and decode, then δh += δa·W_i for
        // the 8 rows `lag` rows back), for several lags, in 20 rounds of
        // turns; the median µs per sweep.
        let hp = 256;
        let (mut w, h, dh, hn) = bare(hp);
        let mut part = vec![0.0f32; 784];
        let mut dh_acc = vec![0.0f32; hp];
        let lags = [0usize, 8, 16, 32, 64, 192];
        let coef8 = [1e-7f32; 8];
        let coef = ([0.0f32; 4], [1e-9f32; 4], [0.0f32; 4]);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); lags.len()];
        for _ in 0..20 {
            for (slot, &lag) in lags.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..200 {
                    for u in 0..(784 + lag) / 8 {
                        let i = u * 8;
                        if i < 784 {
                            for q in [i, i + 4] {
                                let d = per_example::update_dot4(
                                    isa,
                                    &mut w[q * hp..(q + 4) * hp],
                                    coef,
                                    &h,
                                    &dh,
                                    &hn,
                                );
                                part[q..q + 4].copy_from_slice(&d);
                            }
                        }
                        if i >= lag {
                            let r = i - lag;
                            per_example::axpy_rows(isa, &mut dh_acc, &coef8, &w[r * hp..(r + 8) * hp]);
                        }
                    }
                }
                times[slot].push(t.elapsed().as_secs_f64() * 1e6 / 200.0);
            }
        }
        for (lag, t) in lags.iter().zip(times) {
            println!(
                "784x256 sweep, rows finished {lag:3} rows late: {:.1} µs",
                median(t)
            );
        }
        return;
    }
    let m500 = Model::new(500);
    if std::env::var("AEKIT_PROBE_SPLIT").is_ok() {
        // The split's costs in turns: a linked pair, one worker linked to
        // nobody, one unlinked, and an unlinked pair at once.
        for _ in 0..6 {
            let sync = SplitSync::new(2, 784);
            let (mut a, mut b) = (m500.block(0..256), m500.block(256..500));
            let pair = std::thread::scope(|s| {
                s.spawn(|| run(&mut b, Some(SplitLink { sync: &sync, me: 1 })));
                run(&mut a, Some(SplitLink { sync: &sync, me: 0 }))
            });
            let sync1 = SplitSync::new(1, 784);
            let nobody = run(&mut m500.block(0..256), Some(SplitLink { sync: &sync1, me: 0 }));
            let alone = run(&mut m500.block(0..256), None);
            let (mut a, mut b) = (m500.block(0..256), m500.block(256..500));
            let (ua, ub) = std::thread::scope(|s| {
                let h = s.spawn(|| run(&mut b, None));
                (run(&mut a, None), h.join().unwrap())
            });
            println!(
                "split 784x256 µs/step: linked pair {pair:.1}, linked to nobody {nobody:.1}, \
                 alone {alone:.1}, unlinked pair {ua:.1}/{ub:.1}"
            );
        }
        return;
    }
    let sync = SplitSync::new(2, 784);
    let (mut a, mut b) = (m500.block(0..256), m500.block(256..500));
    let us = std::thread::scope(|s| {
        s.spawn(|| run(&mut b, Some(SplitLink { sync: &sync, me: 1 })));
        run(&mut a, Some(SplitLink { sync: &sync, me: 0 }))
    });
    println!("split worker 0 of 2 (784x256 each): {us:.1} µs/step");
    let sync1 = SplitSync::new(1, 784);
    let us = run(&mut m500.block(0..256), Some(SplitLink { sync: &sync1, me: 0 }));
    println!("  one split worker 784x256 linked to nobody: {us:.1} µs/step");
    let us = run(&mut m500.block(0..256), None);
    println!("  one split worker 784x256 unlinked: {us:.1} µs/step");
    let mut a = Model::new(256).lone();
    let mut b = a.clone();
    let (ua, ub) = std::thread::scope(|s| {
        let h = s.spawn(|| run(&mut b, None));
        (run(&mut a, None), h.join().unwrap())
    });
    println!("two independent lone 784x256 workers at once: {ua:.1} and {ub:.1} µs/step");
    // The `rows` decomposition: half the rows each, with and without the
    // all-reduction per example.
    let run_rows = |k: &mut FusedTiedSgd, r: std::ops::Range<usize>| {
        let t = Instant::now();
        for (s, n) in masks.iter().enumerate() {
            k.step(&example(s)[r.clone()], &n[r.clone()]);
        }
        t.elapsed().as_secs_f64() * 1e6 / steps as f64
    };
    for linked in [false, true] {
        let sync = Arc::new(RowSync::new(2, 512));
        let make = |r: std::ops::Range<usize>, me: usize| {
            if linked {
                FusedTiedSgd::new_rows(m500.shape, m500.params(), 0.01, 0.0, r, sync.clone(), me).unwrap()
            } else {
                m500.rows_unlinked(r)
            }
        };
        let (mut a, mut b) = (make(0..392, 0), make(392..784, 1));
        let (ua, ub) = std::thread::scope(|s| {
            let h = s.spawn(|| run_rows(&mut b, 392..784));
            (run_rows(&mut a, 0..392), h.join().unwrap())
        });
        println!("rows workers 392x500 (linked: {linked}): {ua:.1} and {ub:.1} µs/step");
    }
}
