//! The optimiser loop's two steps, shared by `nago-update`/`nago-propose` and the benchmark:
//! [`fit`] (observations → a serialisable [`Surrogate`]) and [`propose`] (a surrogate +
//! pending points → a batch of q new points).
//!
//! Batches use the **kriging believer**: after choosing a point, each GP is conditioned on
//! its own posterior mean there (hyperparameters fixed), so the variance collapses around it
//! and the next choice goes elsewhere; the believed value joins the front if it is predicted
//! feasible. Pending points (proposed, not yet evaluated) are believed the same way first.

use crate::acq::Acquisition;
use crate::gp::{Gp, GpFitOptions};
use crate::optimize::{maximize, OptimizeOptions};
use crate::space::Snap;
use crate::BoError;
use serde::{Deserialize, Serialize};

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

/// How to fit.
#[derive(Debug, Clone, Copy, Default)]
pub struct FitOptions {
    /// GP hyperparameter fitting.
    pub gp: GpFitOptions,
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
    /// Feasible evaluated objective vectors (model units).
    pub front: Vec<Vec<f64>>,
    /// Their points.
    pub front_x: Vec<Vec<f64>>,
}

/// Fits one GP per objective on the observations with values, and a feasibility GP if any
/// observation is infeasible. `reference` is in model units.
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
    let with_y: Vec<&Observation> = obs
        .iter()
        .filter(|o| {
            o.y.as_ref()
                .is_some_and(|y| y.len() == n_objectives && y.iter().all(|v| v.is_finite()))
        })
        .collect();
    if with_y.is_empty() {
        return Err(BoError::Invalid(
            "no evaluation with finite objective values to fit a model to".into(),
        ));
    }
    let dims = with_y[0].x.len();
    if obs.iter().any(|o| o.x.len() != dims) {
        return Err(BoError::Invalid(
            "observations of different dimensions".into(),
        ));
    }
    let x: Vec<Vec<f64>> = with_y.iter().map(|o| o.x.clone()).collect();
    let mut objectives = Vec::with_capacity(n_objectives);
    for k in 0..n_objectives {
        let y: Vec<f64> = with_y.iter().map(|o| o.y.as_ref().unwrap()[k]).collect();
        let mut go = opts.gp;
        go.seed = opts.gp.seed.wrapping_add(k as u64);
        objectives.push(Gp::fit(x.clone(), &y, go)?);
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
    let feasible: Vec<&&Observation> = with_y.iter().filter(|o| o.feasible).collect();
    Ok(Surrogate {
        dims,
        objectives,
        feasibility,
        reference: reference.to_vec(),
        observed: obs.iter().map(|o| o.x.clone()).collect(),
        front: feasible.iter().map(|o| o.y.clone().unwrap()).collect(),
        front_x: feasible.iter().map(|o| o.x.clone()).collect(),
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
    let believe = |xs: &[Vec<f64>],
                   gps: &mut Vec<Gp>,
                   feas: &mut Option<Gp>,
                   front: &mut Vec<Vec<f64>>|
     -> Result<(), BoError> {
        if xs.is_empty() {
            return Ok(());
        }
        let means: Vec<Vec<f64>> = gps.iter().map(|g| g.predict(xs).0).collect();
        for (k, g) in gps.iter_mut().enumerate() {
            *g = g.condition_on(xs, &means[k])?;
        }
        let feasible: Vec<bool> = match feas.as_mut() {
            Some(f) => {
                let m = f.predict(xs).0;
                *f = f.condition_on(xs, &m)?;
                m.iter().map(|v| *v > 0.0).collect()
            }
            None => vec![true; xs.len()],
        };
        for j in 0..xs.len() {
            if feasible[j] {
                front.push(means.iter().map(|m| m[j]).collect());
            }
        }
        Ok(())
    };
    believe(pending, &mut gps, &mut feas, &mut front)?;
    exclude.extend(pending.iter().cloned());
    let mut out = Vec::with_capacity(q);
    for b in 0..q {
        let acq = Acquisition::new(&gps, feas.as_ref(), &front, sur.reference.clone());
        let f = |xs: &[Vec<f64>]| acq.evaluate(xs);
        let mut o = opts.optimize;
        o.seed = opts.optimize.seed.wrapping_add(b as u64 * 0x9e37_79b9);
        let Some((x, _)) = maximize(&f, snap, one_hot_groups, &sur.front_x, &exclude, o) else {
            break;
        };
        drop(acq);
        believe(std::slice::from_ref(&x), &mut gps, &mut feas, &mut front)?;
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
}
