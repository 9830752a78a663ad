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
    /// `Some(μ)` when the velocity is held already multiplied by μ for the
    /// next step (after a step through [`Sgd::velocity_for`]).
    premultiplied: Option<f32>,
}

impl Sgd {
    pub fn new(lr: f32, momentum: f32) -> Sgd {
        Sgd {
            lr,
            momentum,
            velocity: Vec::new(),
            premultiplied: None,
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
        // A velocity held as μ·v needs no multiplying (1·v is v exactly).
        let mu = match self.premultiplied.take() {
            Some(m) if m == self.momentum => 1.0,
            Some(m) => self.momentum / m,
            None => self.momentum,
        };
        crate::tensor::par::chunks2(params, &mut self.velocity, |at, p, v| {
            simd::sgd_momentum(p, v, &grad[at..at + p.len()], mu, lr);
        });
    }

    /// For a caller that takes the step itself: the velocity buffer, the β
    /// it must multiply the buffer by before adding −η·g into it (μ, or 1
    /// when the buffer already holds μ·v), μ and η. The caller then sets
    /// θ ← θ + v and v ← μ·v in one pass ([`simd::add_then_scale`]), so the
    /// buffer holds μ·v for the next step, as this records. `None` without
    /// momentum.
    pub fn velocity_for(&mut self, len: usize) -> Option<(&mut [f32], f32, f32, f32)> {
        if self.momentum == 0.0 {
            return None;
        }
        if self.velocity.len() != len {
            self.velocity = vec![0.0; len];
            self.premultiplied = None;
        }
        let mu = self.momentum;
        let beta = match self.premultiplied.replace(mu) {
            Some(m) if m == mu => 1.0,
            Some(m) => mu / m,
            None => mu,
        };
        Some((&mut self.velocity, beta, mu, self.lr))
    }

    /// The velocity as held (empty before the first step with momentum);
    /// multiplied by [`Sgd::premultiplied`] when that is `Some`.
    pub fn velocity(&self) -> &[f32] {
        &self.velocity
    }

    /// `Some(μ)` when [`Sgd::velocity`] holds μ·v.
    pub fn premultiplied(&self) -> Option<f32> {
        self.premultiplied
    }

    /// The velocity v itself (divided by μ when held premultiplied: not
    /// bit-exact, for handing the state to another optimizer).
    pub fn plain_velocity(&self) -> std::borrow::Cow<'_, [f32]> {
        match self.premultiplied {
            Some(m) if m != 0.0 => self.velocity.iter().map(|v| v / m).collect(),
            _ => std::borrow::Cow::Borrowed(&self.velocity),
        }
    }

    /// Restores a velocity saved with [`Sgd::velocity`] and
    /// [`Sgd::premultiplied`].
    pub fn set_velocity(&mut self, v: &[f32]) {
        self.velocity = v.to_vec();
        self.premultiplied = None;
    }

    /// Marks the velocity as held premultiplied by μ (when restoring).
    pub fn set_premultiplied(&mut self, mu: Option<f32>) {
        self.premultiplied = mu;
    }

    /// Forgets the velocity (a new `fit`).
    pub fn reset(&mut self) {
        self.velocity.clear();
        self.premultiplied = None;
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
    fn steps_taken_by_a_caller_through_the_premultiplied_velocity_are_the_same_steps() {
        // Four steps from the same gradients: all by `step`, against two
        // taken as the minibatch loop takes them (buffer ← β·buffer − η·g,
        // θ ← θ + buffer, buffer ← μ·buffer), then two by `step`.
        let grads: Vec<Vec<f32>> = (0..4)
            .map(|t| (0..5).map(|i| ((i * 7 + t * 3) % 11) as f32 - 5.0).collect())
            .collect();
        let (lr, mu) = (0.03f32, 0.9f32);
        let mut plain = Sgd::new(lr, mu);
        let mut p_plain = vec![0.5f32; 5];
        for g in &grads {
            plain.step(&mut p_plain, g);
        }
        let mut fused = Sgd::new(lr, mu);
        let mut p = vec![0.5f32; 5];
        for g in &grads[..2] {
            let (v, beta, m, eta) = fused.velocity_for(5).expect("momentum");
            for (v, &g) in v.iter_mut().zip(g) {
                *v = beta * *v + -eta * g;
            }
            simd::add_then_scale(&mut p, v, m);
        }
        assert_eq!(fused.premultiplied(), Some(mu));
        let held: Vec<f32> = fused.plain_velocity().to_vec();
        for g in &grads[2..] {
            fused.step(&mut p, g);
        }
        assert_eq!(p, p_plain);
        assert_eq!(fused.velocity(), plain.velocity());
        assert_eq!(fused.premultiplied(), None);
        assert!(held.iter().all(|v| v.is_finite()));
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
