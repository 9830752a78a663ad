//! Element-wise activations, applied in place.
//!
//! Forward: sigmoid y = 1/(1+e^{−a}); ReLU y = max(a, 0); tanh y = tanh a;
//! identity y = a.
//! Backward, written from the output y (so no pre-activation is kept):
//! sigmoid dy/da = y(1−y); ReLU 1 if y > 0 else 0; tanh 1 − y²; identity 1.

use crate::tensor::Real;
use serde::{Deserialize, Serialize};

/// A unit's non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Sigmoid,
    Relu,
    Tanh,
    Identity,
    /// x for x > 0, eˣ − 1 below.
    Elu,
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sigmoid" => Ok(Activation::Sigmoid),
            "relu" => Ok(Activation::Relu),
            "tanh" => Ok(Activation::Tanh),
            "identity" | "linear" => Ok(Activation::Identity),
            "elu" => Ok(Activation::Elu),
            _ => Err(format!(
                "unknown activation `{s}` (expected sigmoid, relu, tanh, elu or identity)"
            )),
        }
    }
}

/// The logistic function, stable at both ends (see [`Real::sigmoid_`]).
#[inline(always)]
pub fn sigmoid<T: Real>(a: T) -> T {
    a.sigmoid_()
}

impl Activation {
    /// y = f(a), in place.
    pub fn forward<T: Real>(self, y: &mut [T]) {
        if self != Activation::Identity {
            crate::tensor::par::chunks(y, |_, c| self.forward_seq(c));
        }
    }

    /// [`Activation::forward`] on this thread.
    pub(crate) fn forward_seq<T: Real>(self, y: &mut [T]) {
        match self {
            Activation::Sigmoid => T::sigmoid_slice(y),
            Activation::Relu => y.iter_mut().for_each(|v| *v = v.max_(T::ZERO)),
            Activation::Tanh => y.iter_mut().for_each(|v| *v = v.tanh_fast()),
            Activation::Identity => {}
            Activation::Elu => y.iter_mut().for_each(|v| {
                if *v <= T::ZERO {
                    *v = v.exp_() - T::ONE
                }
            }),
        }
    }

    /// Turns dL/dy into dL/da in place, given the forward output y.
    pub fn backward<T: Real>(self, d: &mut [T], y: &[T]) {
        assert_eq!(d.len(), y.len());
        if self != Activation::Identity {
            crate::tensor::par::chunks(d, |off, c| self.backward_seq(c, &y[off..off + c.len()]));
        }
    }

    /// [`Activation::backward`] on this thread.
    pub(crate) fn backward_seq<T: Real>(self, d: &mut [T], y: &[T]) {
        match self {
            Activation::Sigmoid => d.iter_mut().zip(y).for_each(|(d, &y)| *d *= y * (T::ONE - y)),
            // A select, not a conditional store, so that the loop vectorises.
            Activation::Relu => d
                .iter_mut()
                .zip(y)
                .for_each(|(d, &y)| *d = if y <= T::ZERO { T::ZERO } else { *d }),
            Activation::Tanh => d.iter_mut().zip(y).for_each(|(d, &y)| *d *= T::ONE - y * y),
            Activation::Identity => {}
            // Below 0, f′ = eˣ = y + 1.
            Activation::Elu => d.iter_mut().zip(y).for_each(|(d, &y)| {
                if y <= T::ZERO {
                    *d *= y + T::ONE
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{max_rel_error, random_vec};

    #[test]
    fn gradients_match_finite_differences() {
        for act in [
            Activation::Sigmoid,
            Activation::Relu,
            Activation::Tanh,
            Activation::Identity,
            Activation::Elu,
        ] {
            let mut a = random_vec(40, 3.0, 1);
            // Keep ReLU inputs away from its kink, where no derivative exists.
            a.iter_mut().for_each(|v| {
                if v.abs() < 1e-3 {
                    *v = 0.5
                }
            });
            let c = random_vec(40, 1.0, 2);
            // L = Σ c·f(a), so dL/da = c·f'(a).
            let f = |a: &[f64]| {
                let mut y = a.to_vec();
                act.forward(&mut y);
                y.iter().zip(&c).map(|(y, c)| y * c).sum::<f64>()
            };
            let mut y = a.clone();
            act.forward(&mut y);
            let mut d = c.clone();
            act.backward(&mut d, &y);
            let err = max_rel_error(f, &a, &d);
            assert!(err < 1e-6, "{act:?}: relative error {err}");
        }
    }

    #[test]
    fn sigmoid_is_stable_at_the_extremes() {
        // e^−1000 underflows: f32 gives a subnormal or zero, never NaN.
        assert!((0.0..1e-37).contains(&sigmoid(-1000.0f32)));
        assert_eq!(sigmoid(1000.0f32), 1.0);
        assert_eq!(sigmoid(-1000.0f64), 0.0);
        assert!((sigmoid(0.0f64) - 0.5).abs() < 1e-15);
    }
}
