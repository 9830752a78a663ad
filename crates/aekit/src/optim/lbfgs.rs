//! Full-batch L-BFGS (Nocedal & Wright, Algorithm 7.4 with the two-loop
//! recursion) and a strong-Wolfe line search (their Algorithms 3.5 and 3.6,
//! with safeguarded cubic interpolation), on one flat f32 parameter vector.
//! Dot products and the line search's arithmetic are in f64.
//!
//! Written here rather than taken from `argmin`: argmin's solvers own their
//! parameter vectors, which would copy aekit's flat f32 parameters (and the
//! gradient) into its own types every evaluation; this is about 250 lines.

use crate::tensor::par;
use serde::{Deserialize, Serialize};

/// L-BFGS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LbfgsConfig {
    /// Pairs (s, y) kept.
    pub memory: usize,
    /// Iterations at most.
    pub max_iter: usize,
    /// Stop when ‖g‖∞ falls to this.
    pub grad_tol: f64,
    /// Stop when the cost changes by less than this, relative to its size.
    pub cost_tol: f64,
    /// Armijo constant c₁ and curvature constant c₂ of the Wolfe conditions.
    pub c1: f64,
    pub c2: f64,
    /// Cost-and-gradient evaluations per line search at most.
    pub max_line_search: usize,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            memory: 10,
            max_iter: 400,
            grad_tol: 1e-5,
            cost_tol: 1e-9,
            c1: 1e-4,
            c2: 0.9,
            max_line_search: 25,
        }
    }
}

/// Why the optimizer stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    GradientTolerance,
    CostTolerance,
    MaxIterations,
    /// No step satisfied the Wolfe conditions (often: the cost is already at
    /// the precision of its arithmetic).
    LineSearchFailed,
    /// The caller asked to stop (an interrupt).
    Halted,
}

/// Where L-BFGS stands after an iteration: with the parameters, everything
/// the next iteration depends on, so that a run continued from it goes on
/// exactly as it would have.
#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub iter: usize,
    pub evals: usize,
    pub cost: f64,
    /// The gradient at the parameters.
    pub g: Vec<f32>,
    /// The kept pairs, oldest first, and their 1/(s·y).
    pub s: Vec<Vec<f32>>,
    pub y: Vec<Vec<f32>>,
    pub rho: Vec<f64>,
    /// Set when the iteration met a stopping test.
    pub stop: Option<Stop>,
}

/// One iteration, as an observer sees it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IterInfo {
    pub iter: usize,
    pub cost: f64,
    pub grad_norm: f64,
    pub step: f64,
    pub evaluations: usize,
}

/// The result of [`minimize`].
#[derive(Debug, Clone, Serialize)]
pub struct LbfgsReport {
    pub iterations: usize,
    pub evaluations: usize,
    pub cost: f64,
    pub grad_norm: f64,
    pub stop: Stop,
}

/// Σ a·b in f64: four lanes per piece and the pieces in order (over the
/// threads for long vectors), the same value for any thread count.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    par::ranges_sum(a.len(), |r| {
        let (a, b) = (&a[r.clone()], &b[r]);
        let mut acc = [0.0f64; 4];
        let whole = a.len() / 4 * 4;
        for (x, y) in a[..whole].chunks_exact(4).zip(b[..whole].chunks_exact(4)) {
            for l in 0..4 {
                acc[l] += x[l] as f64 * y[l] as f64;
            }
        }
        let tail: f64 = a[whole..]
            .iter()
            .zip(&b[whole..])
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum();
        acc.iter().sum::<f64>() + tail
    })
}

/// d ← d + c·v, each element rounded once from f64.
fn axpy(d: &mut [f32], c: f64, v: &[f32]) {
    par::chunks(d, |off, d| {
        d.iter_mut()
            .zip(&v[off..])
            .for_each(|(d, &v)| *d = (*d as f64 + c * v as f64) as f32)
    });
}

fn inf_norm(g: &[f32]) -> f64 {
    g.iter().fold(0.0f64, |m, &v| m.max(v.abs() as f64))
}

/// Minimises `f` from `x` (updated in place). `f(x, g)` returns the cost and
/// writes the gradient into `g`.
pub fn minimize(
    x: &mut [f32],
    f: impl FnMut(&[f32], &mut [f32]) -> f64,
    cfg: &LbfgsConfig,
    on_iter: &mut dyn FnMut(&IterInfo),
) -> LbfgsReport {
    minimize_from(x, f, cfg, None, &mut |it, _, _| {
        on_iter(it);
        true
    })
}

/// [`minimize`], continuing from `from` (saved with the `x` it belongs to)
/// when given; after each iteration `on_iter` sees it, its [`Memory`] and
/// the parameters, and returns `false` to stop there ([`Stop::Halted`]).
pub fn minimize_from(
    x: &mut [f32],
    mut f: impl FnMut(&[f32], &mut [f32]) -> f64,
    cfg: &LbfgsConfig,
    from: Option<Memory>,
    on_iter: &mut dyn FnMut(&IterInfo, &Memory, &[f32]) -> bool,
) -> LbfgsReport {
    let n = x.len();
    let m = cfg.memory.max(1);
    let _awake = crate::tensor::par::KeepAwake::new();
    let mem = match from {
        Some(mem) => mem,
        None => {
            let mut g = vec![0.0f32; n];
            let cost = f(x, &mut g);
            let stop = (inf_norm(&g) <= cfg.grad_tol).then_some(Stop::GradientTolerance);
            Memory {
                iter: 0,
                evals: 1,
                cost,
                g,
                s: Vec::with_capacity(m),
                y: Vec::with_capacity(m),
                rho: Vec::with_capacity(m),
                stop,
            }
        }
    };
    let mut stop = mem.stop.unwrap_or(Stop::MaxIterations);
    let Memory {
        mut iter,
        mut evals,
        mut cost,
        mut g,
        s: mut s_hist,
        y: mut y_hist,
        mut rho,
        ..
    } = mem;
    let mut d = vec![0.0f32; n];
    let mut x_new = vec![0.0f32; n];
    let mut g_new = vec![0.0f32; n];
    let mut alpha_buf = vec![0.0f64; m];
    while stop == Stop::MaxIterations && iter < cfg.max_iter {
        // Two-loop recursion: d = −H·g.
        d.iter_mut().zip(&g).for_each(|(d, &g)| *d = -g);
        let k = s_hist.len();
        for i in (0..k).rev() {
            let a = rho[i] * dot(&s_hist[i], &d);
            alpha_buf[i] = a;
            axpy(&mut d, -a, &y_hist[i]);
        }
        let gamma = if k > 0 {
            dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1])
        } else {
            // First step: a length that keeps ‖step‖₁ ≤ 1 (as minFunc does).
            (1.0 / g.iter().map(|v| v.abs() as f64).sum::<f64>()).min(1.0)
        };
        d.iter_mut().for_each(|v| *v = (*v as f64 * gamma) as f32);
        for i in 0..k {
            let b = rho[i] * dot(&y_hist[i], &d);
            let a = alpha_buf[i];
            axpy(&mut d, a - b, &s_hist[i]);
        }
        let mut dg = dot(&g, &d);
        if dg >= 0.0 {
            // Not a descent direction (curvature information went stale):
            // restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            d.iter_mut().zip(&g).for_each(|(d, &g)| *d = -g);
            dg = dot(&g, &d);
        }
        let ls = line_search(x, cost, &g, &d, dg, &mut f, &mut x_new, &mut g_new, cfg);
        evals += ls.evals;
        let Some((step, new_cost)) = ls.accepted else {
            stop = Stop::LineSearchFailed;
            break;
        };
        iter += 1;
        // s = x_new − x, y = g_new − g; keep the pair if it has curvature.
        let (mut s, mut y) = if s_hist.len() == m {
            rho.remove(0);
            (s_hist.remove(0), y_hist.remove(0))
        } else {
            (vec![0.0f32; n], vec![0.0f32; n])
        };
        par::chunks2(&mut s, &mut y, |off, s, y| {
            let end = off + s.len();
            for (((s, y), (&xn, &x)), (&gn, &g)) in s
                .iter_mut()
                .zip(y.iter_mut())
                .zip(x_new[off..end].iter().zip(&x[off..end]))
                .zip(g_new[off..end].iter().zip(&g[off..end]))
            {
                *s = xn - x;
                *y = gn - g;
            }
        });
        let sy = dot(&s, &y);
        if sy > 1e-10 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            rho.push(1.0 / sy);
            s_hist.push(s);
            y_hist.push(y);
        }
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        let old = cost;
        cost = new_cost;
        let gn = inf_norm(&g);
        if gn <= cfg.grad_tol {
            stop = Stop::GradientTolerance;
        } else if (old - cost).abs() <= cfg.cost_tol * old.abs().max(cost.abs()).max(1.0) {
            stop = Stop::CostTolerance;
        }
        let now = Memory {
            iter,
            evals,
            cost,
            g,
            s: s_hist,
            y: y_hist,
            rho,
            stop: (stop != Stop::MaxIterations).then_some(stop),
        };
        let go_on = on_iter(
            &IterInfo {
                iter,
                cost,
                grad_norm: gn,
                step,
                evaluations: evals,
            },
            &now,
            x,
        );
        (g, s_hist, y_hist, rho) = (now.g, now.s, now.y, now.rho);
        if !go_on && stop == Stop::MaxIterations {
            stop = Stop::Halted;
        }
    }
    LbfgsReport {
        iterations: iter,
        evaluations: evals,
        cost,
        grad_norm: inf_norm(&g),
        stop,
    }
}

struct LineSearch {
    accepted: Option<(f64, f64)>,
    evals: usize,
}

/// Finds a step α along `d` meeting the strong Wolfe conditions; on success
/// `x_new` and `g_new` hold the point and its gradient.
fn line_search(
    x: &[f32],
    f0: f64,
    g0: &[f32],
    d: &[f32],
    dg0: f64,
    f: &mut impl FnMut(&[f32], &mut [f32]) -> f64,
    x_new: &mut [f32],
    g_new: &mut [f32],
    cfg: &LbfgsConfig,
) -> LineSearch {
    let _ = g0;
    let mut evals = 0;
    let mut eval = |a: f64, x_new: &mut [f32], g_new: &mut [f32], evals: &mut usize| -> (f64, f64) {
        par::chunks(x_new, |off, xn| {
            for ((xn, &xv), &dv) in xn.iter_mut().zip(&x[off..]).zip(&d[off..]) {
                *xn = (xv as f64 + a * dv as f64) as f32;
            }
        });
        *evals += 1;
        let fv = f(x_new, g_new);
        (fv, dot(g_new, d))
    };
    let armijo = |a: f64, fa: f64| fa <= f0 + cfg.c1 * a * dg0;
    let curvature = |dga: f64| dga.abs() <= -cfg.c2 * dg0;
    let (mut a_prev, mut f_prev, mut dg_prev) = (0.0f64, f0, dg0);
    let mut a = 1.0f64;
    let (lo, hi);
    let mut i = 0;
    loop {
        if evals >= cfg.max_line_search {
            return LineSearch {
                accepted: None,
                evals,
            };
        }
        let (fa, dga) = eval(a, x_new, g_new, &mut evals);
        if !fa.is_finite() {
            // Overshot into overflow: come back towards the last good point.
            a = a_prev + 0.1 * (a - a_prev);
            continue;
        }
        if !armijo(a, fa) || (i > 0 && fa >= f_prev) {
            (lo, hi) = ((a_prev, f_prev, dg_prev), (a, fa, dga));
            break;
        }
        if curvature(dga) {
            return LineSearch {
                accepted: Some((a, fa)),
                evals,
            };
        }
        if dga >= 0.0 {
            (lo, hi) = ((a, fa, dga), (a_prev, f_prev, dg_prev));
            break;
        }
        let next = cubic_min(a_prev, f_prev, dg_prev, a, fa, dga).clamp(a * 1.1, a * 10.0);
        (a_prev, f_prev, dg_prev) = (a, fa, dga);
        a = next;
        i += 1;
    }
    // Zoom between lo (satisfies Armijo, lowest so far) and hi.
    let (mut lo, mut hi) = (lo, hi);
    while evals < cfg.max_line_search {
        let (a_lo, a_hi) = (lo.0, hi.0);
        let width = (a_hi - a_lo).abs();
        if width < 1e-12 * a_lo.abs().max(a_hi.abs()).max(1e-300) {
            break;
        }
        let (l, h) = (a_lo.min(a_hi), a_lo.max(a_hi));
        let a = cubic_min(lo.0, lo.1, lo.2, hi.0, hi.1, hi.2).clamp(l + 0.1 * width, h - 0.1 * width);
        let (fa, dga) = eval(a, x_new, g_new, &mut evals);
        if !fa.is_finite() || !armijo(a, fa) || fa >= lo.1 {
            hi = (a, fa, dga);
        } else {
            if curvature(dga) {
                return LineSearch {
                    accepted: Some((a, fa)),
                    evals,
                };
            }
            if dga * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (a, fa, dga);
        }
    }
    // No strong-Wolfe point within the budget: accept the best Armijo point
    // if it decreased the cost, so progress is not thrown away.
    if lo.0 > 0.0 && lo.1 < f0 {
        let (fa, _) = eval(lo.0, x_new, g_new, &mut evals);
        return LineSearch {
            accepted: Some((lo.0, fa)),
            evals,
        };
    }
    LineSearch {
        accepted: None,
        evals,
    }
}

/// Minimiser of the cubic through (a, fa, ga) and (b, fb, gb); the midpoint
/// when the cubic has none.
fn cubic_min(a: f64, fa: f64, ga: f64, b: f64, fb: f64, gb: f64) -> f64 {
    let d1 = ga + gb - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - ga * gb;
    if disc < 0.0 || !disc.is_finite() || a == b {
        return 0.5 * (a + b);
    }
    let d2 = (b - a).signum() * disc.sqrt();
    let t = b - (b - a) * (gb + d2 - d1) / (gb - ga + 2.0 * d2);
    if t.is_finite() {
        t
    } else {
        0.5 * (a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f32], g: &mut [f32]) -> f64 {
        let n = x.len();
        g.fill(0.0);
        let mut f = 0.0f64;
        for i in 0..n - 1 {
            let (a, b) = (x[i] as f64, x[i + 1] as f64);
            f += 100.0 * (b - a * a).powi(2) + (1.0 - a).powi(2);
            g[i] += (-400.0 * a * (b - a * a) - 2.0 * (1.0 - a)) as f32;
            g[i + 1] += (200.0 * (b - a * a)) as f32;
        }
        f
    }

    #[test]
    fn finds_the_minimum_of_rosenbrock() {
        for n in [2, 10] {
            let mut x: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { -1.2 } else { 1.0 }).collect();
            let cfg = LbfgsConfig {
                max_iter: 500,
                grad_tol: 1e-4,
                cost_tol: 0.0,
                ..LbfgsConfig::default()
            };
            let r = minimize(&mut x, rosenbrock, &cfg, &mut |_| {});
            assert!(x.iter().all(|&v| (v - 1.0).abs() < 2e-3), "n={n}: {x:?} {r:?}");
            assert!(r.cost < 1e-5, "{r:?}");
        }
    }

    #[test]
    fn solves_a_quadratic_to_its_known_minimum() {
        // f = ½ Σ a_i (x_i − c_i)² + ½ (x_0 − x_1)² with a = (1, 10, 100),
        // c = (1, −2, 3). By hand: x_2 = 3, and ∂f/∂x_0 = ∂f/∂x_1 = 0 give
        // 2x_0 − x_1 = 1 and 11x_1 − x_0 = −20.
        let (a, c) = ([1.0f64, 10.0, 100.0], [1.0f64, -2.0, 3.0]);
        let f = |x: &[f32], g: &mut [f32]| {
            let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let mut v = 0.5 * (x[0] - x[1]).powi(2);
            for i in 0..3 {
                v += 0.5 * a[i] * (x[i] - c[i]).powi(2);
                g[i] = (a[i] * (x[i] - c[i])) as f32;
            }
            g[0] += (x[0] - x[1]) as f32;
            g[1] -= (x[0] - x[1]) as f32;
            v
        };
        // 2x₀ − x₁ = 1 and −x₀ + 11x₁ = −20 give x₀ = −9/21, x₁ = −39/21.
        let want = [-9.0 / 21.0, -39.0 / 21.0, 3.0];
        let mut x = vec![0.0f32; 3];
        let cfg = LbfgsConfig {
            grad_tol: 1e-6,
            cost_tol: 0.0,
            ..LbfgsConfig::default()
        };
        let r = minimize(&mut x, f, &cfg, &mut |_| {});
        for i in 0..3 {
            assert!((x[i] as f64 - want[i]).abs() < 1e-5, "{x:?} {r:?}");
        }
        assert_eq!(r.stop, Stop::GradientTolerance);
        assert!(r.iterations <= 20, "a 3-d quadratic needs few iterations: {r:?}");
    }
}
