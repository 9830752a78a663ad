//! Layers as forward/backward pairs over row-major slices. Arguments go
//! outputs first, then inputs, then dims. Backward writes the input gradient
//! and *adds* into parameter gradients; the caller zeroes them once a step, so
//! a tied weight needs no special case.

pub mod activation;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod loss;
pub mod noise;
pub mod pool;

pub use activation::Activation;
pub use loss::Loss;
pub use noise::Corruption;

#[cfg(test)]
pub(crate) mod gradcheck {
    //! Central finite differences in f64, used by every layer's test.

    /// Largest relative error `|g − ĝ| / max(|g| + |ĝ|, floor)` between the
    /// analytic gradient `analytic` and central differences of `f` at `x`.
    pub fn max_rel_error(mut f: impl FnMut(&[f64]) -> f64, x: &[f64], analytic: &[f64]) -> f64 {
        assert_eq!(x.len(), analytic.len());
        let h = 1e-6;
        let mut xp = x.to_vec();
        let mut worst = 0.0f64;
        for i in 0..x.len() {
            xp[i] = x[i] + h;
            let fp = f(&xp);
            xp[i] = x[i] - h;
            let fm = f(&xp);
            xp[i] = x[i];
            let num = (fp - fm) / (2.0 * h);
            let denom = (num.abs() + analytic[i].abs()).max(1e-6);
            worst = worst.max((num - analytic[i]).abs() / denom);
        }
        worst
    }

    pub fn random_vec(n: usize, scale: f64, seed: u64) -> Vec<f64> {
        use rand::Rng as _;
        let mut rng = crate::tensor::rng::seeded(seed);
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }
}
