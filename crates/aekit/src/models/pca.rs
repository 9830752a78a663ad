//! Principal component analysis, the linear baseline of compression: the
//! top eigenvectors of the data's covariance (computed in f64 through the
//! GEMM door, decomposed by faer), optionally whitened.

use crate::error::{Error, Result};
use crate::tensor::gemm::{gemm, Par};
use crate::train::{FitReport, Observer};
use ndarray::{Array2, ArrayView2};
use std::path::Path;

/// How the components are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// The covariance's eigendecomposition: exact; d × d memory and d³ work.
    #[default]
    Exact,
    /// Halko, Martinsson & Tropp's randomized range finder (k + 10 columns,
    /// 4 power iterations), then the SVD of the small projected matrix: for
    /// wide data where only a few components are wanted.
    Randomized,
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "exact" => Ok(Solver::Exact),
            "randomized" => Ok(Solver::Randomized),
            _ => Err(format!("unknown solver `{s}` (expected exact or randomized)")),
        }
    }
}

/// A fitted PCA: the mean, `k` unit components (rows, largest variance
/// first) and their variances.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Components to keep.
    pub k: usize,
    pub solver: Solver,
    /// Seeds the randomized solver.
    pub seed: u64,
    /// Divide each code by its component's standard deviation.
    pub whiten: bool,
    pub threads: usize,
    mean: Vec<f64>,
    /// `[k, d]`, row-major.
    components: Vec<f64>,
    variance: Vec<f64>,
    total_variance: f64,
}

impl Pca {
    pub fn new(k: usize, whiten: bool) -> Pca {
        Pca {
            k,
            solver: Solver::Exact,
            seed: 1,
            whiten,
            threads: 1,
            mean: Vec::new(),
            components: Vec::new(),
            variance: Vec::new(),
            total_variance: 0.0,
        }
    }

    /// The training rows' mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The components, `[k, d]` row-major, largest variance first.
    pub fn components(&self) -> &[f64] {
        &self.components
    }

    /// The fitted state in full precision (the model file keeps f32):
    /// mean, components, variances and total variance.
    pub fn parts(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>, f64) {
        (
            self.mean.clone(),
            self.components.clone(),
            self.variance.clone(),
            self.total_variance,
        )
    }

    /// A fitted PCA from [`Pca::parts`]; the shapes must agree.
    pub fn from_parts(
        k: usize,
        whiten: bool,
        mean: Vec<f64>,
        components: Vec<f64>,
        variance: Vec<f64>,
        total_variance: f64,
    ) -> Result<Pca> {
        let d = mean.len();
        if components.len() != k * d || variance.len() != k {
            return Err(Error::shape(
                "PCA parts",
                format!("{k}×{d} components and {k} variances"),
                format!("{} components and {} variances", components.len(), variance.len()),
            ));
        }
        Ok(Pca {
            mean,
            components,
            variance,
            total_variance,
            ..Pca::new(k, whiten)
        })
    }

    /// Input width (0 before fitting).
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The variance along each kept component, largest first.
    pub fn explained_variance(&self) -> &[f64] {
        &self.variance
    }

    /// The sum of the variances of every input column.
    pub fn total_variance(&self) -> f64 {
        self.total_variance
    }

    /// Component `i` (a unit vector of the input's width).
    pub fn component(&self, i: usize) -> &[f64] {
        let d = self.dim();
        &self.components[i * d..(i + 1) * d]
    }

    /// Fits to the rows of `x`: the covariance (1/(n − 1)) and its top `k`
    /// eigenvectors, each signed so that its largest entry is positive.
    pub fn fit_rows(&mut self, x: ArrayView2<f32>) -> Result<()> {
        let (n, d) = x.dim();
        if n < 2 || d == 0 {
            return Err(Error::config(
                "data",
                format!("PCA needs at least 2 rows and 1 column, got {n} × {d}"),
            ));
        }
        if self.k == 0 || self.k > d {
            return Err(Error::config(
                "components",
                format!("must be between 1 and the {d} columns, got {}", self.k),
            ));
        }
        if self.solver == Solver::Randomized && self.k > n {
            return Err(Error::config(
                "components",
                format!(
                    "{} components from {n} rows: the randomized solver finds at most one per row; ask for at most {n}, or use the exact solver",
                    self.k
                ),
            ));
        }
        crate::tensor::memory::check_f32s(
            "components",
            2 * (n as u128 * d as u128 + 2 * d as u128 * d as u128),
        )?;
        crate::models::check_values(
            "data",
            x.as_standard_layout().as_slice().expect("standard"),
            d,
            false,
        )?;
        let mut mean = vec![0.0f64; d];
        for row in x.rows() {
            mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut xc = vec![0.0f64; n * d];
        for (r, row) in x.rows().into_iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xc[r * d + j] = v as f64 - mean[j];
            }
        }
        let par = Par::from_threads(self.threads);
        let total = xc.iter().map(|v| v * v).sum::<f64>() / (n - 1) as f64;
        let (mut components, variance) = match self.solver {
            Solver::Exact => exact(&xc, n, d, self.k, par)?,
            Solver::Randomized => randomized(&xc, n, d, self.k, par, self.seed)?,
        };
        drop(xc);
        // Each component signed so that its largest entry is positive.
        for c in components.chunks_exact_mut(d) {
            let big = c
                .iter()
                .fold(0.0f64, |b, &a| if a.abs() > b.abs() { a } else { b });
            if big < 0.0 {
                c.iter_mut().for_each(|a| *a = -*a);
            }
        }
        (self.mean, self.components, self.variance, self.total_variance) =
            (mean, components, variance, total);
        Ok(())
    }

    fn check(&self, cols: usize) -> Result<()> {
        if self.mean.is_empty() {
            return Err(Error::config("model", "the PCA is not fitted yet"));
        }
        crate::models::check_columns("data", self.dim(), cols)
    }

    /// The first `p` codes of each row (`p` ≤ k).
    pub fn transform_p(&self, x: ArrayView2<f32>, p: usize) -> Result<Array2<f32>> {
        self.check(x.ncols())?;
        let (n, d, p) = (x.nrows(), self.dim(), p.min(self.k));
        let mut xc = vec![0.0f64; n * d];
        for (r, row) in x.rows().into_iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xc[r * d + j] = v as f64 - self.mean[j];
            }
        }
        let mut z = vec![0.0f64; n * p];
        gemm(
            n,
            p,
            d,
            1.0,
            &xc,
            false,
            &self.components[..p * d],
            true,
            false,
            &mut z,
            Par::from_threads(self.threads),
        );
        if self.whiten {
            for r in 0..n {
                for c in 0..p {
                    z[r * p + c] /= self.variance[c].sqrt().max(1e-12);
                }
            }
        }
        Ok(Array2::from_shape_vec((n, p), z.into_iter().map(|v| v as f32).collect()).expect("n × p"))
    }

    /// Rows back from their first `p = codes.ncols()` codes.
    pub fn inverse_p(&self, codes: ArrayView2<f32>) -> Result<Array2<f32>> {
        if self.mean.is_empty() {
            return Err(Error::config("model", "the PCA is not fitted yet"));
        }
        let (n, p, d) = (codes.nrows(), codes.ncols(), self.dim());
        if p > self.k {
            return Err(Error::shape(
                "codes",
                format!("at most {} columns", self.k),
                format!("{p} columns"),
            ));
        }
        let mut z: Vec<f64> = codes.iter().map(|&v| v as f64).collect();
        if self.whiten {
            for r in 0..n {
                for c in 0..p {
                    z[r * p + c] *= self.variance[c].sqrt();
                }
            }
        }
        let mut x = vec![0.0f64; n * d];
        gemm(
            n,
            d,
            p,
            1.0,
            &z,
            false,
            &self.components[..p * d],
            false,
            false,
            &mut x,
            Par::from_threads(self.threads),
        );
        let v = x
            .iter()
            .enumerate()
            .map(|(i, &v)| (v + self.mean[i % d]) as f32)
            .collect();
        Ok(Array2::from_shape_vec((n, d), v).expect("n × d"))
    }

    /// The squared error summed over columns, averaged over rows, of `x`
    /// rebuilt from its first `p` components (Hinton & Salakhutdinov's error).
    pub fn error_p(&self, x: ArrayView2<f32>, p: usize) -> Result<f64> {
        let z = self.transform_p(x, p)?;
        let r = self.inverse_p(z.view())?;
        let se: f64 = r
            .iter()
            .zip(x.iter())
            .map(|(&a, &b)| ((a - b) as f64).powi(2))
            .sum();
        Ok(se / x.nrows().max(1) as f64)
    }

    /// Writes the model (f32 tensors; the sizes and whitening in the metadata).
    pub fn save(&self, path: &Path) -> Result<()> {
        use crate::io::safetensors::{save, NamedTensor};
        let f = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<f32>>();
        let (mean, comps, var) = (f(&self.mean), f(&self.components), f(&self.variance));
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), "aekit.pca".to_string());
        meta.insert("whiten".into(), self.whiten.to_string());
        meta.insert("total_variance".into(), self.total_variance.to_string());
        let d = self.dim();
        save(
            path,
            &[
                NamedTensor {
                    name: "mean",
                    shape: vec![d],
                    data: &mean,
                },
                NamedTensor {
                    name: "components",
                    shape: vec![self.k, d],
                    data: &comps,
                },
                NamedTensor {
                    name: "explained_variance",
                    shape: vec![self.k],
                    data: &var,
                },
            ],
            meta,
        )
    }

    /// Reads a model written by [`Pca::save`].
    pub fn load(path: &Path) -> Result<Pca> {
        let mut f = crate::io::safetensors::load(path)?;
        f.expect_kind("aekit.pca")?;
        let shape = f
            .shape_of("components")
            .ok_or_else(|| Error::format(path, "has no tensor `components`"))?;
        let [k, d] = shape[..] else {
            return Err(Error::format(
                path,
                format!("`components` has shape {shape:?}, expected [k, d]"),
            ));
        };
        let g = |v: Vec<f32>| v.into_iter().map(|a| a as f64).collect::<Vec<f64>>();
        let mut m = Pca::new(k, f.meta("whiten")? == "true");
        m.total_variance = f
            .meta("total_variance")?
            .parse()
            .map_err(|_| Error::format(path, "bad `total_variance`"))?;
        m.mean = g(f.take("mean", &[d])?);
        m.components = g(f.take("components", &[k, d])?);
        m.variance = g(f.take("explained_variance", &[k])?);
        Ok(m)
    }
}

/// The top `k` eigenvectors (rows) and eigenvalues of the covariance of
/// the centred rows `xc` `[n, d]`.
fn exact(xc: &[f64], n: usize, d: usize, k: usize, par: Par) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut cov = vec![0.0f64; d * d];
    gemm(
        d,
        d,
        n,
        1.0 / (n - 1) as f64,
        xc,
        true,
        xc,
        false,
        false,
        &mut cov,
        par,
    );
    let m = faer::Mat::<f64>::from_fn(d, d, |i, j| cov[i * d + j]);
    let evd = m.self_adjoint_eigen(faer::Side::Lower).map_err(|e| {
        Error::config(
            "data",
            format!("the covariance's eigendecomposition failed: {e:?}"),
        )
    })?;
    let (u, s) = (evd.U(), evd.S().column_vector());
    // Eigenvalues come in ascending order: the last k, largest first.
    let mut comps = Vec::with_capacity(k * d);
    let mut var = Vec::with_capacity(k);
    for c in (d - k..d).rev() {
        comps.extend((0..d).map(|i| u[(i, c)]));
        var.push(s[c].max(0.0));
    }
    Ok((comps, var))
}

/// An orthonormal basis of the columns of the row-major `[rows, cols]` matrix.
fn orth(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let m = faer::Mat::<f64>::from_fn(rows, cols, |i, j| a[i * cols + j]);
    let q = m.qr().compute_thin_Q();
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            out[i * cols + j] = q[(i, j)];
        }
    }
    out
}

/// The randomized solver: a basis Q of the range of `xc` from `k + 10`
/// random directions refined by 4 power iterations, then the SVD of
/// `Qᵀ·xc`.
fn randomized(xc: &[f64], n: usize, d: usize, k: usize, par: Par, seed: u64) -> Result<(Vec<f64>, Vec<f64>)> {
    use rand::Rng as _;
    let l = (k + 10).min(d).min(n);
    let mut rng = crate::tensor::rng::seeded(seed);
    let omega: Vec<f64> = (0..d * l).map(|_| rng.random_range(-1.0..1.0)).collect();
    let mut y = vec![0.0f64; n * l];
    gemm(n, l, d, 1.0, xc, false, &omega, false, false, &mut y, par);
    let mut z = vec![0.0f64; d * l];
    for _ in 0..4 {
        let q = orth(&y, n, l);
        gemm(d, l, n, 1.0, xc, true, &q, false, false, &mut z, par);
        let q2 = orth(&z, d, l);
        gemm(n, l, d, 1.0, xc, false, &q2, false, false, &mut y, par);
    }
    let q = orth(&y, n, l);
    // B = Qᵀ·xc, [l, d]; its right singular vectors are the components.
    let mut b = vec![0.0f64; l * d];
    gemm(l, d, n, 1.0, &q, true, xc, false, false, &mut b, par);
    let bm = faer::Mat::<f64>::from_fn(l, d, |i, j| b[i * d + j]);
    let svd = bm
        .thin_svd()
        .map_err(|e| Error::config("data", format!("the randomized SVD failed: {e:?}")))?;
    let (v, s) = (svd.V(), svd.S().column_vector());
    let mut order: Vec<usize> = (0..l).collect();
    order.sort_by(|&a, &c| s[c].partial_cmp(&s[a]).unwrap_or(std::cmp::Ordering::Equal));
    let mut comps = Vec::with_capacity(k * d);
    let mut var = Vec::with_capacity(k);
    for &c in order.iter().take(k) {
        comps.extend((0..d).map(|i| v[(i, c)]));
        var.push(s[c] * s[c] / (n - 1) as f64);
    }
    Ok((comps, var))
}

impl crate::models::Estimator for Pca {
    /// Fits in one pass (the report has no epochs); `val` is not used.
    fn fit(
        &mut self,
        x: ArrayView2<f32>,
        _val: Option<ArrayView2<f32>>,
        _obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        let t = std::time::Instant::now();
        self.fit_rows(x)?;
        Ok(FitReport {
            history: Vec::new(),
            best_epoch: 0,
            stopped_early: false,
            train_seconds: t.elapsed().as_secs_f64(),
            updates: 0,
        })
    }
    fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.transform_p(x, self.k)
    }
    fn inverse_transform(&self, codes: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.inverse_p(codes)
    }
    fn reconstruct(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        let z = self.transform_p(x, self.k)?;
        self.inverse_p(z.view())
    }
    /// The squared error summed over columns, averaged over rows.
    fn score(&self, x: ArrayView2<f32>) -> Result<f64> {
        self.error_p(x, self.k)
    }
    fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Estimator;

    /// 8 rows × 4 columns, x[i][j] = sin(1.3·i + 0.7·j) + 0.1·i·j.
    fn small() -> Array2<f32> {
        Array2::from_shape_fn((8, 4), |(i, j)| {
            ((1.3 * i as f64 + 0.7 * j as f64).sin() + 0.1 * (i * j) as f64) as f32
        })
    }

    /// The explained variances of `small()` as scikit-learn 1.9.1 gives them:
    /// `PCA(4).fit(X).explained_variance_`, X built as above in NumPy (each
    /// value rounded to float32, then float64 arithmetic). The data has rank
    /// 3, so the last is zero to rounding.
    const SKLEARN: [f64; 4] = [1.52631028, 0.891355079, 0.0374079432, 0.0];

    #[test]
    fn variances_match_scikit_learn_and_all_components_rebuild_the_data() {
        let x = small();
        let mut p = Pca::new(4, false);
        Estimator::fit(&mut p, x.view(), None, &mut crate::train::Silent).unwrap();
        for (a, b) in p.explained_variance().iter().zip(SKLEARN) {
            assert!(
                (a - b).abs() < 1e-5 * b.max(1.0),
                "{:?} against {SKLEARN:?}",
                p.explained_variance()
            );
        }
        assert!((p.total_variance() - p.explained_variance().iter().sum::<f64>()).abs() < 1e-9);
        let r = p.reconstruct(x.view()).unwrap();
        assert!(r.iter().zip(x.iter()).all(|(a, b)| (a - b).abs() < 1e-5));
        // Whitened codes have unit variance.
        let mut w = Pca::new(2, true);
        w.fit_rows(x.view()).unwrap();
        let z = w.transform(x.view()).unwrap();
        let var0 = z.column(0).iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 7.0;
        assert!((var0 - 1.0).abs() < 1e-5, "{var0}");
        assert!(
            (w.inverse_transform(z.view()).unwrap() - w.reconstruct(x.view()).unwrap())
                .iter()
                .all(|d| d.abs() < 1e-5)
        );
    }

    /// The first component against power iteration on the covariance, an
    /// independent method.
    #[test]
    fn the_first_component_agrees_with_power_iteration() {
        let x = small();
        let (n, d) = x.dim();
        let mut p = Pca::new(1, false);
        p.fit_rows(x.view()).unwrap();
        let mean: Vec<f64> = (0..d)
            .map(|j| x.column(j).iter().map(|&v| v as f64).sum::<f64>() / n as f64)
            .collect();
        let mut c = vec![vec![0.0; d]; d];
        for i in 0..n {
            for a in 0..d {
                for b in 0..d {
                    c[a][b] += (x[[i, a]] as f64 - mean[a]) * (x[[i, b]] as f64 - mean[b]) / (n - 1) as f64;
                }
            }
        }
        let mut v = vec![1.0; d];
        for _ in 0..500 {
            let w: Vec<f64> = (0..d).map(|a| (0..d).map(|b| c[a][b] * v[b]).sum()).collect();
            let norm = w.iter().map(|a| a * a).sum::<f64>().sqrt();
            v = w.iter().map(|a| a / norm).collect();
        }
        let dot: f64 = v.iter().zip(p.component(0)).map(|(a, b)| a * b).sum();
        assert!((dot.abs() - 1.0).abs() < 1e-9, "{dot}");
    }

    /// On data of low rank plus noise, the randomized solver finds the
    /// exact solver's components and variances.
    #[test]
    fn the_randomized_solver_agrees_with_the_exact_one() {
        let x = Array2::from_shape_fn((400, 60), |(i, j)| {
            let (a, b) = ((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos());
            (a * (j as f64 * 0.2).cos()
                + 0.5 * b * (j as f64 * 0.05).sin()
                + 0.001 * ((i * 7 + j * 13) % 17) as f64) as f32
        });
        let mut e = Pca::new(2, false);
        e.fit_rows(x.view()).unwrap();
        let mut r = Pca::new(2, false);
        r.solver = Solver::Randomized;
        r.fit_rows(x.view()).unwrap();
        for i in 0..2 {
            let (ve, vr) = (e.explained_variance()[i], r.explained_variance()[i]);
            assert!((ve - vr).abs() < 1e-6 * ve, "{ve} against {vr}");
            let dot: f64 = e
                .component(i)
                .iter()
                .zip(r.component(i))
                .map(|(a, b)| a * b)
                .sum();
            assert!((dot - 1.0).abs() < 1e-6, "component {i}: {dot}");
        }
        assert!((e.total_variance() - r.total_variance()).abs() < 1e-9 * e.total_variance());
        // More components than rows: refused by name (they were saved with
        // a shape their data did not fill).
        let mut r = Pca::new(30, false);
        r.solver = Solver::Randomized;
        let e = r
            .fit_rows(x.slice(ndarray::s![..20, ..]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("30 components from 20 rows") && e.contains("exact"),
            "{e}"
        );
    }

    #[test]
    fn saved_and_loaded_it_gives_the_same_codes() {
        let x = small();
        let mut p = Pca::new(3, true);
        p.fit_rows(x.view()).unwrap();
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pca.safetensors");
        p.save(&f).unwrap();
        let q = Pca::load(&f).unwrap();
        let (a, b) = (p.transform(x.view()).unwrap(), q.transform(x.view()).unwrap());
        assert!(a.iter().zip(b.iter()).all(|(u, v)| (u - v).abs() < 1e-5));
        assert!(Pca::new(5, false)
            .fit_rows(x.view())
            .unwrap_err()
            .to_string()
            .contains("between 1 and the 4"));
    }
}
