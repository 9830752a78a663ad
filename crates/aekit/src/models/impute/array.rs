//! Arrays with NaN for missing cells, every column continuous: the face the
//! Python bindings and the [`Estimator`](crate::models::Estimator) surface
//! use.

use super::schema::{self, Encoded, Kind, Schema};
use super::Imputer;
use crate::error::{Error, Result};
use crate::tensor::rng::seeded;
use crate::train::{Checkpointing, FitReport, Observer};

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
    pub(super) fn encode_array(&self, x: &ndarray::ArrayView2<f32>) -> Result<Encoded> {
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
