//! Stacked, gradual and hybrid pretraining and fine-tuning, on a small part
//! of the built-in MNIST sample.

use aekit::data::builtin::builtin_mnist;
use aekit::data::Dataset;
use aekit::layers::Corruption;
use aekit::models::stacked::{FinetuneConfig, PretrainConfig, PretrainLog, Schedule, StackedDae};
use aekit::train::{Silent, TrainConfig};
use std::collections::HashMap;

fn part(d: &Dataset, range: std::ops::Range<usize>) -> Dataset {
    d.select(&range.collect::<Vec<_>>())
}

fn small_cfg(schedule: Schedule) -> PretrainConfig {
    PretrainConfig {
        layers: vec![48, 24],
        schedule,
        noise: vec![Corruption::Mask(0.15)],
        layer_epochs: 2,
        train: TrainConfig {
            epochs: 2,
            batch: 20,
            lr: 0.05,
            momentum: 0.5,
            ..PretrainConfig::default().train
        },
        ..PretrainConfig::default()
    }
}

#[test]
fn schedules_split_the_budget_as_the_paper_says() {
    assert_eq!(Schedule::Stacked.split(80), (160, 0));
    assert_eq!(Schedule::Gradual.split(80), (0, 80));
    assert_eq!(Schedule::Hybrid(0.5).split(80), (80, 40));
    assert_eq!(Schedule::Hybrid(0.25).split(80), (40, 60));
    assert_eq!("hybrid:0.75".parse::<Schedule>().unwrap(), Schedule::Hybrid(0.75));
    assert!("hybrid:2".parse::<Schedule>().is_err());
    assert!("greedy".parse::<Schedule>().is_err());
}

#[test]
fn every_schedule_counts_its_updates_and_learns() {
    let d = builtin_mnist().unwrap();
    let train = part(&d, 0..400);
    let per_epoch = 400 / 20;
    for (schedule, epochs_layer2) in [
        (Schedule::Stacked, 4),
        (Schedule::Gradual, 2),
        (Schedule::Hybrid(0.5), 2 + 1),
    ] {
        let mut m = StackedDae::new(784, &[48, 24], 3);
        let mut silent = Silent;
        let mut recorder = PretrainLog::new(&mut silent);
        let updates = m.pretrain(&train, &small_cfg(schedule), &mut recorder).unwrap();
        let log = recorder.rows;
        assert_eq!(updates, (per_epoch * (2 + epochs_layer2)) as u64, "{schedule}");
        assert_eq!(log.last().unwrap().updates, updates);
        assert!(log.iter().all(|e| e.train_loss.is_finite()));
        let first = log.iter().find(|e| e.layer == 1).unwrap().train_loss;
        let last1 = log.iter().rfind(|e| e.layer == 1).unwrap().train_loss;
        assert!(last1 < first, "{schedule}: layer 1 learns ({first} -> {last1})");
        if schedule != Schedule::Stacked {
            assert!(log.iter().any(|e| e.layer == 2 && e.phase == "gradual"));
        }
    }
}

#[test]
fn later_epochs_sets_each_later_layers_epochs_odd_numbers_too() {
    let d = builtin_mnist().unwrap();
    let train = part(&d, 0..200);
    let per_epoch = 200 / 20;
    for (schedule, later) in [(Schedule::Stacked, 3), (Schedule::Rbm, 1)] {
        let cfg = PretrainConfig {
            later_epochs: Some(later),
            ..small_cfg(schedule)
        };
        let mut m = StackedDae::new(784, &[48, 24], 3);
        let mut silent = Silent;
        let mut recorder = PretrainLog::new(&mut silent);
        let updates = m.pretrain(&train, &cfg, &mut recorder).unwrap();
        // Layer 1 trains train.epochs (2), layer 2 `later`, not the split's 2·2.
        assert_eq!(
            recorder.rows.iter().filter(|e| e.layer == 1).count(),
            2,
            "{schedule}"
        );
        assert_eq!(
            recorder.rows.iter().filter(|e| e.layer == 2).count(),
            later,
            "{schedule}"
        );
        if schedule == Schedule::Stacked {
            assert_eq!(updates, (per_epoch * (2 + later)) as u64);
        }
    }
    // Only the schedules without a gradual phase take it.
    let cfg = PretrainConfig {
        later_epochs: Some(3),
        ..small_cfg(Schedule::Gradual)
    };
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("later_epochs") && e.contains("gradual"), "{e}");
}

#[test]
fn fine_tuning_classifies_and_the_model_file_round_trips() {
    let d = builtin_mnist().unwrap();
    let (train, val, test) = (part(&d, 0..1500), part(&d, 1500..1800), part(&d, 8000..8500));
    let mut m = StackedDae::new(784, &[64, 32], 5);
    m.pretrain(&train, &small_cfg(Schedule::Gradual), &mut Silent)
        .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("aekit-stacked-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("model.safetensors");
    m.save(&path, HashMap::new()).unwrap();
    let back = StackedDae::load(&path).unwrap();
    assert_eq!(
        (back.sizes.clone(), back.trunk.clone()),
        (m.sizes.clone(), m.trunk.clone())
    );
    assert!(m.top_decoder.is_some(), "gradual training keeps its top decoder");
    assert_eq!(back.top_decoder, m.top_decoder);
    // Reconstruction from the top: trained beats untrained, and neither can
    // fall below the minimum (the pixels' own entropy).
    let fresh = StackedDae::new(784, &[64, 32], 5);
    let par = aekit::tensor::gemm::Par::Seq;
    let (trained, untrained) = (
        m.reconstruction_xent(&test, par),
        fresh.reconstruction_xent(&test, par),
    );
    let floor = aekit::layers::loss::xent_minimum(&test.x) as f64 / test.n as f64;
    assert!(
        floor < trained && trained < untrained,
        "{floor} < {trained} < {untrained}"
    );
    let cfg = FinetuneConfig {
        train: TrainConfig {
            epochs: 15,
            lr: 0.5,
            momentum: 0.5,
            patience: 5,
            ..FinetuneConfig::default().train
        },
        ..FinetuneConfig::default()
    };
    let r = m.finetune(&train, &val, &test, &cfg, &mut Silent).unwrap();
    assert!(m.top_decoder.is_none(), "fine-tuning drops the stale decoder");
    // A 784-64-32-10 sigmoid net on 1500 digits: 12-13% after 15-20 epochs in a
    // probe run (chance is 90%).
    assert!(r.test_error < 20.0, "test error {}%", r.test_error);
    assert_eq!(r.confusion.iter().flatten().sum::<u64>(), 500);
    let correct: u64 = (0..10).map(|c| r.confusion[c][c]).sum();
    assert!((100.0 * (1.0 - correct as f64 / 500.0) - r.test_error).abs() < 1e-9);
    assert_eq!(r.valid_error, r.history[r.best_epoch - 1].val_error);
    // The softmax layer travels with the model: the reloaded file classifies
    // the test set exactly as fine-tuning reported.
    assert!(
        fresh.predict(&test, par).is_err(),
        "no softmax before fine-tuning"
    );
    m.save(&path, HashMap::new()).unwrap();
    let back = StackedDae::load(&path).unwrap();
    let pred = back.predict(&test, par).unwrap();
    let labels = test.labels.as_ref().unwrap();
    let wrong = pred.iter().zip(labels).filter(|(a, b)| a != b).count();
    assert!((100.0 * wrong as f64 / 500.0 - r.test_error).abs() < 1e-9);
    let e = StackedDae::load(std::path::Path::new("/no/such.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/no/such.safetensors"), "{e}");
}

/// The largest Euclidean norm of a unit's incoming weights (a column of
/// `[fan_in, units]`).
fn largest_column_norm(w: &[f32], units: usize) -> f64 {
    (0..units)
        .map(|k| {
            w.chunks_exact(units)
                .map(|r| f64::from(r[k]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .fold(0.0, f64::max)
}

#[test]
fn a_max_norm_bound_holds_every_units_weights_after_fine_tuning() {
    let d = builtin_mnist().unwrap();
    let (train, val, test) = (part(&d, 0..1000), part(&d, 1000..1200), part(&d, 8000..8400));
    let mut pre = StackedDae::new(784, &[48, 24], 3);
    pre.pretrain(&train, &small_cfg(Schedule::Stacked), &mut Silent)
        .unwrap();
    let lay = |m: &StackedDae, j: usize| {
        let (n_in, n_out) = (m.sizes[j], m.sizes[j + 1]);
        let at: usize = (0..j).map(|i| m.sizes[i] * m.sizes[i + 1] + m.sizes[i + 1]).sum();
        (at..at + n_in * n_out, n_out)
    };
    // The pretrained first layer's units are longer than the bound.
    let (w0, u0) = lay(&pre, 0);
    let before = largest_column_norm(&pre.trunk[w0], u0);
    let bound = 1.5f32;
    assert!(before > 2.0 * f64::from(bound), "{before}");
    let fit = |max_norm: f32| {
        let mut m = pre.clone();
        let cfg = FinetuneConfig {
            max_norm,
            dropout: 0.2,
            train: TrainConfig {
                epochs: 4,
                lr: 0.5,
                momentum: 0.5,
                ..FinetuneConfig::default().train
            },
            ..FinetuneConfig::default()
        };
        let r = m.finetune(&train, &val, &test, &cfg, &mut Silent).unwrap();
        (m, r)
    };
    let (m, r) = fit(bound);
    for j in 0..m.depth() {
        let (w, units) = lay(&m, j);
        let n = largest_column_norm(&m.trunk[w], units);
        assert!(
            n <= f64::from(bound) * (1.0 + 1e-5),
            "layer {j}: a unit of norm {n}"
        );
    }
    let (cw, cb) = m.classifier.as_ref().unwrap();
    let n = largest_column_norm(cw, cb.len());
    assert!(
        n <= f64::from(bound) * (1.0 + 1e-5),
        "softmax: a unit of norm {n}"
    );
    // Still a classifier (chance is 90%), and not the unbounded one.
    assert!(r.test_error < 40.0, "test error {}%", r.test_error);
    let (free, _) = fit(0.0);
    let (w, units) = lay(&free, 0);
    assert!(largest_column_norm(&free.trunk[w], units) > 2.0 * f64::from(bound));
    // A bound must be a length.
    for bad in [-1.0, f32::NAN, f32::INFINITY] {
        let cfg = FinetuneConfig {
            max_norm: bad,
            ..FinetuneConfig::default()
        };
        let e = pre
            .clone()
            .finetune(&train, &val, &test, &cfg, &mut Silent)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_norm"), "{e}");
    }
}

#[test]
fn the_stacked_layers_take_the_pretraining_decay() {
    // Decayed to nothing after each layer's first epoch, three epochs a
    // layer end where one epoch a layer ends.
    let d = builtin_mnist().unwrap();
    let train = part(&d, 0..300);
    let cfg = |epochs: usize, lr_decay: f32| PretrainConfig {
        later_epochs: Some(epochs),
        lr_decay,
        train: TrainConfig {
            epochs,
            momentum: 0.0,
            ..small_cfg(Schedule::Stacked).train
        },
        ..small_cfg(Schedule::Stacked)
    };
    let stack = |c: PretrainConfig| {
        let mut m = StackedDae::new(784, &[48, 24], 5);
        m.pretrain(&train, &c, &mut Silent).unwrap();
        m.trunk
    };
    let one = stack(cfg(1, 1.0));
    assert_eq!(stack(cfg(3, 1e-30)), one);
    assert_ne!(stack(cfg(3, 1.0)), one);
    for (schedule, decay, what) in [
        (Schedule::Gradual, 0.9, "gradual"),
        (Schedule::Stacked, 0.0, "(0, 1]"),
        (Schedule::Stacked, 1.1, "(0, 1]"),
    ] {
        let c = PretrainConfig {
            lr_decay: decay,
            ..small_cfg(schedule)
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("lr_decay") && e.contains(what), "{e}");
    }
}

#[test]
fn untied_layers_keep_their_own_decoders_and_reconstruct_through_them() {
    let d = builtin_mnist().unwrap();
    let (train, test) = (part(&d, 0..400), part(&d, 8000..8300));
    let untied = PretrainConfig {
        untied: true,
        ..small_cfg(Schedule::Stacked)
    };
    let mut m = StackedDae::new(784, &[48, 24], 3);
    m.pretrain(&train, &untied, &mut Silent).unwrap();
    let mut tied = StackedDae::new(784, &[48, 24], 3);
    tied.pretrain(&train, &small_cfg(Schedule::Stacked), &mut Silent)
        .unwrap();
    assert!(tied.decoder_weight.iter().all(Option::is_none));
    assert_ne!(m.trunk, tied.trunk, "untying changes the encoders' training");
    // Each layer keeps a decoder W′ [n_j, n_{j-1}] of its own, not Wᵀ.
    let lay = [(784, 48), (48, 24)];
    let mut off = 0;
    for (j, &(lo, hi)) in lay.iter().enumerate() {
        let w = &m.trunk[off..off + lo * hi];
        let dec = m.decoder_weight[j].as_ref().expect("an untied decoder");
        assert_eq!(dec.len(), hi * lo);
        let transposed: Vec<f32> = (0..hi * lo).map(|i| w[(i % lo) * hi + i / lo]).collect();
        assert_ne!(dec, &transposed, "layer {j}");
        off += lo * hi + hi;
    }
    // Reconstruction goes through the untied decoders: through the encoders'
    // transposes instead, the same net reconstructs far worse.
    let par = aekit::tensor::gemm::Par::Seq;
    let own = m.reconstruction_xent(&test, par);
    let mut through_wt = m.clone();
    through_wt.decoder_weight = vec![None, None];
    let floor = aekit::layers::loss::xent_minimum(&test.x) as f64 / test.n as f64;
    assert!(
        floor < own && own < through_wt.reconstruction_xent(&test, par),
        "{floor} < {own}"
    );
    // The decoders travel with the model file.
    let dir = tempfile::Builder::new()
        .prefix("aekit-untied-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("model.safetensors");
    m.save(&path, HashMap::new()).unwrap();
    let back = StackedDae::load(&path).unwrap();
    assert_eq!(back.decoder_weight, m.decoder_weight);
    assert_eq!(back.reconstruction_xent(&test, par), own);
    // Only the stacked schedule has per-layer decoders to untie.
    for schedule in [Schedule::Gradual, Schedule::Rbm, Schedule::Hybrid(0.5)] {
        let c = PretrainConfig {
            untied: true,
            later_epochs: None,
            ..small_cfg(schedule)
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("untied") && e.contains(&schedule.to_string()), "{e}");
    }
}

#[test]
fn fine_tuning_without_a_validation_set_runs_every_epoch_and_keeps_the_last_weights() {
    use aekit::train::{Checkpointing, State};
    let d = builtin_mnist().unwrap();
    let (train, val, test) = (part(&d, 0..600), part(&d, 600..800), part(&d, 800..1000));
    let none = val.select(&[]);
    let cfg = |epochs| FinetuneConfig {
        train: TrainConfig {
            epochs,
            lr: 0.5,
            momentum: 0.5,
            patience: 1,
            ..FinetuneConfig::default().train
        },
        ..FinetuneConfig::default()
    };
    let start = StackedDae::new(784, &[32], 3);
    // Every epoch's parameters, as a checkpoint receives them.
    let mut seen: Vec<Vec<f32>> = Vec::new();
    let mut save = |s: State, _: &aekit::train::EpochMetrics| {
        seen.push(s.tensor_any("params")?.to_vec());
        Ok(())
    };
    let mut refit = start.clone();
    let ck = Checkpointing {
        resume: None,
        save: Some(&mut save),
    };
    let r = refit
        .finetune_with(&train, &none, &test, &cfg(6), &mut Silent, ck)
        .unwrap();
    // Patience 1 cannot stop a run that has nothing to validate on.
    assert_eq!((r.history.len(), r.best_epoch, seen.len()), (6, 6, 6));
    assert!(r.valid_error.is_nan() && r.history.iter().all(|e| e.val_error.is_nan()));
    // The model keeps the sixth epoch's weights (the training loss still
    // moves, so the epochs' weights differ), and the test error is theirs.
    let last = start.finetuned(&seen[5]).unwrap();
    assert_ne!(seen[4], seen[5]);
    assert_eq!((&refit.trunk, &refit.classifier), (&last.trunk, &last.classifier));
    let pred = refit.predict(&test, aekit::tensor::gemm::Par::Seq).unwrap();
    let labels = test.labels.as_ref().unwrap();
    let wrong = pred.iter().zip(labels).filter(|(p, y)| p != y).count();
    assert_eq!(r.test_error, 100.0 * wrong as f64 / test.n as f64);
    assert!(r.test_error < 30.0, "test error {}%", r.test_error);
    // Validation only watches: over the same epochs, a run with a validation
    // set trains the same weights.
    let mut watched = start.clone();
    let w = watched
        .finetune(&train, &val, &test, &cfg(1), &mut Silent)
        .unwrap();
    let mut once = start.clone();
    once.finetune(&train, &none, &test, &cfg(1), &mut Silent).unwrap();
    assert!(w.valid_error.is_finite());
    assert_eq!(watched.trunk, once.trunk);
    assert_eq!(watched.trunk, start.finetuned(&seen[0]).unwrap().trunk);
}
