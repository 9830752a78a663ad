//! The imputer's linear path: a multivariate normal over the encoded rows,
//! fitted to the observed cells by EM (Dempster, Laird & Rubin; the
//! covariance ridge-regularised), which gives each row's missing values
//! their conditional mean given the row's observed ones, the best linear
//! fill whatever the pattern of holes, and, for multiple imputation, draws
//! from their conditional distribution. The network then learns what a
//! linear fill misses (see `ImputerConfig::linear`).
//!
//! With precision Λ = Σ⁻¹, a row's missing block M given its observed block
//! O is normal with mean m_M − Λ_MM⁻¹ Λ_MO (x_O − m_O) and covariance
//! Λ_MM⁻¹: one Cholesky factorisation of a |M| × |M| block a row.

use crate::error::{Error, Result};
use crate::tensor::gemm::{gemm, Par};
use crate::tensor::rng::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

/// Added to the covariance's diagonal (the columns are standardised, so
/// this is 1% of a column's variance): keeps one-hot groups, whose values
/// sum to 1, and collinear columns invertible.
pub const RIDGE: f64 = 1e-2;
/// EM stops when no mean or covariance entry moves by more than this (on
/// the standardised scale: a thousandth of a column's variance).
pub const TOLERANCE: f64 = 1e-3;
/// At most this many EM rounds.
pub const MAX_ROUNDS: usize = 100;
/// At most this many from a given start (a refinement with more cells).
pub const REFIT_ROUNDS: usize = 10;

/// A normal over encoded rows: mean and precision (inverse covariance).
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    pub d: usize,
    pub mean: Vec<f64>,
    /// `[d, d]`, row-major.
    pub precision: Vec<f64>,
}

/// Per-row working memory.
#[derive(Default)]
pub struct Scratch {
    mis: Vec<usize>,
    a: Vec<f64>,
    v: Vec<f64>,
    row: Vec<f64>,
    out: Vec<f64>,
}

/// The upper Cholesky factor `U` of the `k × k` matrix `a` (`a = UᵀU`), in
/// place, the part below the diagonal zeroed; an error when `a` is not
/// positive definite. Right-looking, so that every update is a run over a
/// contiguous row.
fn cholesky(a: &mut [f64], k: usize) -> std::result::Result<(), ()> {
    for j in 0..k {
        let (done, rest) = a.split_at_mut((j + 1) * k);
        let rj = &mut done[j * k..];
        let d = rj[j];
        if d <= 0.0 || !d.is_finite() {
            return Err(());
        }
        let u = d.sqrt();
        rj[j] = u;
        rj[..j].fill(0.0);
        let inv = 1.0 / u;
        rj[j + 1..].iter_mut().for_each(|v| *v *= inv);
        let rj = &done[j * k..];
        for i in j + 1..k {
            let c = rj[i];
            rest[(i - j - 1) * k + i..(i - j) * k]
                .iter_mut()
                .zip(&rj[i..])
                .for_each(|(v, &x)| *v -= c * x);
        }
    }
    Ok(())
}

/// A dot product with four running sums (the compiler keeps one sum's
/// order and so cannot vectorise a plain fold).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let (ac, bc) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

/// Solves `Uᵀ y = b` in place (forward; row-oriented on `U`).
fn solve_ut(u: &[f64], k: usize, b: &mut [f64]) {
    for i in 0..k {
        let ri = &u[i * k..(i + 1) * k];
        b[i] /= ri[i];
        let bi = b[i];
        b[i + 1..k]
            .iter_mut()
            .zip(&ri[i + 1..])
            .for_each(|(v, &x)| *v -= x * bi);
    }
}

/// Solves `U y = b` in place (backward).
fn solve_u(u: &[f64], k: usize, b: &mut [f64]) {
    for i in (0..k).rev() {
        let ri = &u[i * k..(i + 1) * k];
        b[i] = (b[i] - dot(&ri[i + 1..], &b[i + 1..k])) / ri[i];
    }
}

/// The inverse of the symmetric positive definite `k × k` matrix `a`.
fn spd_inverse(a: &[f64], k: usize) -> std::result::Result<Vec<f64>, ()> {
    let mut l = a.to_vec();
    cholesky(&mut l, k)?;
    let (mut m, mut inv) = (Vec::new(), Vec::new());
    factor_inverse(&l, k, &mut m, &mut inv);
    Ok(inv)
}

impl Gaussian {
    /// Fits by EM to the `[n, d]` values `x` where `mask` is 1, starting
    /// from `from` when given (a fit to fewer of the cells; then at most
    /// [`REFIT_ROUNDS`] rounds), else from the pairwise covariances.
    pub fn fit(
        x: &[f32],
        mask: &[f32],
        n: usize,
        d: usize,
        from: Option<&Gaussian>,
        par: Par,
    ) -> Result<Gaussian> {
        let singular = || {
            Error::config(
                "model.linear",
                "the covariance of the observed cells is not invertible",
            )
        };
        let (mean, mut cov, precision) = match from {
            Some(g) if g.d == d => (
                g.mean.clone(),
                spd_inverse(&g.precision, d).map_err(|_| singular())?,
                g.precision.clone(),
            ),
            _ => start(x, mask, d).ok_or_else(singular)?,
        };
        let mut g = Gaussian { d, precision, mean };
        // Rows in blocks of at least 64 for the threads.
        let chunk = d * match par {
            Par::Seq => n.max(1),
            Par::Threads(t) => n.div_ceil(4 * t).max(64),
        };
        // Each block fills its rows 256 at a time and sums them: the filled
        // table is never held whole.
        const ROWS: usize = 256;
        for _ in 0..if from.is_some() { REFIT_ROUNDS } else { MAX_ROUNDS } {
            // E-step: each row's expected values, summed with their outer
            // products and the conditional covariance of the missing block.
            let block = |xs: &[f32], ms: &[f32]| {
                let mut sx = vec![0.0f64; d];
                let mut sxx = vec![0.0f64; d * d];
                let mut f = vec![0.0f64; ROWS * d];
                let mut s = Scratch::default();
                let (mut m, mut inv) = (Vec::new(), Vec::new());
                for (xb, mb) in xs.chunks(ROWS * d).zip(ms.chunks(ROWS * d)) {
                    let fb = &mut f[..xb.len()];
                    for ((fr, xr), mr) in fb
                        .chunks_exact_mut(d)
                        .zip(xb.chunks_exact(d))
                        .zip(mb.chunks_exact(d))
                    {
                        let k = g.condition(xr, mr, &mut s, fr);
                        if k > 0 {
                            // Λ_MM⁻¹ from its factor, added on the missing block.
                            factor_inverse(&s.a, k, &mut m, &mut inv);
                            for (a, &i) in s.mis.iter().enumerate() {
                                let ci = &mut sxx[i * d..(i + 1) * d];
                                for (b, &j) in s.mis.iter().enumerate() {
                                    ci[j] += inv[a * k + b];
                                }
                            }
                        }
                        sx.iter_mut().zip(fr.iter()).for_each(|(a, &v)| *a += v);
                    }
                    let rows = fb.len() / d;
                    gemm(d, d, rows, 1.0, fb, true, fb, false, true, &mut sxx, Par::Seq);
                }
                (sx, sxx)
            };
            // Blocks summed in a fixed order: the same result on every run.
            let sums: Vec<(Vec<f64>, Vec<f64>)> = match par {
                Par::Seq => vec![block(x, mask)],
                Par::Threads(_) => x
                    .par_chunks(chunk)
                    .zip(mask.par_chunks(chunk))
                    .map(|(xs, ms)| block(xs, ms))
                    .collect(),
            };
            let mut sums = sums.into_iter();
            let (mut sx, mut sxx) = sums.next().unwrap_or_else(|| (vec![0.0; d], vec![0.0; d * d]));
            for (a, b) in sums {
                sx.iter_mut().zip(&a).for_each(|(u, v)| *u += v);
                sxx.iter_mut().zip(&b).for_each(|(u, v)| *u += v);
            }
            // M-step.
            let nf = n.max(1) as f64;
            let mean: Vec<f64> = sx.iter().map(|v| v / nf).collect();
            let mut next = vec![0.0f64; d * d];
            for i in 0..d {
                for j in 0..d {
                    next[i * d + j] = sxx[i * d + j] / nf - mean[i] * mean[j];
                }
                next[i * d + i] += RIDGE;
            }
            let moved = mean
                .iter()
                .zip(&g.mean)
                .map(|(a, b)| (a - b).abs())
                .chain(next.iter().zip(&cov).map(|(a, b)| (a - b).abs()))
                .fold(0.0f64, f64::max);
            g.precision = spd_inverse(&next, d).map_err(|_| singular())?;
            g.mean = mean;
            cov = next;
            if moved < TOLERANCE {
                break;
            }
        }
        Ok(g)
    }

    /// A row with its missing values (`mask` 0) set to their conditional
    /// mean, into `out` (observed values copied); leaves the factor of
    /// Λ_MM in the scratch and returns |M|.
    pub fn condition(&self, x: &[f32], mask: &[f32], s: &mut Scratch, out: &mut [f64]) -> usize {
        let d = self.d;
        s.mis.clear();
        for j in 0..d {
            out[j] = x[j] as f64;
            if mask[j] != 1.0 {
                s.mis.push(j);
            }
        }
        let k = s.mis.len();
        if k == 0 {
            return 0;
        }
        s.a.resize(k * k, 0.0);
        s.v.resize(k, 0.0);
        // x − m on the observed cells, 0 on the missing: Λ_M· of it is
        // Λ_MO (x_O − m_O).
        s.row.resize(d, 0.0);
        for j in 0..d {
            s.row[j] = if mask[j] == 1.0 {
                x[j] as f64 - self.mean[j]
            } else {
                0.0
            };
        }
        for (a, &i) in s.mis.iter().enumerate() {
            let pr = &self.precision[i * d..(i + 1) * d];
            for (b, &j) in s.mis.iter().enumerate() {
                s.a[a * k + b] = pr[j];
            }
            s.v[a] = dot(pr, &s.row);
        }
        // A principal block of a positive definite matrix is one.
        cholesky(&mut s.a, k).expect("a principal block of a positive definite precision");
        solve_ut(&s.a, k, &mut s.v);
        solve_u(&s.a, k, &mut s.v);
        for (a, &i) in s.mis.iter().enumerate() {
            out[i] = self.mean[i] - s.v[a];
        }
        k
    }

    /// Like [`Gaussian::condition`], into f32 values, with a draw from the
    /// conditional distribution when `rng` is given.
    pub fn fill(&self, x: &[f32], mask: &[f32], s: &mut Scratch, out: &mut [f32], rng: Option<&mut Rng>) {
        let mut row = std::mem::take(&mut s.out);
        row.resize(self.d, 0.0);
        let k = self.condition(x, mask, s, &mut row);
        if let (Some(rng), true) = (rng, k > 0) {
            // U y = ε gives y with covariance (UᵀU)⁻¹ = Λ_MM⁻¹.
            let mut e: Vec<f64> = (0..k).map(|_| StandardNormal.sample(rng)).collect();
            solve_u(&s.a, k, &mut e);
            for (a, &i) in s.mis.iter().enumerate() {
                row[i] += e[a];
            }
        }
        out.iter_mut().zip(&row).for_each(|(o, &v)| *o = v as f32);
        s.out = row;
    }

    /// The mean and precision as f32 tensors, for the model file.
    pub fn to_f32(&self) -> (Vec<f32>, Vec<f32>) {
        (
            self.mean.iter().map(|&v| v as f32).collect(),
            self.precision.iter().map(|&v| v as f32).collect(),
        )
    }

    /// From [`Gaussian::to_f32`]'s tensors; an error unless the precision is
    /// symmetric positive definite.
    pub fn from_f32(mean: &[f32], precision: &[f32]) -> std::result::Result<Gaussian, String> {
        let d = mean.len();
        if precision.len() != d * d {
            return Err(format!(
                "the precision holds {} values, not {d} × {d}",
                precision.len()
            ));
        }
        let p: Vec<f64> = precision.iter().map(|&v| v as f64).collect();
        for i in 0..d {
            for j in 0..i {
                if p[i * d + j] != p[j * d + i] {
                    return Err("the precision is not symmetric".into());
                }
            }
        }
        let mut l = p.clone();
        cholesky(&mut l, d).map_err(|_| "the precision is not positive definite".to_string())?;
        Ok(Gaussian {
            d,
            mean: mean.iter().map(|&v| v as f64).collect(),
            precision: p,
        })
    }
}

/// EM's starting point: the observed means, and the covariance of each
/// pair of columns over the rows that observe both (a good start that
/// saves rounds), ridged; the diagonal alone where that is not positive
/// definite. `None` when neither is.
fn start(x: &[f32], mask: &[f32], d: usize) -> Option<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let mut mean = vec![0.0f64; d];
    let mut count = vec![0usize; d];
    for (xr, mr) in x.chunks_exact(d).zip(mask.chunks_exact(d)) {
        for j in 0..d {
            if mr[j] == 1.0 {
                mean[j] += xr[j] as f64;
                count[j] += 1;
            }
        }
    }
    mean.iter_mut()
        .zip(&count)
        .for_each(|(m, &c)| *m /= c.max(1) as f64);
    let mut sum = vec![0.0f64; d * d];
    let mut both = vec![0u32; d * d];
    let mut c = vec![0.0f64; d];
    for (xr, mr) in x.chunks_exact(d).zip(mask.chunks_exact(d)) {
        for j in 0..d {
            c[j] = if mr[j] == 1.0 {
                xr[j] as f64 - mean[j]
            } else {
                f64::NAN
            };
        }
        for i in 0..d {
            if c[i].is_nan() {
                continue;
            }
            for j in 0..d {
                if !c[j].is_nan() {
                    sum[i * d + j] += c[i] * c[j];
                    both[i * d + j] += 1;
                }
            }
        }
    }
    let mut cov: Vec<f64> = sum
        .iter()
        .zip(&both)
        .map(|(&s, &b)| if b > 1 { s / b as f64 } else { 0.0 })
        .collect();
    for j in 0..d {
        cov[j * d + j] += RIDGE;
    }
    if let Ok(p) = spd_inverse(&cov, d) {
        return Some((mean, cov, p));
    }
    for i in 0..d {
        for j in 0..d {
            if i != j {
                cov[i * d + j] = 0.0;
            }
        }
    }
    let p = spd_inverse(&cov, d).ok()?;
    Some((mean, cov, p))
}

/// `(UᵀU)⁻¹ = W Wᵀ` with `W = U⁻¹`, from the upper factor `u`.
fn factor_inverse(u: &[f64], k: usize, w: &mut Vec<f64>, inv: &mut Vec<f64>) {
    // W upper triangular, rows from the last: W[i] = (e_i − Σ_{p>i} U[i][p] W[p]) / U[i][i].
    w.clear();
    w.resize(k * k, 0.0);
    inv.clear();
    inv.resize(k * k, 0.0);
    for i in (0..k).rev() {
        let (head, done) = w.split_at_mut((i + 1) * k);
        let wi = &mut head[i * k..];
        wi[i] = 1.0;
        for p in i + 1..k {
            let c = u[i * k + p];
            let wp = &done[(p - i - 1) * k..(p - i) * k];
            wi[p..].iter_mut().zip(&wp[p..]).for_each(|(v, &x)| *v -= c * x);
        }
        let d = 1.0 / u[i * k + i];
        wi[i..].iter_mut().for_each(|v| *v *= d);
    }
    for a in 0..k {
        for b in a..k {
            let v = dot(&w[a * k + b..(a + 1) * k], &w[b * k + b..(b + 1) * k]);
            inv[a * k + b] = v;
            inv[b * k + a] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::rng::seeded;
    use rand::Rng as _;

    /// Rows drawn from a known correlated normal, a third of the cells
    /// hidden at random: EM recovers the mean and covariance, the
    /// conditional mean of a hidden cell is the textbook one for the true
    /// parameters, and draws scatter around it by the conditional variance.
    #[test]
    fn em_recovers_a_known_normal_and_conditions_on_observed_cells() {
        let mut rng = seeded(11);
        let n = 4000;
        // x0 ~ N(1, 1); x1 = 0.8 x0 + 0.6 e1; x2 = −0.5 x1 + e2·0.5.
        let mut x = vec![0.0f32; n * 3];
        let mut mask = vec![1.0f32; n * 3];
        for r in 0..n {
            let e: [f64; 3] = [
                StandardNormal.sample(&mut rng),
                StandardNormal.sample(&mut rng),
                StandardNormal.sample(&mut rng),
            ];
            let a = 1.0 + e[0];
            let b = 0.8 * (a - 1.0) + 0.6 * e[1];
            let c = -0.5 * b + 0.5 * e[2];
            x[r * 3..r * 3 + 3].copy_from_slice(&[a as f32, b as f32, c as f32]);
            for j in 0..3 {
                if rng.random::<f64>() < 0.3 {
                    mask[r * 3 + j] = 0.0;
                    x[r * 3 + j] = 0.0;
                }
            }
        }
        let g = Gaussian::fit(&x, &mask, n, 3, None, Par::Seq).unwrap();
        assert!((g.mean[0] - 1.0).abs() < 0.06, "mean {:?}", g.mean);
        assert!(
            g.mean[1].abs() < 0.06 && g.mean[2].abs() < 0.06,
            "mean {:?}",
            g.mean
        );
        // True covariance: var(a)=1, cov(a,b)=0.8, var(b)=1, cov(b,c)=−0.5,
        // cov(a,c)=−0.4, var(c)=0.25+0.25=0.5; the fit adds the ridge.
        let cov = spd_inverse(&g.precision, 3).unwrap();
        let truth = [1.0, 0.8, -0.4, 0.8, 1.0, -0.5, -0.4, -0.5, 0.5];
        for k in 0..9 {
            let t = truth[k] + if k % 4 == 0 { RIDGE } else { 0.0 };
            assert!((cov[k] - t).abs() < 0.08, "cov[{k}] {} against {t}", cov[k]);
        }
        // x1 alone observed at 1: E[x0 | x1] = 1 + 0.8·1, E[x2 | x1] = −0.5.
        let mut s = Scratch::default();
        let mut out = [0.0f32; 3];
        g.fill(&[0.0, 1.0, 0.0], &[0.0, 1.0, 0.0], &mut s, &mut out, None);
        assert!(
            (out[0] - 1.8).abs() < 0.1 && (out[2] + 0.5).abs() < 0.08,
            "{out:?}"
        );
        assert_eq!(out[1], 1.0);
        // Draws: mean near the conditional mean, variance of x2 | x1 near 0.25.
        let mut r = seeded(3);
        let draws: Vec<f32> = (0..4000)
            .map(|_| {
                g.fill(&[0.0, 1.0, 0.0], &[0.0, 1.0, 0.0], &mut s, &mut out, Some(&mut r));
                assert_eq!(out[1], 1.0, "an observed value is never drawn");
                out[2]
            })
            .collect();
        let m = draws.iter().map(|&v| v as f64).sum::<f64>() / 4000.0;
        let v = draws.iter().map(|&d| (d as f64 - m).powi(2)).sum::<f64>() / 4000.0;
        assert!(
            (m + 0.5).abs() < 0.08 && (v - 0.25).abs() < 0.05,
            "draws: mean {m}, variance {v}"
        );
        // The model file's form gives the same fills.
        let (mf, pf) = g.to_f32();
        let back = Gaussian::from_f32(&mf, &pf).unwrap();
        let mut out2 = [0.0f32; 3];
        back.fill(&[0.0, 1.0, 0.0], &[0.0, 1.0, 0.0], &mut s, &mut out2, None);
        g.fill(&[0.0, 1.0, 0.0], &[0.0, 1.0, 0.0], &mut s, &mut out, None);
        assert!((out[0] - out2[0]).abs() < 1e-4 && (out[2] - out2[2]).abs() < 1e-4);
        assert!(Gaussian::from_f32(&mf, &pf[..8]).is_err());
    }

    /// A textbook case worked by hand: for a 2-d normal with correlation ρ,
    /// E[x1 | x0] = m1 + ρ (x0 − m0) (unit variances).
    #[test]
    fn conditional_mean_of_a_bivariate_normal() {
        let rho = 0.6f64;
        let det = 1.0 - rho * rho;
        let g = Gaussian {
            d: 2,
            mean: vec![2.0, -1.0],
            precision: vec![1.0 / det, -rho / det, -rho / det, 1.0 / det],
        };
        let mut s = Scratch::default();
        let mut out = [0.0f32; 2];
        g.fill(&[3.0, 0.0], &[1.0, 0.0], &mut s, &mut out, None);
        assert!((out[1] as f64 - (-1.0 + rho * 1.0)).abs() < 1e-6, "{out:?}");
        // Nothing observed: the mean.
        g.fill(&[0.0, 0.0], &[0.0, 0.0], &mut s, &mut out, None);
        assert!((out[0] - 2.0).abs() < 1e-6 && (out[1] + 1.0).abs() < 1e-6);
    }
}
