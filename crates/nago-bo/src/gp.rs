//! A Gaussian process with a Matérn-5/2 ARD kernel and fitted Gaussian noise.
//!
//! Inputs live in the unit cube; outputs are standardised (zero mean, unit variance) before
//! fitting, so the same priors suit every objective. Hyperparameters (one lengthscale per
//! input, signal variance, noise variance) are fitted by maximising the log marginal
//! likelihood plus weak log-normal priors (which keep fits sane on the few points of an early
//! search) with L-BFGS on the log-parameters, from several deterministic starts.
//!
//! The fitted state (data + hyperparameters) serialises with serde; the Cholesky factor is
//! recomputed on load (O(n³), no optimisation), so `nago-propose` reuses `nago-update`'s fit.
//! All linear algebra is faer's (Cholesky, triangular solves, inverse), run sequentially so
//! results are bit-for-bit reproducible.

use crate::BoError;
use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Par, Side};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

const SQRT5: f64 = 2.236_067_977_499_79;
/// Smallest noise variance (standardised units); also the jitter floor.
const MIN_NOISE: f64 = 1e-6;
/// Prior on log-lengthscales: N(ln 0.5, 1.5²).
const LS_PRIOR: (f64, f64) = (-std::f64::consts::LN_2, 1.5);
/// Prior on the log signal variance: N(0, 1).
const SF_PRIOR: (f64, f64) = (0.0, 1.0);
/// Prior on the log noise variance: N(ln 1e-3, 2²).
const SN_PRIOR: (f64, f64) = (-6.907_755_278_982_137, 2.0);

/// A fitted GP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gp {
    /// Training inputs (unit cube).
    pub x: Vec<Vec<f64>>,
    /// Standardised training outputs.
    pub y: Vec<f64>,
    /// Mean removed before standardising.
    pub y_mean: f64,
    /// Scale divided out when standardising.
    pub y_std: f64,
    /// Lengthscales, one per input dimension.
    pub lengthscales: Vec<f64>,
    /// Signal variance (standardised units).
    pub signal_var: f64,
    /// Noise variance (standardised units).
    pub noise_var: f64,
    /// Log marginal likelihood at the fitted hyperparameters (absent when not fitted).
    pub log_likelihood: Option<f64>,
    #[serde(skip)]
    cache: Option<Cache>,
}

#[derive(Debug, Clone)]
struct Cache {
    l: Mat<f64>,
    alpha: Vec<f64>,
}

/// Hyperparameters as one vector of logs: `[ln ℓ_1..ln ℓ_d, ln σ_f², ln σ_n²]`.
fn unpack(theta: &[f64], d: usize) -> (Vec<f64>, f64, f64) {
    let ls = theta[..d].iter().map(|v| v.exp()).collect();
    (ls, theta[d].exp(), theta[d + 1].exp().max(MIN_NOISE))
}

fn matern(r: f64, sf2: f64) -> f64 {
    sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * (-SQRT5 * r).exp()
}

fn scaled_dist2(a: &[f64], b: &[f64], ls: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .zip(ls)
        .map(|((x, y), l)| ((x - y) / l).powi(2))
        .sum()
}

fn kernel_matrix(x: &[Vec<f64>], ls: &[f64], sf2: f64, noise: f64) -> Mat<f64> {
    let n = x.len();
    let mut k = Mat::<f64>::zeros(n, n);
    for i in 0..n {
        for j in 0..=i {
            let v = matern(scaled_dist2(&x[i], &x[j], ls).sqrt(), sf2);
            k[(i, j)] = v;
            k[(j, i)] = v;
        }
        k[(i, i)] += noise;
    }
    k
}

/// Log marginal likelihood, its gradient w.r.t. the log-parameters, or `None` when the kernel
/// matrix is not positive definite.
fn lml_and_grad(x: &[Vec<f64>], y: &[f64], theta: &[f64]) -> Option<(f64, Vec<f64>)> {
    let n = x.len();
    let d = theta.len() - 2;
    let (ls, sf2, sn2) = unpack(theta, d);
    let k = kernel_matrix(x, &ls, sf2, sn2);
    let llt = k.llt(Side::Lower).ok()?;
    let ymat = Mat::<f64>::from_fn(n, 1, |i, _| y[i]);
    let alpha = llt.solve(&ymat);
    let l = llt.L();
    let logdet: f64 = (0..n).map(|i| l[(i, i)].ln()).sum::<f64>() * 2.0;
    let fit: f64 = (0..n).map(|i| y[i] * alpha[(i, 0)]).sum();
    let lml = -0.5 * fit - 0.5 * logdet - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
    if !lml.is_finite() {
        return None;
    }
    let kinv = llt.inverse();
    // W = αα^T − K^{-1}; ∂lml/∂θ = ½ tr(W ∂K/∂θ).
    let mut g = vec![0.0; d + 2];
    for i in 0..n {
        for j in 0..i {
            let w = alpha[(i, 0)] * alpha[(j, 0)] - kinv[(i, j)];
            let r = scaled_dist2(&x[i], &x[j], &ls).sqrt();
            let e = (-SQRT5 * r).exp();
            let kij = sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * e;
            // Off-diagonal pairs count twice (symmetry), times ½.
            g[d] += w * kij;
            let common = w * sf2 * 5.0 / 3.0 * (1.0 + SQRT5 * r) * e;
            for (q, gq) in g[..d].iter_mut().enumerate() {
                let dq = (x[i][q] - x[j][q]) / ls[q];
                *gq += common * dq * dq;
            }
        }
        let w = alpha[(i, 0)] * alpha[(i, 0)] - kinv[(i, i)];
        g[d] += 0.5 * w * sf2;
        g[d + 1] += 0.5 * w * sn2;
    }
    Some((lml, g))
}

fn log_prior(theta: &[f64]) -> (f64, Vec<f64>) {
    let d = theta.len() - 2;
    let mut lp = 0.0;
    let mut g = vec![0.0; theta.len()];
    for (i, t) in theta.iter().enumerate() {
        let (mu, s) = if i < d {
            LS_PRIOR
        } else if i == d {
            SF_PRIOR
        } else {
            SN_PRIOR
        };
        lp -= 0.5 * ((t - mu) / s).powi(2);
        g[i] = -(t - mu) / (s * s);
    }
    (lp, g)
}

/// How to fit.
#[derive(Debug, Clone, Copy)]
pub struct GpFitOptions {
    /// Optimiser starts (the first is a fixed default, the others drawn from the priors).
    pub restarts: usize,
    /// L-BFGS iterations per start.
    pub max_iter: usize,
    /// Seed of the random starts.
    pub seed: u64,
}

impl Default for GpFitOptions {
    fn default() -> Self {
        GpFitOptions {
            restarts: 4,
            max_iter: 80,
            seed: 0,
        }
    }
}

impl Gp {
    /// Fits a GP to `(x, y)`: standardises `y`, then maximises the penalised marginal
    /// likelihood from `opts.restarts` starts and keeps the best.
    pub fn fit(x: Vec<Vec<f64>>, y: &[f64], opts: GpFitOptions) -> Result<Gp, BoError> {
        let n = x.len();
        if n == 0 || n != y.len() {
            return Err(BoError::Invalid(format!(
                "GP fit needs as many outputs as inputs (≥ 1), got {n} inputs and {} outputs",
                y.len()
            )));
        }
        let d = x[0].len();
        if x.iter().any(|r| r.len() != d) {
            return Err(BoError::Invalid("GP inputs of different lengths".into()));
        }
        if y.iter().any(|v| !v.is_finite()) || x.iter().flatten().any(|v| !v.is_finite()) {
            return Err(BoError::Invalid("GP data contains NaN or infinity".into()));
        }
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64;
        let y_std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_std).collect();

        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut normal = || {
            // Box–Muller from two uniforms (deterministic given the seed).
            let u1 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            (-2.0 * (u1.max(1e-300)).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let mut best: Option<(Vec<f64>, f64)> = None;
        for r in 0..opts.restarts.max(1) {
            let theta0: Vec<f64> = if r == 0 {
                let mut t = vec![LS_PRIOR.0; d];
                t.push(0.0);
                t.push((1e-2f64).ln());
                t
            } else {
                let mut t: Vec<f64> = (0..d).map(|_| LS_PRIOR.0 + LS_PRIOR.1 * normal()).collect();
                t.push(SF_PRIOR.0 + 0.5 * normal());
                t.push(-4.0 + 1.5 * normal());
                t
            };
            let obj = |t: &[f64]| {
                let (l, g) = lml_and_grad(&x, &ys, t)?;
                let (lp, gp) = log_prior(t);
                Some((
                    -(l + lp),
                    g.iter().zip(&gp).map(|(a, b)| -(a + b)).collect(),
                ))
            };
            if let Some((t, v)) = crate::lbfgs::minimize(obj, theta0, opts.max_iter) {
                if best.as_ref().is_none_or(|(_, bv)| v < *bv) {
                    best = Some((t, v));
                }
            }
        }
        let (theta, _) = best.ok_or_else(|| {
            BoError::NotPositiveDefinite(format!("no hyperparameter start worked on {n} points"))
        })?;
        let (lengthscales, signal_var, noise_var) = unpack(&theta, d);
        let log_likelihood = lml_and_grad(&x, &ys, &theta)
            .map(|v| v.0)
            .filter(|v| v.is_finite());
        let mut gp = Gp {
            x,
            y: ys,
            y_mean,
            y_std,
            lengthscales,
            signal_var,
            noise_var,
            log_likelihood,
            cache: None,
        };
        gp.prepare()?;
        Ok(gp)
    }

    /// A GP with the given hyperparameters (no fitting), e.g. for tests; `y` is standardised
    /// with `y_mean` and `y_std`.
    pub fn with_hyperparameters(
        x: Vec<Vec<f64>>,
        y: &[f64],
        y_mean: f64,
        y_std: f64,
        lengthscales: Vec<f64>,
        signal_var: f64,
        noise_var: f64,
    ) -> Result<Gp, BoError> {
        let ys = y.iter().map(|v| (v - y_mean) / y_std).collect();
        let mut gp = Gp {
            x,
            y: ys,
            y_mean,
            y_std,
            lengthscales,
            signal_var,
            noise_var,
            log_likelihood: None,
            cache: None,
        };
        gp.prepare()?;
        Ok(gp)
    }

    /// Factorises the kernel matrix (after deserialising, or after adding points). Adds
    /// growing jitter if the matrix is numerically singular.
    pub fn prepare(&mut self) -> Result<(), BoError> {
        let n = self.x.len();
        let mut jitter = 0.0;
        for _ in 0..6 {
            let k = kernel_matrix(
                &self.x,
                &self.lengthscales,
                self.signal_var,
                self.noise_var + jitter,
            );
            if let Ok(llt) = k.llt(Side::Lower) {
                let ymat = Mat::<f64>::from_fn(n, 1, |i, _| self.y[i]);
                let a = llt.solve(&ymat);
                self.cache = Some(Cache {
                    l: llt.L().to_owned(),
                    alpha: (0..n).map(|i| a[(i, 0)]).collect(),
                });
                return Ok(());
            }
            jitter = if jitter == 0.0 { 1e-8 } else { jitter * 100.0 };
        }
        Err(BoError::NotPositiveDefinite(format!(
            "{n} points, noise {}",
            self.noise_var
        )))
    }

    /// Number of training points.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Whether the GP has no data.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// Posterior mean and variance of the latent function (no observation noise) at each
    /// point, in the original output units.
    pub fn predict(&self, xs: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let c = self.cache.as_ref().expect("Gp::prepare was called");
        let n = self.x.len();
        let m = xs.len();
        let mut ks = Mat::<f64>::zeros(n, m);
        for j in 0..m {
            for i in 0..n {
                ks[(i, j)] = matern(
                    scaled_dist2(&self.x[i], &xs[j], &self.lengthscales).sqrt(),
                    self.signal_var,
                );
            }
        }
        let mut mean = vec![0.0; m];
        for (j, mj) in mean.iter_mut().enumerate() {
            let s: f64 = (0..n).map(|i| ks[(i, j)] * c.alpha[i]).sum();
            *mj = s * self.y_std + self.y_mean;
        }
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            c.l.as_ref(),
            ks.as_mut(),
            Par::Seq,
        );
        let var = (0..m)
            .map(|j| {
                let s: f64 = (0..n).map(|i| ks[(i, j)] * ks[(i, j)]).sum();
                ((self.signal_var - s).max(1e-12)) * self.y_std * self.y_std
            })
            .collect();
        (mean, var)
    }

    /// The same GP (same hyperparameters and standardisation) with extra observations, e.g.
    /// fantasies of pending points.
    pub fn condition_on(&self, xs: &[Vec<f64>], ys: &[f64]) -> Result<Gp, BoError> {
        let mut g = self.clone();
        for (x, y) in xs.iter().zip(ys) {
            g.x.push(x.clone());
            g.y.push((y - self.y_mean) / self.y_std);
        }
        g.prepare()?;
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posterior_by_hand_one_point() {
        // One observation y=2 at x=0, ℓ=1, σ_f²=1, σ_n²=0.01, no standardisation.
        // At x*=0.5: r=0.5, k = (1+√5/2+5/12)e^{-√5/2}; mean = 2k/1.01; var = 1 − k²/1.01.
        let gp = Gp::with_hyperparameters(vec![vec![0.0]], &[2.0], 0.0, 1.0, vec![1.0], 1.0, 0.01)
            .unwrap();
        let r: f64 = 0.5;
        let k = (1.0 + 5f64.sqrt() * r + 5.0 / 3.0 * r * r) * (-(5f64.sqrt()) * r).exp();
        let (m, v) = gp.predict(&[vec![0.5], vec![0.0]]);
        assert!(
            (m[0] - 2.0 * k / 1.01).abs() < 1e-12,
            "{} vs {}",
            m[0],
            2.0 * k / 1.01
        );
        assert!((v[0] - (1.0 - k * k / 1.01)).abs() < 1e-12);
        // At the data point: mean 2/1.01, variance 1 − 1/1.01.
        assert!((m[1] - 2.0 / 1.01).abs() < 1e-12);
        assert!((v[1] - (1.0 - 1.0 / 1.01)).abs() < 1e-12);
    }

    #[test]
    fn posterior_by_hand_two_points() {
        // x = 0, 1 with y = 1, −1, ℓ = 1, σ_f² = 1, σ_n² = 0.1: K = [[1.1, c], [c, 1.1]],
        // c = k(1). At x* = 0 the mean is k*ᵀ K⁻¹ y with k* = (1, c).
        let c = (1.0 + 5f64.sqrt() + 5.0 / 3.0) * (-(5f64.sqrt())).exp();
        let det = 1.1 * 1.1 - c * c;
        // K⁻¹y with y = (1, −1).
        let a = [(1.1 + c) / det, (-c - 1.1) / det];
        let want_mean = a[0] + c * a[1];
        let kinv_k = [(1.1 - c * c) / det, (-c + 1.1 * c) / det];
        let want_var = 1.0 - (kinv_k[0] + c * kinv_k[1]);
        let gp = Gp::with_hyperparameters(
            vec![vec![0.0], vec![1.0]],
            &[1.0, -1.0],
            0.0,
            1.0,
            vec![1.0],
            1.0,
            0.1,
        )
        .unwrap();
        let (m, v) = gp.predict(&[vec![0.0]]);
        assert!((m[0] - want_mean).abs() < 1e-12);
        assert!((v[0] - want_var).abs() < 1e-12);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<Vec<f64>> = (0..7)
            .map(|i| vec![i as f64 / 7.0, ((i * 3) % 7) as f64 / 7.0])
            .collect();
        let y: Vec<f64> = x.iter().map(|p| (6.0 * p[0]).sin() + p[1]).collect();
        let theta = vec![-0.5, 0.3, 0.2, -3.0];
        let (_, g) = lml_and_grad(&x, &y, &theta).unwrap();
        for i in 0..theta.len() {
            let h = 1e-6;
            let mut tp = theta.clone();
            tp[i] += h;
            let mut tm = theta.clone();
            tm[i] -= h;
            let fd = (lml_and_grad(&x, &y, &tp).unwrap().0 - lml_and_grad(&x, &y, &tm).unwrap().0)
                / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-5 * fd.abs().max(1.0),
                "{i}: {fd} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn fit_learns_a_smooth_function_and_ignores_a_dummy_input() {
        let x = crate::design::sobol(0, 32, 2, 1).unwrap();
        let y: Vec<f64> = x.iter().map(|p| (5.0 * p[0]).sin()).collect();
        let gp = Gp::fit(x, &y, GpFitOptions::default()).unwrap();
        let test = crate::design::sobol(100, 20, 2, 9).unwrap();
        let (m, v) = gp.predict(&test);
        for (p, (mi, vi)) in test.iter().zip(m.iter().zip(&v)) {
            assert!((mi - (5.0 * p[0]).sin()).abs() < 0.05, "{p:?}: {mi}");
            assert!(*vi < 0.01);
        }
        // The irrelevant input gets a much longer lengthscale.
        assert!(
            gp.lengthscales[1] > 3.0 * gp.lengthscales[0],
            "{:?}",
            gp.lengthscales
        );
        assert!(gp.noise_var < 1e-2);
        // Deterministic.
        let x2 = crate::design::sobol(0, 32, 2, 1).unwrap();
        let gp2 = Gp::fit(x2, &y, GpFitOptions::default()).unwrap();
        assert_eq!(gp.lengthscales, gp2.lengthscales);
    }

    #[test]
    fn duplicates_and_constant_outputs_do_not_break_the_fit() {
        let x = vec![vec![0.5, 0.5]; 5];
        let y = vec![1.0; 5];
        let gp = Gp::fit(x, &y, GpFitOptions::default()).unwrap();
        let (m, v) = gp.predict(&[vec![0.5, 0.5], vec![0.0, 1.0]]);
        assert!(m.iter().all(|v| v.is_finite()) && v.iter().all(|v| v.is_finite()));
        assert!((m[0] - 1.0).abs() < 1e-6);
        assert!(Gp::fit(vec![vec![0.0]], &[f64::NAN], GpFitOptions::default()).is_err());
    }

    #[test]
    fn serde_round_trip_predicts_the_same() {
        let x = crate::design::sobol(0, 10, 3, 2).unwrap();
        let y: Vec<f64> = x.iter().map(|p| p[0] * p[1] - p[2]).collect();
        let gp = Gp::fit(x, &y, GpFitOptions::default()).unwrap();
        let text = serde_json::to_string(&gp).unwrap();
        let mut back: Gp = serde_json::from_str(&text).unwrap();
        back.prepare().unwrap();
        let t = crate::design::sobol(50, 5, 3, 2).unwrap();
        assert_eq!(gp.predict(&t), back.predict(&t));
    }
}
