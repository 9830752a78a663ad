//! The harder MNIST variants (Larochelle et al. 2007) as the parallel-SGD
//! paper planned to use them, and the lecture's table (Larochelle et al.
//! 2009):
//!
//! 1. SdA-3 (stacked denoising pretraining of 1000-1000-1000, then
//!    fine-tuning) on rot, bg-rand, bg-img and bg-img-rot with Vincent et
//!    al. (2010)'s masking noise per variant, beside their Table 3;
//! 2. deep nets of depth 1 to 4 on basic (MNIST-small) and rot, with no
//!    pretraining, autoencoder pretraining and RBM pretraining, beside the
//!    table's published errors;
//! 3. the paper's own plan: the tied 784→500 DAE trained on bg-rand and
//!    bg-img-rot, its filters and reconstructions.
//!
//! Every set has the original sizes: 10,000 training, 2,000 validation
//! (the next 2,000 of MNIST's training digits) and 50,000 test images.

use crate::data::variants::{make_split, Blend, Recipe, Variant};
use crate::data::{load_train_test, DataSource, Dataset};
use crate::error::Result;
use crate::layers::Corruption;
use crate::models::stacked::Schedule;
use crate::models::{DaeConfig, DenoisingAutoencoder};
use crate::run::{Out, RunDir};
use crate::train::{Silent, TrainConfig};
use crate::viz;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;

mod nets;
pub use nets::Width;
use nets::{chosen, deep_nets, finetune_config, pretrain_config, refit, Loop, Tuned};

/// Vincent et al. (2010), Table 3: SdA-3 test errors (%) and the masking
/// noise used.
const SDA3: [(Variant, f64, f32); 4] = [
    (Variant::Rot, 9.53, 0.25),
    (Variant::BgRand, 10.30, 0.40),
    (Variant::BgImg, 16.68, 0.25),
    (Variant::BgImgRot, 43.76, 0.25),
];

/// Larochelle et al. (2009), the lecture's table: test errors (%) at depth
/// 1 to 4 with no pretraining and with autoencoder pretraining.
const TABLE: [(Variant, [f64; 4], [f64; 4]); 2] = [
    (Variant::Basic, [4.14, 4.03, 4.24, 4.47], [3.87, 3.38, 3.37, 3.39]),
    (
        Variant::Rot,
        [15.22, 10.63, 11.98, 11.73],
        [11.43, 9.88, 9.22, 9.20],
    ),
];

/// A row of the depth table: how the stack starts before fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TablePretraining {
    /// Random weights.
    None,
    /// Stacked autoencoders without corruption.
    Autoencoder,
    /// Stacked RBMs (CD-1).
    Rbm,
}

impl TablePretraining {
    /// Every row, in the table's order.
    pub const ALL: [TablePretraining; 3] = [Self::None, Self::Autoencoder, Self::Rbm];

    /// The name in the CSV and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Autoencoder => "autoencoder",
            Self::Rbm => "rbm",
        }
    }

    fn start(self) -> Option<(Schedule, Corruption)> {
        match self {
            Self::None => None,
            Self::Autoencoder => Some((Schedule::Stacked, Corruption::None)),
            Self::Rbm => Some((Schedule::Rbm, Corruption::None)),
        }
    }
}

impl std::str::FromStr for TablePretraining {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown pretraining '{s}': none, autoencoder or rbm"))
    }
}

/// The experiment's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Variants {
    /// Built-in digits (2000 training, 400 validation, 1000 test), 3×256
    /// units, depths 1–2, 2 pretraining and 8 fine-tuning epochs.
    pub quick: bool,
    pub data: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Widths of the hidden layers (default 1000, every layer the same;
    /// [`Width::Layers`] gives each layer its own): with several, each net
    /// is pretrained and fine-tuned at each width and the run with the
    /// lowest validation error is reported.
    pub width: Option<Vec<Width>>,
    /// Pretraining epochs per layer (default 10).
    pub pretrain_epochs: Option<usize>,
    /// Fine-tuning epochs at most (default 60; patience 10).
    pub finetune_epochs: Option<usize>,
    /// Run part 1 (SdA-3 on the variants).
    pub sda: bool,
    /// The variants of part 1 and the sets of part 2 to run (default: all:
    /// rot, bg-rand, bg-img, bg-img-rot; basic and rot).
    pub sets: Option<Vec<Variant>>,
    /// The depths of part 2 (default 1 to 4; 1 and 2 with `quick`).
    pub depths: Option<Vec<usize>>,
    /// Run part 2 (the depth table).
    pub table: bool,
    /// The table's rows to run (default all: none, autoencoder, rbm).
    pub pretrainings: Option<Vec<TablePretraining>>,
    /// Run part 3 (the tied 784→500 DAE).
    pub dae: bool,
    /// Pretraining learning rate (default 0.01; SGD).
    pub pretrain_lr: Option<f32>,
    /// Pretraining minibatch size (default 20; 1 = per-example SGD).
    pub pretrain_batch: Option<usize>,
    /// Pretraining momentum (default 0.9).
    pub pretrain_momentum: Option<f32>,
    /// Pretraining learning rate factor per epoch of each layer (default
    /// 1: constant); the autoencoders' and SdA's pretraining only.
    pub pretrain_lr_decay: Option<f32>,
    /// Pretrain the autoencoders and SdA with untied decoders (their own
    /// weights W′ instead of Wᵀ; default: tied).
    pub pretrain_untied: bool,
    /// Fine-tuning learning rates (default 0.05, 0.1, 0.2 and 0.4; SGD,
    /// batch 20, momentum 0.9): with several, each net is fine-tuned from the same
    /// pretrained weights at each rate and the one with the lowest
    /// validation error is reported.
    pub finetune_lr: Option<Vec<f32>>,
    /// Fine-tuning learning rate factor per epoch (default 1: constant).
    pub lr_decay: Option<f32>,
    /// Fine-tuning minibatch sizes (default 20; 1 = per-example SGD):
    /// with several, each net is fine-tuned from the same pretrained
    /// weights at each size and each rate, and the one with the lowest
    /// validation error is reported.
    pub finetune_batch: Option<Vec<usize>>,
    /// Fine-tuning momentum (default 0.9).
    pub finetune_momentum: Option<f32>,
    /// Fine-tuning L2 weight decay λ on the weights, not the biases
    /// (default 0: none).
    pub finetune_weight_decay: Option<f32>,
    /// Fine-tuning dropout rate of every hidden unit (default 0: none).
    pub finetune_dropout: Option<f32>,
    /// Fine-tuning weight averaging: the decay per update of the moving
    /// average of the weights that is validated and kept (default 0: none).
    pub finetune_average: Option<f32>,
    /// Fine-tuning max-norm bound on each unit's incoming weights (default
    /// 0: none).
    pub finetune_max_norm: Option<f32>,
    /// A folder that keeps every pretrained stack, named by a digest of
    /// the training images and the pretraining settings: a stack already
    /// there is loaded instead of pretrained again (default: none).
    pub pretrained_cache: Option<PathBuf>,
    /// After each net's choice, train it again on the training and
    /// validation sets together (pretraining too) at the chosen width,
    /// minibatch size and rate for the chosen number of epochs, keep the
    /// last weights and report their test error beside the chosen run's.
    pub refit: bool,
    /// How digit and background combine (default: the maximum).
    pub blend: Blend,
    pub threads: usize,
    /// Seed of the networks: their first weights, corruption and example
    /// order (default 1).
    pub seed: u64,
    /// Seed of the generated variants: the angles and backgrounds, as
    /// `aekit data variants --seed` (default 1).
    pub data_seed: u64,
}

impl Default for Variants {
    fn default() -> Self {
        Variants {
            quick: false,
            data: None,
            data_dir: None,
            width: None,
            pretrain_epochs: None,
            finetune_epochs: None,
            sda: true,
            sets: None,
            depths: None,
            table: true,
            pretrainings: None,
            dae: true,
            pretrain_lr: None,
            pretrain_batch: None,
            pretrain_momentum: None,
            pretrain_lr_decay: None,
            pretrain_untied: false,
            finetune_lr: None,
            lr_decay: None,
            finetune_batch: None,
            finetune_momentum: None,
            finetune_weight_decay: None,
            finetune_dropout: None,
            finetune_average: None,
            finetune_max_norm: None,
            pretrained_cache: None,
            refit: false,
            blend: Blend::Max,
            threads: 2,
            seed: 1,
            data_seed: 1,
        }
    }
}

/// A refit's test error for a CSV cell: 3 decimals, or empty without one.
fn csv_error(e: Option<f64>) -> String {
    e.map(|e| format!("{e:.3}")).unwrap_or_default()
}

/// The columns of `variants.csv` after a net's name: the chosen run's rate,
/// test and validation errors, the `published` error, its width and
/// minibatch size, and its refit's test error.
fn csv_tail(t: &Tuned, published: &str, refit: Option<f64>) -> String {
    format!(
        "{},{:.3},{:.3},{published},{},{},{}",
        t.lr,
        t.test,
        t.valid,
        t.width,
        t.batch,
        csv_error(refit)
    )
}

/// The chosen run as the log says it, up to its closing parenthesis: "test
/// error E% (validation V%, W units, batch B, lr L".
fn said(t: &Tuned) -> String {
    format!(
        "test error {:.2}% (validation {:.2}%, {} units, batch {}, lr {}",
        t.test, t.valid, t.width, t.batch, t.lr
    )
}

/// A refit's test error after the chosen run's in a results.md cell.
fn md_refit(e: Option<f64>, epochs: usize) -> String {
    e.map(|e| format!(" (refit {epochs} epochs: {e:.2}%)"))
        .unwrap_or_default()
}

/// `runs.csv`: every fine-tuning of every net with the settings it ran
/// with, chosen or not, written out after each net.
struct RunsLog {
    csv: String,
    blend: Blend,
    /// The networks' seed and the variants' seed.
    seeds: (u64, u64),
}

impl RunsLog {
    fn new(blend: Blend, seeds: (u64, u64)) -> Self {
        RunsLog {
            csv: "part,variant,depth,pretraining,noise,width,pretrain_lr,pretrain_epochs,finetune_batch,finetune_momentum,lr_decay,blend,finetune_lr,best_epoch,test_error,valid_error,chosen,seed,data_seed,pretrain_batch,pretrain_momentum,pretrain_lr_decay,finetune_weight_decay,finetune_dropout,finetune_average,pretrain_untied,finetune_max_norm\n".into(),
            blend,
            seeds,
        }
    }

    /// Builds the net `net` (its first five runs.csv columns) of `depth`
    /// layers on the sets `d` at each width, pretrained from `start` unless
    /// it is `None`, fine-tunes it at each of `l`'s sizes and rates, logs
    /// every run and returns the chosen one with, when `refit_on` is set,
    /// its refit's test error.
    fn net(
        &mut self,
        run: &RunDir,
        net: &str,
        (d, depth, start): (&[Dataset; 3], usize, Option<(Schedule, Corruption)>),
        widths: &[Width],
        l: &Loop,
        refit_on: bool,
    ) -> Result<(Tuned, Option<f64>)> {
        let runs = deep_nets(d, depth, widths, start, l)?;
        let best = self.add(run, net, start.is_some(), &runs, l)?;
        let refit_te = refit_on.then(|| refit(d, depth, start, l, &best)).transpose()?;
        Ok((best, refit_te))
    }

    /// Adds the `runs` of one net (`net`: its first five columns; the
    /// pretraining columns are empty for a net that was not pretrained),
    /// rewrites the file and returns the run the validation error chose.
    fn add(&mut self, run: &RunDir, net: &str, pretrained: bool, runs: &[Tuned], l: &Loop) -> Result<Tuned> {
        let best = chosen(runs);
        let (pre, pre_step, untied) = if pretrained {
            (
                format!("{},{}", l.pre_lr, l.pre_epochs),
                format!("{},{},{}", l.pre_batch, l.pre_momentum, l.pre_lr_decay),
                l.pre_untied.to_string(),
            )
        } else {
            (",".to_string(), ",,".to_string(), String::new())
        };
        let (blend, (seed, data_seed)) = (self.blend, self.seeds);
        for r in runs {
            writeln!(
                self.csv,
                "{net},{},{pre},{},{},{},{blend},{},{},{:.3},{:.3},{},{seed},{data_seed},{pre_step},{},{},{},{untied},{}",
                r.width,
                r.batch,
                l.ft_momentum,
                l.lr_decay,
                r.lr,
                r.best_epoch,
                r.test,
                r.valid,
                (&r.width, r.batch, r.lr) == (&best.width, best.batch, best.lr),
                l.ft_weight_decay,
                l.ft_dropout,
                l.ft_average,
                l.ft_max_norm
            )
            .expect("a string");
        }
        run.write("runs.csv", self.csv.as_bytes())?;
        Ok(best)
    }
}

/// A variant's training (first `n_train`), validation and test sets, the
/// digit and background combined by `blend`.
fn variant_sets(
    variant: Variant,
    blend: Blend,
    (train, test): (&Dataset, &Dataset),
    sizes: (usize, usize, usize),
    seed: u64,
) -> Result<[Dataset; 3]> {
    let (n_train, n_val, n_test) = sizes;
    let (_, all, te) = make_split(
        Recipe { variant, blend },
        train,
        test,
        n_train + n_val,
        n_test,
        seed,
    )?;
    let tr = all.select(&(0..n_train).collect::<Vec<_>>());
    let va = all.select(&(n_train..n_train + n_val).collect::<Vec<_>>());
    Ok([tr, va, te])
}

/// Runs the experiment; writes `variants.csv` (each net's chosen
/// fine-tuning), `runs.csv` (every fine-tuning and its settings),
/// `results.md`,
/// `examples-<variant>.png`, the DAE's `dae-<variant>-filters.png` and
/// `-reconstructions.png`, and `summary.json`.
pub fn variants(e: &Variants, out: &Out) -> Result<RunDir> {
    let source: DataSource = match &e.data {
        Some(s) => s.parse().map_err(|m: String| crate::Error::config("data", m))?,
        None if e.quick => DataSource::Builtin,
        None => DataSource::Mnist,
    };
    crate::tensor::init_threads(e.threads);
    let (train, test) = load_train_test(&source, e.data_dir.as_deref())?;
    let sizes = if e.quick {
        (2000, 400, 1000)
    } else {
        (10_000, 2000, 50_000)
    };
    let widths = e
        .width
        .clone()
        .unwrap_or_else(|| vec![Width::Every(if e.quick { 256 } else { 1000 })]);
    if widths.is_empty() {
        return Err(crate::Error::config("width", "give at least one width"));
    }
    for w in &widths {
        w.check()?;
    }
    let pre = e.pretrain_epochs.unwrap_or(if e.quick { 2 } else { 10 });
    let ft = e.finetune_epochs.unwrap_or(if e.quick { 8 } else { 60 });
    let depths: Vec<usize> = match &e.depths {
        Some(d) => d.clone(),
        None if e.quick => vec![1, 2],
        None => vec![1, 2, 3, 4],
    };
    if let Some(&bad) = depths.iter().find(|&&d| !(1..=4).contains(&d)) {
        return Err(crate::Error::config(
            "depths",
            format!("{bad}: the published table has depths 1 to 4"),
        ));
    }
    let l = Loop {
        pre_epochs: pre,
        pre_lr: e.pretrain_lr.unwrap_or(0.01),
        pre_batch: e.pretrain_batch.unwrap_or(20),
        pre_momentum: e.pretrain_momentum.unwrap_or(0.9),
        pre_lr_decay: e.pretrain_lr_decay.unwrap_or(1.0),
        pre_untied: e.pretrain_untied,
        ft_epochs: ft,
        ft_lr: e.finetune_lr.clone().unwrap_or_else(|| vec![0.05, 0.1, 0.2, 0.4]),
        ft_batch: e.finetune_batch.clone().unwrap_or_else(|| vec![20]),
        ft_momentum: e.finetune_momentum.unwrap_or(0.9),
        ft_weight_decay: e.finetune_weight_decay.unwrap_or(0.0),
        ft_dropout: e.finetune_dropout.unwrap_or(0.0),
        ft_average: e.finetune_average.unwrap_or(0.0),
        ft_max_norm: e.finetune_max_norm.unwrap_or(0.0),
        lr_decay: e.lr_decay.unwrap_or(1.0),
        threads: e.threads,
        seed: e.seed,
        cache: e.pretrained_cache.clone(),
    };
    if l.ft_lr.is_empty() {
        return Err(crate::Error::config(
            "finetune_lr",
            "give at least one learning rate",
        ));
    }
    if l.ft_batch.is_empty() {
        return Err(crate::Error::config(
            "finetune_batch",
            "give at least one minibatch size",
        ));
    }
    for (what, v) in
        std::iter::once(("pretrain_lr", l.pre_lr)).chain(l.ft_lr.iter().map(|&v| ("finetune_lr", v)))
    {
        if !(v > 0.0 && v.is_finite()) {
            return Err(crate::Error::config(
                what,
                format!("{v} is not a positive learning rate"),
            ));
        }
    }
    // Every width against every depth it will build, and every
    // pretraining's and fine-tuning's settings, before any work.
    let built_depths = (e.sda.then_some(3))
        .into_iter()
        .chain(depths.iter().copied().filter(|_| e.table));
    for depth in built_depths {
        for w in &widths {
            pretrain_config(&l, &w.layers(depth)?, Schedule::Stacked, Corruption::None).validate()?;
        }
    }
    let rbm_rows = e.table
        && e.pretrainings
            .as_ref()
            .is_none_or(|p| p.contains(&TablePretraining::Rbm));
    if l.pre_lr_decay != 1.0 && rbm_rows {
        return Err(crate::Error::config(
            "pretrain_lr_decay",
            "decays the autoencoders' pretraining; the RBMs keep their rate: leave rbm out of --pretrainings",
        ));
    }
    if l.pre_untied && rbm_rows {
        return Err(crate::Error::config(
            "pretrain_untied",
            "unties the autoencoders' decoders; an RBM has none: leave rbm out of --pretrainings",
        ));
    }
    for &batch in &l.ft_batch {
        for &lr in &l.ft_lr {
            finetune_config(&l, batch, lr).validate()?;
        }
    }
    if let Some(dir) = &l.cache {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("create the pretrained cache", dir, e))?;
    }
    let run = RunDir::claim(out, "variants")?;
    let mut csv = String::from(
        "part,variant,depth,pretraining,noise,finetune_lr,test_error,valid_error,published,width,finetune_batch,refit_test_error\n",
    );
    let mut runs_log = RunsLog::new(e.blend, (e.seed, e.data_seed));
    let units = match &widths[..] {
        [w] => format!("{w}"),
        _ => format!(
            "[{}] (each width pretrained and fine-tuned)",
            widths
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let batches = l
        .ft_batch
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    // Whether the run chooses among several widths, and among several
    // minibatch sizes.
    let several = (widths.len() > 1, l.ft_batch.len() > 1);
    let chosen_by = match several {
        (false, false) => "the one",
        (true, false) => "the width and rate",
        (false, true) => "the minibatch size and rate",
        (true, true) => "the width, minibatch size and rate",
    };
    // What a result names beside its error: the width and the minibatch
    // size when the run chose among several.
    let named = |w: &Width, b: usize| match several {
        (false, false) => String::new(),
        (true, false) => format!(" ({w} units)"),
        (false, true) => format!(" (batch {b})"),
        (true, true) => format!(" ({w} units, batch {b})"),
    };
    let mut md = format!(
        "# The MNIST variants\n\n{} training, {} validation and {} test images per set (generated by `aekit data variants`), hidden layers of {units} units, {pre} pretraining epochs per layer (SGD, batch {}, lr {}, momentum {}, lr factor {} per epoch{}), fine-tuning (SGD, batch {batches}, momentum {}, weight decay {}, dropout {}, weight averaging {}, max-norm {}, lr factor {} per epoch) for up to {ft} epochs with patience 10 on the validation error, at each learning rate of {:?} from the same pretrained weights, {chosen_by} with the lowest validation error reported.\n",
        sizes.0, sizes.1, sizes.2, l.pre_batch, l.pre_lr, l.pre_momentum, l.pre_lr_decay, if l.pre_untied { ", untied decoders" } else { "" }, l.ft_momentum, l.ft_weight_decay, l.ft_dropout, l.ft_average, l.ft_max_norm, l.lr_decay, l.ft_lr
    );
    if e.refit {
        writeln!(
            md,
            "\nEach chosen net is then refit: built again, pretrained and fine-tuned on the training and validation sets together ({} images) at its width, minibatch size and rate for its best epoch count, the last weights kept; its test error follows the chosen run's as \"(refit N epochs: E%)\".",
            sizes.0 + sizes.1
        )
        .expect("a string");
    }
    if e.sda {
        md.push_str("\n## SdA-3 (Vincent et al. 2010, Table 3)\n\n| variant | noise | units a layer | fine-tuning lr | test error | validation error | published |\n|---|---|---|---|---|---|---|\n");
    }
    let mut summary = serde_json::Map::new();
    let t0 = std::time::Instant::now();
    for (v, published, noise) in SDA3 {
        if !e.sda || e.sets.as_ref().is_some_and(|only| !only.contains(&v)) {
            continue;
        }
        let d = variant_sets(v, e.blend, (&train, &test), sizes, e.data_seed)?;
        let (h, w) = d[0].image.unwrap_or((28, 28));
        let tiles: Vec<Vec<f32>> = (0..10).map(|i| d[0].row(i).to_vec()).collect();
        viz::save_png(
            &run.file(&format!("examples-{v}.png")),
            &viz::tile_grid(&tiles, h, w, 10, viz::Scale::Unit, 3),
        )?;
        eprintln!("SdA-3 on {v} (masking noise {noise}):");
        let start = Some((Schedule::Stacked, Corruption::Mask(noise)));
        let net = format!("sda3,{v},3,dae,{noise}");
        let (best, refit_te) = runs_log.net(&run, &net, (&d, 3, start), &widths, &l, e.refit)?;
        writeln!(csv, "{net},{}", csv_tail(&best, &published.to_string(), refit_te)).expect("a string");
        eprintln!("SdA-3 on {v}: {}; published {published}%)", said(&best));
        let lr_cell = match &l.ft_batch[..] {
            [_] => best.lr.to_string(),
            _ => format!("{} (batch {})", best.lr, best.batch),
        };
        writeln!(
            md,
            "| {v} | mask {noise} | {} | {lr_cell} | {:.2}%{} | {:.2}% | {published}% |",
            best.width,
            best.test,
            md_refit(refit_te, best.best_epoch),
            best.valid
        )
        .expect("a string");
        summary.insert(format!("sda3_{v}_test_error"), json!(best.test));
        if let Some(r) = refit_te {
            summary.insert(format!("sda3_{v}_refit_test_error"), json!(r));
        }
        run.write("variants.csv", csv.as_bytes())?;
    }
    if e.table {
        md.push_str("\n## Depth 1 to 4 (Larochelle et al. 2009, the lecture's table)\n\n| set | depth | no pretraining | published | autoencoder | published | RBM |\n|---|---|---|---|---|---|---|\n");
        for (v, none_pub, ae_pub) in TABLE {
            if e.sets.as_ref().is_some_and(|only| !only.contains(&v)) {
                continue;
            }
            let d = variant_sets(v, e.blend, (&train, &test), sizes, e.data_seed)?;
            for &depth in &depths {
                let mut row = Vec::new();
                for p in TablePretraining::ALL {
                    if e.pretrainings.as_ref().is_some_and(|only| !only.contains(&p)) {
                        row.push(None);
                        continue;
                    }
                    let name = p.name();
                    eprintln!("{v}, depth {depth}, {name} pretraining:");
                    let net = format!("table,{v},{depth},{name},0");
                    let (best, refit_te) =
                        runs_log.net(&run, &net, (&d, depth, p.start()), &widths, &l, e.refit)?;
                    let published = match p {
                        TablePretraining::None => Some(none_pub[depth - 1]),
                        TablePretraining::Autoencoder => Some(ae_pub[depth - 1]),
                        TablePretraining::Rbm => None,
                    };
                    let published = published.map(|p| p.to_string()).unwrap_or_default();
                    writeln!(csv, "{net},{}", csv_tail(&best, &published, refit_te)).expect("a string");
                    eprintln!("{v}, depth {depth}, {name}: {})", said(&best));
                    run.write("variants.csv", csv.as_bytes())?;
                    summary.insert(format!("table_{v}_{depth}_{name}_test_error"), json!(best.test));
                    if let Some(r) = refit_te {
                        summary.insert(format!("table_{v}_{depth}_{name}_refit_test_error"), json!(r));
                    }
                    row.push(Some(format!(
                        "{:.2}%{}{}",
                        best.test,
                        named(&best.width, best.batch),
                        md_refit(refit_te, best.best_epoch)
                    )));
                }
                // With several widths or minibatch sizes, each cell names
                // those its validation error chose.
                let cell = |t: &Option<String>| t.clone().unwrap_or_else(|| "—".to_string());
                writeln!(
                    md,
                    "| {v} | {depth} | {} | {}% | {} | {}% | {} |",
                    cell(&row[0]),
                    none_pub[depth - 1],
                    cell(&row[1]),
                    ae_pub[depth - 1],
                    cell(&row[2])
                )
                .expect("a string");
            }
        }
    }
    // The paper's plan: its tied 784→500 DAE on two variants.
    let dae_sets: &[Variant] = if e.dae {
        &[Variant::BgRand, Variant::BgImgRot]
    } else {
        &[]
    };
    if e.dae {
        md.push_str("\n## The tied 784→500 DAE (the parallel-SGD paper's model)\n\n| variant | test squared error | test cross-entropy |\n|---|---|---|\n");
    }
    for &v in dae_sets {
        let d = variant_sets(v, e.blend, (&train, &test), sizes, e.data_seed)?;
        let tc = TrainConfig {
            epochs: if e.quick { 2 } else { 15 },
            patience: 0,
            seed: e.seed,
            threads: e.threads,
            ..TrainConfig::default()
        };
        let mut dae = DenoisingAutoencoder::new(
            DaeConfig {
                n_vis: d[0].dim,
                n_hid: if e.quick { 100 } else { 500 },
                ..DaeConfig::default()
            },
            tc,
        );
        dae.fit(d[0].view(), Some(d[1].view()), &mut Silent)?;
        let m = dae.evaluate(d[2].view())?;
        viz::save_png(
            &run.file(&format!("dae-{v}-filters.png")),
            &viz::filters_picture(&dae, d[0].image),
        )?;
        viz::save_png(
            &run.file(&format!("dae-{v}-reconstructions.png")),
            &viz::reconstructions_picture(&dae, d[2].view(), 10, e.seed, d[2].image)?,
        )?;
        writeln!(md, "| {v} | {:.3} | {:.3} |", m.squared_error, m.cross_entropy).expect("a string");
        summary.insert(format!("dae_{v}_test_squared_error"), json!(m.squared_error));
    }
    let blend = match e.blend {
        Blend::Max => "combined with the digit by the maximum",
        Blend::Replace => "filling the pixels the digit leaves at zero",
    };
    md.push_str(&format!("\nThe variants are generated, not the original files: the digits are drawn from MNIST as Larochelle et al. drew them, but the rotation angles, the random and image backgrounds (other images than theirs, {blend}) and so the exact pixels differ, so errors compare with the published ones only roughly.\n"));
    run.write("results.md", md.as_bytes())?;
    summary.insert("seconds".into(), json!(t0.elapsed().as_secs_f64()));
    summary.insert(
        "widths".into(),
        json!(widths.iter().map(|w| w.to_string()).collect::<Vec<_>>()),
    );
    summary.insert("finetune_batches".into(), json!(l.ft_batch));
    summary.insert("finetune_weight_decay".into(), json!(l.ft_weight_decay));
    summary.insert("finetune_dropout".into(), json!(l.ft_dropout));
    summary.insert("finetune_average".into(), json!(l.ft_average));
    summary.insert("finetune_max_norm".into(), json!(l.ft_max_norm));
    summary.insert("pretrain_untied".into(), json!(l.pre_untied));
    summary.insert("seed".into(), json!(e.seed));
    summary.insert("data_seed".into(), json!(e.data_seed));
    summary.insert("sizes".into(), json!([sizes.0, sizes.1, sizes.2]));
    run.write_summary(&serde_json::Value::Object(summary))?;
    eprint!("{md}");
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}
