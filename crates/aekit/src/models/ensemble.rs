//! Eager parallel ensembles of convolutional autoencoders (the eager-training
//! paper): K small CAEs trained at once, one scoped thread each (GEMM
//! parallelism off inside members: their convs call the GEMM door
//! sequentially), each from its own seed on the same data, stopped early;
//! then one classifier on their concatenated codes, and majority voting over
//! one classifier per member.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::Loss;
use crate::models::classifier::{
    error_percent, majority_vote, softmax_rows, ClassifierConfig, FeatureClassifier,
};
use crate::models::conv::{CaeSpec, CaeTrainConfig, ConvAutoencoder, Trainer};
use crate::train::{Checkpointing, EpochMetrics, FitReport, Silent, State};

/// Called after every epoch of every member (from the member's thread):
/// `(member index, its training state, metrics)`; used to write checkpoints
/// and logs.
pub type MemberHook<'a> = dyn Fn(usize, State, &EpochMetrics) -> Result<()> + Sync + 'a;

/// Member k's seed: the run's seed plus k, so members start apart.
pub fn member_seed(seed: u64, k: usize) -> u64 {
    seed.wrapping_add(k as u64)
}

/// Trains `k` members concurrently, each with `cfg` (one worker each) and
/// its own seed, with the eager stop and patience of `cfg`; member `k`
/// continues from `resume[k]` when it is given. Returns the members (best
/// epoch's weights) and their reports, in order.
pub fn train_members(
    spec: &CaeSpec,
    loss: Loss,
    k: usize,
    train: &Dataset,
    val: &Dataset,
    cfg: &CaeTrainConfig,
    hook: &MemberHook<'_>,
    resume: Vec<Option<State>>,
) -> Result<Vec<(ConvAutoencoder, FitReport)>> {
    if k == 0 {
        return Err(Error::config("members", "must be at least 1"));
    }
    cfg.validate()?;
    let results: Vec<Result<(ConvAutoencoder, FitReport)>> = std::thread::scope(|s| {
        let mut resume = resume.into_iter();
        let handles: Vec<_> = (0..k)
            .map(|m| {
                let from = resume.next().flatten();
                s.spawn(move || {
                    crate::tensor::ftz::enable_for_thread();
                    let seed = member_seed(cfg.train.seed, m);
                    let mut mcfg = cfg.clone();
                    (mcfg.train.seed, mcfg.train.threads) = (seed, 1);
                    let mut model = ConvAutoencoder::new(spec, loss, seed)?;
                    let mut save = |st: State, e: &EpochMetrics| hook(m, st, e);
                    let ck = Checkpointing {
                        resume: from,
                        save: Some(&mut save),
                    };
                    let report = model.fit(train, val, &mcfg, &mut Silent, ck)?;
                    Ok((model, report))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::config("members", "a member's thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
}

/// Runs one epoch of every trainer at once, one scoped thread each, and
/// returns their mean training losses (for lock-step comparisons in time).
pub fn epoch_in_parallel(trainers: &mut [Trainer<'_>]) -> Vec<f64> {
    std::thread::scope(|s| {
        let handles: Vec<_> = trainers
            .iter_mut()
            .map(|t| {
                s.spawn(move || {
                    crate::tensor::ftz::enable_for_thread();
                    t.run_epoch(|_, _| {})
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a member panicked"))
            .collect()
    })
}

/// Every member's codes of `data`, side by side: `[n, Σ code_len]`.
pub fn concat_codes(
    members: &[&ConvAutoencoder],
    data: &Dataset,
    threads: usize,
) -> Result<(Vec<f32>, usize)> {
    let codes: Vec<Vec<f32>> = members
        .iter()
        .map(|m| m.transform(data, threads))
        .collect::<Result<_>>()?;
    let widths: Vec<usize> = members.iter().map(|m| m.net.code_len()).collect();
    let total: usize = widths.iter().sum();
    let mut out = Vec::with_capacity(data.n * total);
    for i in 0..data.n {
        for (c, &w) in codes.iter().zip(&widths) {
            out.extend_from_slice(&c[i * w..(i + 1) * w]);
        }
    }
    Ok((out, total))
}

/// Test errors of an ensemble's two classifiers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnsembleErrors {
    /// One classifier on the concatenated codes (%).
    pub concat_test_error: f64,
    pub concat_valid_error: f64,
    /// Majority vote over one classifier per member (%).
    pub vote_test_error: f64,
    /// Each member's own classifier (%).
    pub member_test_errors: Vec<f64>,
}

fn labels(d: &Dataset, what: &str) -> Result<Vec<u8>> {
    d.labels
        .clone()
        .ok_or_else(|| Error::config("data", format!("the {what} images have no labels to classify")))
}

/// Trains both classifiers on the members' codes of `train` (validating on
/// `val`) and reports their errors on `test`.
pub fn classify(
    members: &[&ConvAutoencoder],
    train: &Dataset,
    val: &Dataset,
    test: &Dataset,
    cfg: &ClassifierConfig,
    threads: usize,
) -> Result<EnsembleErrors> {
    let (ytr, yva, yte) = (
        labels(train, "training")?,
        labels(val, "validation")?,
        labels(test, "test")?,
    );
    let classes = train.n_classes().max(val.n_classes()).max(test.n_classes());
    let codes = |d: &Dataset| concat_codes(members, d, threads);
    let (xtr, w) = codes(train)?;
    let (xva, _) = codes(val)?;
    let (xte, _) = codes(test)?;
    let joint = FeatureClassifier::fit(&xtr, &ytr, &xva, &yva, w, classes, cfg)?;
    let concat_test_error = error_percent(&joint.predict(&xte), &yte);
    let (mut preds, mut probs, mut member_test_errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut off = 0;
    for m in members {
        let cw = m.net.code_len();
        let slice = |x: &[f32]| -> Vec<f32> {
            x.chunks_exact(w)
                .flat_map(|r| r[off..off + cw].to_vec())
                .collect()
        };
        let c = FeatureClassifier::fit(&slice(&xtr), &ytr, &slice(&xva), &yva, cw, classes, cfg)?;
        let logits = c.logits(&slice(&xte));
        let p = crate::models::classifier::argmax_rows(&logits, classes);
        member_test_errors.push(error_percent(&p, &yte));
        probs.push(softmax_rows(&logits, classes));
        preds.push(p);
        off += cw;
    }
    let vote = majority_vote(&preds, &probs, classes);
    Ok(EnsembleErrors {
        concat_test_error,
        concat_valid_error: joint.valid_error,
        vote_test_error: error_percent(&vote, &yte),
        member_test_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn members_train_concurrently_with_their_own_seeds_and_classify() {
        let all = crate::data::builtin::builtin_mnist().unwrap();
        let train = all.select(&(0..400).collect::<Vec<_>>());
        let val = all.select(&(400..500).collect::<Vec<_>>());
        let test = all.select(&(8000..8300).collect::<Vec<_>>());
        let spec = CaeSpec::preset("cae-mnist").unwrap();
        let cfg = CaeTrainConfig {
            min_improvement: 0.5,
            train: crate::train::TrainConfig {
                epochs: 3,
                batch: 50,
                lr: 3e-3,
                ..CaeTrainConfig::default().train
            },
            ..CaeTrainConfig::default()
        };
        let seen = Mutex::new(Vec::new());
        let members = train_members(
            &spec,
            Loss::Squared,
            3,
            &train,
            &val,
            &cfg,
            &|k, _, e| {
                seen.lock().unwrap().push((k, e.epoch));
                Ok(())
            },
            vec![],
        )
        .unwrap();
        assert_eq!(members.len(), 3);
        assert_ne!(members[0].0.params, members[1].0.params, "different seeds");
        let seen = seen.into_inner().unwrap();
        for k in 0..3 {
            let epochs = seen.iter().filter(|(m, _)| *m == k).count();
            // The eager threshold (50% of the best) stops a member at epoch 2 or 3.
            assert!((2..=3).contains(&epochs), "member {k} ran {epochs} epochs");
            assert_eq!(epochs, members[k].1.history.len());
        }
        let refs: Vec<&ConvAutoencoder> = members.iter().map(|(m, _)| m).collect();
        let (codes, w) = concat_codes(&refs, &test, 1).unwrap();
        assert_eq!((w, codes.len()), (3 * 1568, 300 * 3 * 1568));
        let mut cls = ClassifierConfig::default();
        cls.train.epochs = 5;
        let e = classify(&refs, &train, &val, &test, &cls, 1).unwrap();
        assert_eq!(e.member_test_errors.len(), 3);
        // Ten classes: chance is 90% error; 400 images of codes do far better.
        assert!(e.concat_test_error < 40.0 && e.vote_test_error < 40.0, "{e:?}");
    }
}
