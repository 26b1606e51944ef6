//! The optimiser loop's two steps, shared by `nago-update`/`nago-propose` and the benchmark:
//! [`fit`] (observations → a serialisable [`Surrogate`]) and [`propose`] (a surrogate +
//! pending points → a batch of q new points).
//!
//! Batches use the **kriging believer**: after choosing a point, each GP is conditioned on
//! its own posterior mean there (hyperparameters fixed) as a noise-free value of the latent
//! function ([`Gp::believe`]), so the variance collapses around it, for a noisy objective
//! too, and the next choice goes elsewhere; the believed value joins the front if it is predicted
//! feasible. Pending points (proposed, not yet evaluated) are believed the same way first.
//!
//! Cost: one screening pool per batch ([`crate::optimize::candidates`]: Sobol points and
//! perturbations of the incumbent Pareto set), whose posteriors are computed once (one
//! O(n²) triangular solve per point) and then follow the believer's updates by appending
//! rows ([`crate::gp::PoolPosterior`], O(n) per point and believed observation); only the
//! evolutionary refinement of each slot pays full predictions.

use crate::acq::Acquisition;
use crate::gp::{Gp, GpFitOptions, PairDiffs, PoolPosterior};
use crate::nehvi::NoisyFront;
use crate::optimize::{candidates, maximize_screened, OptimizeOptions};
use crate::space::Snap;
use crate::BoError;
use serde::{Deserialize, Serialize};

/// Posterior means and variances at a set of points.
type Posterior = (Vec<f64>, Vec<f64>);

/// One evaluated point.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The (snapped) point in the unit cube.
    pub x: Vec<f64>,
    /// Objective values in model units (transformed, to be minimised); `None` for a failed
    /// evaluation (no metrics), which only informs the feasibility model.
    pub y: Option<Vec<f64>>,
    /// Whether it met every constraint (false for failures too).
    pub feasible: bool,
}

/// Where the incumbent front (the EHVI baseline and the study's reported front) comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontSource {
    /// The model when the fitted noise is non-negligible (some objective's standardised noise
    /// variance above [`crate::defaults::NOISY_FRONT_NOISE`]), else the observations.
    #[default]
    Auto,
    /// The observed values (right for noiseless evaluations).
    Observed,
    /// The posterior mean at the observed points (noisy evaluations: lucky observations do
    /// not inflate the front).
    Model,
}

/// How to fit.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions<'a> {
    /// GP hyperparameter fitting of the objectives (a full fit: restarts × max_iter); the
    /// default has a linear-trend prior mean offset pessimistically by
    /// [`crate::defaults::PRIOR_MEAN`] sd. The feasibility model uses the same options with
    /// the data mean as its prior mean.
    pub gp: GpFitOptions,
    /// The previous fit of the same study (e.g. the previous `surrogate.json`): its
    /// hyperparameters start a short fit ([`crate::defaults::WARM_ITER`] iterations); a full
    /// multi-start fit runs every [`crate::defaults::FULL_FIT_EVERY`] fits and whenever the
    /// likelihood per point dropped by more than [`crate::defaults::WARM_DROP`], and always
    /// below [`crate::defaults::WARM_MIN_POINTS`] observations. `None`: a full fit.
    pub warm_start: Option<&'a WarmStart>,
    /// Where the incumbent front comes from.
    pub front: FrontSource,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            gp: GpFitOptions {
                prior_mean: crate::defaults::PRIOR_MEAN,
                trend: true,
                ..GpFitOptions::default()
            },
            warm_start: None,
            front: FrontSource::Auto,
        }
    }
}

impl FitOptions<'_> {
    /// For evaluations known to be noisy: the incumbent front from the model (the noisy EHVI
    /// of [`crate::nehvi`]), the noisy noise prior ([`crate::defaults::NOISY_NOISE_PRIOR`]) and
    /// the noisy prior mean ([`crate::defaults::NOISY_PRIOR_MEAN`]).
    pub fn noisy(mut self) -> Self {
        self.front = FrontSource::Model;
        self.gp.noise_prior = crate::defaults::NOISY_NOISE_PRIOR;
        self.gp.prior_mean = crate::defaults::NOISY_PRIOR_MEAN;
        self
    }
}

/// The fitted models: what `surrogate.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Surrogate {
    /// Coordinates of the cube.
    pub dims: usize,
    /// One GP per objective (model units, minimised).
    pub objectives: Vec<Gp>,
    /// Probability-of-feasibility model: a GP on labels +1 (feasible) / −1 (infeasible or
    /// failed), present once some evaluation was infeasible.
    pub feasibility: Option<Gp>,
    /// Reference point of the hypervolume (model units).
    pub reference: Vec<f64>,
    /// Every evaluated point (never proposed again).
    pub observed: Vec<Vec<f64>>,
    /// The incumbent values of the feasible evaluations (model units): observed values, or
    /// the posterior means at their points when `front_source` is `Model`.
    pub front: Vec<Vec<f64>>,
    /// Their points.
    pub front_x: Vec<Vec<f64>>,
    /// Their indices in the observations passed to [`fit`].
    #[serde(default)]
    pub front_index: Vec<usize>,
    /// Where `front` came from (`Observed` or `Model`, never `Auto`).
    #[serde(default = "observed")]
    pub front_source: FrontSource,
    /// Warm-started fits since the last full multi-start fit (0: this one was full).
    #[serde(default)]
    pub warm_fits: usize,
}

/// What a warm-started fit takes from the previous fit ([`Surrogate::warm_start`]): its
/// hyperparameters per objective, the likelihood they reached, and how many warm fits have
/// run since the last full one. Small and serialisable, so that a study can record the
/// input of every fit (and `nago-rerun` refit it) without keeping old surrogates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmStart {
    /// Coordinates of the cube the previous fit was on (a different space: not used).
    pub dims: usize,
    /// [`Surrogate::warm_fits`] of the previous fit.
    pub warm_fits: usize,
    /// One entry per objective, in order.
    pub objectives: Vec<WarmObjective>,
}

/// One objective's part of a [`WarmStart`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmObjective {
    /// The previous fit's log-hyperparameters ([`Gp::theta`]), the first start of this fit.
    pub theta: Vec<f64>,
    /// The previous fit's log marginal likelihood per fitted point: a warm fit that ends
    /// more than [`crate::defaults::WARM_DROP`] below it is redone in full.
    pub log_likelihood_per_point: Option<f64>,
}

fn observed() -> FrontSource {
    FrontSource::Observed
}

/// The posterior means of `objectives` at `xs` (model units), one row per point.
fn posterior_means(objectives: &[Gp], xs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let means: Vec<Vec<f64>> = objectives.iter().map(|g| g.predict(xs).0).collect();
    (0..xs.len())
        .map(|j| means.iter().map(|m| m[j]).collect())
        .collect()
}

impl Surrogate {
    /// The model's estimate of the feasible evaluations' values: the posterior mean of every
    /// objective at their points ([`Surrogate::front_x`]), whatever [`Surrogate::front_source`]
    /// is. What the study's front looks like once a lucky (or unlucky) observation is
    /// shrunk towards its neighbours.
    pub fn model_front(&self) -> Vec<Vec<f64>> {
        posterior_means(&self.objectives, &self.front_x)
    }

    /// What the next fit of the same study warm-starts from.
    pub fn warm_start(&self) -> WarmStart {
        WarmStart {
            dims: self.dims,
            warm_fits: self.warm_fits,
            objectives: self
                .objectives
                .iter()
                .map(|g| WarmObjective {
                    theta: g.theta(),
                    log_likelihood_per_point: g.log_likelihood_per_point(),
                })
                .collect(),
        }
    }

    /// The non-dominated part of the incumbent front: indices into the observations passed
    /// to [`fit`] and their incumbent values (model units), sorted by the first objective.
    /// With `front_source == Model` these are the points the model believes best, valued at
    /// the posterior mean: the consistent front and hypervolume to report for a noisy study.
    pub fn pareto_front(&self) -> Vec<(usize, Vec<f64>)> {
        let idx = crate::pareto::pareto_indices(&self.front);
        let mut out: Vec<(usize, Vec<f64>)> = idx
            .into_iter()
            .map(|i| {
                (
                    self.front_index.get(i).copied().unwrap_or(i),
                    self.front[i].clone(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.1[0].total_cmp(&b.1[0]).then(a.0.cmp(&b.0)));
        out
    }

    /// The hypervolume of [`Surrogate::pareto_front`] against the reference (model units).
    pub fn hypervolume(&self) -> f64 {
        crate::pareto::hypervolume(&self.front, &self.reference).unwrap_or(0.0)
    }
}

/// Fits one GP per objective on the observations with values, and a feasibility GP if any
/// observation is infeasible. `reference` is in model units.
///
/// The objectives share one table of pairwise input differences. With
/// `opts.warm_start`, each objective's fit starts from the previous hyperparameters (see
/// [`FitOptions::warm_start`]); the decision is a function of the inputs only, so identical
/// inputs give identical bytes.
pub fn fit(
    obs: &[Observation],
    n_objectives: usize,
    reference: &[f64],
    opts: FitOptions,
) -> Result<Surrogate, BoError> {
    if reference.len() != n_objectives {
        return Err(BoError::Invalid(format!(
            "reference point has {} values for {n_objectives} objectives",
            reference.len()
        )));
    }
    let with_y: Vec<(usize, &Observation)> = obs
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            o.y.as_ref()
                .is_some_and(|y| y.len() == n_objectives && y.iter().all(|v| v.is_finite()))
        })
        .collect();
    if with_y.is_empty() {
        return Err(BoError::Invalid(
            "no evaluation with finite objective values to fit a model to".into(),
        ));
    }
    let dims = with_y[0].1.x.len();
    if obs.iter().any(|o| o.x.len() != dims) {
        return Err(BoError::Invalid(
            "observations of different dimensions".into(),
        ));
    }
    let x: Vec<Vec<f64>> = with_y.iter().map(|(_, o)| o.x.clone()).collect();
    let sub = crate::gp::fit_subset(x.len(), opts.gp.max_fit_points);
    let pairs = PairDiffs::new(&sub.iter().map(|&i| x[i].clone()).collect::<Vec<_>>());
    let warm = opts
        .warm_start
        .filter(|w| w.dims == dims && w.objectives.len() == n_objectives);
    let scheduled_full = x.len() < crate::defaults::WARM_MIN_POINTS
        || warm.is_none_or(|w| w.warm_fits + 1 >= crate::defaults::FULL_FIT_EVERY);
    let mut objectives = Vec::with_capacity(n_objectives);
    let mut all_full = true;
    // The replicated points of the design, grouped once for every objective's noise model.
    let replicates = crate::noise::Replicates::new(&x);
    for k in 0..n_objectives {
        let y: Vec<f64> = with_y
            .iter()
            .map(|(_, o)| o.y.as_ref().unwrap()[k])
            .collect();
        let mut go = opts.gp;
        go.seed = opts.gp.seed.wrapping_add(k as u64);
        let theta = warm.map(|w| w.objectives[k].theta.clone());
        // Heteroscedastic noise where replicated points show it (else None: homoscedastic).
        let scales = replicates.noise(&y).and_then(|r| r.scales);
        let scales = scales.as_deref();
        let g = if scheduled_full {
            Gp::fit_from(x.clone(), &y, go, theta.as_deref(), Some(&pairs), scales)?
        } else {
            let prev = warm.unwrap().objectives[k].log_likelihood_per_point;
            let mut wo = go;
            wo.restarts = 0;
            wo.max_iter = crate::defaults::WARM_ITER;
            let g = Gp::fit_from(x.clone(), &y, wo, theta.as_deref(), Some(&pairs), scales)?;
            let dropped = match (g.log_likelihood_per_point(), prev) {
                (Some(now), Some(before)) => now < before - crate::defaults::WARM_DROP,
                _ => true,
            };
            if dropped {
                Gp::fit_from(x.clone(), &y, go, Some(&g.theta()), Some(&pairs), scales)?
            } else {
                all_full = false;
                g
            }
        };
        objectives.push(g);
    }
    let n_bad = obs.iter().filter(|o| !o.feasible).count();
    let feasibility = if n_bad > 0 && n_bad < obs.len() {
        let fx: Vec<Vec<f64>> = obs.iter().map(|o| o.x.clone()).collect();
        let fy: Vec<f64> = obs
            .iter()
            .map(|o| if o.feasible { 1.0 } else { -1.0 })
            .collect();
        let mut go = opts.gp;
        go.seed = opts.gp.seed.wrapping_add(1000);
        go.prior_mean = 0.0;
        go.trend = false;
        let mut g = Gp::fit(fx, &fy, go)?;
        // Keep labels in their own units (0 = the decision boundary).
        g = Gp::with_hyperparameters(
            g.x.clone(),
            &fy,
            0.0,
            1.0,
            g.lengthscales.clone(),
            g.signal_var * g.y_std * g.y_std,
            g.noise_var * g.y_std * g.y_std,
        )?;
        Some(g)
    } else {
        None
    };
    let feasible: Vec<&(usize, &Observation)> = with_y.iter().filter(|(_, o)| o.feasible).collect();
    let front_source = match opts.front {
        FrontSource::Auto => {
            // The loudest point's noise (a replicated point can be louder than the level).
            if objectives.iter().any(|g| {
                let loudest = g.noise_scale.iter().fold(1.0f64, |m, v| m.max(*v));
                g.noise_var * loudest > crate::defaults::NOISY_FRONT_NOISE
            }) {
                FrontSource::Model
            } else {
                FrontSource::Observed
            }
        }
        s => s,
    };
    let front_x: Vec<Vec<f64>> = feasible.iter().map(|(_, o)| o.x.clone()).collect();
    let front: Vec<Vec<f64>> = if front_source == FrontSource::Model && !front_x.is_empty() {
        posterior_means(&objectives, &front_x)
    } else {
        feasible.iter().map(|(_, o)| o.y.clone().unwrap()).collect()
    };
    Ok(Surrogate {
        dims,
        objectives,
        feasibility,
        reference: reference.to_vec(),
        observed: obs.iter().map(|o| o.x.clone()).collect(),
        front,
        front_x,
        front_index: feasible.iter().map(|(i, _)| *i).collect(),
        front_source,
        warm_fits: if all_full {
            0
        } else {
            warm.map_or(0, |w| w.warm_fits + 1)
        },
    })
}

/// How to propose.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProposeOptions {
    /// The acquisition optimiser (its seed is varied per batch slot).
    pub optimize: OptimizeOptions,
}

impl Surrogate {
    /// Recomputes the factorisations after deserialising.
    pub fn prepare(&mut self) -> Result<(), BoError> {
        for g in self.objectives.iter_mut() {
            g.prepare()?;
        }
        if let Some(g) = self.feasibility.as_mut() {
            g.prepare()?;
        }
        Ok(())
    }
}

/// Proposes `q` new points (snapped, distinct from every observed and pending point).
/// `pending` are points proposed earlier whose results are not in yet. May return fewer
/// than `q` points when the space has no unexplored point left.
pub fn propose(
    sur: &Surrogate,
    snap: &dyn Snap,
    one_hot_groups: &[(usize, usize)],
    pending: &[Vec<f64>],
    q: usize,
    opts: ProposeOptions,
) -> Result<Vec<Vec<f64>>, BoError> {
    if snap.dims() != sur.dims {
        return Err(BoError::Invalid(format!(
            "the surrogate was fitted on {} dimensions, the space has {}",
            sur.dims,
            snap.dims()
        )));
    }
    let mut gps = sur.objectives.clone();
    let mut feas = sur.feasibility.clone();
    let mut front = sur.front.clone();
    let mut exclude = sur.observed.clone();
    // Noisy evaluations (the front from the model), 2 objectives: the noisy EHVI of
    // `crate::nehvi`, whose baseline points are believed first, so that they are the rows
    // right after the observations in every factor.
    let mut noisy: Option<NoisyFront> = None;
    if sur.front_source == FrontSource::Model && gps.len() == 2 && !sur.front_x.is_empty() {
        let (nf, _) = crate::nehvi::believe_baseline(
            &mut gps,
            &sur.front_x,
            &sur.reference,
            crate::nehvi::FRONT_SAMPLES,
            opts.optimize.seed,
        )?;
        noisy = Some(nf);
    }
    let believe = |xs: &[Vec<f64>],
                   gps: &mut Vec<Gp>,
                   feas: &mut Option<Gp>,
                   front: &mut Vec<Vec<f64>>,
                   noisy: &mut Option<NoisyFront>|
     -> Result<(), BoError> {
        if xs.is_empty() {
            return Ok(());
        }
        // The baseline rows give a point's value in each front sample (none without one).
        let baseline_rows = noisy.as_ref().map_or(0..0, NoisyFront::rows);
        let (means, rows): (Vec<Vec<f64>>, Vec<Vec<Vec<f64>>>) = gps
            .iter()
            .map(|g| {
                let (m, _, r) = g.predict_rows(xs, baseline_rows.clone());
                (m, r)
            })
            .unzip();
        for (k, g) in gps.iter_mut().enumerate() {
            *g = g.believe(xs, &means[k])?;
        }
        let feasible: Vec<bool> = match feas.as_mut() {
            Some(f) => {
                let m = f.predict(xs).0;
                *f = f.believe(xs, &m)?;
                m.iter().map(|v| *v > 0.0).collect()
            }
            None => vec![true; xs.len()],
        };
        for j in 0..xs.len() {
            if feasible[j] {
                front.push(means.iter().map(|m| m[j]).collect());
                if let Some(nf) = noisy.as_mut() {
                    let v =
                        nf.sample_values([means[0][j], means[1][j]], [&rows[0][j], &rows[1][j]]);
                    nf.push(&v);
                }
            }
        }
        Ok(())
    };
    believe(pending, &mut gps, &mut feas, &mut front, &mut noisy)?;
    exclude.extend(pending.iter().cloned());
    // One screening pool for the whole batch (Sobol points and perturbations of the
    // incumbent Pareto set), its posteriors kept in step with the believer's updates in
    // O(n) per point and observation instead of a new O(n²) solve per slot.
    let seeds: Vec<Vec<f64>> = crate::pareto::pareto_indices(&sur.front)
        .into_iter()
        .filter_map(|i| sur.front_x.get(i).cloned())
        .collect();
    let pool_pts = candidates(snap, &seeds, opts.optimize);
    let mut pools: Vec<PoolPosterior> = gps
        .iter()
        .map(|g| g.pool_posterior(pool_pts.clone()))
        .collect();
    let mut feas_pool: Option<PoolPosterior> =
        feas.as_ref().map(|g| g.pool_posterior(pool_pts.clone()));
    let mut out = Vec::with_capacity(q);
    for b in 0..q {
        for (p, g) in pools.iter_mut().zip(&gps) {
            p.sync(g);
        }
        if let (Some(p), Some(g)) = (feas_pool.as_mut(), feas.as_ref()) {
            p.sync(g);
        }
        let acq = Acquisition::new(&gps, feas.as_ref(), &front, sur.reference.clone());
        let post: Vec<(Vec<f64>, Vec<f64>)> =
            pools.iter().zip(&gps).map(|(p, g)| p.mean_var(g)).collect();
        let feas_post = match (feas_pool.as_ref(), feas.as_ref()) {
            (Some(p), Some(g)) => Some(p.mean_var(g)),
            _ => None,
        };
        let screen = match noisy.as_ref() {
            Some(nf) => {
                let rows: Vec<Vec<Vec<f64>>> = pools.iter().map(|p| p.rows_of(nf.rows())).collect();
                acq.values_noisy(nf, &post, &rows, feas_post.as_ref())
            }
            None => acq.values(&post, feas_post.as_ref()),
        };
        let f = |xs: &[Vec<f64>]| match noisy.as_ref() {
            Some(nf) => {
                let (post, rows): (Vec<Posterior>, Vec<Vec<Vec<f64>>>) = gps
                    .iter()
                    .map(|g| {
                        let (m, v, r) = g.predict_rows(xs, nf.rows());
                        ((m, v), r)
                    })
                    .unzip();
                let fp = feas.as_ref().map(|g| g.predict(xs));
                acq.values_noisy(nf, &post, &rows, fp.as_ref())
            }
            None => acq.evaluate(xs),
        };
        let mut o = opts.optimize;
        o.seed = opts.optimize.seed.wrapping_add(b as u64 * 0x9e37_79b9);
        let Some((x, _)) =
            maximize_screened(&f, &pool_pts, &screen, snap, one_hot_groups, &exclude, o)
        else {
            break;
        };
        drop(acq);
        believe(
            std::slice::from_ref(&x),
            &mut gps,
            &mut feas,
            &mut front,
            &mut noisy,
        )?;
        exclude.push(x.clone());
        out.push(x);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::MixedCube;

    fn problem(x: &[f64]) -> Vec<f64> {
        // A simple 2-objective problem with a known front: f1 = x0, f2 = 1 − √x0 + x1².
        vec![x[0], 1.0 - x[0].sqrt() + x[1] * x[1]]
    }

    #[test]
    fn batch_is_distinct_deterministic_and_improves() {
        let xs = crate::design::sobol(0, 10, 2, 3).unwrap();
        let obs: Vec<Observation> = xs
            .iter()
            .map(|x| Observation {
                x: x.clone(),
                y: Some(problem(x)),
                feasible: true,
            })
            .collect();
        let r = [1.1, 1.1];
        let sur = fit(&obs, 2, &r, FitOptions::default()).unwrap();
        let cube = MixedCube::reals(2);
        let pending = vec![vec![0.5, 0.0]];
        let a = propose(&sur, &cube, &[], &pending, 4, ProposeOptions::default()).unwrap();
        let b = propose(&sur, &cube, &[], &pending, 4, ProposeOptions::default()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        for i in 0..4 {
            assert_ne!(a[i], pending[0]);
            for j in 0..i {
                assert!(a[i].iter().zip(&a[j]).any(|(p, q)| (p - q).abs() > 1e-6));
            }
        }
        // Proposals concentrate near the front (x1 ≈ 0).
        assert!(a.iter().filter(|x| x[1] < 0.2).count() >= 3, "{a:?}");
        // Round trip through JSON gives the same proposals.
        let mut back: Surrogate =
            serde_json::from_str(&serde_json::to_string(&sur).unwrap()).unwrap();
        back.prepare().unwrap();
        let c = propose(&back, &cube, &[], &pending, 4, ProposeOptions::default()).unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn failures_inform_feasibility_and_never_break_the_fit() {
        // Everything with x0 > 0.5 fails (no metrics).
        let xs = crate::design::sobol(0, 16, 2, 4).unwrap();
        let obs: Vec<Observation> = xs
            .iter()
            .map(|x| {
                let ok = x[0] <= 0.5;
                Observation {
                    x: x.clone(),
                    y: ok.then(|| problem(x)),
                    feasible: ok,
                }
            })
            .collect();
        let sur = fit(&obs, 2, &[1.1, 1.1], FitOptions::default()).unwrap();
        assert!(sur.feasibility.is_some());
        let p = propose(
            &sur,
            &MixedCube::reals(2),
            &[],
            &[],
            4,
            ProposeOptions::default(),
        )
        .unwrap();
        assert!(p.iter().filter(|x| x[0] <= 0.55).count() >= 3, "{p:?}");
        // All failed: a clear error, not a panic.
        let all_bad: Vec<Observation> = obs
            .iter()
            .map(|o| Observation {
                y: None,
                feasible: false,
                ..o.clone()
            })
            .collect();
        assert!(fit(&all_bad, 2, &[1.1, 1.1], FitOptions::default()).is_err());
    }

    #[test]
    fn warm_fit_is_close_to_the_cold_fit_and_deterministic() {
        // 200 points of a 4-D problem (above WARM_MIN_POINTS): the fit on 196, then on all
        // 200 warm-started from it, against a cold fit on all 200.
        let xs = crate::design::sobol(0, 200, 4, 5).unwrap();
        let obs: Vec<Observation> = xs
            .iter()
            .map(|x| Observation {
                x: x.clone(),
                y: Some(vec![
                    x[0] + 0.1 * x[2],
                    1.0 - x[0].sqrt() + x[1] * x[1] + x[3],
                ]),
                feasible: true,
            })
            .collect();
        let r = [2.0, 3.0];
        let prev = fit(&obs[..196], 2, &r, FitOptions::default()).unwrap();
        assert_eq!(prev.warm_fits, 0);
        let cold = fit(&obs, 2, &r, FitOptions::default()).unwrap();
        let pw = prev.warm_start();
        // The warm start survives JSON (a study records it in surrogate.json).
        let text = serde_json::to_string(&pw).unwrap();
        assert_eq!(serde_json::from_str::<WarmStart>(&text).unwrap(), pw);
        let fo = FitOptions {
            warm_start: Some(&pw),
            ..FitOptions::default()
        };
        let warm = fit(&obs, 2, &r, fo).unwrap();
        assert_eq!(warm.warm_fits, 1);
        for (w, c) in warm.objectives.iter().zip(&cold.objectives) {
            let (lw, lc) = (w.log_likelihood.unwrap(), c.log_likelihood.unwrap());
            assert!(lw > lc - 0.01 * lc.abs().max(1.0), "warm {lw} vs cold {lc}");
        }
        // Deterministic: the same inputs give the same bytes.
        let again = fit(&obs, 2, &r, fo).unwrap();
        assert_eq!(
            serde_json::to_string(&warm).unwrap(),
            serde_json::to_string(&again).unwrap()
        );
        // The chain does a full fit every FULL_FIT_EVERY fits.
        let mut s = warm;
        for _ in 2..crate::defaults::FULL_FIT_EVERY {
            let w = s.warm_start();
            let fo = FitOptions {
                warm_start: Some(&w),
                ..FitOptions::default()
            };
            s = fit(&obs, 2, &r, fo).unwrap();
        }
        let w = s.warm_start();
        let fo = FitOptions {
            warm_start: Some(&w),
            ..FitOptions::default()
        };
        assert_eq!(fit(&obs, 2, &r, fo).unwrap().warm_fits, 0);
    }

    #[test]
    fn noisy_front_comes_from_the_model() {
        let xs = crate::design::sobol(0, 30, 2, 3).unwrap();
        let mut z = 1u64;
        let obs: Vec<Observation> = xs
            .iter()
            .map(|x| {
                z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let e = ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.4;
                let y = problem(x);
                Observation {
                    x: x.clone(),
                    y: Some(vec![y[0] + e, y[1] - e]),
                    feasible: true,
                }
            })
            .collect();
        let sur = fit(&obs, 2, &[1.5, 2.5], FitOptions::default().noisy()).unwrap();
        assert_eq!(sur.front_source, FrontSource::Model);
        assert_eq!(sur.front_index.len(), 30);
        let means: Vec<f64> = sur.objectives[0].predict(&sur.front_x).0;
        assert!(sur.front.iter().zip(&means).all(|(f, m)| f[0] == *m));
        assert!(!sur.pareto_front().is_empty());
        assert!(sur.hypervolume() > 0.0);
        let plain = fit(
            &obs,
            2,
            &[1.5, 2.5],
            FitOptions {
                front: FrontSource::Observed,
                ..FitOptions::default()
            },
        )
        .unwrap();
        assert_eq!(plain.front[0], obs[0].y.clone().unwrap());
    }

    #[test]
    fn model_hypervolume_discounts_a_lucky_observation() {
        // 40 noisy observations of the problem, one of them lucky by 0.3 in both objectives
        // (a network that drew a good seed): it dominates much of the observed front, the
        // model shrinks it towards its neighbours.
        let xs = crate::design::sobol(0, 40, 2, 11).unwrap();
        let mut z = 7u64;
        let lucky = 17;
        let obs: Vec<Observation> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let e = ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.1;
                let shift = if i == lucky { -0.3 } else { 0.0 };
                let y = problem(x);
                Observation {
                    x: x.clone(),
                    y: Some(vec![y[0] + e + shift, y[1] - e + shift]),
                    feasible: true,
                }
            })
            .collect();
        let r = [1.5, 2.5];
        // The front the study reports from the observations, whichever front EHVI uses.
        for front in [FrontSource::Observed, FrontSource::Model] {
            let fo = FitOptions {
                front,
                ..FitOptions::default().noisy()
            };
            let sur = fit(&obs, 2, &r, fo).unwrap();
            let model = sur.model_front();
            assert_eq!(model.len(), 40);
            let mean0 = sur.objectives[0].predict(&sur.front_x).0;
            assert!(model.iter().zip(&mean0).all(|(m, p)| m[0] == *p));
            let ys: Vec<Vec<f64>> = obs.iter().map(|o| o.y.clone().unwrap()).collect();
            let observed = crate::pareto::hypervolume(&ys, &r).unwrap();
            let m = crate::pareto::hypervolume(&model, &r).unwrap();
            // The lucky point is shrunk by more than the noise.
            assert!(model[lucky][0] > ys[lucky][0] + 0.1, "{:?}", model[lucky]);
            assert!(m < observed - 0.05, "model {m} vs observed {observed}");
        }
    }

    #[test]
    fn replicated_points_with_unequal_noise_get_their_own_noise() {
        // 12 points evaluated 3 times each: quiet (sd 0.01) where x0 < 0.5, loud (sd 0.2)
        // elsewhere, in the first objective only; and 8 unreplicated points.
        let xs = crate::design::sobol(0, 20, 2, 5).unwrap();
        let mut z = 3u64;
        let mut noise = |sd: f64| {
            z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((z >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * sd * 12f64.sqrt()
        };
        let mut obs = Vec::new();
        for (i, x) in xs.iter().enumerate() {
            let reps = if i < 12 { 3 } else { 1 };
            for _ in 0..reps {
                let y = problem(x);
                let sd = if x[0] < 0.5 { 0.01 } else { 0.2 };
                obs.push(Observation {
                    x: x.clone(),
                    y: Some(vec![y[0] + noise(sd), y[1]]),
                    feasible: true,
                });
            }
        }
        let r = [1.5, 2.5];
        let sur = fit(&obs, 2, &r, FitOptions::default().noisy()).unwrap();
        let scales = &sur.objectives[0].noise_scale;
        assert_eq!(scales.len(), obs.len());
        let quiet: Vec<f64> = obs
            .iter()
            .zip(scales)
            .filter(|(o, _)| o.x[0] < 0.5)
            .map(|(_, s)| *s)
            .collect();
        let loud: Vec<f64> = obs
            .iter()
            .zip(scales)
            .filter(|(o, _)| o.x[0] >= 0.5)
            .map(|(_, s)| *s)
            .collect();
        let gmean = |v: &[f64]| (v.iter().map(|s| s.ln()).sum::<f64>() / v.len() as f64).exp();
        assert!(
            gmean(&loud) > 10.0 * gmean(&quiet),
            "quiet {quiet:?}, loud {loud:?}"
        );
        // The second objective is noiseless: no replicate spread, no scales.
        assert!(sur.objectives[1].noise_scale.is_empty());
        // Through surrogate.json and into a batch, deterministically.
        let mut back: Surrogate =
            serde_json::from_str(&serde_json::to_string(&sur).unwrap()).unwrap();
        back.prepare().unwrap();
        assert_eq!(back.objectives[0].noise_scale, *scales);
        let cube = MixedCube::reals(2);
        let a = propose(&sur, &cube, &[], &[], 4, ProposeOptions::default()).unwrap();
        let b = propose(&back, &cube, &[], &[], 4, ProposeOptions::default()).unwrap();
        assert_eq!(a.len(), 4);
        assert_eq!(a, b);
        // Without replicates no point gets a scale (the homoscedastic GP; that it is the same
        // bits as before scales existed is checked by the bench: its rows are unchanged).
        let once: Vec<Observation> = {
            let mut seen: Vec<&Vec<f64>> = Vec::new();
            obs.iter()
                .filter(|o| {
                    let new = !seen.contains(&&o.x);
                    seen.push(&o.x);
                    new
                })
                .cloned()
                .collect()
        };
        let s1 = fit(&once, 2, &r, FitOptions::default().noisy()).unwrap();
        assert!(s1.objectives.iter().all(|g| g.noise_scale.is_empty()));
    }
}
