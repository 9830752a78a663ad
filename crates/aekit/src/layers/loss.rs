//! Reconstruction losses, summed over the units of each example.
//!
//! Squared error: L = ½·Σ(x − z)², dL/dz = z − x. Used with any output unit.
//! Bernoulli cross-entropy, from the sigmoid output's pre-activation a
//! (z = σ(a)): L = −Σ[x·ln z + (1−x)·ln(1−z)] = Σ[softplus(a) − x·a], computed
//! as max(a,0) − x·a + ln(1 + e^{−|a|}) so that no log of 0 or overflow occurs;
//! dL/da = σ(a) − x.

use super::activation::sigmoid;
use crate::tensor::Real;
use serde::{Deserialize, Serialize};

/// Which reconstruction loss a model trains on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Loss {
    /// ½·Σ(x − z)².
    #[serde(rename = "squared")]
    Squared,
    /// −Σ[x·ln z + (1−x)·ln(1−z)], for a sigmoid output.
    #[default]
    #[serde(rename = "xent")]
    CrossEntropy,
}

impl std::str::FromStr for Loss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "squared" | "mse" => Ok(Loss::Squared),
            "xent" | "cross-entropy" => Ok(Loss::CrossEntropy),
            _ => Err(format!("unknown loss `{s}` (expected squared or xent)")),
        }
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Loss::Squared => "squared",
            Loss::CrossEntropy => "xent",
        })
    }
}

/// ½·Σ(x − z)² over all elements.
pub fn squared_forward<T: Real>(z: &[T], x: &[T]) -> T {
    assert_eq!(z.len(), x.len());
    let mut s = T::ZERO;
    for (&z, &x) in z.iter().zip(x) {
        let d = z - x;
        s += d * d;
    }
    T::of(0.5) * s
}

/// dz = z − x.
pub fn squared_backward<T: Real>(dz: &mut [T], z: &[T], x: &[T]) {
    assert!(dz.len() == z.len() && z.len() == x.len());
    for ((d, &z), &x) in dz.iter_mut().zip(z).zip(x) {
        *d = z - x;
    }
}

/// Σ[softplus(a) − x·a] = −Σ[x·ln σ(a) + (1−x)·ln(1−σ(a))], stable for any a.
pub fn xent_forward<T: Real>(a: &[T], x: &[T]) -> T {
    assert_eq!(a.len(), x.len());
    let mut s = T::ZERO;
    for (&a, &x) in a.iter().zip(x) {
        s += a.max_(T::ZERO) - x * a + (-a.abs_()).exp_().ln_1p_();
    }
    s
}

/// [`xent_forward`] and, when `da` is given, [`xent_backward`] in one pass
/// over pieces split across the pool ([`Real::xent_slice`]: the vectorised
/// loop for f32); the sum is added in piece order, so it does not depend on
/// the thread count.
pub fn xent<T: Real>(da: Option<&mut [T]>, a: &[T], x: &[T]) -> T {
    assert_eq!(a.len(), x.len());
    let s = match da {
        Some(da) => {
            assert_eq!(da.len(), a.len());
            crate::tensor::par::chunks_sum(da, |at, d| {
                let r = at..at + d.len();
                T::xent_slice(d, &a[r.clone()], &x[r])
            })
        }
        None => crate::tensor::par::ranges_sum(a.len(), |r| T::xent_slice(&mut [], &a[r.clone()], &x[r])),
    };
    T::of(s)
}

/// da = σ(a) − x.
pub fn xent_backward<T: Real>(da: &mut [T], a: &[T], x: &[T]) {
    assert!(da.len() == a.len() && a.len() == x.len());
    crate::tensor::par::chunks(da, |at, da| {
        for ((d, &a), &x) in da.iter_mut().zip(&a[at..]).zip(&x[at..]) {
            *d = sigmoid(a) - x;
        }
    });
}

/// −Σ[x·ln z + (1−x)·ln(1−z)] from outputs z, with z clamped into
/// [1e-7, 1 − 1e-7] (for outputs that are not a sigmoid, e.g. linear units,
/// which can leave (0, 1)). Prefer [`xent_forward`] when logits exist.
pub fn xent_from_outputs<T: Real>(z: &[T], x: &[T]) -> T {
    let eps = T::of(1e-7);
    let mut s = T::ZERO;
    for (&z, &x) in z.iter().zip(x) {
        let z = if z < eps {
            eps
        } else if z > T::ONE - eps {
            T::ONE - eps
        } else {
            z
        };
        s -= x * z.ln_() + (T::ONE - x) * (T::ONE - z).ln_();
    }
    s
}

/// The least reconstruction cross-entropy of x: −Σ[x ln x + (1−x) ln(1−x)]
/// (the entropy of the pixels, with 0·ln 0 = 0), reached by z = x.
pub fn xent_minimum<T: Real>(x: &[T]) -> T {
    let mut s = T::ZERO;
    for &v in x {
        if v > T::ZERO && v < T::ONE {
            s -= v * v.ln_() + (T::ONE - v) * (T::ONE - v).ln_();
        }
    }
    s
}

/// Softmax cross-entropy, summed over the batch: for logits a `[batch, k]`
/// and labels y, L = Σ_b [log Σ_j e^{a_bj} − a_{b,y_b}], computed with the
/// row maximum subtracted. Writes da = softmax(a) − onehot(y) when asked.
pub fn softmax_xent<T: Real>(da: Option<&mut [T]>, a: &[T], labels: &[u8], k: usize) -> T {
    assert_eq!(a.len(), labels.len() * k);
    let mut total = T::ZERO;
    let mut da = da;
    for (b, (row, &y)) in a.chunks_exact(k).zip(labels).enumerate() {
        let m = row.iter().fold(row[0], |m, &v| m.max_(v));
        let mut z = T::ZERO;
        for &v in row {
            z += (v - m).exp_();
        }
        total += z.ln_() + m - row[y as usize];
        if let Some(d) = da.as_deref_mut() {
            let d = &mut d[b * k..(b + 1) * k];
            for (j, (dv, &v)) in d.iter_mut().zip(row).enumerate() {
                *dv = (v - m).exp_() / z - if j == y as usize { T::ONE } else { T::ZERO };
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{max_rel_error, random_vec};

    #[test]
    fn squared_gradient_matches_finite_differences() {
        let z = random_vec(30, 2.0, 1);
        let x: Vec<f64> = random_vec(30, 1.0, 2).iter().map(|v| v.abs()).collect();
        let mut dz = vec![0.0; 30];
        squared_backward(&mut dz, &z, &x);
        let err = max_rel_error(|z| squared_forward(z, &x), &z, &dz);
        assert!(err < 1e-6, "{err}");
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let a = random_vec(30, 6.0, 3);
        let x: Vec<f64> = random_vec(30, 1.0, 4).iter().map(|v| v.abs()).collect();
        let mut da = vec![0.0; 30];
        xent_backward(&mut da, &a, &x);
        let err = max_rel_error(|a| xent_forward(a, &x), &a, &da);
        assert!(err < 1e-6, "{err}");
    }

    #[test]
    fn softmax_cross_entropy_gradient_and_golden_value() {
        let a = random_vec(4 * 3, 3.0, 7);
        let y = [2u8, 0, 1, 2];
        let mut da = vec![0.0; 12];
        softmax_xent(Some(&mut da), &a, &y, 3);
        let err = max_rel_error(|a| softmax_xent(None, a, &y, 3), &a, &da);
        assert!(err < 1e-6, "{err}");
        // Equal logits over 3 classes: −ln(1/3) = ln 3 = 1.0986122886681098.
        assert!((softmax_xent(None, &[0.5f64, 0.5, 0.5], &[1], 3) - 3f64.ln()).abs() < 1e-15);
        // Large logits do not overflow: a = (1000, 0), y = 0 gives ln(1 + e^−1000) ≈ 0.
        assert!(softmax_xent(None, &[1000.0f32, 0.0], &[0], 2).abs() < 1e-6);
    }

    #[test]
    fn cross_entropy_golden_values() {
        // x = 1, a = 0: −ln σ(0) = ln 2 = 0.693147180559945.
        assert!((xent_forward(&[0.0f64], &[1.0]) - std::f64::consts::LN_2).abs() < 1e-15);
        // x = 0, a = 100: −ln(1 − σ(100)) = 100 + ln(1 + e^{−100}) ≈ 100 exactly in f64;
        // the naive formula gives ln(0) = −inf in f32.
        let v = xent_forward(&[100.0f32], &[0.0]);
        assert!((v - 100.0).abs() < 1e-4, "{v}");
        // x = 0.3, a = −2: −x·a + ln(1 + e^{−2}) = 0.6 + 0.126928011 = 0.726928011, which
        // −[0.3·ln σ(−2) + 0.7·ln(1 − σ(−2))] also gives (checked in Python's math module).
        assert!((xent_forward(&[-2.0f64], &[0.3]) - 0.726_928_011_042_973).abs() < 1e-12);
        // From outputs, clamped: z = 0, x = 1 gives −ln(1e-7) = 16.118095651.
        assert!((xent_from_outputs(&[0.0f64], &[1.0]) - 16.118_095_650_958_32).abs() < 1e-9);
    }

    #[test]
    fn both_forms_of_cross_entropy_agree() {
        let a = random_vec(50, 4.0, 5);
        let x: Vec<f64> = random_vec(50, 1.0, 6).iter().map(|v| v.abs()).collect();
        let z: Vec<f64> = a.iter().map(|&a| sigmoid(a)).collect();
        assert!((xent_forward(&a, &x) - xent_from_outputs(&z, &x)).abs() < 1e-9);
    }
}
