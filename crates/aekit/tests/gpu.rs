//! The GPU backend against the CPU reference. Built with `--features cuda`;
//! each test that needs a GPU prints why it skips without one (CI has none:
//! `bench/device.sh` runs them on one). Odd shapes (783 inputs, 37 hidden
//! units, batches of 7) catch any kernel that assumes round sizes.
#![cfg(feature = "cuda")]

use aekit::data::Dataset;
use aekit::gpu::Gpu;
use aekit::layers::activation::Activation;
use aekit::layers::{Corruption, Loss};
use aekit::models::stacked::{PretrainConfig, Schedule, StackedDae};
use aekit::models::{DaeConfig, DenoisingAutoencoder};
use aekit::train::{Device, Optimizer, Silent, TrainConfig};
use rand::Rng as _;

/// Whether a GPU is here; prints why not.
fn have_gpu() -> bool {
    match Gpu::open(0) {
        Ok(g) => {
            eprintln!("GPU: {} ({} multiprocessors)", g.name(), g.multiprocessors());
            true
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// `n` rows of `dim` values in [0, 1], a third of them 0 (like images).
fn data(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = aekit::tensor::rng::seeded(seed);
    (0..n * dim)
        .map(|_| {
            let v: f32 = rng.random();
            if v < 0.33 {
                0.0
            } else {
                v
            }
        })
        .collect()
}

/// The largest |a − b| relative to the largest |a|.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// A trained model's parameters and its epochs' training losses.
type Trained = (Vec<f32>, Vec<f64>);

/// Trains the same DAE on the CPU and on the GPU.
fn both(cfg: DaeConfig, train: TrainConfig, x: &[f32], nv: usize) -> (Trained, Trained) {
    let view = ndarray::ArrayView2::from_shape((x.len() / nv, nv), x).unwrap();
    let run = |device| {
        let mut m = DenoisingAutoencoder::new(
            cfg.clone(),
            TrainConfig {
                device,
                ..train.clone()
            },
        );
        let r = m.fit(view, None, &mut Silent).unwrap();
        (
            m.params().to_vec(),
            r.history.iter().map(|e| e.train_loss).collect(),
        )
    };
    (run(Device::Cpu), run(Device::Cuda(0)))
}

#[test]
fn kernels_compile_with_nvrtc() {
    match aekit::gpu::compile_kernels(Some("compute_90")) {
        Ok(_) => {}
        Err(aekit::Error::Device(why)) if why.contains("not found") => eprintln!("skipped: {why}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_missing_gpu_is_an_error_not_a_panic() {
    // On a machine without CUDA this says which library is missing; with a
    // GPU, ordinal 99 does not exist.
    let e = Gpu::open(99).err().expect("no GPU 99");
    let msg = e.to_string();
    assert!(msg.contains("cuda:99"), "{msg}");
}

/// Fine-tuning options the GPU path lacks are refused by name before the
/// GPU is opened, so this runs, and holds, with or without one.
#[test]
fn finetuning_options_the_gpu_lacks_are_refused_before_it_is_opened() {
    use aekit::models::stacked::FinetuneConfig;
    let nv = 20;
    let set = |n: usize, seed: u64| Dataset {
        x: data(n, nv, seed),
        labels: Some((0..n).map(|i| (i % 2) as u8).collect()),
        n,
        dim: nv,
        image: None,
    };
    let (train, val, test) = (set(12, 1), set(4, 2), set(4, 3));
    let empty = set(0, 4);
    let base = FinetuneConfig {
        train: TrainConfig {
            epochs: 1,
            batch: 4,
            device: Device::Cuda(0),
            ..FinetuneConfig::default().train
        },
        ..FinetuneConfig::default()
    };
    let cases = [
        (
            FinetuneConfig {
                dropout: 0.2,
                ..base.clone()
            },
            &val,
            "fine-tuning with dropout runs on the CPU only",
        ),
        (
            FinetuneConfig {
                average: 0.999,
                ..base.clone()
            },
            &val,
            "fine-tuning with weight averaging runs on the CPU only",
        ),
        (
            FinetuneConfig {
                max_norm: 4.0,
                ..base.clone()
            },
            &val,
            "fine-tuning with a max-norm bound runs on the CPU only",
        ),
        (
            base.clone(),
            &empty,
            "fine-tuning without a validation set runs on the CPU only",
        ),
    ];
    for (cfg, val, want) in cases {
        let mut s = StackedDae::new(nv, &[8], 5);
        let before = s.trunk.clone();
        let e = s
            .finetune(&train, val, &test, &cfg, &mut Silent)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
        assert_eq!(s.trunk, before, "nothing trained");
    }
}

#[test]
fn minibatch_steps_match_the_cpu() {
    if !have_gpu() {
        return;
    }
    let (nv, n) = (783, 35);
    let x = data(n, nv, 1);
    let cases = [
        // tied, cross-entropy, SGD with momentum and weight decay
        (
            DaeConfig {
                n_hid: 37,
                noise: Corruption::None,
                ..DaeConfig::default()
            },
            TrainConfig {
                epochs: 3,
                batch: 7,
                lr: 0.05,
                momentum: 0.5,
                weight_decay: 0.01,
                patience: 0,
                ..TrainConfig::default()
            },
        ),
        // untied, squared error of sigmoid outputs, tanh hidden units, Adam
        (
            DaeConfig {
                n_hid: 37,
                tied: false,
                hidden_activation: Activation::Tanh,
                loss: Loss::Squared,
                noise: Corruption::None,
                ..DaeConfig::default()
            },
            TrainConfig {
                epochs: 3,
                batch: 7,
                optimizer: Optimizer::Adam,
                lr: 0.003,
                weight_decay: 0.001,
                patience: 0,
                ..TrainConfig::default()
            },
        ),
    ];
    for (cfg, train) in cases {
        // SGD moves each weight by η·g, so summation-order differences stay
        // at float rounding (about 1e-6 here). Adam moves it by η·m̂/(√v̂+ε):
        // where a gradient is nearly zero, a rounding-level difference in g
        // changes the step by up to η, so its weights agree to η·steps
        // relative to the largest weight, not to rounding.
        let bound = match train.optimizer {
            Optimizer::Adam => 1e-3,
            _ => 1e-4,
        };
        let ((pc, lc), (pg, lg)) = both(cfg, train, &x, nv);
        let d = rel_diff(&pc, &pg);
        eprintln!("parameters differ by {d:.2e} (relative); CPU losses {lc:?}, GPU {lg:?}");
        assert!(d < bound, "GPU parameters differ from the CPU's by {d}");
        for (a, b) in lc.iter().zip(&lg) {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs(),
                "epoch losses {a} (CPU) and {b} (GPU)"
            );
        }
    }
}

#[test]
fn per_example_kernel_is_the_cpus_sgd() {
    if !have_gpu() {
        return;
    }
    // 783×37 (several rows per block), and 100×1100 (more hidden units than
    // threads in a block).
    for (nv, nh, n) in [(783usize, 37usize, 60usize), (100, 1100, 40)] {
        let x = data(n, nv, 2);
        let cfg = DaeConfig {
            n_hid: nh,
            noise: Corruption::None,
            ..DaeConfig::default()
        };
        let train = TrainConfig {
            epochs: 2,
            batch: 1,
            lr: 0.02,
            weight_decay: 0.001,
            patience: 0,
            ..TrainConfig::default()
        };
        let ((pc, lc), (pg, lg)) = both(cfg, train, &x, nv);
        let d = rel_diff(&pc, &pg);
        eprintln!("{nv}x{nh}: parameters differ by {d:.2e}; CPU losses {lc:?}, GPU {lg:?}");
        assert!(d < 1e-4, "GPU parameters differ from the CPU's by {d}");
        for (a, b) in lc.iter().zip(&lg) {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs(),
                "epoch losses {a} (CPU) and {b} (GPU)"
            );
        }
    }
}

#[test]
fn gradual_pretraining_matches_the_cpu() {
    if !have_gpu() {
        return;
    }
    let (nv, n) = (783, 42);
    let x = Dataset {
        x: data(n, nv, 3),
        labels: None,
        n,
        dim: nv,
        image: None,
    };
    let run = |device| {
        let mut s = StackedDae::new(nv, &[37, 29], 5);
        let cfg = PretrainConfig {
            layers: vec![37, 29],
            schedule: Schedule::Gradual,
            noise: vec![Corruption::None],
            layer_epochs: 2,
            train: TrainConfig {
                epochs: 2,
                batch: 7,
                lr: 0.05,
                momentum: 0.5,
                device,
                ..TrainConfig::default()
            },
            ..PretrainConfig::default()
        };
        s.pretrain(&x, &cfg, &mut Silent).unwrap();
        s.trunk.clone()
    };
    let (c, g) = (run(Device::Cpu), run(Device::Cuda(0)));
    let d = rel_diff(&c, &g);
    eprintln!("trunks differ by {d:.2e}");
    assert!(d < 1e-4, "GPU trunk differs from the CPU's by {d}");
}

#[test]
fn training_curves_with_noise_match_the_cpu() {
    if !have_gpu() {
        return;
    }
    // Masking noise from different streams: the curves agree in law, not
    // step for step. 2000 real MNIST digits, 3 epochs.
    let d = aekit::data::builtin::builtin_mnist().unwrap();
    let n = 2000;
    let x = &d.x[..n * d.dim];
    for batch in [1usize, 20] {
        let cfg = DaeConfig {
            n_hid: 200,
            noise: Corruption::Mask(0.25),
            ..DaeConfig::default()
        };
        let train = TrainConfig {
            epochs: 3,
            batch,
            lr: if batch == 1 { 0.01 } else { 0.1 },
            patience: 0,
            ..TrainConfig::default()
        };
        let ((_, lc), (_, lg)) = both(cfg, train, x, d.dim);
        eprintln!("batch {batch}: CPU losses {lc:?}, GPU {lg:?}");
        for (a, b) in lc.iter().zip(&lg) {
            assert!(
                (a - b).abs() <= 0.02 * a,
                "epoch losses {a} (CPU) and {b} (GPU) differ by over 2%"
            );
        }
        assert!(lg[2] < lg[0], "the GPU's loss did not fall: {lg:?}");
    }
}

#[test]
fn finetuning_matches_the_cpu() {
    if !have_gpu() {
        return;
    }
    use aekit::models::stacked::FinetuneConfig;
    let nv = 783;
    let set = |n: usize, seed: u64| {
        let x = data(n, nv, seed);
        // Labels that depend on the inputs, so that there is something to learn.
        let labels = (0..n)
            .map(|i| (x[i * nv..(i + 1) * nv].iter().sum::<f32>() as usize % 3) as u8)
            .collect();
        Dataset {
            x,
            labels: Some(labels),
            n,
            dim: nv,
            image: None,
        }
    };
    let (train, val, test) = (set(49, 4), set(14, 5), set(14, 6));
    let run = |device| {
        let mut s = StackedDae::new(nv, &[37, 29], 5);
        let cfg = FinetuneConfig {
            lr_decay: 0.9,
            train: TrainConfig {
                epochs: 3,
                batch: 7,
                lr: 0.1,
                momentum: 0.5,
                weight_decay: 0.001,
                patience: 0,
                device,
                ..FinetuneConfig::default().train
            },
            ..FinetuneConfig::default()
        };
        let r = s.finetune(&train, &val, &test, &cfg, &mut Silent).unwrap();
        let losses: Vec<f64> = r.history.iter().map(|e| e.train_loss).collect();
        (s.trunk.clone(), losses, r.test_error)
    };
    let (c, g) = (run(Device::Cpu), run(Device::Cuda(0)));
    let d = rel_diff(&c.0, &g.0);
    eprintln!("trunks differ by {d:.2e}; CPU losses {:?}, GPU {:?}", c.1, g.1);
    assert!(d < 1e-4, "GPU trunk differs from the CPU's by {d}");
    for (a, b) in c.1.iter().zip(&g.1) {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs(),
            "epoch losses {a} (CPU) and {b} (GPU)"
        );
    }
    assert_eq!(c.2, g.2, "test errors differ");
}

#[test]
fn convolutional_training_matches_the_cpu() {
    if !have_gpu() {
        return;
    }
    use aekit::models::conv::{CaeSpec, CaeTrainConfig, ConvAutoencoder};
    let all = aekit::data::builtin::builtin_mnist().unwrap();
    let train = all.select(&(0..150).collect::<Vec<_>>());
    let val = all.select(&(150..190).collect::<Vec<_>>());
    // Every layer kind: transposed convs (cae-mnist), max-unpooling and
    // nearest upsampling; both losses; batches of 7 (a ragged last batch).
    for (preset, loss) in [
        ("cae-mnist", Loss::Squared),
        ("cae-mnist-unpool", Loss::CrossEntropy),
        ("cae-mnist-upsample", Loss::Squared),
    ] {
        let run = |device| {
            let mut m = ConvAutoencoder::new(&CaeSpec::preset(preset).unwrap(), loss, 3).unwrap();
            let cfg = CaeTrainConfig {
                loss,
                train: TrainConfig {
                    epochs: 2,
                    batch: 7,
                    lr: 2e-3,
                    weight_decay: 1e-4,
                    threads: 1,
                    device,
                    ..CaeTrainConfig::default().train
                },
                ..CaeTrainConfig::default()
            };
            let r = m
                .fit(&train, &val, &cfg, &mut Silent, Default::default())
                .unwrap();
            let losses: Vec<f64> = r.history.iter().map(|e| e.train_loss).collect();
            let vals: Vec<f64> = r.history.iter().map(|e| e.val_loss.unwrap()).collect();
            (m.params, losses, vals)
        };
        let (c, g) = (run(Device::Cpu), run(Device::Cuda(0)));
        let d = rel_diff(&c.0, &g.0);
        eprintln!(
            "{preset}: parameters differ by {d:.2e}; CPU losses {:?} val {:?}, GPU {:?} val {:?}",
            c.1, c.2, g.1, g.2
        );
        // Adam's bound, as for the dense models. Max-unpooling puts each
        // code value where its pooling window's maximum was: a near-tie
        // that a rounding-level difference decides the other way moves a
        // value a whole pixel, and Adam's normalised steps carry it on (an
        // H200 run: 1.4e-3 here, 4e-6 for cae-mnist, with every epoch's
        // losses within 1e-5), so that decoder's weights get 1e-2.
        let bound = if preset == "cae-mnist-unpool" { 1e-2 } else { 1e-3 };
        assert!(d < bound, "{preset}: GPU parameters differ from the CPU's by {d}");
        for (a, b) in c.1.iter().chain(&c.2).zip(g.1.iter().chain(&g.2)) {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs(),
                "{preset}: losses {a} (CPU) and {b} (GPU)"
            );
        }
    }
}

#[test]
fn sparse_cost_and_gradient_match_the_cpu() {
    use aekit::models::sparse_ae::{sparse_cost, SparseConfig, SparseLayout, SparseWorkspace};
    use aekit::tensor::gemm::Par;
    if !have_gpu() {
        return;
    }
    let gpu = Gpu::open(0).unwrap();
    let (nv, nh, m) = (783, 37, 7);
    let x = data(m, nv, 11);
    for out in [Activation::Sigmoid, Activation::Identity] {
        for (beta, lambda) in [(3.0, 3e-3), (0.0, 0.0), (3.0, 0.0)] {
            let cfg = SparseConfig {
                n_vis: nv,
                n_hid: nh,
                sparsity_weight: beta,
                weight_decay: lambda,
                output_activation: out,
                ..SparseConfig::default()
            };
            let len = SparseLayout::new(nv, nh).len;
            let mut rng = aekit::tensor::rng::seeded(5);
            let p: Vec<f32> = (0..len).map(|_| rng.random_range(-0.1f32..0.1)).collect();
            let mut g_cpu = vec![0.0f32; len];
            let c_cpu = sparse_cost(
                &cfg,
                &p,
                Some(&mut g_cpu),
                &x,
                m,
                &mut SparseWorkspace::default(),
                Par::Seq,
            );
            let mut sg = aekit::models::sparse_ae::gpu::SparseGpu::new(&gpu, &cfg, &x, m).unwrap();
            let mut g_gpu = vec![0.0f32; len];
            let c_gpu = sg.cost(&p, Some(&mut g_gpu)).unwrap();
            let without = sg.cost(&p, None).unwrap();
            let what = format!("{out:?} output, β = {beta}, λ = {lambda}");
            for (name, a, b) in [
                ("total", c_cpu.total, c_gpu.total),
                ("reconstruction", c_cpu.reconstruction, c_gpu.reconstruction),
                ("weight decay", c_cpu.weight_decay, c_gpu.weight_decay),
                ("sparsity", c_cpu.sparsity, c_gpu.sparsity),
                ("mean activation", c_cpu.mean_activation, c_gpu.mean_activation),
                ("total without gradient", c_cpu.total, without.total),
            ] {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + a.abs()),
                    "{what}: {name} {a} (CPU) vs {b} (GPU)"
                );
            }
            let d = rel_diff(&g_cpu, &g_gpu);
            assert!(d < 1e-4, "{what}: gradient differs by {d} of its largest entry");
        }
    }
}

#[test]
fn sparse_lbfgs_fit_matches_the_cpu() {
    use aekit::models::sparse_ae::{SparseAutoencoder, SparseConfig};
    use aekit::optim::lbfgs::LbfgsConfig;
    use aekit::tensor::gemm::Par;
    if !have_gpu() {
        return;
    }
    let (nv, nh, m) = (783, 37, 301);
    let x = data(m, nv, 12);
    let view = ndarray::ArrayView2::from_shape((m, nv), &x[..]).unwrap();
    let fit = |device, iterations| {
        let mut s = SparseAutoencoder::new(SparseConfig {
            n_vis: nv,
            n_hid: nh,
            ..SparseConfig::default()
        });
        s.device = device;
        let start = s.cost(view, Par::Seq).unwrap().total;
        let cfg = LbfgsConfig {
            max_iter: iterations,
            ..LbfgsConfig::default()
        };
        s.fit(view, &cfg, Par::Seq, &mut Silent).unwrap();
        (start, s.cost(view, Par::Seq).unwrap().total, s.params().to_vec())
    };
    // The maths is checked exactly above; here the fits. The two runs' line
    // searches part on f32 rounding, so their parameters do not stay
    // together (on an H200 they differed by 1.3% of the largest after 3
    // iterations and 3.3% after 20) while the costs do (48.1462 against
    // 48.1349 after 20): the costs are compared.
    let (start, cpu, p_cpu) = fit(Device::Cpu, 20);
    let (_, gpu, p_gpu) = fit(Device::Cuda(0), 20);
    eprintln!(
        "sparse 783-37 on 301 rows, 20 L-BFGS iterations: cost {start:.4} -> CPU {cpu:.6}, GPU {gpu:.6}; \
         parameters differ by {:.2e} of the largest",
        rel_diff(&p_cpu, &p_gpu)
    );
    assert!(cpu < 0.5 * start, "the CPU fit did not learn: {start} -> {cpu}");
    assert!((cpu - gpu).abs() <= 1e-3 * cpu, "CPU {cpu} vs GPU {gpu}");
}
