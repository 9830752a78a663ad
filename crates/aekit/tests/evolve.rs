//! The genetic algorithm and the evolution strategy on objectives whose
//! optimum is known: a convex quadratic and Rosenbrock's valley; their
//! independence of the thread count; and the seed-chain genome against the
//! materialised one.

use aekit::optim::AdamConfig;
use aekit::tensor::gemm::Par;
use aekit::tensor::rng::Rng;
use aekit::train::evolve::{EsConfig, EvolveFit, GaConfig, SigmaMode};
use aekit::train::{fit_loop_with, Checkpointing, Finished, Fit, Objective, Silent};
use std::ops::Range;

/// f(θ) = ½ Σ aᵢ(θᵢ − cᵢ)², or Rosenbrock's (1 − x)² + 100(y − x²)²; one
/// "example", so every minibatch is the whole objective.
enum Test {
    Quadratic { a: Vec<f32>, c: Vec<f32> },
    Rosenbrock,
}

impl Objective for Test {
    type Batch = ();
    type Workspace = ();
    fn n_params(&self) -> usize {
        match self {
            Test::Quadratic { a, .. } => a.len(),
            Test::Rosenbrock => 2,
        }
    }
    fn n_examples(&self) -> usize {
        1
    }
    fn new_batch(&self, _cap: usize) {}
    fn new_workspace(&self, _rows: usize) {}
    fn load(&self, _idx: &[usize], _b: &mut (), _rng: &mut Rng) {}
    fn loss_grad_sum(
        &self,
        p: &[f32],
        _g: Option<&mut [f32]>,
        _b: &(),
        _r: Range<usize>,
        _ws: &mut (),
        _par: Par,
    ) -> f64 {
        match self {
            Test::Quadratic { a, c } => p
                .iter()
                .zip(a)
                .zip(c)
                .map(|((&p, &a), &c)| 0.5 * a as f64 * ((p - c) as f64).powi(2))
                .sum(),
            Test::Rosenbrock => {
                let (x, y) = (p[0] as f64, p[1] as f64);
                (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
            }
        }
    }
    fn finish(&self, _p: &[f32], _g: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        Finished {
            loss: loss_sum,
            objective: loss_sum / n as f64,
        }
    }
}

fn quadratic(n: usize) -> Test {
    Test::Quadratic {
        a: (0..n).map(|i| 1.0 + i as f32 / n as f32).collect(),
        c: (0..n).map(|i| (i as f32 * 0.37).sin()).collect(),
    }
}

fn run(f: &mut dyn Fit, epochs: usize) -> f64 {
    let r = fit_loop_with(f, epochs, 0, &mut Silent, "lr", Checkpointing::default()).unwrap();
    r.history.last().unwrap().train_loss
}

fn ga(o: &Test, theta0: Vec<f32>, cfg: GaConfig, epochs: usize) -> Vec<f32> {
    let mut f = EvolveFit::ga(o, theta0, cfg, 1, 5, None).unwrap();
    run(&mut f, epochs);
    f.params().to_vec()
}

fn es(o: &Test, theta0: Vec<f32>, cfg: EsConfig, lr: f32, epochs: usize) -> Vec<f32> {
    let adam = AdamConfig {
        lr,
        ..Default::default()
    };
    let mut f = EvolveFit::es(o, theta0, cfg, adam, 1, 5, None).unwrap();
    run(&mut f, epochs);
    f.params().to_vec()
}

fn dist(p: &[f32], c: &[f32]) -> f32 {
    p.iter().zip(c).map(|(a, b)| (a - b).powi(2)).sum::<f32>().sqrt()
}

#[test]
fn both_reach_the_optimum_of_a_convex_quadratic() {
    let o = quadratic(10);
    let Test::Quadratic { c, .. } = &o else {
        unreachable!()
    };
    let start = vec![0.0f32; 10];
    let d0 = dist(&start, c);
    let cfg = GaConfig {
        population: 40,
        parents: 8,
        sigma: 0.1,
        sigma_mode: SigmaMode::Decay,
        sigma_decay: 0.995,
        materialise: true,
        ..GaConfig::default()
    };
    let p = ga(&o, start.clone(), cfg, 80);
    assert!(
        dist(&p, c) < 0.02 * d0,
        "GA: {} from the optimum (started {d0})",
        dist(&p, c)
    );
    let p = es(
        &o,
        start,
        EsConfig {
            pairs: 10,
            sigma: 0.05,
            ..EsConfig::default()
        },
        0.02,
        100,
    );
    assert!(
        dist(&p, c) < 0.02 * d0,
        "ES: {} from the optimum (started {d0})",
        dist(&p, c)
    );
}

#[test]
fn es_follows_rosenbrocks_valley_to_its_minimum() {
    let p = es(
        &Test::Rosenbrock,
        vec![-1.0, 1.0],
        EsConfig {
            pairs: 16,
            sigma: 0.01,
            ..EsConfig::default()
        },
        0.003,
        1500,
    );
    assert!(dist(&p, &[1.0, 1.0]) < 0.05, "ES ended at {p:?}");
}

#[test]
fn the_thread_count_does_not_change_a_run() {
    let o = quadratic(64);
    let start = vec![0.0f32; 64];
    let cfg = GaConfig {
        population: 12,
        parents: 4,
        sigma_mode: SigmaMode::SelfAdapt,
        ..GaConfig::default()
    };
    let in_pool = |t: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
        pool.install(|| {
            (
                ga(&o, start.clone(), cfg.clone(), 3),
                es(&o, start.clone(), EsConfig::default(), 0.01, 3),
            )
        })
    };
    let (one, three) = (in_pool(1), in_pool(3));
    assert_eq!(one.0, three.0, "GA");
    assert_eq!(one.1, three.1, "ES");
    assert_ne!(one.0, start, "the GA moved");
}

#[test]
fn a_seed_chain_rebuilds_the_materialised_genome() {
    let o = quadratic(32);
    let start: Vec<f32> = (0..32).map(|i| i as f32 * 0.1).collect();
    let cfg = GaConfig {
        population: 10,
        parents: 3,
        sigma_mode: SigmaMode::Decay,
        ..GaConfig::default()
    };
    let chain = ga(&o, start.clone(), cfg.clone(), 4);
    let kept = ga(
        &o,
        start,
        GaConfig {
            materialise: true,
            ..cfg
        },
        4,
    );
    assert_eq!(chain, kept);
}

#[test]
fn crossover_without_materialised_genomes_is_refused() {
    let o = quadratic(4);
    let cfg = GaConfig {
        crossover: 0.5,
        ..GaConfig::default()
    };
    let e = EvolveFit::ga(&o, vec![0.0; 4], cfg, 1, 1, None)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ga.materialise"), "{e}");
}
