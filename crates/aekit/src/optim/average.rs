//! An exponential moving average of the parameters along training (Polyak
//! averaging with forgetting): ā ← d·ā + (1 − d)·θ after the updates, with
//! d = min(decay, (1 + t)/(10 + t)) at update t, so the first updates count
//! for more than `decay` alone would give them (the average forgets the
//! starting point within a few dozen updates instead of 1/(1 − decay)).
//!
//! The average is refreshed every `stride` updates with d^stride, about 50
//! times per horizon 1/(1 − decay), so a large net does not pay a pass over
//! its weights at every minibatch (one pass reads and writes every weight;
//! for the 3000-unit stacks that is a third of a 20-example update).

/// The moving average and its counters.
#[derive(Debug, Clone)]
pub struct WeightAverage {
    decay: f32,
    stride: u64,
    /// Updates seen.
    seen: u64,
    avg: Vec<f32>,
}

impl WeightAverage {
    /// An average starting at `start`, forgetting at `decay` per update, in
    /// [0, 1) (checked by the caller's config).
    pub fn new(start: &[f32], decay: f32) -> WeightAverage {
        let horizon = 1.0 / (1.0 - decay as f64);
        WeightAverage {
            decay,
            stride: ((horizon / 50.0).floor() as u64).max(1),
            seen: 0,
            avg: start.to_vec(),
        }
    }

    /// Updates between refreshes of the average.
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// Counts an update that left the parameters at `p`, and folds them in
    /// at every `stride`-th.
    pub fn observe(&mut self, p: &[f32]) {
        self.seen += 1;
        if !self.seen.is_multiple_of(self.stride) {
            return;
        }
        let t = self.seen as f64;
        let d = (self.decay as f64)
            .min((1.0 + t) / (10.0 + t))
            .powi(self.stride as i32) as f32;
        let e = 1.0 - d;
        for (a, &x) in self.avg.iter_mut().zip(p) {
            *a += e * (x - *a);
        }
    }

    /// The averaged parameters.
    pub fn weights(&self) -> &[f32] {
        &self.avg
    }

    /// Sets the average (to the parameters a run restarts from).
    pub fn set(&mut self, p: &[f32]) {
        self.avg.copy_from_slice(p);
    }

    /// Updates seen, as a checkpoint keeps it beside the weights.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Back to a checkpoint's average and count (`avg` of this length).
    pub fn restore(&mut self, avg: &[f32], seen: u64) {
        self.avg.copy_from_slice(avg);
        self.seen = seen;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_of_a_constant_is_that_constant_and_it_follows_a_step() {
        let mut a = WeightAverage::new(&[0.0, 0.0], 0.99);
        assert_eq!(a.stride(), 2);
        for _ in 0..2000 {
            a.observe(&[1.0, -3.0]);
        }
        // (1 - d) per refresh from 0 towards the constant: after 1000
        // refreshes at d ≤ 0.99² it is there to f32's precision.
        assert!((a.weights()[0] - 1.0).abs() < 1e-5, "{:?}", a.weights());
        assert!((a.weights()[1] + 3.0).abs() < 1e-5, "{:?}", a.weights());
    }

    #[test]
    fn a_long_horizon_keeps_the_mean_of_an_oscillation() {
        // θ alternates ±1 around 5 every update: the average sits near 5
        // while the last iterate is 4 or 6 (stride 1 at decay 0.98).
        let mut a = WeightAverage::new(&[0.0], 0.98);
        assert_eq!(a.stride(), 1);
        for t in 0..3000 {
            a.observe(&[if t % 2 == 0 { 6.0 } else { 4.0 }]);
        }
        // The last weight (4, with 1 − d = 0.02) pulls it below 5 by
        // 0.02·1/(1 + 0.98) ≈ 0.0101.
        let m = a.weights()[0];
        assert!((m - (5.0 - 0.02 / 1.98)).abs() < 1e-4, "{m}");
    }

    #[test]
    fn the_first_updates_are_not_drowned_by_the_start() {
        // With decay 0.999 alone the average would keep 99% of its start
        // after 10 updates; the warm-up moves it most of the way.
        let mut a = WeightAverage::new(&[0.0], 0.999);
        assert_eq!(a.stride(), 20);
        for _ in 0..20 {
            a.observe(&[1.0]);
        }
        // One refresh at t = 20: d = (21/30)^20 ≈ 8e-4.
        assert!(a.weights()[0] > 0.99, "{}", a.weights()[0]);
    }

    #[test]
    fn a_restored_average_goes_on_as_the_original() {
        let mut a = WeightAverage::new(&[0.5, 1.5, 2.5], 0.9);
        a.observe(&[1.0, 2.0, 3.0]);
        a.observe(&[2.0, 2.0, 2.0]);
        let mut b = WeightAverage::new(&[0.0; 3], 0.9);
        b.restore(a.weights(), a.seen());
        for p in [[0.0; 3], [1.0, -1.0, 4.0]] {
            a.observe(&p);
            b.observe(&p);
            assert_eq!(b.weights(), a.weights());
        }
    }
}
