//! The max-norm constraint of Srivastava et al. (2014): after every update,
//! each unit's incoming weight vector that has grown longer than `c` is
//! scaled back onto the ball of radius `c`. Dropout's companion: it lets a
//! large learning rate run without the weights growing without bound.

use std::ops::Range;

/// The weight matrices of one parameter vector under a max-norm bound.
#[derive(Debug, Clone)]
pub struct MaxNorm {
    /// The bound on every incoming weight vector's Euclidean norm.
    pub c: f32,
    /// Each matrix's range in the parameter vector and its columns (units):
    /// `[fan_in, units]` row-major, so unit k's weights are column k.
    mats: Vec<(Range<usize>, usize)>,
    /// Squared column norms (scratch).
    sq: Vec<f64>,
    /// Column factors (scratch).
    scale: Vec<f32>,
}

impl MaxNorm {
    /// A bound `c` on the columns of the `[fan_in, units]` matrices at
    /// `mats` (range, units).
    pub fn new(c: f32, mats: Vec<(Range<usize>, usize)>) -> MaxNorm {
        MaxNorm {
            c,
            mats,
            sq: Vec::new(),
            scale: Vec::new(),
        }
    }

    /// Scales every column of every matrix whose norm exceeds `c` down to
    /// norm `c`; the other columns keep their bits. Returns how many
    /// columns were scaled.
    pub fn apply(&mut self, p: &mut [f32]) -> usize {
        let mut scaled = 0;
        for (r, units) in &self.mats {
            let w = &mut p[r.clone()];
            self.sq.clear();
            self.sq.resize(*units, 0.0);
            for row in w.chunks_exact(*units) {
                for (s, &v) in self.sq.iter_mut().zip(row) {
                    *s += f64::from(v) * f64::from(v);
                }
            }
            let c = f64::from(self.c);
            self.scale.clear();
            self.scale.extend(self.sq.iter().map(|&s| {
                let n = s.sqrt();
                if n > c {
                    (c / n) as f32
                } else {
                    1.0
                }
            }));
            let k = self.scale.iter().filter(|&&f| f != 1.0).count();
            if k == 0 {
                continue;
            }
            scaled += k;
            for row in w.chunks_exact_mut(*units) {
                for (v, &f) in row.iter_mut().zip(&self.scale) {
                    *v *= f;
                }
            }
        }
        scaled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column_norm(w: &[f32], units: usize, k: usize) -> f64 {
        w.chunks_exact(units)
            .map(|r| f64::from(r[k]).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn only_the_columns_longer_than_the_bound_move_and_they_end_on_it() {
        // Two matrices in one vector after a 3-value prefix: [4, 3] and [3, 2].
        let mut p: Vec<f32> = (0..3 + 12 + 6)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3)
            .collect();
        // Column 1 of the first matrix is short: it must keep its bits.
        for row in 0..4 {
            p[3 + row * 3 + 1] = 0.1;
        }
        let before = p.clone();
        let mut m = MaxNorm::new(1.0, vec![(3..15, 3), (15..21, 2)]);
        let scaled = m.apply(&mut p);
        assert_eq!(&p[..3], &before[..3], "values outside the matrices stay");
        let mut expect_scaled = 0;
        for (r, units) in [(3..15, 3), (15..21, 2)] {
            for k in 0..units {
                let was = column_norm(&before[r.clone()], units, k);
                let now = column_norm(&p[r.clone()], units, k);
                if was > 1.0 {
                    expect_scaled += 1;
                    assert!(
                        (now - 1.0).abs() < 1e-6,
                        "column {k}: norm {now} after clipping {was}"
                    );
                    // The direction stays: each value shrinks by one factor.
                    for (a, b) in before[r.clone()]
                        .chunks_exact(units)
                        .zip(p[r.clone()].chunks_exact(units))
                    {
                        assert!((f64::from(b[k]) - f64::from(a[k]) / was).abs() < 1e-6);
                    }
                } else {
                    for (a, b) in before[r.clone()]
                        .chunks_exact(units)
                        .zip(p[r.clone()].chunks_exact(units))
                    {
                        assert_eq!(a[k].to_bits(), b[k].to_bits());
                    }
                }
            }
        }
        assert!(expect_scaled > 0 && expect_scaled < 5);
        assert_eq!(scaled, expect_scaled);
        // Clipped once, a second pass finds nothing longer than the bound.
        assert_eq!(m.apply(&mut p), 0);
    }
}
