//! Imputing the missing cells of a table with a denoising autoencoder, as
//! MIDAS (Lall & Robinson) and MIDA (Gondara & Wang) do: each row encoded by
//! its [`Schema`], observed cells corrupted by dropping some of them, the
//! network asked to give back every observed cell (the loss counts observed
//! cells only), with dropout on its hidden layers; then missing cells filled
//! from its outputs, once, or several times with dropout left on (multiple
//! imputation).

mod array;
mod filled;
pub mod gaussian;
pub mod network;
mod objective;
pub mod schema;

use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::layers::Activation;
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{
    fit_loop_with, Checkpointing, FitReport, Minibatches, Observer, Optimizer, Shuffle, StepRule, TrainConfig,
};
pub use filled::Filled;
use gaussian::Gaussian;
use network::{Head, Net};
use objective::{net_input, net_par, ImputeFit, ImputeObjective, VAL_INPUT_KEPT};
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

/// Encoded rows at most this wide get the linear path under `linear = "auto"`.
pub const LINEAR_AUTO_MAX_WIDTH: usize = 256;

/// The linear path beside the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Linear {
    /// The Gaussian path for encoded rows up to
    /// [`LINEAR_AUTO_MAX_WIDTH`] values wide, none for wider ones (its EM
    /// costs a Cholesky factorisation of each row's missing block a round).
    #[default]
    Auto,
    /// A multivariate normal fitted by EM fills each missing cell with its
    /// conditional mean; the network reads the filled row and learns a
    /// correction to it ([`gaussian`]).
    Gaussian,
    /// The network alone (MIDAS: a missing cell enters as 0 beside its mask).
    None,
}

impl std::str::FromStr for Linear {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Linear::Auto),
            "gaussian" => Ok(Linear::Gaussian),
            "none" => Ok(Linear::None),
            _ => Err(format!(
                "unknown linear path `{s}` (expected auto, gaussian or none)"
            )),
        }
    }
}

/// The imputer's settings (`[model]` of `aekit impute`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImputerConfig {
    pub arch: Arch,
    /// Encoder widths (MIDAS); the decoder mirrors them. Empty (the
    /// default): 64,64 with the linear path (the network only corrects its
    /// fill), 256,256,256 (MIDAS's) without.
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
    /// The linear path: `auto` (the default), `gaussian` or `none`.
    pub linear: Linear,
    /// The loop (`[train]`): Adam, step 1e-3, batch 32, up to 200 epochs,
    /// patience 3 by default.
    pub train: TrainConfig,
}

impl Default for ImputerConfig {
    fn default() -> Self {
        ImputerConfig {
            arch: Arch::Midas,
            layers: Vec::new(),
            activation: Activation::Elu,
            corruption: 0.2,
            dropout: 0.5,
            val_fraction: 0.1,
            loss_on: LossOn::Observed,
            linear: Linear::Auto,
            train: ImputerConfig::default_train(),
        }
    }
}

impl ImputerConfig {
    /// The loop's defaults for imputation: Adam, step 1e-3, batch 32, up to
    /// 200 epochs, patience 3.
    pub fn default_train() -> TrainConfig {
        TrainConfig {
            epochs: 200,
            batch: 32,
            optimizer: Optimizer::Adam,
            lr: 1e-3,
            patience: 3,
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
        if self.arch == Arch::Midas && self.layers.contains(&0) {
            return Err(Error::config("model.layers", "each layer needs at least 1 unit"));
        }
        if self.activation == Activation::Sigmoid || self.activation == Activation::Identity {
            return Err(Error::config(
                "model.activation",
                "use elu, relu or tanh for the hidden layers",
            ));
        }
        Ok(())
    }

    /// Whether rows `width` values wide take the linear path.
    pub fn linear_for(&self, width: usize) -> bool {
        match self.linear {
            Linear::Auto => width <= LINEAR_AUTO_MAX_WIDTH,
            Linear::Gaussian => true,
            Linear::None => false,
        }
    }

    /// The hidden widths for an encoded row of `width` values.
    pub fn hidden(&self, width: usize) -> Vec<usize> {
        let enc: Vec<usize> = match self.arch {
            Arch::Midas if self.layers.is_empty() && self.linear_for(width) => vec![64, 64],
            Arch::Midas if self.layers.is_empty() => vec![256, 256, 256],
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
    /// The linear path, when the settings and the table's width call for it.
    gauss: Option<Gaussian>,
}

impl Imputer {
    pub fn new(config: ImputerConfig) -> Imputer {
        Imputer {
            config,
            schema: None,
            params: Vec::new(),
            gauss: None,
        }
    }

    /// Whether rows `width` values wide take the linear path.
    pub fn linear_for(&self, width: usize) -> bool {
        self.config.linear_for(width)
    }

    /// The network for the fitted schema.
    pub fn net(&self) -> Result<Net> {
        let s = self
            .schema
            .as_ref()
            .ok_or_else(|| Error::config("model", "the imputer is not fitted yet"))?;
        let w = s.width();
        // The input is each row's values (0 where missing, or the linear
        // path's fill) and its mask, so that a missing cell is not read as
        // an observed one.
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
            residual: self.linear_for(w),
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
        if net.residual {
            // The network starts as no correction: the linear fill itself.
            let (w, b) = net.layer(net.depth() - 1);
            self.params[w.start..b.end].fill(0.0);
        }
        // Hold out a fraction of the observed cells (whole columns' groups).
        let groups: Vec<Range<usize>> = net.heads.iter().map(Head::range).collect();
        let mut train_mask = data.mask.clone();
        let mut held = 0usize;
        if self.config.val_fraction > 0.0 {
            for r in 0..data.n {
                for g in &groups {
                    let o = r * data.width;
                    if data.mask[o + g.start] == 1.0 && rng.random::<f32>() < self.config.val_fraction {
                        train_mask[o + g.start..o + g.end].fill(0.0);
                        held += 1;
                    }
                }
            }
        }
        // The linear path, fitted to the training cells.
        let par = Par::from_threads(self.config.train.resolved_threads());
        self.gauss = if net.residual {
            Some(Gaussian::fit(
                &data.x,
                &train_mask,
                data.n,
                data.width,
                None,
                par,
            )?)
        } else {
            None
        };
        let o = ImputeObjective {
            net: &net,
            target: &data.x,
            mask: &train_mask,
            groups: &groups,
            width: data.width,
            corruption: self.config.corruption,
            dropout: self.config.dropout,
            loss_on: self.config.loss_on,
            gauss: self.gauss.as_ref(),
        };
        let par = net_par(&net, self.config.train.batch, par);
        let val_input = (held > 0 && 8 * data.x.len() <= VAL_INPUT_KEPT)
            .then(|| net_input(&data.x, &train_mask, data.width, self.gauss.as_ref(), None));
        let mut run = ImputeFit {
            batches: Minibatches::new(&o, self.config.train.batch, 1, par, Shuffle::Fresh),
            o: &o,
            params: std::mem::take(&mut self.params),
            opt: StepRule::new(&self.config.train),
            rng,
            // The held-out cells: observed, and not in the training mask.
            val: (held > 0).then_some((&data.mask, held)),
            val_input: val_input.as_deref(),
            par,
        };
        obs.on_start(self.config.train.epochs, run.batches.batches_per_epoch());
        let patience = if held > 0 { self.config.train.patience } else { 0 };
        let report = fit_loop_with(&mut run, self.config.train.epochs, patience, obs, "train.lr", ck)?;
        self.params = run.params;
        // The network is chosen; the linear path may now see the held-out
        // cells too (a few EM rounds from where it stands).
        if let (Some(g), true) = (&self.gauss, held > 0) {
            let par = Par::from_threads(self.config.train.resolved_threads());
            self.gauss = Some(Gaussian::fit(
                &data.x,
                &data.mask,
                data.n,
                data.width,
                Some(g),
                par,
            )?);
        }
        // The model file keeps the linear path in f32: use it as it will be
        // read back, so that a saved (or pickled) model fills alike.
        if let Some(g) = &self.gauss {
            let (mean, prec) = g.to_f32();
            let rounded = Gaussian::from_f32(&mean, &prec).map_err(|e| Error::config("model.linear", e))?;
            self.gauss = Some(rounded);
        }
        Ok(report)
    }

    /// The network's outputs after its heads, `[n, width]`, for `data`'s
    /// observed cells; with `mc`, dropout stays on, drawn from it.
    pub fn predict(&self, data: &Encoded, mc: Option<&mut Rng>) -> Result<Vec<f32>> {
        self.predict_rows(data, 0..data.n, mc)
    }

    /// [`Imputer::predict`] for the rows `range` of `data` only, `[rows,
    /// width]`.
    pub fn predict_rows(
        &self,
        data: &Encoded,
        range: Range<usize>,
        mc: Option<&mut Rng>,
    ) -> Result<Vec<f32>> {
        let net = self.net()?;
        if 2 * data.width != net.sizes[0] {
            return Err(Error::shape("encoded rows", net.sizes[0] / 2, data.width));
        }
        let mut mc = mc;
        let n = range.len();
        let chunk = 1024.min(n.max(1));
        let mut ws = net.workspace(chunk);
        let mut out = vec![0.0f32; n * data.width];
        let par = net_par(
            &net,
            chunk,
            Par::from_threads(self.config.train.resolved_threads()),
        );
        let mut masks: Vec<Vec<f32>> = vec![Vec::new(); net.depth() - 1];
        for start in (0..n).step_by(chunk) {
            let rows = chunk.min(n - start);
            // The input a chunk at a time (a table's whole input would be
            // 8 bytes a cell more); with dropout on, the linear fill is a
            // draw too.
            let span = (range.start + start) * data.width..(range.start + start + rows) * data.width;
            let x = net_input(
                &data.x[span.clone()],
                &data.mask[span],
                data.width,
                self.gauss.as_ref(),
                mc.as_deref_mut(),
            );
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
            net.forward(&self.params, &x, rows, drop.as_deref(), &mut ws, par);
            net.outputs(
                &ws,
                rows,
                &mut out[start * data.width..(start + rows) * data.width],
            );
        }
        Ok(out)
    }

    /// The fillings of `t`'s missing cells: `draws` of them (one with
    /// dropout off and the most likely level when `draws` is `None`; else
    /// that many with dropout on, binaries and categoricals drawn from
    /// their probabilities unless `mode`). Observed and ignored cells stay
    /// the table's text as read (see [`Filled::rows`]). `seed` seeds the
    /// draws.
    pub fn impute(
        &self,
        t: &Table,
        draws: Option<usize>,
        mode: bool,
        seed: u64,
        strict: bool,
    ) -> Result<Vec<Filled>> {
        let schema = self
            .schema
            .as_ref()
            .ok_or_else(|| Error::config("model", "the imputer is not fitted yet"))?;
        let data = schema.encode(t, strict)?;
        let offsets = schema.offsets();
        let mut rng = seeded(seed ^ 0x1397_a7e5);
        let mut tables = Vec::new();
        for _ in 0..draws.unwrap_or(1) {
            let mut cells = Filled::default();
            // A block of rows at a time: the network's outputs for the
            // whole table are never held.
            const BLOCK: usize = 4096;
            for first in (0..t.n_rows()).step_by(BLOCK) {
                let last = (first + BLOCK).min(t.n_rows());
                let out = self.predict_rows(&data, first..last, draws.map(|_| &mut rng))?;
                for r in first..last {
                    for (c, col) in schema.columns.iter().enumerate() {
                        // Missing cells, and levels never seen in fitting,
                        // are those the encoding masked.
                        let filled = !matches!(col.kind, Kind::Ignored)
                            && data.mask[r * data.width + offsets[c]] == 0.0;
                        if filled {
                            let o = (r - first) * data.width + offsets[c];
                            let u = (draws.is_some() && !mode).then(|| rng.random::<f64>());
                            cells.push(
                                r * t.n_cols() + c,
                                &schema.cell_text(c, &out[o..o + col.width()], u),
                            );
                        }
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
        let mut t = vec![NamedTensor {
            name: "params",
            shape: vec![self.params.len()],
            data: &self.params,
        }];
        let lin = self.gauss.as_ref().map(Gaussian::to_f32);
        if let Some((mean, prec)) = &lin {
            t.push(NamedTensor {
                name: "linear.mean",
                shape: vec![mean.len()],
                data: mean,
            });
            t.push(NamedTensor {
                name: "linear.precision",
                shape: vec![mean.len(), mean.len()],
                data: prec,
            });
        }
        save(path, &t, meta)
    }

    /// Reads a model written by [`Imputer::save`].
    pub fn load(path: &Path) -> Result<Imputer> {
        let mut f = crate::io::safetensors::load(path)?;
        f.expect_kind("aekit.imputer")?;
        let bad = |what: &str, e: String| Error::format(path, format!("bad {what} in metadata: {e}"));
        let schema: Schema =
            serde_json::from_str(f.meta("schema")?).map_err(|e| bad("schema", e.to_string()))?;
        let text = f.meta("config")?;
        let mut config: ImputerConfig = toml::from_str(text).map_err(|e| bad("config", e.to_string()))?;
        // Models written before the linear path existed have no `linear`
        // key: they are the network alone.
        let keys: toml::Table = toml::from_str(text).map_err(|e| bad("config", e.to_string()))?;
        if !keys.contains_key("linear") {
            config.linear = Linear::None;
        }
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
        if m.net()?.residual {
            let w = m.schema.as_ref().map_or(0, Schema::width);
            if f.shape_of("linear.mean") != Some(vec![w])
                || f.shape_of("linear.precision") != Some(vec![w, w])
            {
                return Err(Error::format(
                    path,
                    format!("the linear path's `linear.mean` [{w}] and `linear.precision` [{w}, {w}] are missing or misshapen"),
                ));
            }
            let mean = f.take("linear.mean", &[w])?;
            let prec = f.take("linear.precision", &[w, w])?;
            m.gauss = Some(Gaussian::from_f32(&mean, &prec).map_err(|e| Error::format(path, e))?);
        }
        Ok(m)
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
        for linear in [Linear::None, Linear::Gaussian] {
            array_face_case(&x, &truth, n, linear);
        }
    }

    fn array_face_case(x: &ndarray::Array2<f32>, truth: &ndarray::Array2<f32>, n: usize, linear: Linear) {
        let cfg = ImputerConfig {
            layers: vec![32, 16],
            dropout: 0.1,
            linear,
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
            "{linear:?}: RMSE {rmse} against the mean's {rmse_mean}"
        );
        // Multiple imputation: draws differ on the missing cells only.
        let draws = imp.transform_multiple(x.view(), 3, 7).unwrap();
        for r in 0..n {
            for c in 0..3 {
                let v: Vec<f32> = (0..3).map(|m| draws[[m, r, c]]).collect();
                if x[[r, c]].is_nan() {
                    assert!(v[0] != v[1] || v[1] != v[2], "{linear:?}, row {r}: draws equal");
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

    /// A column that is the square of another: no linear fill can give it
    /// (its conditional mean given the others is linear in nothing), so the
    /// network's correction must carry it. The filled cells beat the
    /// Gaussian path's own fill by a wide margin, and that fill beats the
    /// column's mean on the linear part.
    #[test]
    fn the_network_corrects_what_the_linear_fill_misses() {
        let mut rng = seeded(9);
        let n = 1500;
        let mut x = ndarray::Array2::<f32>::zeros((n, 3));
        for r in 0..n {
            let (a, b): (f32, f32) = (rng.random_range(-1.5..1.5), rng.random_range(-1.0..1.0));
            x[[r, 0]] = a;
            x[[r, 1]] = b;
            x[[r, 2]] = a * a + 0.5 * b;
        }
        let truth = x.clone();
        for r in (0..n).step_by(4) {
            x[[r, 2]] = f32::NAN;
        }
        let cfg = ImputerConfig {
            linear: Linear::Gaussian,
            dropout: 0.1,
            train: TrainConfig {
                epochs: 150,
                patience: 20,
                threads: 1,
                ..ImputerConfig::default_train()
            },
            ..ImputerConfig::default()
        };
        let mut imp = Imputer::new(cfg);
        imp.fit_array(x.view(), &mut crate::train::Silent).unwrap();
        let filled = imp.transform_array(x.view()).unwrap();
        // The linear path's fill alone, in the column's units.
        let data = imp.encode_array(&x.view()).unwrap();
        let g = imp.gauss.as_ref().expect("the linear path is on");
        let Kind::Continuous { mean, sd, .. } = imp.schema.as_ref().unwrap().columns[2].kind else {
            unreachable!()
        };
        let mut s = gaussian::Scratch::default();
        let mut row = [0.0f32; 3];
        let (mut se_net, mut se_lin, mut k) = (0.0f64, 0.0f64, 0);
        for r in (0..n).step_by(4) {
            g.fill(
                &data.x[r * 3..r * 3 + 3],
                &data.mask[r * 3..r * 3 + 3],
                &mut s,
                &mut row,
                None,
            );
            let lin = row[2] as f64 * sd + mean;
            se_lin += (lin - truth[[r, 2]] as f64).powi(2);
            se_net += ((filled[[r, 2]] - truth[[r, 2]]) as f64).powi(2);
            k += 1;
        }
        let (net, lin) = ((se_net / k as f64).sqrt(), (se_lin / k as f64).sqrt());
        // a² on [−1.5, 1.5] has sd 0.6: the linear fill's error.
        assert!(lin > 0.5, "the linear fill cannot know a²: RMSE {lin}");
        assert!(
            net < 0.5 * lin,
            "network RMSE {net} against the linear fill's {lin}"
        );
    }

    /// A model with the linear path saves and loads to the same fills and
    /// draws; a model file from before the linear path (no `linear` key in
    /// its settings, no `linear.*` tensors) loads as the network alone; a
    /// file whose linear path is missing is refused naming the tensors.
    #[test]
    fn models_with_and_without_the_linear_path_round_trip() {
        let mut rng = seeded(2);
        let mut x = ndarray::Array2::<f32>::zeros((120, 4));
        for r in 0..120 {
            let a: f32 = rng.random_range(-1.0..1.0);
            x.row_mut(r).assign(&ndarray::arr1(&[
                a,
                2.0 * a,
                rng.random_range(-1.0..1.0),
                a + 1.0,
            ]));
            if r % 3 == 0 {
                x[[r, r % 4]] = f32::NAN;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let train = TrainConfig {
            epochs: 3,
            threads: 1,
            ..ImputerConfig::default_train()
        };
        let mut with = Imputer::new(ImputerConfig {
            train: train.clone(),
            ..ImputerConfig::default()
        });
        with.fit_array(x.view(), &mut crate::train::Silent).unwrap();
        assert!(with.gauss.is_some());
        let path = dir.path().join("with.safetensors");
        with.save(&path).unwrap();
        let back = Imputer::load(&path).unwrap();
        // Bit for bit: the fitted model uses its linear path as the file
        // keeps it.
        assert_eq!(
            back.transform_array(x.view()).unwrap(),
            with.transform_array(x.view()).unwrap()
        );
        assert_eq!(
            back.transform_multiple(x.view(), 2, 5).unwrap(),
            with.transform_multiple(x.view(), 2, 5).unwrap()
        );
        // An older file: the network alone, settings without `linear`.
        let mut alone = Imputer::new(ImputerConfig {
            linear: Linear::None,
            layers: vec![16],
            train,
            ..ImputerConfig::default()
        });
        alone.fit_array(x.view(), &mut crate::train::Silent).unwrap();
        let config: String = toml::to_string(&alone.config)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("linear"))
            .map(|l| format!("{l}\n"))
            .collect();
        let write = |file: &str, config: &str| {
            let mut meta = std::collections::HashMap::new();
            meta.insert("format".to_string(), "aekit.imputer".to_string());
            meta.insert(
                "schema".into(),
                serde_json::to_string(alone.schema.as_ref().unwrap()).unwrap(),
            );
            meta.insert("config".into(), config.to_string());
            let t = [crate::io::safetensors::NamedTensor {
                name: "params",
                shape: vec![alone.params.len()],
                data: &alone.params,
            }];
            let p = dir.path().join(file);
            crate::io::safetensors::save(&p, &t, meta).unwrap();
            p
        };
        let old = Imputer::load(&write("old.safetensors", &config)).unwrap();
        assert_eq!(old.config.linear, Linear::None);
        assert_eq!(
            old.transform_array(x.view()).unwrap(),
            alone.transform_array(x.view()).unwrap()
        );
        // Settings that ask for the linear path, without its tensors.
        let gaussian = format!("linear = \"gaussian\"\n{config}");
        let err = Imputer::load(&write("broken.safetensors", &gaussian))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("linear.mean") && err.contains("broken.safetensors"),
            "{err}"
        );
    }
}
