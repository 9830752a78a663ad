//! The configuration of a `train` run: TOML sections `[data]`, `[model]`,
//! `[sparse]`, `[train]` and `[lbfgs]`, each with documented defaults. A file
//! is read, command-line flags override it, then one `validate()` checks
//! everything. The resolved config is saved in the run directory and in the
//! model file.

use crate::data::DataConfig;
use crate::error::{Error, Result};
use crate::models::dae::DaeConfig;
use crate::models::sparse_ae::SparseConfig;
use crate::optim::lbfgs::LbfgsConfig;
use crate::train::{Optimizer, TrainConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which model a `train` run builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Denoising autoencoder (`[model]`).
    #[default]
    Dae,
    /// Sparse autoencoder (`[sparse]`), trained with L-BFGS.
    Sparse,
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "dae" => Ok(ModelKind::Dae),
            "sparse" => Ok(ModelKind::Sparse),
            _ => Err(format!("unknown model kind `{s}` (expected dae or sparse)")),
        }
    }
}

/// Everything a `train` run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// `dae` or `sparse`.
    pub kind: ModelKind,
    pub data: DataConfig,
    /// The denoising autoencoder (kind = "dae").
    pub model: DaeConfig,
    /// The sparse autoencoder (kind = "sparse").
    pub sparse: SparseConfig,
    pub train: TrainConfig,
    /// L-BFGS settings (optimizer = "lbfgs").
    pub lbfgs: LbfgsConfig,
    /// Genetic algorithm settings (optimizer = "ga").
    pub ga: crate::train::evolve::GaConfig,
    /// Evolution strategy settings (optimizer = "es").
    pub es: crate::train::evolve::EsConfig,
}

impl RunConfig {
    /// Parses TOML; unknown keys are errors that name the file.
    pub fn from_toml(text: &str, path: &Path) -> Result<RunConfig> {
        toml::from_str(text)
            .map_err(|e| Error::format(path, format!("invalid config: {}", e.to_string().trim())))
    }

    pub fn read(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read config", path, e))?;
        RunConfig::from_toml(&text, path)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("RunConfig always serialises")
    }

    /// The one check of the whole configuration.
    pub fn validate(&self) -> Result<()> {
        self.data.source()?;
        match self.kind {
            ModelKind::Dae => self.model.validate()?,
            ModelKind::Sparse => {
                self.sparse.validate()?;
                if self.train.optimizer != Optimizer::Lbfgs {
                    return Err(Error::config(
                        "train.optimizer",
                        "the sparse autoencoder trains with lbfgs",
                    ));
                }
            }
        }
        match self.train.optimizer {
            Optimizer::Ga => self.ga.validate()?,
            Optimizer::Es => self.es.validate()?,
            _ => {}
        }
        if self.lbfgs.memory == 0 || self.lbfgs.max_iter == 0 {
            return Err(Error::config("lbfgs", "memory and max_iter must be at least 1"));
        }
        self.train.validate()
    }
}

/// A verb's configuration in the common sections: read from a file over the
/// verb's defaults, and written back in the same form.
pub trait Sections: Serialize + DeserializeOwned + Default {
    /// The file's settings over the defaults; flags may then override them.
    fn read(path: &Path) -> Result<Self> {
        read_sections(path)
    }

    /// The resolved configuration, as `config.toml` holds it; an error
    /// names a setting TOML cannot hold.
    fn to_toml(&self) -> Result<String> {
        sections_to_toml(self)
    }
}

/// Reads a training verb's configuration file. Every verb's file has the
/// same sections: `[data]`, `[model]` (the model's settings) and `[train]`
/// (its loop, which the model's settings embed as `train`), plus top-level
/// keys and sections of the verb's own, which `T` declares. Unknown keys and
/// sections are errors naming the file.
pub fn read_sections<T: DeserializeOwned + Serialize + Default>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read config", path, e))?;
    sections_from_toml(&text, path)
}

/// [`read_sections`] from text. A key the file leaves out keeps the value of
/// `T::default()` (so a partial `[train]` keeps the model's own loop
/// defaults: Adam for a CAE, lr 0.01 for pretraining, …).
pub fn sections_from_toml<T: DeserializeOwned + Serialize + Default>(text: &str, path: &Path) -> Result<T> {
    let bad =
        |e: &dyn std::fmt::Display| Error::format(path, format!("invalid config: {}", e.to_string().trim()));
    let mut table: toml::Table = toml::from_str(text).map_err(|e| bad(&e))?;
    if let Some(train) = table.remove("train") {
        let model = table
            .entry("model")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match model {
            toml::Value::Table(m) if !m.contains_key("train") => {
                m.insert("train".into(), train);
            }
            _ => return Err(bad(&"give the loop once, as the [train] section")),
        }
    }
    let mut merged = toml::Value::try_from(T::default()).expect("configs always serialise");
    merge(&mut merged, toml::Value::Table(table));
    T::deserialize(merged).map_err(|e| bad(&e))
}

/// Lays `over` onto `base`, table by table; any other value replaces.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Refuses a setting that TOML cannot hold, an integer above 2^63 − 1
/// (flags take up to 2^64 − 1), naming it: `config.toml` could not record
/// the run.
pub fn check_toml_integers<T: Serialize>(config: &T) -> Result<()> {
    fn walk(v: &serde_json::Value, path: &mut Vec<String>) -> Option<(String, u64)> {
        match v {
            serde_json::Value::Number(n) => n
                .as_u64()
                .filter(|&u| u > i64::MAX as u64)
                .map(|u| (path.join("."), u)),
            serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
                path.push(k.clone());
                let found = walk(v, path);
                path.pop();
                found
            }),
            serde_json::Value::Array(a) => a.iter().find_map(|v| walk(v, path)),
            _ => None,
        }
    }
    let v = serde_json::to_value(config).map_err(|e| Error::config("config", e.to_string()))?;
    match walk(&v, &mut Vec::new()) {
        // `model.train` is written as the `[train]` section.
        Some((field, u)) => Err(Error::config(
            field
                .strip_prefix("model.")
                .filter(|f| f.starts_with("train."))
                .unwrap_or(&field),
            format!("{u} is too large: give at most {}", i64::MAX),
        )),
        None => Ok(()),
    }
}

/// Writes `config` in the sections [`read_sections`] reads: `model.train`
/// becomes `[train]`. An error names a setting TOML cannot hold.
pub fn sections_to_toml<T: Serialize>(config: &T) -> Result<String> {
    check_toml_integers(config)?;
    let mut v = toml::Value::try_from(config).expect("configs always serialise");
    if let Some(t) = v.as_table_mut() {
        let train = t
            .get_mut("model")
            .and_then(|m| m.as_table_mut())
            .and_then(|m| m.remove("train"));
        if let Some(train) = train {
            t.insert("train".into(), train);
        }
    }
    shortest_floats(&mut v);
    Ok(toml::to_string_pretty(&v).expect("configs always serialise"))
}

/// Writes f32 settings as they were given (0.0002, not the f64 widening
/// 0.00019999999494757503): a float that an f32 holds exactly takes the
/// shortest decimal that reads back as that f32.
fn shortest_floats(v: &mut toml::Value) {
    match v {
        toml::Value::Float(f) if (*f as f32) as f64 == *f => {
            *f = format!("{}", *f as f32).parse().unwrap_or(*f);
        }
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| shortest_floats(v)),
        toml::Value::Array(a) => a.iter_mut().for_each(shortest_floats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let c = RunConfig::default();
        let back = RunConfig::from_toml(&c.to_toml(), Path::new("c.toml")).unwrap();
        assert_eq!(c, back);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_and_key() {
        let e = RunConfig::from_toml("[train]\nlearning_rate = 0.1\n", Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("my.toml") && e.contains("learning_rate"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c = RunConfig::default();
        c.train.lr = -0.1;
        assert!(c.validate().unwrap_err().to_string().contains("train.lr"));
        let mut c = RunConfig::default();
        c.model.n_hid = 0;
        assert!(c.validate().unwrap_err().to_string().contains("n_hid"));
        let mut c = RunConfig::default();
        c.train.momentum = 1.0;
        assert!(c.validate().is_err());
        let e = RunConfig::from_toml("[model]\nnoise = \"mask:2\"\n", Path::new("n.toml")).unwrap_err();
        assert!(e.to_string().contains("not in [0, 1]"), "{e}");
    }

    #[test]
    fn verb_configs_round_trip_in_common_sections_with_f32s_as_given() {
        use crate::run::cae::CaeRun;
        use crate::run::stacked::PretrainRun;
        let mut c = CaeRun::default();
        let text = c.to_toml().unwrap();
        for want in [
            "arch = \"cae-mnist\"",
            "[model]",
            "[train]",
            "lr = 0.001",
            "[classifier.train]",
        ] {
            assert!(text.contains(want), "{want} not in\n{text}");
        }
        assert_eq!(
            CaeRun::default(),
            sections_from_toml::<CaeRun>(&text, Path::new("c.toml")).unwrap()
        );
        // A partial [train] keeps the model's own defaults for the rest.
        let p: PretrainRun = sections_from_toml("[train]\nbatch = 7\n", Path::new("p.toml")).unwrap();
        assert_eq!((p.model.train.batch, p.model.train.lr), (7, 0.01));
        let c2: CaeRun = sections_from_toml("[train]\nepochs = 2\n", Path::new("c.toml")).unwrap();
        assert_eq!(c2.model.train.optimizer, Optimizer::Adam);
        // A count past what TOML holds is refused by name, not a panic.
        c.model.train.patience = u64::MAX as usize;
        let e = c.to_toml().unwrap_err().to_string();
        assert!(
            e.contains("`train.patience`") && e.contains("at most 9223372036854775807"),
            "{e}"
        );
    }
}
