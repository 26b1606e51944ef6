//! The study's objectives in model units: the one place where metrics become the numbers
//! the optimiser, the trial table's hypervolume and the report compare.
//!
//! Model units: minimised (a `max` objective is negated), and log-transformed (natural log)
//! when the objective says `"log": true`.

use nago_space::{Goal, Study};
use nago_store::{TrialResult, TrialStatus};

/// How one result scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Objective values in model units (absent when the run failed or a value is missing).
    pub y: Option<Vec<f64>>,
    /// Status `ok`, every objective finite, every constraint met.
    pub feasible: bool,
}

/// The objectives and constraints of a study.
#[derive(Debug, Clone)]
pub struct Objectives<'a> {
    study: &'a Study,
}

impl<'a> Objectives<'a> {
    /// The study's objectives.
    pub fn new(study: &'a Study) -> Self {
        Objectives { study }
    }
    /// How many.
    pub fn len(&self) -> usize {
        self.study.objectives.len()
    }
    /// Whether there are none (never, for a validated study).
    pub fn is_empty(&self) -> bool {
        self.study.objectives.is_empty()
    }
    /// The metric names, in order.
    pub fn names(&self) -> Vec<String> {
        self.study
            .objectives
            .iter()
            .map(|o| o.metric.clone())
            .collect()
    }

    /// A metric value of objective `k` in model units, or `None` (not finite, or ≤ 0 on a
    /// log scale).
    pub fn to_model(&self, k: usize, v: f64) -> Option<f64> {
        let o = &self.study.objectives[k];
        if !v.is_finite() {
            return None;
        }
        let v = if o.log {
            if v <= 0.0 {
                return None;
            }
            v.ln()
        } else {
            v
        };
        Some(match o.goal {
            Goal::Min => v,
            Goal::Max => -v,
        })
    }

    /// A model-unit value of objective `k` back in the metric's own units.
    pub fn to_metric(&self, k: usize, m: f64) -> f64 {
        let o = &self.study.objectives[k];
        let v = match o.goal {
            Goal::Min => m,
            Goal::Max => -m,
        };
        if o.log {
            v.exp()
        } else {
            v
        }
    }

    /// Model-unit objective values from metric values looked up by name.
    pub fn model_values(&self, metric: impl Fn(&str) -> Option<f64>) -> Option<Vec<f64>> {
        (0..self.len())
            .map(|k| metric(&self.study.objectives[k].metric).and_then(|v| self.to_model(k, v)))
            .collect()
    }

    /// Whether every constraint is met by the metrics.
    pub fn constraints_met(&self, metric: impl Fn(&str) -> Option<f64>) -> bool {
        self.study
            .constraints
            .iter()
            .all(|c| c.allows(metric(&c.metric)))
    }

    /// Whether a result shows that the network learned: its validation accuracy is more than
    /// `search.learned_fraction` of the way from chance (1/classes) to 1. A result without a
    /// validation accuracy (a custom trainer) counts as learned; a failed one does not.
    pub fn learned(&self, r: &TrialResult) -> bool {
        if r.status != TrialStatus::Ok {
            return false;
        }
        let Some(acc) = r.val_accuracy else {
            return true;
        };
        let classes = self.study.dataset.shape().map_or(10, |s| s.3).max(1) as f64;
        let chance = 1.0 / classes;
        acc > chance + self.study.search.learned_fraction * (1.0 - chance)
    }

    /// Objective values and feasibility of a result.
    pub fn evaluate(&self, r: &TrialResult) -> Evaluation {
        if r.status != TrialStatus::Ok {
            return Evaluation {
                y: None,
                feasible: false,
            };
        }
        let y = self.model_values(|m| r.metric(m));
        let feasible = y.is_some() && self.constraints_met(|m| r.metric(m));
        Evaluation { y, feasible }
    }

    /// The hypervolume reference point in model units: the study's `reference` where given;
    /// else the `recorded` one (from surrogate.json, never changed once set); else derived
    /// from `ys` (worst value + 10% of the range); NaN while there are no data.
    pub fn reference(&self, recorded: Option<&[f64]>, ys: &[Vec<f64>]) -> Vec<f64> {
        let m = self.len();
        let recorded = recorded.filter(|r| r.len() == m);
        (0..m)
            .map(|k| {
                let o = &self.study.objectives[k];
                if let Some(r) = o.reference {
                    return self.to_model(k, r).unwrap_or(f64::NAN);
                }
                if let Some(r) = recorded.filter(|r| r[k].is_finite()) {
                    return r[k];
                }
                let vals: Vec<f64> = ys.iter().map(|y| y[k]).collect();
                if vals.is_empty() {
                    return f64::NAN;
                }
                let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let span = if hi > lo { hi - lo } else { hi.abs().max(1.0) };
                hi + 0.1 * span
            })
            .collect()
    }
}
