//! Stochastic gradient descent with classical momentum:
//! v ← μ·v − η·g;  θ ← θ + v  (with μ = 0 this is θ ← θ − η·g).
//! Weight decay is part of the objective (see the model), so g already holds
//! λ·W for weights and nothing for biases.

use crate::tensor::simd;

/// SGD state: the velocity mirrors the parameter vector.
#[derive(Debug, Clone, Default)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    velocity: Vec<f32>,
}

impl Sgd {
    pub fn new(lr: f32, momentum: f32) -> Sgd {
        Sgd {
            lr,
            momentum,
            velocity: Vec::new(),
        }
    }

    /// One update of `params` along `grad`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        assert_eq!(params.len(), grad.len());
        let lr = self.lr;
        if self.momentum == 0.0 {
            crate::tensor::par::chunks(params, |at, p| {
                simd::sgd_plain(p, &grad[at..at + p.len()], lr);
            });
            return;
        }
        if self.velocity.len() != params.len() {
            self.velocity = vec![0.0; params.len()];
        }
        let mu = self.momentum;
        crate::tensor::par::chunks2(params, &mut self.velocity, |at, p, v| {
            simd::sgd_momentum(p, v, &grad[at..at + p.len()], mu, lr);
        });
    }

    /// The velocity, μ and η, for a caller that sets v ← μ·v − η·g itself
    /// and then θ ← θ + v; `None` without momentum.
    pub fn velocity_for(&mut self, len: usize) -> Option<(&mut [f32], f32, f32)> {
        if self.momentum == 0.0 {
            return None;
        }
        if self.velocity.len() != len {
            self.velocity = vec![0.0; len];
        }
        Some((&mut self.velocity, self.momentum, self.lr))
    }

    /// The velocity (empty before the first step with momentum).
    pub fn velocity(&self) -> &[f32] {
        &self.velocity
    }

    /// Restores a velocity saved with [`Sgd::velocity`].
    pub fn set_velocity(&mut self, v: &[f32]) {
        self.velocity = v.to_vec();
    }

    /// Forgets the velocity (a new `fit`).
    pub fn reset(&mut self) {
        self.velocity.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn momentum_steps_by_hand() {
        // g = 1 each step, η = 0.1, μ = 0.5: v = −0.1, −0.15, −0.175; θ = 1 − 0.1 − 0.15 − 0.175.
        let mut s = Sgd::new(0.1, 0.5);
        let mut p = [1.0f32];
        for _ in 0..3 {
            s.step(&mut p, &[1.0]);
        }
        assert!((p[0] - 0.575).abs() < 1e-6, "{}", p[0]);
        let mut plain = Sgd::new(0.1, 0.0);
        let mut q = [1.0f32];
        plain.step(&mut q, &[2.0]);
        assert!((q[0] - 0.8).abs() < 1e-7);
    }

    #[test]
    fn sgd_minimises_a_quadratic() {
        // f(θ) = ½·Σ a_i (θ_i − c_i)²; minimum at c.
        let a = [1.0f32, 4.0, 0.5];
        let c = [1.0f32, -2.0, 3.0];
        let mut p = [0.0f32; 3];
        let mut s = Sgd::new(0.1, 0.9);
        for _ in 0..500 {
            let g: Vec<f32> = (0..3).map(|i| a[i] * (p[i] - c[i])).collect();
            s.step(&mut p, &g);
        }
        for i in 0..3 {
            assert!((p[i] - c[i]).abs() < 1e-4, "{p:?}");
        }
    }
}
