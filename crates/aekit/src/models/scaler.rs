//! Per-feature standardisation for real-valued data: x ↦ (x − μ) / s with
//! each feature's mean μ and standard deviation s over the training rows,
//! kept in the model file (`input.mean`, `input.scale`) so that a model
//! takes and gives data in its own units. A feature that does not vary
//! keeps s = 1.

use crate::error::{Error, Result};
use crate::io::safetensors::{Loaded, NamedTensor};
use std::borrow::Cow;

/// A feature whose standard deviation is at most this (times 1 + |μ|) is
/// taken as constant: it is centred but not scaled.
const CONSTANT: f64 = 1e-6;

/// The mean and scale of each feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Scaler {
    /// The means and standard deviations (over `n` rows, divided by n) of
    /// the `dim` columns of row-major `x`, summed in f64.
    pub fn fit(x: &[f32], dim: usize) -> Scaler {
        let n = x.len() / dim.max(1);
        let mut sum = vec![0.0f64; dim];
        for row in x.chunks_exact(dim) {
            sum.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n.max(1) as f64).collect();
        let mut sq = vec![0.0f64; dim];
        for row in x.chunks_exact(dim) {
            for ((q, &v), m) in sq.iter_mut().zip(row).zip(&mean) {
                *q += (v as f64 - m).powi(2);
            }
        }
        let scale = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| {
                let s = (q / n.max(1) as f64).sqrt();
                if s <= CONSTANT * (1.0 + m.abs()) {
                    1.0
                } else {
                    s as f32
                }
            })
            .collect();
        Scaler {
            mean: mean.iter().map(|&m| m as f32).collect(),
            scale,
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `x` standardised (rows of `dim()` values).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut out = x.to_vec();
        for row in out.chunks_exact_mut(self.dim()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
        out
    }

    /// Takes standardised rows back to the data's units, in place.
    pub fn undo(&self, x: &mut [f32]) {
        for row in x.chunks_exact_mut(self.dim()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = *v * s + m;
            }
        }
    }

    /// The tensors a model file keeps it in.
    pub fn tensors(&self) -> [NamedTensor<'_>; 2] {
        [
            NamedTensor {
                name: "input.mean",
                shape: vec![self.dim()],
                data: &self.mean,
            },
            NamedTensor {
                name: "input.scale",
                shape: vec![self.dim()],
                data: &self.scale,
            },
        ]
    }

    /// Reads the scaler of a model of `dim` inputs from `f` when `wanted`
    /// (its configuration says it was trained on standardised data); such
    /// a file without it is refused, since the model would be applied to
    /// data in the wrong units.
    pub fn from_file(
        f: &mut Loaded,
        dim: usize,
        wanted: bool,
        path: &std::path::Path,
    ) -> Result<Option<Scaler>> {
        if !wanted {
            return Ok(None);
        }
        if !f.has("input.mean") || !f.has("input.scale") {
            return Err(Error::format(
                path,
                "was trained on standardised data (standardize = true) but holds no `input.mean` and \
                 `input.scale`: without them its inputs and outputs would be in the wrong units",
            ));
        }
        let mean = f.take("input.mean", &[dim])?;
        let scale = f.take("input.scale", &[dim])?;
        if let Some(i) = scale.iter().position(|&s| s <= 0.0) {
            return Err(Error::format(
                path,
                format!(
                    "`input.scale` is {} at feature {i}; scales must be positive",
                    scale[i]
                ),
            ));
        }
        Ok(Some(Scaler { mean, scale }))
    }
}

/// `x` standardised by `s`, or `x` itself without one.
pub fn standardised<'a>(s: Option<&Scaler>, x: &'a [f32]) -> Cow<'a, [f32]> {
    match s {
        Some(s) => Cow::Owned(s.apply(x)),
        None => Cow::Borrowed(x),
    }
}

/// The rows of `x` as a model takes them: row-major, and standardised by
/// `s` when there is one.
pub fn rows<'a>(s: Option<&Scaler>, x: &'a ndarray::ArrayView2<'_, f32>) -> Cow<'a, [f32]> {
    match (s, x.as_slice()) {
        (None, Some(v)) => Cow::Borrowed(v),
        (None, None) => Cow::Owned(x.as_standard_layout().iter().copied().collect()),
        (Some(s), _) => Cow::Owned(s.apply(x.as_standard_layout().as_slice().expect("standard layout"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_get_mean_zero_and_unit_variance_and_come_back() {
        // Column 0: 1, 3, 5 (mean 3, sd √(8/3)); column 1 constant 7.
        let x = [1.0f32, 7.0, 3.0, 7.0, 5.0, 7.0];
        let s = Scaler::fit(&x, 2);
        assert_eq!(s.mean, [3.0, 7.0]);
        assert!((s.scale[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(s.scale[1], 1.0, "a constant feature is not scaled");
        let z = s.apply(&x);
        let col0: Vec<f32> = z.iter().step_by(2).copied().collect();
        assert!(col0.iter().sum::<f32>().abs() < 1e-6);
        assert!((col0.iter().map(|v| v * v).sum::<f32>() / 3.0 - 1.0).abs() < 1e-6);
        assert_eq!(z[1], 0.0);
        let mut back = z.clone();
        s.undo(&mut back);
        for (a, b) in back.iter().zip(&x) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
