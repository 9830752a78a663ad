//! The per-example kernels against the reference maths (the layer-by-layer
//! objective of `models::dae`, stepped with plain SGD), and the parallel
//! plans against one thread with exactly the number of workers asked for
//! (more workers than cores is allowed here: slower, never wrong).

use aekit::data::builtin::builtin_mnist;
use aekit::layers::{Corruption, Loss};
use aekit::models::dae::{objective, Examples, Layout, Workspace};
use aekit::models::DaeConfig;
use aekit::per_example::{self, FusedTiedSgd, HogwildParams, HogwildWorker, Isa, Job, Plan, TiedShape};
use aekit::tensor::gemm::Par;
use aekit::tensor::rng::seeded;
use aekit::train::Silent;
use rand::Rng as _;

/// A tied sigmoid model with weights drawn as `train` draws them and small
/// random hidden biases (so that b is exercised too).
fn model(n_vis: usize, n_hid: usize, loss: Loss, seed: u64) -> (DaeConfig, Layout, Vec<f32>) {
    let cfg = DaeConfig {
        n_vis,
        n_hid,
        loss,
        ..DaeConfig::default()
    };
    let lay = Layout::new(&cfg);
    let mut rng = seeded(seed);
    let r = cfg.init_range();
    let mut p: Vec<f32> = (0..lay.len).map(|_| rng.random_range(-r..r)).collect();
    p[lay.b_hid.clone()].iter_mut().for_each(|v| *v *= 0.1);
    (cfg, lay, p)
}

fn shape(cfg: &DaeConfig) -> TiedShape {
    TiedShape {
        n_vis: cfg.n_vis,
        n_hid: cfg.n_hid,
        loss: cfg.loss,
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// One step of the reference: the batch-1 objective's gradient (weight decay
/// included), then θ ← θ − η·g. Returns the example's loss.
fn reference_step(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &mut [f32],
    x: &[f32],
    noisy: &[f32],
    lr: f32,
    wd: f32,
) -> f32 {
    let mut ws = Workspace::<f32>::new(cfg, 1);
    let mut g = vec![0.0f32; lay.len];
    let ex = Examples {
        input: noisy,
        target: x,
        n: 1,
    };
    let (loss, _) = objective(cfg, lay, p, &mut g, ex, wd, &mut ws, Par::Seq);
    for (pv, gv) in p.iter_mut().zip(&g) {
        *pv -= lr * gv;
    }
    loss
}

/// 100 steps of the fused kernel against 100 reference steps.
fn fused_agrees(n_vis: usize, n_hid: usize, loss: Loss, isa: Isa, data: &[f32], lr: f32) {
    let (cfg, lay, mut p) = model(n_vis, n_hid, loss, 4);
    let wd = 1e-3;
    let mut k = FusedTiedSgd::new(shape(&cfg), lay.tied(&p), lr, wd)
        .unwrap()
        .with_isa(isa);
    let mut rng = seeded(5);
    let mut noisy = vec![0.0f32; n_vis];
    let n = data.len() / n_vis;
    for t in 0..100 {
        let x = &data[(t % n) * n_vis..(t % n + 1) * n_vis];
        Corruption::Mask(0.25).apply(&mut noisy, x, &mut rng);
        let lf = k.step(x, &noisy);
        let lref = reference_step(&cfg, &lay, &mut p, x, &noisy, lr, wd);
        assert!(
            (lf - lref).abs() <= 1e-4 * lref.abs().max(1.0),
            "step {t}: loss {lf} vs {lref}"
        );
    }
    let mut fused = vec![0.0f32; lay.len];
    k.write_params(lay.tied_mut(&mut fused));
    let worst = max_abs_diff(&fused, &p);
    assert!(
        worst < 1e-5,
        "{n_vis}x{n_hid} {loss:?} {isa:?}: max |Δθ| = {worst}"
    );
}

fn sparse_data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = seeded(seed);
    (0..n * dim)
        .map(|_| {
            if rng.random_bool(0.6) {
                0.0
            } else {
                rng.random_range(0.0..1.0)
            }
        })
        .collect()
}

#[test]
fn fused_kernel_matches_the_layer_path_after_100_steps_on_odd_shapes() {
    let data = sparse_data(20, 37, 8);
    for isa in [Isa::Portable, Isa::Avx2Fma, Isa::Avx512] {
        for loss in [Loss::Squared, Loss::CrossEntropy] {
            fused_agrees(37, 21, loss, isa, &data, 0.1);
            fused_agrees(37, 1, loss, isa, &data, 0.1);
        }
    }
}

#[test]
fn fused_kernel_matches_the_layer_path_after_100_steps_on_mnist_784x500() {
    let d = builtin_mnist().unwrap();
    for isa in [Isa::Portable, Isa::detect()] {
        fused_agrees(784, 500, Loss::Squared, isa, &d.x[..100 * 784], 0.01);
        fused_agrees(784, 500, Loss::CrossEntropy, isa, &d.x[..100 * 784], 0.01);
    }
}

#[test]
fn hogwild_worker_matches_the_reference_maths_step_by_step() {
    // One Hogwild worker alone has no races: each of its steps must be one
    // plain SGD step of the objective, loss and parameters alike.
    for (n_vis, n_hid, data) in [
        (37usize, 21usize, sparse_data(30, 37, 2)),
        (784, 40, builtin_mnist().unwrap().x[..30 * 784].to_vec()),
    ] {
        for loss in [Loss::Squared, Loss::CrossEntropy] {
            let (cfg, lay, mut p) = model(n_vis, n_hid, loss, 9);
            let (lr, wd) = (0.05, 1e-3);
            let t = lay.tied(&p);
            let shared = HogwildParams::new(t.w, t.b, t.c);
            let mut worker = HogwildWorker::new(&shared);
            let mut rng = seeded(3);
            let mut noisy = vec![0.0f32; n_vis];
            for s in 0..30 {
                let x = &data[s * n_vis..(s + 1) * n_vis];
                Corruption::Mask(0.3).apply(&mut noisy, x, &mut rng);
                let lh = worker.step(&shared, x, &noisy, lr, wd, loss == Loss::CrossEntropy);
                let lref = reference_step(&cfg, &lay, &mut p, x, &noisy, lr, wd);
                assert!(
                    (lh - lref).abs() <= 1e-4 * lref.abs().max(1.0),
                    "{loss:?} step {s}: {lh} vs {lref}"
                );
                let mut got = vec![0.0f32; lay.len];
                let g = lay.tied_mut(&mut got);
                shared.write(g.w, g.b, g.c);
                let d = max_abs_diff(&got, &p);
                assert!(d < 1e-5, "{n_vis}x{n_hid} {loss:?} step {s}: max |Δθ| = {d}");
            }
        }
    }
}

/// One epoch of `plan` from the same start, order and noise as a fused
/// one-thread epoch; returns the parameters.
fn epoch(plan: Plan, cfg: &DaeConfig, lay: &Layout, p0: &[f32], x: &[f32]) -> Vec<f32> {
    let job = Job {
        shape: shape(cfg),
        lr: 0.02,
        weight_decay: 1e-4,
        noise: Corruption::Mask(0.25),
    };
    let mut p = p0.to_vec();
    let mut rng = seeded(11);
    let loss = per_example::run_epoch(&job, plan, lay.tied_mut(&mut p), x, &mut rng, &mut Silent);
    assert!(loss.is_finite() && loss > 0.0, "{plan:?}: loss {loss}");
    p
}

#[test]
fn split_rows_and_balanced_with_3_to_5_workers_equal_one_thread() {
    // 3 to 5 workers even on a 2-core machine: the drivers take the count as
    // given (only the model caps it at the cores, for speed).
    let d = builtin_mnist().unwrap();
    let x = &d.x[..450 * 784];
    for loss in [Loss::Squared, Loss::CrossEntropy] {
        let (cfg, lay, p0) = model(784, 100, loss, 12);
        let one = epoch(Plan::Fused, &cfg, &lay, &p0, x);
        for plan in [
            Plan::Split(2),
            Plan::Split(3),
            Plan::Rows(2),
            Plan::Rows(3),
            // From 4 workers, the all-reduction runs in two phases.
            Plan::Rows(5),
            Plan::Balanced(3),
            Plan::Balanced(4),
        ] {
            let many = epoch(plan, &cfg, &lay, &p0, x);
            // Same examples, same noise, same SGD; only the order in which
            // partial sums are added differs (split: the decoder's; rows: the
            // encoder's and δh; balanced: as rows, re-shared every 200
            // examples).
            let diff = max_abs_diff(&one, &many);
            assert!(diff < 1e-5, "{plan:?} {loss:?}: max |Δθ| = {diff}");
            assert!(max_abs_diff(&p0, &many) > 1e-3, "{plan:?} trained");
        }
    }
}
