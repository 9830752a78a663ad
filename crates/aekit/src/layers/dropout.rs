//! Inverted dropout: in training each unit is kept with probability 1 − p
//! and scaled by 1/(1 − p), so the expected activation is unchanged and
//! inference needs no rescaling. The mask is drawn once per batch (from the
//! run's seeded stream, so a run is reproducible) and used again backward.

use crate::tensor::rng::Rng;
use crate::tensor::Real;
use rand::Rng as _;

/// Draws a mask for `len` units at drop rate `p`: each entry is 0 or
/// 1/(1 − p).
pub fn draw_mask(mask: &mut Vec<f32>, len: usize, p: f32, rng: &mut Rng) {
    mask.clear();
    extend_mask(mask, len, p, rng);
}

/// [`draw_mask`] appending `len` entries to `mask` (masks of several
/// layers in one buffer).
pub fn extend_mask(mask: &mut Vec<f32>, len: usize, p: f32, rng: &mut Rng) {
    let keep = 1.0 / (1.0 - p);
    mask.extend((0..len).map(|_| if rng.random::<f32>() < p { 0.0 } else { keep }));
}

/// y ← y · mask, in place (forward).
pub fn apply<T: Real>(y: &mut [T], mask: &[f32]) {
    assert_eq!(y.len(), mask.len());
    y.iter_mut().zip(mask).for_each(|(v, &m)| *v *= T::of(m as f64));
}

/// dL/dy ← dL/dy · mask, in place (backward: the same mask).
pub fn backward<T: Real>(d: &mut [T], mask: &[f32]) {
    apply(d, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{max_rel_error, random_vec};

    #[test]
    fn gradient_matches_finite_differences_in_f64() {
        let mut rng = crate::tensor::rng::seeded(3);
        let mut mask = Vec::new();
        draw_mask(&mut mask, 50, 0.3, &mut rng);
        let x = random_vec(50, 2.0, 1);
        let c = random_vec(50, 1.0, 2);
        // L = Σ c · tanh(dropout(x)): dL/dx = c · tanh′ · mask.
        let f = |x: &[f64]| {
            let mut y = x.to_vec();
            apply(&mut y, &mask);
            y.iter().zip(&c).map(|(y, c)| y.tanh() * c).sum::<f64>()
        };
        let mut y = x.clone();
        apply(&mut y, &mask);
        let mut d: Vec<f64> = y
            .iter()
            .zip(&c)
            .map(|(y, c)| c * (1.0 - y.tanh().powi(2)))
            .collect();
        backward(&mut d, &mask);
        let err = max_rel_error(f, &x, &d);
        assert!(err < 1e-6, "relative error {err}");
    }

    #[test]
    fn the_mask_drops_at_the_rate_and_keeps_the_mean() {
        let mut rng = crate::tensor::rng::seeded(9);
        let mut mask = Vec::new();
        draw_mask(&mut mask, 100_000, 0.2, &mut rng);
        let dropped = mask.iter().filter(|&&m| m == 0.0).count() as f64 / 1e5;
        let mean = mask.iter().map(|&m| m as f64).sum::<f64>() / 1e5;
        assert!((dropped - 0.2).abs() < 0.01, "{dropped}");
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
        assert!(mask.iter().all(|&m| m == 0.0 || m == 1.25));
    }
}
