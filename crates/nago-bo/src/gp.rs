//! A Gaussian process with a Matérn-5/2 ARD kernel and fitted Gaussian noise.
//!
//! Inputs live in the unit cube; outputs are standardised (unit variance) before fitting, so
//! the same priors suit every objective. The constant prior mean (what the posterior mean
//! reverts to far from the data) is the data mean plus [`GpFitOptions::prior_mean`] standard
//! deviations, optionally plus a linear trend in x ([`GpFitOptions::trend`]): for the
//! objectives (minimised) a trend + [`crate::defaults::PRIOR_MEAN`] = 2 sd, a pessimistic
//! mean, so an unexplored corner of the cube does not look as promising as the
//! average observation with the prior's full variance (the acquisition's pull to the cube's
//! faces and corners, see [`crate::defaults::PRIOR_MEAN`]). Hyperparameters (one lengthscale per
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
pub(crate) const SN_PRIOR: (f64, f64) = (-6.907_755_278_982_137, 2.0);

/// A fitted GP.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gp {
    /// Training inputs (unit cube).
    pub x: Vec<Vec<f64>>,
    /// Standardised training outputs.
    pub y: Vec<f64>,
    /// The constant of the prior mean (original units), removed before standardising: the
    /// data mean plus [`GpFitOptions::prior_mean`] standard deviations (`y_std`), the trend's
    /// intercept at x = 0 included when there is one ([`Gp::trend`]).
    pub y_mean: f64,
    /// Scale divided out when standardising.
    pub y_std: f64,
    /// The prior mean's linear trend (original units per unit of each input; empty: a
    /// constant prior mean): the prior mean at x is `y_mean + trend·x`.
    #[serde(default)]
    pub trend: Vec<f64>,
    /// Lengthscales, one per input dimension.
    pub lengthscales: Vec<f64>,
    /// Signal variance (standardised units).
    pub signal_var: f64,
    /// Noise variance (standardised units).
    pub noise_var: f64,
    /// Per-point multipliers of [`Gp::noise_var`] for the first training points
    /// (heteroscedastic noise where replicated points show it, [`crate::noise`]); empty:
    /// every point carries `noise_var`. Points beyond its length carry 1 (believed points
    /// [`BELIEVED_NOISE`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noise_scale: Vec<f64>,
    /// Log marginal likelihood at the fitted hyperparameters (absent when not fitted).
    pub log_likelihood: Option<f64>,
    /// Points the hyperparameters were fitted on (0: unknown, i.e. all; fewer than the
    /// training points beyond [`GpFitOptions::max_fit_points`]).
    #[serde(default)]
    pub fit_points: usize,
    /// Index of the first *believed* point ([`Gp::believe`]): points from here on are
    /// noise-free observations of the latent function (a kriging believer's fantasies), the
    /// points before it carry [`Gp::noise_var`].
    #[serde(skip)]
    believed_from: Option<usize>,
    #[serde(skip)]
    cache: Option<Cache>,
}

/// The noise variance (standardised) of a believed point: the believer's value is the
/// posterior mean of the latent function, not another noisy observation. With the fitted
/// noise on its diagonal, a fantasy barely lowered the variance of a noisy objective where it
/// was placed (by v·σ²/(v + σ²) from v, with σ² ≫ v once the region has data), so the next
/// slot of the batch chose the same spot: on ZDT1 with 10 % noise the batches were 4 copies
/// of one point within 0.02.
pub const BELIEVED_NOISE: f64 = MIN_NOISE;

#[derive(Debug, Clone)]
struct Cache {
    l: Mat<f64>,
    alpha: Vec<f64>,
    /// Jitter added to the diagonal beyond the noise (0 unless the matrix was singular).
    jitter: f64,
    /// Which factorisation this factor extends: a fresh value for every [`Gp::prepare`],
    /// kept by [`Gp::condition_on`] when it only appends rows, so a [`PoolPosterior`] knows
    /// whether its rows are still the leading rows of this factor. Never part of any result.
    lineage: u64,
}

/// Source of [`Cache::lineage`] values.
static LINEAGE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_lineage() -> u64 {
    LINEAGE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Hyperparameters as one vector of logs: `[ln ℓ_1..ln ℓ_d, ln σ_f², ln σ_n²]`.
/// The noise variance is `exp(θ) + MIN_NOISE`: a smooth floor, so the likelihood stays
/// differentiable (a hard clamp made the gradient lie at the floor, where noiseless data put
/// it, and stalled the line search).
fn unpack(theta: &[f64], d: usize) -> (Vec<f64>, f64, f64) {
    let ls = theta[..d].iter().map(|v| v.exp()).collect();
    (ls, theta[d].exp(), theta[d + 1].exp() + MIN_NOISE)
}

fn matern(r: f64, sf2: f64) -> f64 {
    sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r * r) * exp_neg(-SQRT5 * r)
}

/// `e^x` for `x ≤ 0` (0 below −708), branch-free so that kernel loops vectorise: `x = k ln 2
/// + r` with `|r| ≤ ln 2 / 2`, a degree-13 Taylor polynomial of `e^r` (truncation below
/// 1e-17 relative), times `2^k` built from the exponent bits. Within a few ulp of
/// `f64::exp`; the kernel's exponentials dominated the cost of a prediction.
#[inline(always)]
fn exp_neg(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52: adding it rounds to an integer
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.max(-708.0);
    let kk = x * std::f64::consts::LOG2_E + MAGIC;
    let k = kk - MAGIC;
    let r = x - k * LN2_HI - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // The integer k sits in the low bits of kk; 2^k has exponent bits k + 1023.
    let ki = (kk.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    p * f64::from_bits((ki.wrapping_add(1023) as u64) << 52)
}

/// `col[i] = k(x_i, e)` for the scaled training inputs `tr` (by dimension) and a scaled
/// point `e`; `col` starts at zero. With AVX2 where the CPU has it (the same IEEE operations
/// in the same order, no fused multiply-adds: the same bits as without).
fn kernel_column(col: &mut [f64], tr: &[Vec<f64>], e: &[f64], sf2: f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            unsafe { kernel_column_avx2(col, tr, e, sf2) };
            return;
        }
    }
    kernel_column_plain(col, tr, e, sf2)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn kernel_column_avx2(col: &mut [f64], tr: &[Vec<f64>], e: &[f64], sf2: f64) {
    kernel_column_plain(col, tr, e, sf2)
}

#[inline(always)]
fn kernel_column_plain(col: &mut [f64], tr: &[Vec<f64>], e: &[f64], sf2: f64) {
    for (t, eq) in tr.iter().zip(e) {
        for (v, a) in col.iter_mut().zip(t) {
            *v += (a - eq) * (a - eq);
        }
    }
    for v in col.iter_mut() {
        *v = matern(v.sqrt(), sf2);
    }
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

/// Squared per-dimension differences of every pair `i > j` of training inputs, computed once
/// per fit and shared by every objective's likelihood evaluations (the inputs are the same).
/// Pairs are stored column by column of the lower triangle (j, then i > j), the order in
/// which the column-major kernel matrix is filled.
#[derive(Debug, Clone)]
pub struct PairDiffs {
    n: usize,
    d: usize,
    v: Vec<f64>,
}

impl PairDiffs {
    /// The differences of the rows of `x`.
    pub fn new(x: &[Vec<f64>]) -> PairDiffs {
        let n = x.len();
        let d = x.first().map_or(0, |r| r.len());
        let mut v = Vec::with_capacity(n * n.saturating_sub(1) / 2 * d);
        for j in 0..n {
            for i in j + 1..n {
                v.extend(x[i].iter().zip(&x[j]).map(|(a, b)| (a - b) * (a - b)));
            }
        }
        PairDiffs { n, d, v }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// The ridge penalty of the prior mean's linear trend ([`GpFitOptions::trend`]): the
/// precision of a N(0, 1) prior on each slope (standardised output per unit input).
pub const TREND_RIDGE: f64 = 1.0;

/// `a·b` over the shorter of the two (an empty trend is 0).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

/// The prior mean (see [`Gp::trend`]): `y_mean` (original units, the constant at x = 0) and
/// the trend. Without [`GpFitOptions::trend`], the data mean + `prior_mean` sd. With it, a
/// ridge regression of the standardised outputs on the centred inputs (penalty
/// [`TREND_RIDGE`], i.e. a N(0, 1) prior on each slope, in sd per unit of the cube), plus the
/// same offset of `prior_mean` data sd: the trend tells the model which way the objective
/// falls (towards a face of the cube on ZDT), the offset keeps unexplored regions
/// pessimistic relative to it (an interior optimum, as on DTLZ2, has a flat trend).
fn prior_mean_fit(
    x: &[Vec<f64>],
    y: &[f64],
    y_mean: f64,
    y_std: f64,
    opts: &GpFitOptions,
) -> (f64, Vec<f64>) {
    let n = y.len();
    let d = x.first().map_or(0, |r| r.len());
    let constant = (y_mean + opts.prior_mean * y_std, Vec::new());
    if !opts.trend || n < 2 || d == 0 {
        return constant;
    }
    let z: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_std).collect();
    let mut xbar = vec![0.0; d];
    for r in x {
        for (m, v) in xbar.iter_mut().zip(r) {
            *m += v / n as f64;
        }
    }
    let a = Mat::<f64>::from_fn(d, d, |i, j| {
        let s: f64 = x.iter().map(|r| (r[i] - xbar[i]) * (r[j] - xbar[j])).sum();
        s + if i == j { TREND_RIDGE } else { 0.0 }
    });
    let rhs = Mat::<f64>::from_fn(d, 1, |i, _| {
        x.iter().zip(&z).map(|(r, zi)| (r[i] - xbar[i]) * zi).sum()
    });
    let Ok(llt) = a.llt(Side::Lower) else {
        return constant;
    };
    let b = llt.solve(&rhs);
    let b: Vec<f64> = (0..d).map(|i| b[(i, 0)]).collect();
    let off = opts.prior_mean - dot(&b, &xbar);
    (y_mean + off * y_std, b.iter().map(|v| v * y_std).collect())
}

/// Checks per-point noise scales of `n` points: positive and finite, exactly `n` of them
/// (`exact`, a fit) or at most `n` (a loaded model, whose later points have scale 1).
fn check_noise_scale(scales: &[f64], n: usize, exact: bool) -> Result<(), BoError> {
    let count_ok = if exact {
        scales.len() == n
    } else {
        scales.len() <= n
    };
    if count_ok && scales.iter().all(|v| v.is_finite() && *v > 0.0) {
        return Ok(());
    }
    let need = if exact { "" } else { "at most " };
    Err(BoError::Invalid(format!(
        "GP noise scales: need {need}{n} positive finite values, got {} ({:?}…)",
        scales.len(),
        &scales[..scales.len().min(4)]
    )))
}

/// Log marginal likelihood, its gradient w.r.t. the log-parameters, or `None` when the kernel
/// matrix is not positive definite.
#[cfg(test)]
fn lml_and_grad(x: &[Vec<f64>], y: &[f64], theta: &[f64]) -> Option<(f64, Vec<f64>)> {
    lml_and_grad_pd(&PairDiffs::new(x), y, theta, &[])
}

/// The log marginal likelihood and gradient on precomputed pair differences: one kernel build (keeping each pair's
/// kernel value and derivative factor), one Cholesky, one inverse, then O(n²d) for the
/// gradient. `scale`: per-point multipliers of the noise variance (empty: all 1).
fn lml_and_grad_pd(
    pd: &PairDiffs,
    y: &[f64],
    theta: &[f64],
    scale: &[f64],
) -> Option<(f64, Vec<f64>)> {
    let n = pd.n;
    let d = pd.d;
    let (ls, sf2, sn2) = unpack(theta, d);
    let inv2: Vec<f64> = ls.iter().map(|l| 1.0 / (l * l)).collect();
    let npairs = n * n.saturating_sub(1) / 2;
    let mut kp = vec![0.0; npairs];
    let mut cp = vec![0.0; npairs];
    let mut k = Mat::<f64>::zeros(n, n);
    // Only the lower triangle is filled (the Cholesky reads no more).
    let mut p = 0;
    let scale_at = |j: usize| scale.get(j).copied().unwrap_or(1.0);
    for j in 0..n {
        // sn2 · 1 is sn2 exactly: without scales, the homoscedastic bits.
        k[(j, j)] = sf2 + sn2 * scale_at(j);
        for i in j + 1..n {
            let dv = &pd.v[p * d..(p + 1) * d];
            let r2: f64 = dv.iter().zip(&inv2).map(|(a, b)| a * b).sum();
            let r = r2.sqrt();
            let e = exp_neg(-SQRT5 * r);
            let kij = sf2 * (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * e;
            kp[p] = kij;
            cp[p] = sf2 * 5.0 / 3.0 * (1.0 + SQRT5 * r) * e;
            k[(i, j)] = kij;
            p += 1;
        }
    }
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
    let mut gl = vec![0.0; d];
    let mut p = 0;
    for j in 0..n {
        let aj = alpha[(j, 0)];
        for i in j + 1..n {
            let w = alpha[(i, 0)] * aj - kinv[(i, j)];
            // Off-diagonal pairs count twice (symmetry), times ½.
            g[d] += w * kp[p];
            let c = w * cp[p];
            let dv = &pd.v[p * d..(p + 1) * d];
            for (gq, dq) in gl.iter_mut().zip(dv) {
                *gq += c * dq;
            }
            p += 1;
        }
        let w = aj * aj - kinv[(j, j)];
        g[d] += 0.5 * w * sf2;
        g[d + 1] += 0.5 * w * (sn2 - MIN_NOISE) * scale_at(j);
    }
    for q in 0..d {
        g[q] = gl[q] * inv2[q];
    }
    Some((lml, g))
}

fn log_prior(theta: &[f64], noise_prior: (f64, f64)) -> (f64, Vec<f64>) {
    let d = theta.len() - 2;
    let mut lp = 0.0;
    let mut g = vec![0.0; theta.len()];
    for (i, t) in theta.iter().enumerate() {
        let (mu, s) = if i < d {
            LS_PRIOR
        } else if i == d {
            SF_PRIOR
        } else {
            noise_prior
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
    /// With a warm start, the warm start comes first and `restarts` = 0 means it alone.
    pub restarts: usize,
    /// L-BFGS iterations per start.
    pub max_iter: usize,
    /// Seed of the random starts.
    pub seed: u64,
    /// Most points the hyperparameters are fitted on: beyond it, they are fitted on a strided
    /// subset of at most this many points ([`fit_subset`], subset of data), and the GP then
    /// conditions on all of them. 0 = no limit.
    pub max_fit_points: usize,
    /// Prior on the log noise variance (standardised units): (mean, sd). Default
    /// N(ln 1e-3, 2²); [`crate::defaults::NOISY_NOISE_PRIOR`] for evaluations known to be
    /// noisy.
    pub noise_prior: (f64, f64),
    /// The constant prior mean, in standard deviations of the data above the data mean
    /// (0: the data mean). Default 0; the objectives' fits use
    /// [`crate::defaults::PRIOR_MEAN`] (set by [`crate::engine::FitOptions`]'s default).
    pub prior_mean: f64,
    /// A linear trend in the prior mean (ridge regression of the outputs on the inputs); the
    /// offset [`GpFitOptions::prior_mean`] still counts standard deviations of the data.
    pub trend: bool,
}

impl Default for GpFitOptions {
    fn default() -> Self {
        GpFitOptions {
            restarts: 4,
            max_iter: 80,
            seed: 0,
            max_fit_points: crate::defaults::MAX_FIT_POINTS,
            noise_prior: SN_PRIOR,
            prior_mean: 0.0,
            trend: false,
        }
    }
}

/// The indices of the points the hyperparameters are fitted on: all of them up to `max`
/// (0 = no limit), else every s-th one (0, s, 2s, …) for the smallest power of two s that
/// leaves at most `max` (so between `max`/2 and `max` points). The subset is stable as
/// observations arrive (the points of n + 4 observations are those of n plus at most a few
/// new ones until s doubles), so a warm-started fit polishes the previous optimum of almost
/// the same data instead of re-fitting a shifted subset.
pub fn fit_subset(n: usize, max: usize) -> Vec<usize> {
    if max == 0 || n <= max {
        return (0..n).collect();
    }
    let mut s = 2;
    while n.div_ceil(s) > max {
        s *= 2;
    }
    (0..n).step_by(s).collect()
}

impl Gp {
    /// Fits a GP to `(x, y)`: standardises `y`, then maximises the penalised marginal
    /// likelihood from `opts.restarts` starts and keeps the best.
    pub fn fit(x: Vec<Vec<f64>>, y: &[f64], opts: GpFitOptions) -> Result<Gp, BoError> {
        Gp::fit_from(x, y, opts, None, None, None)
    }

    /// The log-hyperparameters `[ln ℓ_1..ln ℓ_d, ln σ_f², ln σ_n²]` (a warm start for the
    /// next fit).
    pub fn theta(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self.lengthscales.iter().map(|l| l.ln()).collect();
        t.push(self.signal_var.ln());
        t.push((self.noise_var - MIN_NOISE).max(1e-12).ln());
        t
    }

    /// [`Gp::fit`] with an optional warm start (log-hyperparameters, tried first, e.g. the
    /// previous fit's [`Gp::theta`]) and optional precomputed pair differences of the fitted
    /// points (those of [`fit_subset`]`(n, opts.max_fit_points)`), shared across objectives.
    /// `noise_scale`: per-point multipliers of the fitted noise variance (one per point,
    /// positive; [`crate::noise::replicate_noise`]), `None` for homoscedastic noise.
    pub fn fit_from(
        x: Vec<Vec<f64>>,
        y: &[f64],
        opts: GpFitOptions,
        warm: Option<&[f64]>,
        pairs: Option<&PairDiffs>,
        noise_scale: Option<&[f64]>,
    ) -> Result<Gp, BoError> {
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
        if let Some(s) = noise_scale {
            check_noise_scale(s, n, true)?;
        }
        let noise_scale: Vec<f64> = noise_scale.map(<[f64]>::to_vec).unwrap_or_default();
        let warm = warm.filter(|t| t.len() == d + 2 && t.iter().all(|v| v.is_finite()));
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64;
        let y_std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
        let (y_mean, trend) = prior_mean_fit(&x, y, y_mean, y_std, &opts);
        let ys: Vec<f64> = y
            .iter()
            .zip(&x)
            .map(|(v, xi)| (v - y_mean - dot(&trend, xi)) / y_std)
            .collect();

        let sub = fit_subset(n, opts.max_fit_points);
        let own;
        let pd = match pairs {
            Some(p) if p.n == sub.len() && p.d == d => p,
            _ => {
                let xs: Vec<Vec<f64>> = sub.iter().map(|&i| x[i].clone()).collect();
                own = PairDiffs::new(&xs);
                &own
            }
        };
        let ysub: Vec<f64> = sub.iter().map(|&i| ys[i]).collect();
        let scale_sub: Vec<f64> = if noise_scale.is_empty() {
            Vec::new()
        } else {
            sub.iter().map(|&i| noise_scale[i]).collect()
        };

        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut normal = || {
            // Box–Muller from two uniforms (deterministic given the seed).
            let u1 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            (-2.0 * (u1.max(1e-300)).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let mut starts: Vec<Vec<f64>> = Vec::new();
        if let Some(w) = warm {
            starts.push(w.to_vec());
        }
        let n_cold = if warm.is_some() {
            opts.restarts
        } else {
            opts.restarts.max(1)
        };
        for r in 0..n_cold {
            starts.push(if r == 0 {
                let mut t = vec![LS_PRIOR.0; d];
                t.push(0.0);
                t.push((1e-2f64).ln());
                t
            } else {
                let mut t: Vec<f64> = (0..d).map(|_| LS_PRIOR.0 + LS_PRIOR.1 * normal()).collect();
                t.push(SF_PRIOR.0 + 0.5 * normal());
                t.push(-4.0 + 1.5 * normal());
                t
            });
        }
        let mut best: Option<(Vec<f64>, f64)> = None;
        for (si, theta0) in starts.into_iter().enumerate() {
            let obj = |t: &[f64]| {
                let (l, g) = lml_and_grad_pd(pd, &ysub, t, &scale_sub)?;
                let (lp, gp) = log_prior(t, opts.noise_prior);
                Some((
                    -(l + lp),
                    g.iter().zip(&gp).map(|(a, b)| -(a + b)).collect(),
                ))
            };
            // The warm start is the previous optimum: polished, not searched from.
            let polish = si == 0 && warm.is_some();
            if let Some((t, v)) = crate::lbfgs::minimize(obj, theta0, opts.max_iter, polish) {
                if best.as_ref().is_none_or(|(_, bv)| v < *bv) {
                    best = Some((t, v));
                }
            }
        }
        let (theta, v) = best.ok_or_else(|| {
            BoError::NotPositiveDefinite(format!("no hyperparameter start worked on {n} points"))
        })?;
        let (lengthscales, signal_var, noise_var) = unpack(&theta, d);
        // The minimised value is −(lml + log prior).
        let log_likelihood =
            Some(-v - log_prior(&theta, opts.noise_prior).0).filter(|v| v.is_finite());
        let mut gp = Gp {
            x,
            y: ys,
            y_mean,
            y_std,
            trend,
            lengthscales,
            signal_var,
            noise_var,
            noise_scale,
            log_likelihood,
            fit_points: sub.len(),
            believed_from: None,
            cache: None,
        };
        gp.prepare()?;
        Ok(gp)
    }

    /// Log marginal likelihood per fitted point (comparable across fits of different sizes).
    pub fn log_likelihood_per_point(&self) -> Option<f64> {
        let n = if self.fit_points > 0 {
            self.fit_points
        } else {
            self.x.len()
        };
        self.log_likelihood.map(|l| l / n.max(1) as f64)
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
            trend: Vec::new(),
            y_std,
            lengthscales,
            signal_var,
            noise_var,
            noise_scale: Vec::new(),
            log_likelihood: None,
            fit_points: 0,
            believed_from: None,
            cache: None,
        };
        gp.prepare()?;
        Ok(gp)
    }

    /// Factorises the kernel matrix (after deserialising, or after adding points). Adds
    /// growing jitter if the matrix is numerically singular.
    pub fn prepare(&mut self) -> Result<(), BoError> {
        let n = self.x.len();
        // Scales read from a file are checked as the fit checks them (points added by
        // `extend` after a fit have none: scale 1).
        check_noise_scale(&self.noise_scale, n, false)?;
        let mut jitter = 0.0;
        for _ in 0..6 {
            let mut k = kernel_matrix(
                &self.x,
                &self.lengthscales,
                self.signal_var,
                self.noise_var + jitter,
            );
            // Scaled and believed points: the difference from the noise added above (none
            // for a homoscedastic GP, whose bits stay those of one addition).
            for i in 0..n {
                let own = self.diag_noise(i);
                if own != self.noise_var {
                    k[(i, i)] += own - self.noise_var;
                }
            }
            if let Ok(llt) = k.llt(Side::Lower) {
                let ymat = Mat::<f64>::from_fn(n, 1, |i, _| self.y[i]);
                let a = llt.solve(&ymat);
                self.cache = Some(Cache {
                    l: llt.L().to_owned(),
                    alpha: (0..n).map(|i| a[(i, 0)]).collect(),
                    jitter,
                    lineage: next_lineage(),
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

    /// The noise variance on the diagonal of training point `i` (standardised).
    fn diag_noise(&self, i: usize) -> f64 {
        match self.believed_from {
            Some(b) if i >= b => BELIEVED_NOISE.min(self.noise_var),
            _ => self.noise_var * self.noise_scale.get(i).copied().unwrap_or(1.0),
        }
    }

    /// Number of training points.
    pub fn len(&self) -> usize {
        self.x.len()
    }

    /// Whether the GP has no data.
    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// The kernel between the training inputs and `xs` (n × m, column j for `xs[j]`), with
    /// the inputs divided by the lengthscales once, so each entry is a plain distance.
    fn cross_kernel(&self, xs: &[Vec<f64>]) -> Mat<f64> {
        let n = self.x.len();
        let inv: Vec<f64> = self.lengthscales.iter().map(|l| 1.0 / l).collect();
        // Scaled training inputs by dimension (each a contiguous row over the points), so
        // each column is built by loops over the points that vectorise.
        let tr: Vec<Vec<f64>> = inv
            .iter()
            .enumerate()
            .map(|(q, b)| self.x.iter().map(|x| x[q] * b).collect())
            .collect();
        let sf2 = self.signal_var;
        let mut ks = Mat::<f64>::zeros(n, xs.len());
        for (j, xj) in xs.iter().enumerate() {
            let col = ks
                .col_mut(j)
                .try_as_col_major_mut()
                .expect("a column is contiguous");
            let e: Vec<f64> = xj.iter().zip(&inv).map(|(a, b)| a * b).collect();
            kernel_column(col.as_slice_mut(), &tr, &e, sf2);
        }
        ks
    }

    /// The kernel between training input `i` and each of `xs` (the arithmetic of
    /// [`Gp::cross_kernel`]).
    fn cross_kernel_row(&self, i: usize, xs: &[Vec<f64>]) -> Vec<f64> {
        let inv: Vec<f64> = self.lengthscales.iter().map(|l| 1.0 / l).collect();
        let a: Vec<f64> = self.x[i].iter().zip(&inv).map(|(a, b)| a * b).collect();
        xs.iter()
            .map(|x| {
                let r2: f64 = a
                    .iter()
                    .zip(x.iter().zip(&inv))
                    .map(|(p, (q, b))| (p - q * b) * (p - q * b))
                    .sum();
                matern(r2.sqrt(), self.signal_var)
            })
            .collect()
    }

    /// The prior mean at `x` in original units (`y_mean + trend·x`): what the posterior mean
    /// reverts to far from the data, and what standardised outputs are measured from.
    pub fn prior_mean_at(&self, x: &[f64]) -> f64 {
        self.y_mean + dot(&self.trend, x)
    }

    /// Posterior mean and variance of the latent function (no observation noise) at each
    /// point, in the original output units.
    pub fn predict(&self, xs: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
        let (mean, var, _) = self.predict_rows(xs, 0..0);
        (mean, var)
    }

    /// [`Gp::predict`] plus, for each point x, the rows `rows` of `L⁻¹ k(X, x)` (`L` the
    /// Cholesky factor of the training kernel). When the last training points are believed
    /// values at points `X_b` (a noisy front's baseline, [`crate::nehvi`]), those rows of the
    /// solved column are `C⁻¹ Cov(f(X_b), f(x))` for the factor `C` of the posterior
    /// covariance at `X_b` ([`Gp::trailing_factor`]): the posterior mean at x given values
    /// `f(X_b) = μ_b + C·u` is the mean returned here plus `y_std · rowsᵀu`, and the variance
    /// returned here is already conditioned on `f(X_b)`.
    pub fn predict_rows(
        &self,
        xs: &[Vec<f64>],
        rows: std::ops::Range<usize>,
    ) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
        let c = self.cache.as_ref().expect("Gp::prepare was called");
        let m = xs.len();
        let mut ks = self.cross_kernel(xs);
        let mean: Vec<f64> = (0..m)
            .map(|j| {
                let col = ks
                    .col(j)
                    .try_as_col_major()
                    .expect("a column is contiguous");
                let s: f64 = col
                    .as_slice()
                    .iter()
                    .zip(&c.alpha)
                    .map(|(a, b)| a * b)
                    .sum();
                s * self.y_std + self.prior_mean_at(&xs[j])
            })
            .collect();
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            c.l.as_ref(),
            ks.as_mut(),
            Par::Seq,
        );
        let mut var = Vec::with_capacity(m);
        let mut tails = Vec::with_capacity(m);
        for j in 0..m {
            let col = ks
                .col(j)
                .try_as_col_major()
                .expect("a column is contiguous");
            let col = col.as_slice();
            let s: f64 = col.iter().map(|a| a * a).sum();
            var.push(((self.signal_var - s).max(1e-12)) * self.y_std * self.y_std);
            tails.push(col[rows.clone()].to_vec());
        }
        (mean, var, tails)
    }

    /// The `t × t` lower-right block of the Cholesky factor of the training kernel (rows
    /// and columns of the last `t` training points), row by row. For believed points at the
    /// end ([`Gp::believe`]) it factors their posterior covariance given the points before
    /// them (standardised units, plus [`BELIEVED_NOISE`] on the diagonal).
    pub fn trailing_factor(&self, t: usize) -> Vec<Vec<f64>> {
        let c = self.cache.as_ref().expect("Gp::prepare was called");
        let n = self.x.len();
        let t = t.min(n);
        (n - t..n)
            .map(|i| (n - t..n).map(|j| c.l[(i, j)]).collect())
            .collect()
    }

    /// The posterior at a fixed pool of points, kept so that it can follow this GP through
    /// [`Gp::condition_on`] in O(n·m) per added observation (see [`PoolPosterior`]).
    pub fn pool_posterior(&self, xs: Vec<Vec<f64>>) -> PoolPosterior {
        let c = self.cache.as_ref().expect("Gp::prepare was called");
        let n = self.x.len();
        let m = xs.len();
        let mut v = self.cross_kernel(&xs);
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            c.l.as_ref(),
            v.as_mut(),
            Par::Seq,
        );
        let mut beta = Mat::<f64>::from_fn(n, 1, |i, _| self.y[i]);
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            c.l.as_ref(),
            beta.as_mut(),
            Par::Seq,
        );
        let beta: Vec<f64> = (0..n).map(|i| beta[(i, 0)]).collect();
        let mut mean_s = vec![0.0; m];
        let mut sq = vec![0.0; m];
        for j in 0..m {
            let col = v.col(j).try_as_col_major().expect("a column is contiguous");
            let col = col.as_slice();
            mean_s[j] = col.iter().zip(&beta).map(|(a, b)| a * b).sum();
            sq[j] = col.iter().map(|a| a * a).sum();
        }
        PoolPosterior {
            xs,
            lineage: c.lineage,
            base: v,
            extra: Vec::new(),
            beta,
            mean_s,
            sq,
        }
    }

    /// The same GP (same hyperparameters and standardisation) with extra observations, e.g.
    /// fantasies of pending points. Extends the Cholesky factor by the new rows (O(n²k)
    /// instead of refactorising in O(n³)); falls back to [`Gp::prepare`] if the extension is
    /// not positive definite.
    pub fn condition_on(&self, xs: &[Vec<f64>], ys: &[f64]) -> Result<Gp, BoError> {
        self.extend(xs, ys, false)
    }

    /// [`Gp::condition_on`] for a kriging believer: `ys` are values of the latent function
    /// (its posterior mean), so the new points carry [`BELIEVED_NOISE`] instead of the fitted
    /// noise, and the variance at a believed point drops to (near) zero as it does for a
    /// noiseless objective. Points conditioned on after a believed one are believed too.
    pub fn believe(&self, xs: &[Vec<f64>], ys: &[f64]) -> Result<Gp, BoError> {
        self.extend(xs, ys, true)
    }

    fn extend(&self, xs: &[Vec<f64>], ys: &[f64], believed: bool) -> Result<Gp, BoError> {
        // A copy without the factor (it is rebuilt below; copying n² numbers only to drop
        // them cost as much as the extension).
        let mut g = Gp {
            x: self.x.clone(),
            y: self.y.clone(),
            lengthscales: self.lengthscales.clone(),
            trend: self.trend.clone(),
            noise_scale: self.noise_scale.clone(),
            cache: None,
            believed_from: if believed {
                self.believed_from.or(Some(self.x.len()))
            } else {
                self.believed_from
            },
            ..*self
        };
        if !believed && self.believed_from.is_some() && !xs.is_empty() {
            return Err(BoError::Invalid(
                "a noisy observation after a believed point".into(),
            ));
        }
        for (x, y) in xs.iter().zip(ys) {
            g.x.push(x.clone());
            g.y.push((y - self.prior_mean_at(x)) / self.y_std);
        }
        let Some(c) = self.cache.as_ref().filter(|c| c.jitter == 0.0) else {
            g.prepare()?;
            return Ok(g);
        };
        let n = self.x.len();
        let k = g.x.len() - n;
        if k == 0 {
            return Ok(g);
        }
        // B = L⁻¹ K(X, X_new) (n×k); C = chol(K(X_new, X_new) + σ²I − BᵀB).
        let mut b = Mat::<f64>::from_fn(n, k, |i, j| {
            matern(
                scaled_dist2(&self.x[i], &g.x[n + j], &self.lengthscales).sqrt(),
                self.signal_var,
            )
        });
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            c.l.as_ref(),
            b.as_mut(),
            Par::Seq,
        );
        let s = Mat::<f64>::from_fn(k, k, |i, j| {
            let kij = matern(
                scaled_dist2(&g.x[n + i], &g.x[n + j], &self.lengthscales).sqrt(),
                self.signal_var,
            ) + if i == j { g.diag_noise(n + i) } else { 0.0 };
            kij - (0..n).map(|r| b[(r, i)] * b[(r, j)]).sum::<f64>()
        });
        let Ok(cs) = s.llt(Side::Lower) else {
            g.prepare()?;
            return Ok(g);
        };
        let cl = cs.L();
        let nk = n + k;
        let mut l = Mat::<f64>::zeros(nk, nk);
        l.as_mut().submatrix_mut(0, 0, n, n).copy_from(c.l.as_ref());
        for j in 0..n {
            for i in 0..k {
                l[(n + i, j)] = b[(j, i)];
            }
        }
        l.as_mut().submatrix_mut(n, n, k, k).copy_from(cl);
        let mut a = Mat::<f64>::from_fn(nk, 1, |i, _| g.y[i]);
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            l.as_ref(),
            a.as_mut(),
            Par::Seq,
        );
        faer::linalg::triangular_solve::solve_upper_triangular_in_place(
            l.as_ref().transpose(),
            a.as_mut(),
            Par::Seq,
        );
        g.cache = Some(Cache {
            l,
            alpha: (0..nk).map(|i| a[(i, 0)]).collect(),
            jitter: 0.0,
            lineage: c.lineage,
        });
        Ok(g)
    }
}

/// The posterior of a GP at a fixed pool of points: `V = L⁻¹ K(X, pool)` and `β = L⁻¹ y` for
/// the Cholesky factor `L` of the training kernel, so mean = `Vᵀβ` and variance =
/// `σ_f² − ‖V_j‖²`. When the GP gains observations through [`Gp::condition_on`] (the
/// kriging believer of a batch), the factor only gains rows, so [`PoolPosterior::sync`]
/// appends the matching rows of `V` and `β` by forward substitution, O((n + k)·m) per
/// observation instead of a new O(n²·m) solve. The same numbers as [`Gp::predict`] up to
/// rounding.
#[derive(Debug, Clone)]
pub struct PoolPosterior {
    xs: Vec<Vec<f64>>,
    lineage: u64,
    /// `V` for the first rows (those of the factor the pool was built on).
    base: Mat<f64>,
    /// Rows of `V` appended since, one vector over the pool each.
    extra: Vec<Vec<f64>>,
    beta: Vec<f64>,
    /// `Vᵀβ` (standardised mean) and `‖V_j‖²` per pool point.
    mean_s: Vec<f64>,
    sq: Vec<f64>,
}

impl PoolPosterior {
    /// The pool's points.
    pub fn points(&self) -> &[Vec<f64>] {
        &self.xs
    }

    fn rows(&self) -> usize {
        self.base.nrows() + self.extra.len()
    }

    /// Brings the pool up to date with `gp`: appends the rows of the observations `gp` has
    /// gained since (when its factor extends the pool's), else recomputes from scratch.
    pub fn sync(&mut self, gp: &Gp) {
        let c = gp.cache.as_ref().expect("Gp::prepare was called");
        let n0 = self.base.nrows();
        if c.lineage != self.lineage || gp.x.len() < self.rows() {
            *self = gp.pool_posterior(std::mem::take(&mut self.xs));
            return;
        }
        for i in self.rows()..gp.x.len() {
            // k(x_i, pool) as one row.
            let ki = gp.cross_kernel_row(i, &self.xs);
            let lrow: Vec<f64> = (0..i).map(|j| c.l[(i, j)]).collect();
            let lii = c.l[(i, i)];
            let mut row = ki;
            for (j, r) in row.iter_mut().enumerate() {
                let col = self
                    .base
                    .col(j)
                    .try_as_col_major()
                    .expect("a column is contiguous");
                let mut s: f64 = col
                    .as_slice()
                    .iter()
                    .zip(&lrow[..n0])
                    .map(|(a, b)| a * b)
                    .sum();
                for (e, ex) in self.extra.iter().enumerate() {
                    s += lrow[n0 + e] * ex[j];
                }
                *r = (*r - s) / lii;
            }
            let b = (gp.y[i] - lrow.iter().zip(&self.beta).map(|(a, b)| a * b).sum::<f64>()) / lii;
            for (j, r) in row.iter().enumerate() {
                self.mean_s[j] += r * b;
                self.sq[j] += r * r;
            }
            self.beta.push(b);
            self.extra.push(row);
        }
    }

    /// Rows `rows` of `V = L⁻¹ K(X, pool)` for every pool point (as
    /// [`Gp::predict_rows`] returns them), after [`PoolPosterior::sync`].
    pub fn rows_of(&self, rows: std::ops::Range<usize>) -> Vec<Vec<f64>> {
        let n0 = self.base.nrows();
        (0..self.xs.len())
            .map(|j| {
                rows.clone()
                    .map(|r| {
                        if r < n0 {
                            self.base[(r, j)]
                        } else {
                            self.extra[r - n0][j]
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// Posterior mean and variance at the pool (original output units), as
    /// [`Gp::predict`] of `gp`, the GP last passed to [`PoolPosterior::sync`] (or built on).
    pub fn mean_var(&self, gp: &Gp) -> (Vec<f64>, Vec<f64>) {
        let mean = self
            .mean_s
            .iter()
            .zip(&self.xs)
            .map(|(s, x)| s * gp.y_std + gp.prior_mean_at(x))
            .collect();
        let var = self
            .sq
            .iter()
            .map(|s| ((gp.signal_var - s).max(1e-12)) * gp.y_std * gp.y_std)
            .collect();
        (mean, var)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A believed point is a noise-free value of the latent function: the variance there
    /// collapses even when the fitted noise is large, and the factor extended row by row
    /// equals a fresh factorisation with the same per-point noise.
    #[test]
    fn a_believed_point_removes_the_variance_a_noisy_observation_leaves() {
        let x: Vec<Vec<f64>> = (0..12).map(|i| vec![i as f64 / 11.0]).collect();
        let y: Vec<f64> = x.iter().map(|v| (6.0 * v[0]).sin()).collect();
        let gp = Gp::with_hyperparameters(x, &y, 0.0, 1.0, vec![0.3], 1.0, 0.2).unwrap();
        let at = vec![vec![0.42]];
        let (m, v0) = gp.predict(&at);
        let noisy = gp.condition_on(&at, &m).unwrap();
        let believed = gp.believe(&at, &m).unwrap();
        let (_, v_noisy) = noisy.predict(&at);
        let (mb, v_believed) = believed.predict(&at);
        assert!(v_noisy[0] > 0.5 * v0[0], "{v_noisy:?} vs {v0:?}");
        assert!(v_believed[0] < 1e-4 * v0[0], "{v_believed:?} vs {v0:?}");
        assert!((mb[0] - m[0]).abs() < 1e-9);
        // A second believed point, then the same GP refactorised from scratch.
        let more = believed.believe(&[vec![0.8]], &[0.1]).unwrap();
        let mut fresh = more.clone();
        fresh.prepare().unwrap();
        let probe: Vec<Vec<f64>> = (0..7).map(|i| vec![i as f64 / 6.0]).collect();
        let (a, va) = more.predict(&probe);
        let (b, vb) = fresh.predict(&probe);
        for j in 0..probe.len() {
            assert!((a[j] - b[j]).abs() < 1e-8 && (va[j] - vb[j]).abs() < 1e-8);
        }
        // Noisy observations cannot follow believed ones.
        assert!(more.condition_on(&[vec![0.1]], &[0.0]).is_err());
    }

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
    fn prior_mean_is_where_the_posterior_reverts() {
        // Points in the lower-left corner of the square; far from them (many lengthscales
        // away) the posterior mean reverts to the prior mean: the data mean by default, the
        // data mean + 2 sd with the objectives' pessimistic prior mean.
        let x = crate::design::sobol(0, 16, 2, 9).unwrap();
        let x: Vec<Vec<f64>> = x
            .into_iter()
            .map(|p| vec![0.3 * p[0], 0.3 * p[1]])
            .collect();
        let y: Vec<f64> = x.iter().map(|p| (6.0 * p[0]).sin() + p[1]).collect();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
        let far = [vec![50.0, 50.0]];
        for shift in [0.0, crate::defaults::PRIOR_MEAN] {
            let opts = GpFitOptions {
                prior_mean: shift,
                ..GpFitOptions::default()
            };
            let gp = Gp::fit(x.clone(), &y, opts).unwrap();
            assert!((gp.y_mean - (mean + shift * sd)).abs() < 1e-12);
            let (m, _) = gp.predict(&far);
            assert!(
                (m[0] - gp.y_mean).abs() < 0.1 * sd,
                "{shift}: {} vs {}",
                m[0],
                gp.y_mean
            );
            // Near the data the fit still follows it.
            let (m, _) = gp.predict(&x[..4]);
            for (mi, yi) in m.iter().zip(&y) {
                assert!((mi - yi).abs() < 0.05 * sd.max(1e-3) + 0.05, "{mi} vs {yi}");
            }
        }
    }

    #[test]
    fn trend_prior_mean_extrapolates_a_linear_fall() {
        // y = 3 − 2·x0 + a bump, data in x0 < 0.5: far along x0 the posterior follows the
        // trend (+ the 2 sd offset), not a constant.
        let x = crate::design::sobol(0, 24, 2, 5).unwrap();
        let x: Vec<Vec<f64>> = x.into_iter().map(|p| vec![0.5 * p[0], p[1]]).collect();
        let y: Vec<f64> = x
            .iter()
            .map(|p| 3.0 - 2.0 * p[0] + 0.1 * (5.0 * p[1]).sin())
            .collect();
        let opts = GpFitOptions {
            prior_mean: 2.0,
            trend: true,
            ..GpFitOptions::default()
        };
        let gp = Gp::fit(x.clone(), &y, opts).unwrap();
        assert_eq!(gp.trend.len(), 2);
        assert!(gp.trend[0] < -0.5, "{:?}", gp.trend);
        let far = [vec![40.0, 0.5]];
        let (m, _) = gp.predict(&far);
        let prior = gp.y_mean + 40.0 * gp.trend[0] + 0.5 * gp.trend[1];
        assert!((m[0] - prior).abs() < 0.1 * gp.y_std, "{} vs {prior}", m[0]);
        // Near the data the fit follows it; conditioning and the pool agree with predict.
        let (m, _) = gp.predict(&x[..4]);
        for (mi, yi) in m.iter().zip(&y) {
            assert!((mi - yi).abs() < 0.05, "{mi} vs {yi}");
        }
        let extra = [vec![0.9, 0.2]];
        let g2 = gp.condition_on(&extra, &[1.3]).unwrap();
        let mut fresh = g2.clone();
        fresh.prepare().unwrap();
        let pts = vec![vec![0.7, 0.3], vec![0.95, 0.9]];
        let (a, _) = g2.predict(&pts);
        let (b, _) = fresh.predict(&pts);
        let mut pool = gp.pool_posterior(pts.clone());
        pool.sync(&g2);
        let (c, _) = pool.mean_var(&g2);
        for ((a, b), c) in a.iter().zip(&b).zip(&c) {
            assert!((a - b).abs() < 1e-9 && (a - c).abs() < 1e-9, "{a} {b} {c}");
        }
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
    #[test]
    fn pool_posterior_follows_conditioning() {
        let x = crate::design::sobol(0, 40, 3, 2).unwrap();
        let y: Vec<f64> = x.iter().map(|p| (3.0 * p[0]).sin() * p[1] - p[2]).collect();
        let gp = Gp::fit(x, &y, GpFitOptions::default()).unwrap();
        let pool = crate::design::sobol(7, 64, 3, 5).unwrap();
        let close = |a: &(Vec<f64>, Vec<f64>), b: &(Vec<f64>, Vec<f64>)| {
            for (u, v) in a.0.iter().zip(&b.0).chain(a.1.iter().zip(&b.1)) {
                assert!((u - v).abs() < 1e-9 * v.abs().max(1.0), "{u} vs {v}");
            }
        };
        let mut pp = gp.pool_posterior(pool.clone());
        close(&pp.mean_var(&gp), &gp.predict(&pool));
        // Believe two points, one at a time: the pool appends rows.
        let mut g = gp.clone();
        for z in [vec![0.3, 0.2, 0.9], vec![0.8, 0.5, 0.1]] {
            let m = g.predict(std::slice::from_ref(&z)).0;
            g = g.condition_on(std::slice::from_ref(&z), &m).unwrap();
            pp.sync(&g);
            assert_eq!(pp.rows(), g.len());
            assert!(!pp.extra.is_empty(), "rows were appended, not recomputed");
            close(&pp.mean_var(&g), &g.predict(&pool));
        }
        // A refactorised GP (new lineage): the pool is recomputed.
        let mut h = g.clone();
        h.prepare().unwrap();
        pp.sync(&h);
        assert!(pp.extra.is_empty());
        close(&pp.mean_var(&h), &h.predict(&pool));
    }

    #[test]
    fn fit_subset_is_bounded_and_stable() {
        assert_eq!(fit_subset(10, 0), (0..10).collect::<Vec<_>>());
        assert_eq!(fit_subset(600, 600).len(), 600);
        for n in [601, 996, 1000, 1201, 5000] {
            let s = fit_subset(n, 600);
            assert!(s.len() <= 600 && s.len() > 300, "{n}: {}", s.len());
            // A few more observations keep every fitted point (same stride).
            let t = fit_subset(n + 4, 600);
            if t.len() > 1 && t[1] == s[1] {
                assert_eq!(&t[..s.len()], &s[..]);
            }
        }
        assert_eq!(
            fit_subset(1000, 600),
            (0..1000).step_by(2).collect::<Vec<_>>()
        );
    }

    #[test]
    fn fast_exponential_matches_the_library() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -(i as f64) * 708.0 / 200_000.0;
            let (a, b) = (exp_neg(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 1e-14, "relative error {worst}");
        assert_eq!(exp_neg(0.0), 1.0);
        // Clamped at −708: tiny, positive, never a NaN or a wrapped exponent.
        for x in [-745.0, -1e6, f64::NEG_INFINITY] {
            let v = exp_neg(x);
            assert!(v > 0.0 && v < 1e-307, "{x}: {v}");
        }
    }

    #[test]
    fn kernel_column_is_the_same_with_and_without_avx2() {
        let x = crate::design::sobol(0, 37, 4, 3).unwrap();
        let tr: Vec<Vec<f64>> = (0..4)
            .map(|q| x.iter().map(|r| r[q] * (q as f64 + 0.5)).collect())
            .collect();
        let e = [0.1, 0.7, 1.3, 2.0];
        let mut a = vec![0.0; 37];
        let mut b = vec![0.0; 37];
        kernel_column(&mut a, &tr, &e, 1.7);
        kernel_column_plain(&mut b, &tr, &e, 1.7);
        assert_eq!(a, b);
        let direct: Vec<f64> = (0..37)
            .map(|i| {
                let r2: f64 = (0..4).map(|q| (tr[q][i] - e[q]).powi(2)).sum();
                matern(r2.sqrt(), 1.7)
            })
            .collect();
        assert_eq!(a, direct);
    }
}
