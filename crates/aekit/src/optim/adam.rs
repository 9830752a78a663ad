//! Adam (Kingma & Ba 2015) on one flat parameter slice, in PyTorch's form:
//!
//!   m ← β₁·m + (1−β₁)·g,  v ← β₂·v + (1−β₂)·g²,
//!   θ ← θ − η · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε).
//!
//! Weight decay, when a model wants it, is part of its gradient (as with SGD).

use serde::{Deserialize, Serialize};

/// Adam's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    /// Step size η.
    pub lr: f32,
    /// Decay of the first moment, β₁.
    pub beta1: f32,
    /// Decay of the second moment, β₂.
    pub beta2: f32,
    /// ε added to √v̂.
    pub eps: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl AdamConfig {
    /// Checks the ranges: η > 0, β in [0, 1), ε > 0.
    pub fn validate(&self, field: &str) -> crate::Result<()> {
        let bad =
            |what: &str, why: &str| Err(crate::Error::config(&format!("{field}.{what}"), why.to_string()));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("lr", "must be a positive number");
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return bad(name, "must be in [0, 1)");
            }
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return bad("eps", "must be positive");
        }
        Ok(())
    }
}

/// Adam's state: both moments mirror the parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    pub config: AdamConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    t: u32,
}

impl Adam {
    pub fn new(config: AdamConfig) -> Adam {
        Adam {
            config,
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u32 {
        self.t
    }

    /// The moments and step count, to save: (m, v, t).
    pub fn moments(&self) -> (&[f32], &[f32], u32) {
        (&self.m, &self.v, self.t)
    }

    /// Restores what [`Adam::moments`] gave.
    pub fn set_moments(&mut self, m: &[f32], v: &[f32], t: u32) {
        self.m = m.to_vec();
        self.v = v.to_vec();
        self.t = t;
    }

    /// One update of `params` along `grad`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        assert_eq!(params.len(), grad.len());
        if self.m.len() != params.len() {
            self.m = vec![0.0; params.len()];
            self.v = vec![0.0; params.len()];
            self.t = 0;
        }
        self.t += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        let c1 = 1.0 - (beta1 as f64).powi(self.t as i32);
        let c2 = 1.0 - (beta2 as f64).powi(self.t as i32);
        // θ −= (η/c1) · m / (√v/√c2 + ε)
        let step = (lr as f64 / c1) as f32;
        let inv_sqrt_c2 = (1.0 / c2.sqrt()) as f32;
        crate::tensor::par::chunks3(params, &mut self.m, &mut self.v, |at, p, m, v| {
            let g = &grad[at..at + p.len()];
            crate::tensor::simd::adam(p, m, v, g, beta1, beta2, step, inv_sqrt_c2, eps);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_steps() {
        // η = 0.1, β₁ = 0.5, β₂ = 0.75, ε = 0 (so the arithmetic is exact
        // enough by hand), θ₀ = 1, gradients 2 then −1.
        // t=1: m = 1, v = 1, m̂ = 1/0.5 = 2, v̂ = 1/0.25 = 4, θ = 1 − 0.1·2/2 = 0.9.
        // t=2: m = 0.5·1 + 0.5·(−1) = 0, so θ stays 0.9; v = 0.75 + 0.25 = 1.
        // t=3 with g = 3: m = 1.5, v = 0.75 + 2.25 = 3,
        //   m̂ = 1.5/0.875 = 1.714285…, v̂ = 3/(1 − 0.421875) = 5.189189…,
        //   θ = 0.9 − 0.1·1.714285/2.277979 = 0.824745…
        let mut adam = Adam::new(AdamConfig {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.75,
            eps: 0.0,
        });
        let mut p = [1.0f32];
        adam.step(&mut p, &[2.0]);
        assert!((p[0] - 0.9).abs() < 1e-6, "{}", p[0]);
        adam.step(&mut p, &[-1.0]);
        assert!((p[0] - 0.9).abs() < 1e-6, "{}", p[0]);
        adam.step(&mut p, &[3.0]);
        let want = 0.9 - 0.1 * (1.5 / 0.875) / (3.0f64 / (1.0 - 0.75f64.powi(3))).sqrt();
        assert!((p[0] as f64 - want).abs() < 1e-6, "{} vs {want}", p[0]);
        assert!((want - 0.824745).abs() < 1e-6);
        assert_eq!(adam.steps(), 3);
    }

    #[test]
    fn default_first_step_moves_each_weight_by_lr() {
        // With bias correction the first step is η·g/(|g| + ε) ≈ η·sign(g).
        let mut adam = Adam::new(AdamConfig::default());
        let mut p = [0.0f32, 0.0, 5.0];
        adam.step(&mut p, &[1e-3, -40.0, 0.0]);
        let want0 = -1e-3 * 1e-3 / (1e-3 + 1e-8);
        assert!((p[0] as f64 - want0).abs() < 1e-10, "{p:?}");
        assert!((p[1] - 1e-3).abs() < 1e-10 && p[2] == 5.0, "{p:?}");
    }

    #[test]
    fn validate_names_the_field() {
        let bad = AdamConfig {
            beta2: 1.0,
            ..AdamConfig::default()
        };
        assert!(bad
            .validate("adam")
            .unwrap_err()
            .to_string()
            .contains("adam.beta2"));
    }
}
