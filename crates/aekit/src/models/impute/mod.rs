//! Imputing the missing cells of a table with a denoising autoencoder, as
//! MIDAS (Lall & Robinson) and MIDA (Gondara & Wang) do: each row encoded by
//! its [`Schema`], observed cells corrupted by dropping some of them, the
//! network asked to give back every observed cell (the loss counts observed
//! cells only), with dropout on its hidden layers; then missing cells filled
//! from its outputs, once, or several times with dropout left on (multiple
//! imputation).

pub mod network;
pub mod schema;

use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::layers::Activation;
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{
    fit_loop_with, Checkpointing, Finished, Fit, FitReport, Minibatches, Objective, Observer, Optimizer,
    Shuffle, StepRule, TrainConfig,
};
use network::{Head, Net, Workspace};
use rand::Rng as _;
use schema::{Encoded, Kind, Schema};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;

/// The network's widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// `layers` for the encoder, mirrored for the decoder (MIDAS).
    #[default]
    Midas,
    /// MIDA's overcomplete n+7, n+14, n+21 encoder, mirrored, with tanh.
    Mida,
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "midas" => Ok(Arch::Midas),
            "mida" => Ok(Arch::Mida),
            _ => Err(format!("unknown architecture `{s}` (expected midas or mida)")),
        }
    }
}

/// Which observed cells the training loss counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LossOn {
    /// Those the corruption hid from the input.
    Hidden,
    /// All of them (MIDAS; the default: measured better on the shipped
    /// tables, see docs/results/imputation.md).
    #[default]
    Observed,
}

impl std::str::FromStr for LossOn {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "hidden" => Ok(LossOn::Hidden),
            "observed" => Ok(LossOn::Observed),
            _ => Err(format!("unknown loss `{s}` (expected hidden or observed)")),
        }
    }
}

/// The imputer's settings (`[model]` of `aekit impute`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImputerConfig {
    pub arch: Arch,
    /// Encoder widths (MIDAS); the decoder mirrors them.
    pub layers: Vec<usize>,
    /// Hidden activation (`elu`, `relu`, `tanh`); MIDA uses tanh.
    pub activation: Activation,
    /// Fraction of each row's observed cells hidden from the input while
    /// training (the denoising corruption).
    pub corruption: f32,
    /// Dropout rate after each hidden layer.
    pub dropout: f32,
    /// Fraction of the observed cells held out to stop training early (0:
    /// train for every epoch).
    pub val_fraction: f32,
    /// The loss: `observed` counts every observed cell, as MIDAS does;
    /// `hidden` only those the corruption hid from the input (the
    /// imputation task alone).
    pub loss_on: LossOn,
    /// The loop (`[train]`): Adam, step 1e-3, batch 16, up to 200 epochs,
    /// patience 10 by default.
    pub train: TrainConfig,
}

impl Default for ImputerConfig {
    fn default() -> Self {
        ImputerConfig {
            arch: Arch::Midas,
            layers: vec![256, 256, 256],
            activation: Activation::Elu,
            corruption: 0.2,
            dropout: 0.5,
            val_fraction: 0.1,
            loss_on: LossOn::Observed,
            train: ImputerConfig::default_train(),
        }
    }
}

impl ImputerConfig {
    /// The loop's defaults for imputation: Adam, step 1e-3, batch 16, up to
    /// 200 epochs, patience 10.
    pub fn default_train() -> TrainConfig {
        TrainConfig {
            epochs: 200,
            batch: 16,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            patience: 10,
            ..TrainConfig::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        let frac = |f: f32, name: &str, top: f32| {
            if !(0.0..top).contains(&f) {
                return Err(Error::config(name, format!("must be in [0, {top}), got {f}")));
            }
            Ok(())
        };
        frac(self.corruption, "model.corruption", 1.0)?;
        if self.loss_on == LossOn::Hidden && self.corruption == 0.0 {
            return Err(Error::config(
                "model.corruption",
                "is 0, so no cell is hidden for the loss to count: raise it, or set loss_on = \"observed\"",
            ));
        }
        frac(self.dropout, "model.dropout", 1.0)?;
        frac(self.val_fraction, "model.val_fraction", 0.9)?;
        self.train.validate_in("train")?;
        if !matches!(self.train.optimizer, Optimizer::Adam | Optimizer::Sgd) {
            return Err(Error::config(
                "train.optimizer",
                "the imputer trains with adam or sgd",
            ));
        }
        if self.arch == Arch::Midas && (self.layers.is_empty() || self.layers.contains(&0)) {
            return Err(Error::config(
                "model.layers",
                "needs at least one layer, each of at least 1 unit",
            ));
        }
        if self.activation == Activation::Sigmoid || self.activation == Activation::Identity {
            return Err(Error::config(
                "model.activation",
                "use elu, relu or tanh for the hidden layers",
            ));
        }
        Ok(())
    }

    /// The hidden widths for an encoded row of `width` values.
    pub fn hidden(&self, width: usize) -> Vec<usize> {
        let enc: Vec<usize> = match self.arch {
            Arch::Midas => self.layers.clone(),
            Arch::Mida => vec![width + 7, width + 14, width + 21],
        };
        enc.iter().chain(enc.iter().rev().skip(1)).copied().collect()
    }
}

/// A fitted imputer: its schema, network and weights.
#[derive(Debug, Clone)]
pub struct Imputer {
    pub config: ImputerConfig,
    pub schema: Option<Schema>,
    params: Vec<f32>,
}

impl Imputer {
    pub fn new(config: ImputerConfig) -> Imputer {
        Imputer {
            config,
            schema: None,
            params: Vec::new(),
        }
    }

    /// The network for the fitted schema.
    pub fn net(&self) -> Result<Net> {
        let s = self
            .schema
            .as_ref()
            .ok_or_else(|| Error::config("model", "the imputer is not fitted yet"))?;
        let w = s.width();
        // The input is each row's values (0 where missing) and its mask, so
        // that a missing cell is not read as the column's mean.
        let mut sizes = vec![2 * w];
        sizes.extend(self.config.hidden(w));
        sizes.push(w);
        let act = match self.config.arch {
            Arch::Mida => Activation::Tanh,
            Arch::Midas => self.config.activation,
        };
        Ok(Net {
            sizes,
            act,
            heads: Head::of(s),
        })
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Sets the weights (as [`Imputer::params`] gave them) of a fitted schema.
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        let n = self.net()?.n_params();
        if p.len() != n {
            return Err(Error::shape("imputer weights", n, p.len()));
        }
        self.params = p.to_vec();
        Ok(())
    }

    /// Fits the network to `data` (encoded by `schema`, which it keeps).
    pub fn fit(
        &mut self,
        schema: Schema,
        data: &Encoded,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        self.config.validate()?;
        self.config.train.require_cpu("the imputer")?;
        if data.n == 0 {
            return Err(Error::config("data", "no rows to fit"));
        }
        self.schema = Some(schema);
        let net = self.net()?;
        crate::tensor::memory::check_f32s(
            "model.layers",
            4 * net.n_params() as u128
                + 4 * (net.sizes.iter().sum::<usize>() as u128) * self.config.train.batch as u128,
        )?;
        let mut rng = seeded(self.config.train.seed);
        self.params = net.init(&mut rng);
        // Hold out a fraction of the observed cells (whole columns' groups).
        let groups: Vec<Range<usize>> = net.heads.iter().map(Head::range).collect();
        let mut train_mask = data.mask.clone();
        let mut val_mask = vec![0.0f32; data.mask.len()];
        let mut held = 0usize;
        if self.config.val_fraction > 0.0 {
            for r in 0..data.n {
                for g in &groups {
                    let o = r * data.width;
                    if data.mask[o + g.start] == 1.0 && rng.random::<f32>() < self.config.val_fraction {
                        train_mask[o + g.start..o + g.end].fill(0.0);
                        val_mask[o + g.start..o + g.end].fill(1.0);
                        held += 1;
                    }
                }
            }
        }
        // The training input: observed cells only (held-out cells hidden too).
        let input = net_input(&data.x, &train_mask, data.width);
        let o = ImputeObjective {
            net: &net,
            input: &input,
            target: &data.x,
            mask: &train_mask,
            groups: &groups,
            width: data.width,
            corruption: self.config.corruption,
            dropout: self.config.dropout,
            loss_on: self.config.loss_on,
        };
        let par = Par::from_threads(self.config.train.resolved_threads());
        let mut run = ImputeFit {
            batches: Minibatches::new(&o, self.config.train.batch, 1, par, Shuffle::Fresh),
            o: &o,
            params: std::mem::take(&mut self.params),
            opt: StepRule::new(&self.config.train),
            rng,
            val: (held > 0).then_some((&val_mask, held)),
            par,
        };
        obs.on_start(self.config.train.epochs, run.batches.batches_per_epoch());
        let patience = if held > 0 { self.config.train.patience } else { 0 };
        let report = fit_loop_with(&mut run, self.config.train.epochs, patience, obs, "train.lr", ck);
        self.params = run.params;
        report
    }

    /// The network's outputs after its heads, `[n, width]`, for `data`'s
    /// observed cells; with `mc`, dropout stays on, drawn from it.
    pub fn predict(&self, data: &Encoded, mc: Option<&mut Rng>) -> Result<Vec<f32>> {
        let net = self.net()?;
        if 2 * data.width != net.sizes[0] {
            return Err(Error::shape("encoded rows", net.sizes[0] / 2, data.width));
        }
        let input = net_input(&data.x, &data.mask, data.width);
        let chunk = 1024.min(data.n.max(1));
        let mut ws = net.workspace(chunk);
        let mut out = vec![0.0f32; data.n * data.width];
        let par = Par::from_threads(self.config.train.resolved_threads());
        let mut mc = mc;
        let mut masks: Vec<Vec<f32>> = vec![Vec::new(); net.depth() - 1];
        for start in (0..data.n).step_by(chunk) {
            let rows = chunk.min(data.n - start);
            let x = &input[start * 2 * data.width..(start + rows) * 2 * data.width];
            let drop: Option<Vec<&[f32]>> = match mc.as_deref_mut() {
                Some(rng) => {
                    for (j, m) in masks.iter_mut().enumerate() {
                        crate::layers::dropout::draw_mask(
                            m,
                            rows * net.sizes[j + 1],
                            self.config.dropout,
                            rng,
                        );
                    }
                    Some(masks.iter().map(Vec::as_slice).collect())
                }
                None => None,
            };
            net.forward(&self.params, x, rows, drop.as_deref(), &mut ws, par);
            net.outputs(
                &ws,
                rows,
                &mut out[start * data.width..(start + rows) * data.width],
            );
        }
        Ok(out)
    }

    /// The cells of `t` with every missing cell filled: `draws` tables (one
    /// with dropout off and the most likely level when `draws` is `None`;
    /// else that many with dropout on, binaries and categoricals drawn from
    /// their probabilities unless `mode`). Observed and ignored cells are
    /// their text as read. `seed` seeds the draws.
    pub fn impute(
        &self,
        t: &Table,
        draws: Option<usize>,
        mode: bool,
        seed: u64,
        strict: bool,
    ) -> Result<Vec<Vec<String>>> {
        let schema = self
            .schema
            .as_ref()
            .ok_or_else(|| Error::config("model", "the imputer is not fitted yet"))?;
        let data = schema.encode(t, strict)?;
        let offsets = schema.offsets();
        let mut rng = seeded(seed ^ 0x1397_a7e5);
        let mut tables = Vec::new();
        for _ in 0..draws.unwrap_or(1) {
            let out = self.predict(&data, draws.map(|_| &mut rng))?;
            let mut cells = Vec::with_capacity(t.n_rows() * t.n_cols());
            for r in 0..t.n_rows() {
                for (c, col) in schema.columns.iter().enumerate() {
                    let text = t.cell(r, c);
                    // Missing cells, and levels never seen in fitting, are
                    // those the encoding masked.
                    let filled =
                        !matches!(col.kind, Kind::Ignored) && data.mask[r * data.width + offsets[c]] == 0.0;
                    if filled {
                        let o = r * data.width + offsets[c];
                        let u = (draws.is_some() && !mode).then(|| rng.random::<f64>());
                        cells.push(schema.cell_text(c, &out[o..o + col.width()], u));
                    } else {
                        cells.push(text.to_string());
                    }
                }
            }
            tables.push(cells);
        }
        Ok(tables)
    }

    /// Writes the model: weights, with the schema and settings in the
    /// metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        use crate::io::safetensors::{save, NamedTensor};
        let schema = self
            .schema
            .as_ref()
            .ok_or_else(|| Error::config("model", "the imputer is not fitted yet"))?;
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), "aekit.imputer".to_string());
        meta.insert(
            "schema".into(),
            serde_json::to_string(schema).expect("schemas serialise"),
        );
        meta.insert(
            "config".into(),
            toml::to_string(&self.config).expect("configs serialise"),
        );
        let t = [NamedTensor {
            name: "params",
            shape: vec![self.params.len()],
            data: &self.params,
        }];
        save(path, &t, meta)
    }

    /// Reads a model written by [`Imputer::save`].
    pub fn load(path: &Path) -> Result<Imputer> {
        let mut f = crate::io::safetensors::load(path)?;
        f.expect_kind("aekit.imputer")?;
        let bad = |what: &str, e: String| Error::format(path, format!("bad {what} in metadata: {e}"));
        let schema: Schema =
            serde_json::from_str(f.meta("schema")?).map_err(|e| bad("schema", e.to_string()))?;
        let config: ImputerConfig =
            toml::from_str(f.meta("config")?).map_err(|e| bad("config", e.to_string()))?;
        config
            .validate()
            .map_err(|e| Error::format(path, e.to_string()))?;
        let mut m = Imputer::new(config);
        m.schema = Some(schema);
        let n = m.net()?.n_params();
        if f.shape_of("params") != Some(vec![n]) {
            return Err(Error::format(
                path,
                format!("tensor `params` does not hold the {n} weights its schema and layers need"),
            ));
        }
        m.params = f.take("params", &[n])?;
        Ok(m)
    }
}

/// The network's input rows: `[values · mask, mask]`, `[n, 2·width]`.
fn net_input(x: &[f32], mask: &[f32], width: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(2 * x.len());
    for (xr, mr) in x.chunks_exact(width).zip(mask.chunks_exact(width)) {
        out.extend(xr.iter().zip(mr).map(|(&v, &m)| v * m));
        out.extend_from_slice(mr);
    }
    out
}

/// Training batches: the corrupted input, the target, the loss mask and
/// each hidden layer's dropout mask.
pub struct ImputeBatch {
    input: Vec<f32>,
    target: Vec<f32>,
    mask: Vec<f32>,
    drop: Vec<Vec<f32>>,
}

/// The imputer's objective for the shared minibatch loop.
pub struct ImputeObjective<'a> {
    net: &'a Net,
    input: &'a [f32],
    target: &'a [f32],
    mask: &'a [f32],
    groups: &'a [Range<usize>],
    width: usize,
    corruption: f32,
    dropout: f32,
    loss_on: LossOn,
}

impl Objective for ImputeObjective<'_> {
    type Batch = ImputeBatch;
    type Workspace = Workspace;

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn n_examples(&self) -> usize {
        self.target.len() / self.width
    }

    fn new_batch(&self, cap: usize) -> ImputeBatch {
        ImputeBatch {
            input: Vec::with_capacity(cap * 2 * self.width),
            target: Vec::with_capacity(cap * self.width),
            mask: Vec::with_capacity(cap * self.width),
            drop: vec![Vec::new(); self.net.depth() - 1],
        }
    }

    fn new_workspace(&self, rows: usize) -> Workspace {
        self.net.workspace(rows)
    }

    fn load(&self, idx: &[usize], b: &mut ImputeBatch, rng: &mut Rng) {
        let w = self.width;
        b.input.clear();
        b.target.clear();
        b.mask.clear();
        for &i in idx {
            let row = i * w..(i + 1) * w;
            let (start, at) = (b.target.len(), b.input.len());
            b.input.extend_from_slice(&self.input[2 * i * w..2 * (i + 1) * w]);
            b.target.extend_from_slice(&self.target[row.clone()]);
            b.mask.extend_from_slice(&self.mask[row]);
            // Drop observed cells from the input (whole one-hot groups:
            // value and mask).
            for g in self.groups {
                if b.mask[start + g.start] != 1.0 {
                    continue;
                }
                if rng.random::<f32>() < self.corruption {
                    b.input[at + g.start..at + g.end].fill(0.0);
                    b.input[at + w + g.start..at + w + g.end].fill(0.0);
                } else if self.loss_on == LossOn::Hidden {
                    b.mask[start + g.start..start + g.end].fill(0.0);
                }
            }
        }
        for (j, m) in b.drop.iter_mut().enumerate() {
            crate::layers::dropout::draw_mask(m, idx.len() * self.net.sizes[j + 1], self.dropout, rng);
        }
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &ImputeBatch,
        rows: Range<usize>,
        ws: &mut Workspace,
        par: Par,
    ) -> f64 {
        let w = self.width;
        let n = rows.len();
        let span = rows.start * w..rows.end * w;
        let in_span = 2 * rows.start * w..2 * rows.end * w;
        let drop: Vec<&[f32]> = b
            .drop
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let h = self.net.sizes[j + 1];
                &m[rows.start * h..rows.end * h]
            })
            .collect();
        self.net.forward(p, &b.input[in_span], n, Some(&drop), ws, par);
        match grad {
            Some(g) => {
                ws.grad.fill(0.0);
                let mut wg = std::mem::take(&mut ws.grad);
                let l = self.net.loss_backward(
                    p,
                    &b.target[span.clone()],
                    &b.mask[span],
                    n,
                    &drop,
                    ws,
                    Some(&mut wg),
                    par,
                );
                g.iter_mut().zip(&wg).for_each(|(a, &v)| *a += v);
                ws.grad = wg;
                l
            }
            None => {
                self.net
                    .loss_backward(p, &b.target[span.clone()], &b.mask[span], n, &drop, ws, None, par)
            }
        }
    }

    fn finish(&self, _p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let inv = 1.0 / n.max(1) as f32;
        grad.iter_mut().for_each(|g| *g *= inv);
        Finished {
            loss: loss_sum,
            objective: loss_sum / n.max(1) as f64,
        }
    }
}

/// Imputation lent to the shared epoch loop: validation is the loss per
/// held-out cell, predicted from the training input with dropout off.
struct ImputeFit<'a> {
    o: &'a ImputeObjective<'a>,
    batches: Minibatches<ImputeBatch, Workspace>,
    params: Vec<f32>,
    opt: StepRule,
    rng: Rng,
    val: Option<(&'a Vec<f32>, usize)>,
    par: Par,
}

impl Fit for ImputeFit<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        Ok(self
            .batches
            .run_epoch(self.o, &mut self.params, &mut self.opt, &mut self.rng, obs))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        let Some((mask, held)) = self.val else {
            return Ok(None);
        };
        let net = self.o.net;
        let (n, w) = (self.o.n_examples(), self.o.width);
        let chunk = 1024.min(n.max(1));
        let mut ws = net.workspace(chunk);
        let mut loss = 0.0;
        for start in (0..n).step_by(chunk) {
            let rows = chunk.min(n - start);
            let span = start * w..(start + rows) * w;
            net.forward(
                &self.params,
                &self.o.input[2 * start * w..2 * (start + rows) * w],
                rows,
                None,
                &mut ws,
                self.par,
            );
            // No gradient: the dropout masks are not read.
            loss += net.loss_backward(
                &self.params,
                &self.o.target[span.clone()],
                &mask[span],
                rows,
                &[],
                &mut ws,
                None,
                self.par,
            );
        }
        Ok(Some(loss / held as f64))
    }

    crate::train::minibatch_fit_state!(params, rng, opt, batches);
}

/// Arrays with NaN for missing cells, every column continuous: the face the
/// Python bindings and the [`Estimator`](crate::models::Estimator) surface
/// use.
impl Imputer {
    /// A continuous-only schema fitted to `x`'s observed (non-NaN) cells.
    fn array_schema(x: &ndarray::ArrayView2<f32>) -> Result<Schema> {
        let mut columns = Vec::with_capacity(x.ncols());
        for (j, col) in x.columns().into_iter().enumerate() {
            let v: Vec<f64> = col.iter().filter(|v| !v.is_nan()).map(|&v| v as f64).collect();
            if v.is_empty() {
                return Err(Error::config(
                    "x",
                    format!("column {j} has no observed (non-NaN) value"),
                ));
            }
            if let Some(bad) = v.iter().find(|v| !v.is_finite()) {
                return Err(Error::config(
                    "x",
                    format!("column {j} holds {bad}: only NaN may mark a missing cell"),
                ));
            }
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / v.len() as f64;
            let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &a| {
                (l.min(a), h.max(a))
            });
            columns.push(schema::Column {
                name: format!("x{j}"),
                kind: Kind::Continuous {
                    mean,
                    sd: schema::scale(var.sqrt(), hi - lo, mean),
                    decimals: 6,
                },
            });
        }
        Ok(Schema {
            columns,
            missing: Vec::new(),
        })
    }

    /// `x` encoded by the fitted (continuous-only) schema: NaN is missing.
    fn encode_array(&self, x: &ndarray::ArrayView2<f32>) -> Result<Encoded> {
        let s = self
            .schema
            .as_ref()
            .ok_or_else(|| Error::config("model", "the imputer is not fitted yet"))?;
        crate::models::check_columns("x", s.columns.len(), x.ncols())?;
        let mut e = Encoded {
            x: vec![0.0; x.len()],
            mask: vec![0.0; x.len()],
            n: x.nrows(),
            width: x.ncols(),
        };
        for (k, &v) in x.iter().enumerate() {
            let j = k % e.width;
            let Kind::Continuous { mean, sd, .. } = s.columns[j].kind else {
                return Err(Error::config(
                    "model",
                    "arrays need a model fitted to arrays (continuous columns)",
                ));
            };
            if v.is_nan() {
                continue;
            }
            if !v.is_finite() {
                return Err(Error::config(
                    "x",
                    format!("row {}, column {j} is {v}", k / e.width),
                ));
            }
            e.x[k] = ((v as f64 - mean) / sd) as f32;
            e.mask[k] = 1.0;
        }
        Ok(e)
    }

    /// Fits to an array whose NaN cells are missing.
    pub fn fit_array(&mut self, x: ndarray::ArrayView2<f32>, obs: &mut dyn Observer) -> Result<FitReport> {
        let schema = Imputer::array_schema(&x)?;
        self.schema = Some(schema.clone());
        let data = self.encode_array(&x)?;
        self.fit(schema, &data, obs, Checkpointing::default())
    }

    /// The network's estimate of every cell, in the columns' units.
    pub fn estimate_array(&self, x: ndarray::ArrayView2<f32>) -> Result<ndarray::Array2<f32>> {
        let data = self.encode_array(&x)?;
        let out = self.predict(&data, None)?;
        let s = self.schema.as_ref().expect("encoded above");
        let v: Vec<f32> = out
            .iter()
            .enumerate()
            .map(|(k, &z)| match s.columns[k % data.width].kind {
                Kind::Continuous { mean, sd, .. } => (z as f64 * sd + mean) as f32,
                _ => z,
            })
            .collect();
        Ok(ndarray::Array2::from_shape_vec((data.n, data.width), v).expect("n × width"))
    }

    /// `x` with its NaN cells filled (observed cells as they are).
    pub fn transform_array(&self, x: ndarray::ArrayView2<f32>) -> Result<ndarray::Array2<f32>> {
        let est = self.estimate_array(x)?;
        Ok(ndarray::Zip::from(&est)
            .and(&x)
            .map_collect(|&e, &v| if v.is_nan() { e } else { v }))
    }

    /// `m` fillings of `x`, dropout on (multiple imputation), `[m, n, d]`.
    pub fn transform_multiple(
        &self,
        x: ndarray::ArrayView2<f32>,
        m: usize,
        seed: u64,
    ) -> Result<ndarray::Array3<f32>> {
        let data = self.encode_array(&x)?;
        let s = self.schema.as_ref().expect("encoded above");
        let mut rng = seeded(seed ^ 0x1397_a7e5);
        let mut all = Vec::with_capacity(m * x.len());
        for _ in 0..m {
            let out = self.predict(&data, Some(&mut rng))?;
            all.extend(out.iter().zip(x.iter()).enumerate().map(|(k, (&z, &v))| {
                if !v.is_nan() {
                    return v;
                }
                match s.columns[k % data.width].kind {
                    Kind::Continuous { mean, sd, .. } => (z as f64 * sd + mean) as f32,
                    _ => z,
                }
            }));
        }
        Ok(ndarray::Array3::from_shape_vec((m, data.n, data.width), all).expect("m × n × width"))
    }

    /// The mean loss per observed cell of `x` (NaN cells aside), the
    /// network seeing every observed cell (lower is better).
    pub fn score_array(&self, x: ndarray::ArrayView2<f32>) -> Result<f64> {
        let data = self.encode_array(&x)?;
        let out = self.predict(&data, None)?;
        let (mut se, mut n) = (0.0f64, 0usize);
        for k in 0..out.len() {
            if data.mask[k] == 1.0 {
                se += 0.5 * ((out[k] - data.x[k]) as f64).powi(2);
                n += 1;
            }
        }
        Ok(se / n.max(1) as f64)
    }
}

impl crate::models::Estimator for Imputer {
    /// Fits to `x` (NaN: missing); `val` is not used (the imputer holds out
    /// observed cells of `x` itself).
    fn fit(
        &mut self,
        x: ndarray::ArrayView2<f32>,
        _val: Option<ndarray::ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        self.fit_array(x, obs)
    }
    /// `x` with its missing cells filled (not codes: an imputer's output is
    /// the table, as scikit-learn's imputers give it).
    fn transform(&self, x: ndarray::ArrayView2<f32>) -> Result<ndarray::Array2<f32>> {
        self.transform_array(x)
    }
    /// Every cell as the network estimates it.
    fn reconstruct(&self, x: ndarray::ArrayView2<f32>) -> Result<ndarray::Array2<f32>> {
        self.estimate_array(x)
    }
    fn score(&self, x: ndarray::ArrayView2<f32>) -> Result<f64> {
        self.score_array(x)
    }
    fn set_threads(&mut self, threads: usize) {
        self.config.train.threads = threads;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Estimator;

    /// Three columns where the third is the sum of the first two: an
    /// imputer that learns the relation fills the third far better than its
    /// mean does.
    #[test]
    fn the_array_face_fills_nan_cells_from_the_other_columns() {
        let mut rng = seeded(4);
        let n = 400;
        let mut x = ndarray::Array2::<f32>::zeros((n, 3));
        for r in 0..n {
            let (a, b): (f32, f32) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
            x[[r, 0]] = a;
            x[[r, 1]] = b;
            x[[r, 2]] = a + b;
        }
        let truth = x.clone();
        for r in (0..n).step_by(5) {
            x[[r, 2]] = f32::NAN;
        }
        let cfg = ImputerConfig {
            layers: vec![32, 16],
            dropout: 0.1,
            train: TrainConfig {
                epochs: 60,
                threads: 1,
                ..ImputerConfig::default_train()
            },
            ..ImputerConfig::default()
        };
        let mut imp = Imputer::new(cfg);
        Estimator::fit(&mut imp, x.view(), None, &mut crate::train::Silent).unwrap();
        let filled = Estimator::transform(&imp, x.view()).unwrap();
        let (mut se, mut se_mean, mut k) = (0.0f64, 0.0f64, 0);
        let mean = (0..n)
            .filter(|r| r % 5 != 0)
            .map(|r| truth[[r, 2]] as f64)
            .sum::<f64>()
            / (n - n / 5) as f64;
        for r in 0..n {
            if r % 5 == 0 {
                se += ((filled[[r, 2]] - truth[[r, 2]]) as f64).powi(2);
                se_mean += (mean - truth[[r, 2]] as f64).powi(2);
                k += 1;
            } else {
                assert_eq!(filled.row(r), x.row(r), "observed cells stay");
            }
        }
        let (rmse, rmse_mean) = ((se / k as f64).sqrt(), (se_mean / k as f64).sqrt());
        assert!(
            rmse < 0.5 * rmse_mean,
            "RMSE {rmse} against the mean's {rmse_mean}"
        );
        // Multiple imputation: draws differ on the missing cells only.
        let draws = imp.transform_multiple(x.view(), 3, 7).unwrap();
        for r in 0..n {
            for c in 0..3 {
                let v: Vec<f32> = (0..3).map(|m| draws[[m, r, c]]).collect();
                if x[[r, c]].is_nan() {
                    assert!(v[0] != v[1] || v[1] != v[2], "row {r}: draws equal");
                } else {
                    assert!(v.iter().all(|&d| d == x[[r, c]]));
                }
            }
        }
        assert!(Estimator::score(&imp, x.view()).unwrap().is_finite());
        // Infinity is not a missing marker.
        let mut bad = x.clone();
        bad[[1, 0]] = f32::INFINITY;
        assert!(Estimator::transform(&imp, bad.view())
            .unwrap_err()
            .to_string()
            .contains("row 1, column 0"));
    }
}
