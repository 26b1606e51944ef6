//! Maximising an acquisition over the mixed cube.
//!
//! 1. Score many quasi-random (scrambled Sobol) points plus Gaussian perturbations of the
//!    caller's seeds (the current Pareto set), all snapped ([`candidates`]; a batch proposal
//!    scores one such pool for all its slots through cached posteriors and calls
//!    [`maximize_screened`]).
//! 2. Refine the best distinct starts with a (1+λ) evolution strategy: Gaussian steps with a
//!    step size that grows on success and shrinks on failure, random re-assignments of
//!    one-hot groups, every offspring snapped to a valid point. Offspring of all starts are
//!    scored in one batch (one matrix solve per generation).
//!
//! The acquisitions here (EHVI times a feasibility probability) are flat in the discrete
//! directions and often near zero far from the data, where gradients are useless; an
//! evolutionary refinement that snaps is robust on integers and one-hot groups, and is cheap
//! because every generation is a batched GP prediction.

use crate::space::Snap;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// How hard to search.
#[derive(Debug, Clone, Copy)]
pub struct OptimizeOptions {
    /// Quasi-random points scored first.
    pub raw_samples: usize,
    /// Best distinct points refined.
    pub starts: usize,
    /// Generations of refinement.
    pub generations: usize,
    /// Offspring per start and generation.
    pub offspring: usize,
    /// Seed (scrambling and mutations).
    pub seed: u64,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            raw_samples: 2048,
            starts: 8,
            generations: 16,
            offspring: 12,
            seed: 0,
        }
    }
}

pub(crate) fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = uniform(rng).max(1e-300);
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn too_close(x: &[f64], others: &[Vec<f64>]) -> bool {
    others
        .iter()
        .any(|o| o.iter().zip(x).all(|(a, b)| (a - b).abs() <= 1e-9))
}

/// Gaussian perturbations of each seed in [`candidates`].
pub const SEED_PERTURBATIONS: usize = 4;

/// The screening candidates of [`maximize`]: `opts.raw_samples` scrambled Sobol points
/// (seeded by `opts.seed`) and [`SEED_PERTURBATIONS`] Gaussian perturbations (sd 0.05) of
/// each of `seeds` (plus the seed itself), all snapped. Deterministic in its arguments.
pub fn candidates(snap: &dyn Snap, seeds: &[Vec<f64>], opts: OptimizeOptions) -> Vec<Vec<f64>> {
    let d = snap.dims();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x5c7e_e11e);
    let mut cands = crate::design::sobol(0, opts.raw_samples, d, opts.seed).unwrap_or_default();
    for s in seeds {
        cands.push(s.clone());
        for _ in 0..SEED_PERTURBATIONS {
            cands.push(s.iter().map(|v| v + 0.05 * normal(&mut rng)).collect());
        }
    }
    for c in cands.iter_mut() {
        snap.snap(c);
    }
    cands
}

/// Maximises `f` (which scores a batch of points) over the snapped cube. `seeds` are extra
/// starting points (perturbed before scoring); points within 1e-9 of one in `exclude` (already
/// evaluated or pending) are never returned. Returns the best point and its value, or `None`
/// if every candidate was excluded.
pub fn maximize(
    f: &dyn Fn(&[Vec<f64>]) -> Vec<f64>,
    snap: &dyn Snap,
    one_hot_groups: &[(usize, usize)],
    seeds: &[Vec<f64>],
    exclude: &[Vec<f64>],
    opts: OptimizeOptions,
) -> Option<(Vec<f64>, f64)> {
    let cands = candidates(snap, seeds, opts);
    let vals = f(&cands);
    maximize_screened(f, &cands, &vals, snap, one_hot_groups, exclude, opts)
}

/// [`maximize`] from an already scored screen (`cands` with values `vals`, e.g. from
/// [`candidates`] scored through cached posteriors): the refinement alone, seeded by
/// `opts.seed`.
pub fn maximize_screened(
    f: &dyn Fn(&[Vec<f64>]) -> Vec<f64>,
    cands: &[Vec<f64>],
    vals: &[f64],
    snap: &dyn Snap,
    one_hot_groups: &[(usize, usize)],
    exclude: &[Vec<f64>],
    opts: OptimizeOptions,
) -> Option<(Vec<f64>, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let score = |xs: &[Vec<f64>], v: Vec<f64>| -> Vec<f64> {
        xs.iter()
            .zip(v)
            .map(|(x, v)| {
                if !v.is_finite() || too_close(x, exclude) {
                    f64::NEG_INFINITY
                } else {
                    v
                }
            })
            .collect()
    };
    let vals = score(cands, vals.to_vec());
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]).then(a.cmp(&b)));
    let mut starts: Vec<(Vec<f64>, f64, f64)> = Vec::new();
    for &i in &order {
        if starts.len() >= opts.starts || vals[i] == f64::NEG_INFINITY {
            break;
        }
        if !too_close(
            &cands[i],
            &starts.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
        ) {
            starts.push((cands[i].clone(), vals[i], 0.1));
        }
    }
    if starts.is_empty() {
        return None;
    }
    for _ in 0..opts.generations {
        let mut kids = Vec::with_capacity(starts.len() * opts.offspring);
        for (x, _, sigma) in &starts {
            for _ in 0..opts.offspring {
                let mut k: Vec<f64> = x.iter().map(|v| v + sigma * normal(&mut rng)).collect();
                for &(start, size) in one_hot_groups {
                    if uniform(&mut rng) < 0.2 {
                        let pick = (uniform(&mut rng) * size as f64) as usize;
                        k[start + pick.min(size - 1)] = 2.0;
                    }
                }
                snap.snap(&mut k);
                kids.push(k);
            }
        }
        let kv = score(&kids, f(&kids));
        for (s, start) in starts.iter_mut().enumerate() {
            let range = s * opts.offspring..(s + 1) * opts.offspring;
            let best = range
                .clone()
                .max_by(|&a, &b| kv[a].total_cmp(&kv[b]).then(b.cmp(&a)))
                .unwrap_or(range.start);
            if kv[best] > start.1 {
                start.0 = kids[best].clone();
                start.1 = kv[best];
                start.2 = (start.2 * 1.5).min(0.5);
            } else {
                start.2 = (start.2 * 0.6).max(1e-4);
            }
        }
    }
    starts
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|s| (s.0, s.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Dim, MixedCube};

    #[test]
    fn finds_the_optimum_of_a_mixed_function() {
        // Max at x0 = 0.3, level 2 of 5, one-hot index 1.
        let cube = MixedCube {
            dims: vec![
                Dim::Real,
                Dim::Int { levels: 5 },
                Dim::OneHot { start: 2, size: 3 },
                Dim::OneHot { start: 2, size: 3 },
                Dim::OneHot { start: 2, size: 3 },
            ],
        };
        let f = |xs: &[Vec<f64>]| {
            xs.iter()
                .map(|x| -(x[0] - 0.3).powi(2) - (x[1] - 0.5).abs() + x[3])
                .collect()
        };
        let (x, v) = maximize(&f, &cube, &[(2, 3)], &[], &[], OptimizeOptions::default()).unwrap();
        assert!((x[0] - 0.3).abs() < 1e-3, "{x:?}");
        assert_eq!(&x[1..], &[0.5, 0.0, 1.0, 0.0]);
        assert!(v > 0.999);
        // The optimum excluded: the answer is a different point.
        let (y, _) = maximize(
            &f,
            &cube,
            &[(2, 3)],
            &[],
            std::slice::from_ref(&x),
            OptimizeOptions::default(),
        )
        .unwrap();
        assert_ne!(x, y);
    }
}
