//! A classifier on fixed features (e.g. the codes of one or several
//! autoencoders): softmax regression, or an MLP with one ReLU hidden layer,
//! trained with Adam on standardised features, with early stopping on a
//! validation split.
//!
//! Features are standardised with the training mean and standard deviation
//! (ε = 1e-6 keeps constant features finite). Then
//! softmax:  logits = x·W + b;
//! MLP:      h = max(0, x·W₁ + b₁), logits = h·W₂ + b₂;
//! loss: mean softmax cross-entropy over the batch + ½·λ·Σ‖W‖² (biases free).
//! Backward: δ = softmax − onehot, dW₂ += hᵀ·δ, δh = δ·W₂ᵀ ⊙ [h > 0],
//! dW₁ += xᵀ·δh (each with its bias sums).

use crate::error::{Error, Result};
use crate::layers::dense::{Dense, Grads};
use crate::layers::loss::softmax_xent;
use crate::layers::Activation;
use crate::optim::Adam;
use crate::tensor::gemm::Par;
use crate::tensor::rng::seeded;
use crate::tensor::Real;
use crate::train::{
    fit_loop, Finished, Fit, Minibatches, Objective, Observer, Optimizer, Shuffle, Silent, TrainConfig,
};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// How the classifier is built and trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// Hidden ReLU units; 0 is softmax regression.
    pub hidden: usize,
    /// The loop (Adam): `patience` counts epochs without a lower validation
    /// error; `threads` are for the matrix products (1 inside ensemble
    /// members).
    pub train: TrainConfig,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            hidden: 0,
            train: TrainConfig {
                epochs: 30,
                batch: 100,
                weight_decay: 1e-4,
                patience: 5,
                ..TrainConfig::adam(1e-3)
            },
        }
    }
}

impl ClassifierConfig {
    pub fn validate(&self) -> Result<()> {
        if self.train.optimizer != Optimizer::Adam {
            return Err(Error::config(
                "classifier.train.optimizer",
                "the classifier trains with adam",
            ));
        }
        self.train.validate_in("classifier.train")
    }
}

/// Where the weights live in the flat vector.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    dims: Vec<usize>,
    layers: Vec<(Range<usize>, Range<usize>)>,
    len: usize,
    /// Threads for the products (the batch is small, so this helps only wide layers).
    par: Par,
}

impl Layout {
    fn new(n_in: usize, hidden: usize, classes: usize) -> Layout {
        let dims = if hidden > 0 {
            vec![n_in, hidden, classes]
        } else {
            vec![n_in, classes]
        };
        let mut at = 0;
        let layers = dims
            .windows(2)
            .map(|d| {
                let w = at..at + d[0] * d[1];
                let b = w.end..w.end + d[1];
                at = b.end;
                (w, b)
            })
            .collect();
        Layout {
            dims,
            layers,
            len: at,
            par: Par::Seq,
        }
    }
}

/// Buffers of [`loss_grad`], kept from batch to batch so it allocates only
/// when a batch is larger than any before.
#[derive(Debug, Default)]
pub(crate) struct Scratch<T> {
    /// `[batch, hidden]` hidden activations and their gradient (MLP).
    h: Vec<T>,
    dh: Vec<T>,
    /// `[batch, classes]` logits and their gradient.
    logits: Vec<T>,
    d: Vec<T>,
}

/// Summed softmax cross-entropy of a batch; adds its gradient into `grad`
/// when given.
#[allow(clippy::too_many_arguments)]
fn loss_grad<T: Real>(
    lay: &Layout,
    p: &[T],
    grad: Option<&mut [T]>,
    dx: Option<&mut [T]>,
    x: &[T],
    labels: &[u8],
    batch: usize,
    s: &mut Scratch<T>,
) -> T {
    let Scratch { h, dh, logits, d } = s;
    let classes = *lay.dims.last().expect("dims");
    let mlp = lay.dims.len() == 3;
    let top: &[T] = if mlp {
        let (w, b) = &lay.layers[0];
        h.resize(batch * lay.dims[1], T::ZERO);
        Dense::new(&p[w.clone()], lay.dims[0], lay.dims[1]).forward(h, x, &p[b.clone()], batch, lay.par);
        Activation::Relu.forward(h);
        h
    } else {
        x
    };
    let n_top = lay.dims[lay.dims.len() - 2];
    let (w, b) = lay.layers.last().expect("a layer");
    logits.resize(batch * classes, T::ZERO);
    Dense::new(&p[w.clone()], n_top, classes).forward(logits, top, &p[b.clone()], batch, lay.par);
    let Some(grad) = grad else {
        return softmax_xent(None, logits, labels, classes);
    };
    d.resize(batch * classes, T::ZERO);
    let total = softmax_xent(Some(&mut d[..]), logits, labels, classes);
    let (gw, gb) = grad[w.start..b.end].split_at_mut(w.len());
    // The output layer's input gradient goes to the hidden layer (MLP) or out
    // to the caller (softmax regression).
    dh.resize(if mlp { batch * n_top } else { 0 }, T::ZERO);
    let (d_top, dx) = if mlp { (Some(&mut dh[..]), dx) } else { (dx, None) };
    Dense::new(&p[w.clone()], n_top, classes).backward(d_top, Grads::add(gw, gb), d, top, batch, lay.par);
    if mlp {
        Activation::Relu.backward(dh, h);
        let (w1, b1) = &lay.layers[0];
        let (gw1, gb1) = grad[w1.start..b1.end].split_at_mut(w1.len());
        Dense::new(&p[w1.clone()], lay.dims[0], n_top).backward(
            dx,
            Grads::add(gw1, gb1),
            dh,
            x,
            batch,
            lay.par,
        );
    }
    total
}

/// A trained classifier on features of a fixed width.
#[derive(Debug, Clone)]
pub struct FeatureClassifier {
    lay: Layout,
    mean: Vec<f32>,
    pub(crate) inv_std: Vec<f32>,
    pub(crate) params: Vec<f32>,
    /// Epoch whose weights were kept.
    pub best_epoch: usize,
    /// Validation error (%) of the kept weights (NaN without validation).
    pub valid_error: f64,
}

impl FeatureClassifier {
    /// The summed loss of a batch of standardised features `xs`, adding the
    /// parameter gradient into `grad` and writing the gradient with respect
    /// to `xs` into `dxs` (for fine-tuning the network that made them).
    pub(crate) fn batch_grad(
        &self,
        xs: &[f32],
        labels: &[u8],
        grad: &mut [f32],
        dxs: &mut [f32],
        s: &mut Scratch<f32>,
    ) -> f32 {
        let b = labels.len();
        loss_grad(&self.lay, &self.params, Some(grad), Some(dxs), xs, labels, b, s)
    }

    /// Ranges of the weight matrices in the parameter vector (for decay).
    pub(crate) fn weight_ranges(&self) -> Vec<Range<usize>> {
        self.lay.layers.iter().map(|(w, _)| w.clone()).collect()
    }

    /// Features in, standardised.
    pub(crate) fn standardise(&self, x: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        self.standardise_into(x, &mut out);
        out
    }

    /// [`standardise`](Self::standardise) into a buffer kept by the caller.
    pub(crate) fn standardise_into(&self, x: &[f32], out: &mut Vec<f32>) {
        let d = self.mean.len();
        out.clear();
        out.extend_from_slice(x);
        for row in out.chunks_exact_mut(d) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                *v = (*v - m) * s;
            }
        }
    }

    /// Trains on `x` `[n, d]` with `labels`, stopping early on the validation
    /// set when it is not empty.
    pub fn fit(
        x: &[f32],
        labels: &[u8],
        val_x: &[f32],
        val_labels: &[u8],
        d: usize,
        classes: usize,
        cfg: &ClassifierConfig,
    ) -> Result<FeatureClassifier> {
        cfg.validate()?;
        cfg.train.require_cpu("the code classifier")?;
        let n = labels.len();
        if d == 0 || n == 0 || x.len() != n * d || val_x.len() != val_labels.len() * d {
            return Err(Error::shape(
                "classifier features",
                format!("[{n}, {d}]"),
                x.len(),
            ));
        }
        if let Some(&bad) = labels.iter().chain(val_labels).find(|&&l| l as usize >= classes) {
            return Err(Error::config(
                "labels",
                format!("label {bad} is not below {classes} classes"),
            ));
        }
        let mut mean = vec![0.0f64; d];
        let mut sq = vec![0.0f64; d];
        for row in x.chunks_exact(d) {
            for ((m, s), &v) in mean.iter_mut().zip(&mut sq).zip(row) {
                *m += v as f64;
                *s += (v as f64) * (v as f64);
            }
        }
        let inv_std = mean
            .iter()
            .zip(&sq)
            .map(|(&m, &s)| {
                let mu = m / n as f64;
                (1.0 / ((s / n as f64 - mu * mu).max(0.0).sqrt() + 1e-6)) as f32
            })
            .collect();
        let lay = Layout {
            par: cfg.train.par(),
            ..Layout::new(d, cfg.hidden, classes)
        };
        let mut rng = seeded(cfg.train.seed ^ 0x0c1a_55e5);
        let mut params = vec![0.0f32; lay.len];
        // PyTorch's Linear default: U(±1/√fan_in) for weights and biases.
        for (k, (w, b)) in lay.layers.iter().enumerate() {
            let bound = 1.0 / (lay.dims[k] as f32).sqrt();
            for v in &mut params[w.start..b.end] {
                *v = rng.random_range(-bound..bound);
            }
        }
        let mut model = FeatureClassifier {
            lay,
            mean: mean.iter().map(|&m| (m / n as f64) as f32).collect(),
            inv_std,
            params,
            best_epoch: 0,
            valid_error: f64::NAN,
        };
        let xs = model.standardise(x);
        let vx = model.standardise(val_x);
        let o = ClassifierObjective {
            lay: &model.lay,
            x: &xs,
            labels,
            weight_decay: cfg.train.weight_decay,
        };
        let mut run = ClassifierFit {
            batches: Minibatches::new(&o, cfg.train.batch, 1, Par::Seq, Shuffle::Carried),
            o: &o,
            params: model.params.clone(),
            adam: Adam::new(cfg.train.adam_config()),
            rng,
            val_x: &vx,
            val_labels,
        };
        let fit = fit_loop(
            &mut run,
            cfg.train.epochs,
            cfg.train.patience,
            &mut Silent,
            "classifier.train.lr",
        )?;
        model.params = run.params;
        model.best_epoch = fit.best_epoch;
        model.valid_error = fit.history[fit.best_epoch - 1].val_loss.unwrap_or(f64::NAN);
        Ok(model)
    }

    fn logits_standardised(&self, xs: &[f32]) -> Vec<f32> {
        logits_of(&self.lay, &self.params, xs)
    }

    pub fn classes(&self) -> usize {
        *self.lay.dims.last().expect("dims")
    }

    /// Logits `[n, classes]` of raw (unstandardised) features.
    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        self.logits_standardised(&self.standardise(x))
    }

    /// The predicted class of each row.
    pub fn predict(&self, x: &[f32]) -> Vec<u8> {
        argmax_rows(&self.logits(x), self.classes())
    }
}

/// The index of each row's largest value (the first on a tie).
pub fn argmax_rows(v: &[f32], k: usize) -> Vec<u8> {
    v.chunks_exact(k)
        .map(|r| {
            let mut best = 0;
            for (j, &x) in r.iter().enumerate() {
                if x > r[best] {
                    best = j;
                }
            }
            best as u8
        })
        .collect()
}

/// Percentage of predictions that differ from the labels.
pub fn error_percent(pred: &[u8], labels: &[u8]) -> f64 {
    assert_eq!(pred.len(), labels.len());
    if labels.is_empty() {
        return 0.0;
    }
    let wrong = pred.iter().zip(labels).filter(|(a, b)| a != b).count();
    100.0 * wrong as f64 / labels.len() as f64
}

/// Majority vote over several classifiers' predictions (one `Vec` per
/// member, each of n labels). A tie goes to the class whose voters have the
/// larger summed softmax probability, given in `probs` (`[member][n·k]`).
pub fn majority_vote(preds: &[Vec<u8>], probs: &[Vec<f32>], k: usize) -> Vec<u8> {
    let n = preds.first().map_or(0, Vec::len);
    (0..n)
        .map(|i| {
            let mut votes = vec![0usize; k];
            let mut mass = vec![0.0f32; k];
            for (p, pr) in preds.iter().zip(probs) {
                let c = p[i] as usize;
                votes[c] += 1;
                mass[c] += pr[i * k + c];
            }
            let mut best = 0;
            for c in 1..k {
                if votes[c] > votes[best] || (votes[c] == votes[best] && mass[c] > mass[best]) {
                    best = c;
                }
            }
            best as u8
        })
        .collect()
}

/// Row-wise softmax of logits `[n, k]`.
pub fn softmax_rows(logits: &[f32], k: usize) -> Vec<f32> {
    let mut out = logits.to_vec();
    for r in out.chunks_exact_mut(k) {
        let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut s = 0.0;
        for v in r.iter_mut() {
            *v = (*v - m).exp();
            s += *v;
        }
        r.iter_mut().for_each(|v| *v /= s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{max_rel_error, random_vec};

    #[test]
    fn gradient_matches_finite_differences() {
        for hidden in [0, 4] {
            let (n_in, classes, batch) = (5, 3, 6);
            let lay = Layout::new(n_in, hidden, classes);
            let p = random_vec(lay.len, 0.7, 1);
            let x = random_vec(batch * n_in, 1.0, 2);
            let labels = [0u8, 2, 1, 1, 0, 2];
            let mut g = vec![0.0; lay.len];
            let mut dx = vec![0.0; x.len()];
            loss_grad(
                &lay,
                &p,
                Some(&mut g),
                Some(&mut dx),
                &x,
                &labels,
                batch,
                &mut Scratch::default(),
            );
            let f = |q: &[f64], x: &[f64]| {
                loss_grad(&lay, q, None, None, x, &labels, batch, &mut Scratch::default())
            };
            let err = max_rel_error(|q| f(q, &x), &p, &g);
            assert!(err < 1e-6, "hidden {hidden}: {err}");
            let err = max_rel_error(|v| f(&p, v), &x, &dx);
            assert!(err < 1e-6, "hidden {hidden}, input gradient: {err}");
        }
    }

    #[test]
    fn learns_separable_classes_and_votes() {
        // Three Gaussian blobs in 4-d, offset by class.
        let mut rng = seeded(3);
        let (n, d) = (600, 4);
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let x: Vec<f32> = (0..n * d)
            .map(|j| {
                let c = labels[j / d] as usize;
                (if j % d == c { 3.0 } else { 0.0 }) + rng.random_range(-1.0f32..1.0)
            })
            .collect();
        for hidden in [0, 8] {
            let cfg = ClassifierConfig {
                hidden,
                train: TrainConfig {
                    epochs: 20,
                    lr: 1e-2,
                    ..ClassifierConfig::default().train
                },
            };
            let m = FeatureClassifier::fit(
                &x[..400 * d],
                &labels[..400],
                &x[400 * d..],
                &labels[400..],
                d,
                3,
                &cfg,
            )
            .unwrap();
            let err = error_percent(&m.predict(&x[400 * d..]), &labels[400..]);
            assert!(err < 5.0, "hidden {hidden}: {err}%");
            assert!(m.valid_error < 5.0);
        }
        // Votes: two of three members say 1; a three-way tie goes to the
        // class with the most probability behind it (0.9 for class 0).
        let preds = vec![vec![1u8, 0], vec![1, 2], vec![0, 1]];
        let probs = vec![
            vec![0.2, 0.8, 0.0, 0.9, 0.05, 0.05],
            vec![0.1, 0.9, 0.0, 0.0, 0.3, 0.7],
            vec![0.6, 0.4, 0.0, 0.5, 0.5, 0.0],
        ];
        assert_eq!(majority_vote(&preds, &probs, 3), vec![1, 0]);
        assert!(
            FeatureClassifier::fit(&x[..8], &[0, 7], &[], &[], 4, 3, &ClassifierConfig::default()).is_err()
        );
    }
}

/// Softmax cross-entropy of a classifier on standardised features, mean
/// over the batch, plus ½·λ·‖W‖².
struct ClassifierObjective<'a> {
    lay: &'a Layout,
    /// `[n, d]`, standardised.
    x: &'a [f32],
    labels: &'a [u8],
    weight_decay: f32,
}

/// A loaded batch: features and labels.
#[derive(Default)]
struct ClassBatch {
    x: Vec<f32>,
    y: Vec<u8>,
}

impl Objective for ClassifierObjective<'_> {
    type Batch = ClassBatch;
    type Workspace = Scratch<f32>;

    fn n_params(&self) -> usize {
        self.lay.len
    }

    fn n_examples(&self) -> usize {
        self.labels.len()
    }

    fn new_batch(&self, _cap: usize) -> ClassBatch {
        ClassBatch::default()
    }

    fn new_workspace(&self, _rows: usize) -> Scratch<f32> {
        Scratch::default()
    }

    fn load(&self, idx: &[usize], b: &mut ClassBatch, _rng: &mut crate::tensor::rng::Rng) {
        let d = self.lay.dims[0];
        b.x.clear();
        b.y.clear();
        for &i in idx {
            b.x.extend_from_slice(&self.x[i * d..(i + 1) * d]);
            b.y.push(self.labels[i]);
        }
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &ClassBatch,
        rows: Range<usize>,
        s: &mut Scratch<f32>,
        _par: Par,
    ) -> f64 {
        let d = self.lay.dims[0];
        let x = &b.x[rows.start * d..rows.end * d];
        loss_grad(self.lay, p, grad, None, x, &b.y[rows.clone()], rows.len(), s) as f64
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let inv = 1.0 / n as f32;
        crate::tensor::simd::scale(grad, inv);
        let mut penalty = 0.0f64;
        for (w, _) in &self.lay.layers {
            for (g, &v) in grad[w.clone()].iter_mut().zip(&p[w.clone()]) {
                *g += self.weight_decay * v;
                penalty += 0.5 * (self.weight_decay * v * v) as f64;
            }
        }
        Finished {
            loss: loss_sum,
            objective: loss_sum / n as f64 + penalty,
        }
    }
}

/// A classifier lent to the shared epoch loop; it validates on the error
/// rate (%).
struct ClassifierFit<'a> {
    o: &'a ClassifierObjective<'a>,
    batches: Minibatches<ClassBatch, Scratch<f32>>,
    params: Vec<f32>,
    adam: Adam,
    rng: crate::tensor::rng::Rng,
    val_x: &'a [f32],
    val_labels: &'a [u8],
}

impl Fit for ClassifierFit<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        Ok(self
            .batches
            .run_epoch(self.o, &mut self.params, &mut self.adam, &mut self.rng, obs))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        if self.val_labels.is_empty() {
            return Ok(None);
        }
        let logits = logits_of(self.o.lay, &self.params, self.val_x);
        let k = self.o.lay.dims[self.o.lay.dims.len() - 1];
        Ok(Some(error_percent(&argmax_rows(&logits, k), self.val_labels)))
    }

    fn params(&self) -> &[f32] {
        &self.params
    }

    fn set_params(&mut self, p: &[f32]) {
        self.params.copy_from_slice(p);
    }
}

/// Logits of standardised features `xs` (`[n, d]`) under parameters `p`.
fn logits_of(lay: &Layout, p: &[f32], xs: &[f32]) -> Vec<f32> {
    let d = lay.dims[0];
    let classes = *lay.dims.last().expect("dims");
    let n = xs.len() / d;
    let mut out = Vec::with_capacity(n * classes);
    let mut scratch = Scratch::default();
    let none = vec![0u8; 256];
    for chunk in xs.chunks(256 * d) {
        let b = chunk.len() / d;
        loss_grad(lay, p, None, None, chunk, &none[..b], b, &mut scratch);
        out.extend_from_slice(&scratch.logits[..b * classes]);
    }
    out
}
