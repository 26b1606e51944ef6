//! Acquisition functions (for minimisation, in the model's transformed units).
//!
//! - 1 objective: expected improvement over the best feasible value (or the reference).
//! - 2 objectives: **exact** expected hypervolume improvement. The region the current front
//!   does not dominate (inside the reference box) splits into vertical strips; in strip i,
//!   `z1 ∈ [l_i, u_i)` and `z2 < h_i`, so with independent Gaussian posteriors
//!   `EHVI = Σ_i (ψ1(u_i) − ψ1(l_i)) · ψ2(h_i)` where `ψ(a) = E[(a − Y)^+]
//!   = (a − μ)Φ((a − μ)/σ) + σφ((a − μ)/σ)`. Exact, O(front size) per point.
//! - 3 objectives: quasi-Monte-Carlo EHVI with fixed (common) normal draws and the exact 3-D
//!   hypervolume, so the estimate is smooth and deterministic.
//!
//! Each value is multiplied by the probability of feasibility when a feasibility model
//! exists (constraint violations and failed trials), so failures steer the search away
//! without ever entering the objective models.

use crate::pareto::{hypervolume, pareto_indices};
use crate::Gp;

/// Standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function (erfc by Chebyshev fit, |rel. error| < 1.2e-7).
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// `E[(a − Y)^+]` for `Y ~ N(mu, sigma²)`.
pub fn psi(a: f64, mu: f64, sigma: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return 0.0;
    }
    if sigma <= 1e-300 {
        return (a - mu).max(0.0);
    }
    let z = (a - mu) / sigma;
    ((a - mu) * norm_cdf(z) + sigma * norm_pdf(z)).max(0.0)
}

/// Expected improvement below `best`.
pub fn expected_improvement(best: f64, mu: f64, sigma: f64) -> f64 {
    psi(best, mu, sigma)
}

/// Exact 2-D EHVI of a point with independent posteriors `(mu[k], sigma[k])` against
/// `front` (any set of points; dominated and outside ones are ignored) and `reference`.
pub fn ehvi_2d(front: &[Vec<f64>], reference: &[f64], mu: &[f64], sigma: &[f64]) -> f64 {
    Staircase::new(front, reference).ehvi(mu, sigma)
}

/// A 2-D front as the staircase EHVI integrates over: the non-dominated points inside the
/// reference box, sorted by the first objective (the second strictly decreasing). Built
/// once per front, evaluated for many points ([`crate::nehvi`] keeps one per front sample).
#[derive(Debug, Clone)]
pub struct Staircase {
    stair: Vec<(f64, f64)>,
    reference: [f64; 2],
}

impl Staircase {
    /// The staircase of `front` (any set of points) inside `reference`.
    pub fn new(front: &[Vec<f64>], reference: &[f64]) -> Staircase {
        let mut p: Vec<(f64, f64)> = front
            .iter()
            .filter(|y| y[0] < reference[0] && y[1] < reference[1])
            .map(|y| (y[0], y[1]))
            .collect();
        p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        // Keep the staircase: strictly decreasing second objective.
        let mut stair: Vec<(f64, f64)> = Vec::with_capacity(p.len());
        for q in p {
            if stair.last().is_none_or(|s| q.1 < s.1) {
                stair.push(q);
            }
        }
        Staircase {
            stair,
            reference: [reference[0], reference[1]],
        }
    }

    /// Exact EHVI of a point with independent posteriors `(mu[k], sigma[k])`.
    pub fn ehvi(&self, mu: &[f64], sigma: &[f64]) -> f64 {
        let stair = &self.stair;
        let reference = &self.reference;
        let k = stair.len();
        let mut total = 0.0;
        // Strip i spans [l_i, u_i) with l_i = u_{i-1}: ψ1 at a strip's lower edge is the
        // previous strip's upper one (ψ(−∞) = 0).
        let mut psi_l = 0.0;
        for i in 0..=k {
            let u = if i == k { reference[0] } else { stair[i].0 };
            let h = if i == 0 { reference[1] } else { stair[i - 1].1 };
            let psi_u = psi(u, mu[0], sigma[0]);
            let a = psi_u - psi_l;
            psi_l = psi_u;
            if a > 0.0 {
                total += a * psi(h, mu[1], sigma[1]);
            }
        }
        total
    }
}

/// Hypervolume improvement of adding `y` to `front`.
pub fn hv_improvement(front: &[Vec<f64>], reference: &[f64], y: &[f64]) -> f64 {
    let base = hypervolume(front, reference).unwrap_or(0.0);
    let mut f = front.to_vec();
    f.push(y.to_vec());
    (hypervolume(&f, reference).unwrap_or(0.0) - base).max(0.0)
}

/// A ready-to-evaluate acquisition: posterior models, the current front and the reference.
pub struct Acquisition<'a> {
    /// One GP per objective (model units, minimised).
    pub objectives: &'a [Gp],
    /// Feasibility model (labels +1 feasible, −1 not), if any point was infeasible.
    pub feasibility: Option<&'a Gp>,
    /// Observed (and fantasised) feasible objective vectors.
    pub front: Vec<Vec<f64>>,
    /// The reference point (model units).
    pub reference: Vec<f64>,
    /// Fixed standard-normal draws for Monte Carlo EHVI (3 objectives).
    pub mc_draws: Vec<Vec<f64>>,
}

impl Acquisition<'_> {
    /// Builds the acquisition; keeps only the non-dominated part of `front`.
    pub fn new<'a>(
        objectives: &'a [Gp],
        feasibility: Option<&'a Gp>,
        front: &[Vec<f64>],
        reference: Vec<f64>,
    ) -> Acquisition<'a> {
        let front: Vec<Vec<f64>> = pareto_indices(front)
            .into_iter()
            .map(|i| front[i].clone())
            .collect();
        let m = objectives.len();
        let mc_draws = if m >= 3 {
            crate::design::sobol(1, 64, m, 0x5eed)
                .unwrap_or_default()
                .into_iter()
                .map(|u| u.into_iter().map(inv_norm_cdf).collect())
                .collect()
        } else {
            Vec::new()
        };
        Acquisition {
            objectives,
            feasibility,
            front,
            reference,
            mc_draws,
        }
    }

    /// The acquisition value at each point (higher is better, ≥ 0).
    pub fn evaluate(&self, xs: &[Vec<f64>]) -> Vec<f64> {
        let m = self.objectives.len();
        // One thread per objective on big batches: the predictions are independent (and
        // each is sequential, so the result does not depend on the thread count).
        let big = self.objectives.first().map_or(0, |g| g.len()) * xs.len() > 50_000;
        let post: Vec<(Vec<f64>, Vec<f64>)> = if m > 1 && big {
            std::thread::scope(|s| {
                let hs: Vec<_> = self
                    .objectives
                    .iter()
                    .map(|g| s.spawn(move || g.predict(xs)))
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().expect("prediction thread"))
                    .collect()
            })
        } else {
            self.objectives.iter().map(|g| g.predict(xs)).collect()
        };
        let feas = self.feasibility.map(|g| g.predict(xs));
        self.values(&post, feas.as_ref())
    }

    /// The probability of feasibility at points whose feasibility posterior is `feas`
    /// (`None` without a feasibility model).
    fn feasibility_probability(&self, feas: Option<&(Vec<f64>, Vec<f64>)>) -> Option<Vec<f64>> {
        self.feasibility.map(|g| {
            let (mu, var) = feas.expect("the feasibility posterior");
            mu.iter()
                .zip(var)
                .map(|(m, v)| norm_cdf(m / (v + g.noise_var * g.y_std * g.y_std).sqrt()))
                .collect()
        })
    }

    /// The noisy EHVI ([`crate::nehvi::NoisyFront::value`]) times the probability of
    /// feasibility, at points whose posteriors under the baseline-believed GPs are given:
    /// `post[k]` = (means, variances), `rows[k][j]` = the baseline rows of point j
    /// ([`crate::gp::Gp::predict_rows`]). Two objectives.
    pub fn values_noisy(
        &self,
        noisy: &crate::nehvi::NoisyFront,
        post: &[(Vec<f64>, Vec<f64>)],
        rows: &[Vec<Vec<f64>>],
        feas: Option<&(Vec<f64>, Vec<f64>)>,
    ) -> Vec<f64> {
        let pof = self.feasibility_probability(feas);
        (0..post[0].0.len())
            .map(|j| {
                let a = noisy.value(
                    [post[0].0[j], post[1].0[j]],
                    [post[0].1[j].sqrt(), post[1].1[j].sqrt()],
                    [&rows[0][j], &rows[1][j]],
                );
                match &pof {
                    Some(p) => a * p[j],
                    None => a,
                }
            })
            .collect()
    }

    /// The acquisition value at points whose posteriors are given: `post[k]` = (means,
    /// variances) of objective k, `feas` those of the feasibility model (required when it
    /// exists), as [`Gp::predict`] returns them.
    pub fn values(
        &self,
        post: &[(Vec<f64>, Vec<f64>)],
        feas: Option<&(Vec<f64>, Vec<f64>)>,
    ) -> Vec<f64> {
        let m = self.objectives.len();
        let npts = post.first().map_or(0, |p| p.0.len());
        let pof = self.feasibility_probability(feas);
        (0..npts)
            .map(|j| {
                let mu: Vec<f64> = (0..m).map(|k| post[k].0[j]).collect();
                let sd: Vec<f64> = (0..m).map(|k| post[k].1[j].sqrt()).collect();
                let a = match m {
                    1 => {
                        let best = self
                            .front
                            .iter()
                            .map(|y| y[0])
                            .fold(self.reference[0], f64::min);
                        expected_improvement(best, mu[0], sd[0])
                    }
                    2 => ehvi_2d(&self.front, &self.reference, &mu, &sd),
                    _ => {
                        let base = hypervolume(&self.front, &self.reference).unwrap_or(0.0);
                        let mut f = self.front.clone();
                        f.push(vec![0.0; m]);
                        let mut s = 0.0;
                        for z in &self.mc_draws {
                            let last = f.len() - 1;
                            for k in 0..m {
                                f[last][k] = mu[k] + sd[k] * z[k];
                            }
                            s += (hypervolume(&f, &self.reference).unwrap_or(0.0) - base).max(0.0);
                        }
                        s / self.mc_draws.len().max(1) as f64
                    }
                };
                match &pof {
                    Some(p) => a * p[j],
                    None => a,
                }
            })
            .collect()
    }
}

/// Inverse of the standard normal distribution function (Acklam's rational approximation,
/// relative error < 1.2e-9), for quasi-random normal draws.
pub fn inv_norm_cdf(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_functions() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.959_963_985) - 0.975).abs() < 1e-7);
        assert!((norm_cdf(-1.0) - 0.158_655_253_9).abs() < 1e-7);
        assert!((inv_norm_cdf(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!((inv_norm_cdf(0.001) + 3.090_232_306).abs() < 1e-8);
        // EI at μ = best: σφ(0).
        assert!((expected_improvement(1.0, 1.0, 2.0) - 2.0 * norm_pdf(0.0)).abs() < 1e-12);
    }

    fn mc_ehvi(front: &[Vec<f64>], r: &[f64], mu: &[f64], sd: &[f64]) -> f64 {
        let n = 1 << 14;
        let pts = crate::design::sobol(0, n, 2, 11).unwrap();
        pts.iter()
            .map(|u| {
                let y = [
                    mu[0] + sd[0] * inv_norm_cdf(u[0]),
                    mu[1] + sd[1] * inv_norm_cdf(u[1]),
                ];
                hv_improvement(front, r, &y)
            })
            .sum::<f64>()
            / n as f64
    }

    #[test]
    fn ehvi_matches_monte_carlo_and_limits() {
        let r = [1.0, 1.0];
        let front = vec![vec![0.2, 0.7], vec![0.5, 0.4], vec![0.8, 0.1]];
        for (mu, sd) in [
            ([0.4, 0.4], [0.1, 0.2]),
            ([0.1, 0.1], [0.3, 0.3]),
            ([0.9, 0.9], [0.05, 0.5]),
        ] {
            let e = ehvi_2d(&front, &r, &mu, &sd);
            let m = mc_ehvi(&front, &r, &mu, &sd);
            assert!((e - m).abs() < 2e-3 * m.max(0.05), "{e} vs {m}");
        }
        // σ → 0: EHVI = HVI of the mean.
        let e = ehvi_2d(&front, &r, &[0.3, 0.3], &[1e-12, 1e-12]);
        assert!((e - hv_improvement(&front, &r, &[0.3, 0.3])).abs() < 1e-9);
        // A point on the front has ~no improvement when certain.
        assert!(ehvi_2d(&front, &r, &[0.5, 0.4], &[1e-12, 1e-12]) < 1e-12);
    }

    #[test]
    fn ehvi_edge_cases() {
        let r = [1.0, 1.0];
        // Empty front: E[(1−Y1)^+]·E[(1−Y2)^+].
        let e = ehvi_2d(&[], &r, &[0.5, 0.5], &[1e-12, 1e-12]);
        assert!((e - 0.25).abs() < 1e-12);
        // One point, duplicated and with a tie: same as one point.
        let one = ehvi_2d(&[vec![0.5, 0.5]], &r, &[0.3, 0.6], &[0.1, 0.1]);
        let dup = ehvi_2d(
            &[
                vec![0.5, 0.5],
                vec![0.5, 0.5],
                vec![0.5, 0.8],
                vec![0.7, 0.5],
            ],
            &r,
            &[0.3, 0.6],
            &[0.1, 0.1],
        );
        assert!((one - dup).abs() < 1e-15);
        // Points outside the reference box are ignored.
        let out = ehvi_2d(
            &[vec![0.5, 0.5], vec![1.5, -1.0]],
            &r,
            &[0.3, 0.6],
            &[0.1, 0.1],
        );
        assert!((one - out).abs() < 1e-15);
        assert!(one > 0.0);
    }
}
