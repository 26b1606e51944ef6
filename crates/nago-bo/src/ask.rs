//! The optimiser for any black box: the `mo-bench/1` ask protocol that `nago-ask` serves.
//!
//! A request carries the problem (dimension, objectives, reference point, discrete levels),
//! the run's seed, the batch size q, the budget, the ask's index and the history so far; the
//! response is q points `{"X": [[x_1 … x_d], …]}` in the unit cube. The engine, its defaults,
//! the seed derivation and the initial-design rule are those of the study
//! ([`crate::defaults`]): Sobol points until [`crate::defaults::initial_design_size`]
//! evaluations, then [`crate::engine::fit`] (warm-started from the previous ask's surrogate
//! when the caller keeps one) and [`crate::engine::propose`].
//!
//! Nothing here does I/O: [`parse_request`] reads the text (errors name the field, e.g.
//! `problem.ref_point`), [`ask`] proposes, [`Response::to_json`] writes the bytes.

use crate::defaults::{fit_options, initial_design_size, propose_options, sobol_seed};
use crate::engine::{fit, propose, Observation, Surrogate};
use crate::space::Snap;
use serde::{Deserialize, Serialize};

/// The protocol this module speaks.
pub const PROTOCOL: &str = "mo-bench/1";

/// A request (the file `nago-ask` reads).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Must be `"mo-bench/1"`.
    pub protocol: String,
    /// The problem.
    pub problem: Problem,
    /// The run's seed (every random choice derives from it).
    pub seed: u64,
    /// Points to propose (≥ 1).
    pub q: usize,
    /// Total evaluations of the run (sizes the initial design).
    pub budget: usize,
    /// Which ask of the run this is (0, 1, …): seeds the proposal.
    pub ask_index: u64,
    /// A directory that persists for the run (empty at ask 0): `nago-ask` keeps the previous
    /// ask's surrogate there to warm-start the next fit. Optional.
    #[serde(default)]
    pub state_dir: Option<String>,
    /// The evaluations so far.
    pub history: History,
}

/// The problem of a request.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Informational only (never used).
    #[serde(default)]
    pub name: Option<String>,
    /// Inputs (≥ 1).
    pub dim: usize,
    /// Objectives (1–3), all minimised.
    pub num_objectives: usize,
    /// The hypervolume's reference point (objective units), one value per objective.
    pub ref_point: Vec<f64>,
    /// Per input: `null` = continuous, `L` (≥ 2) = evaluated at round(x·(L−1))/(L−1).
    /// Absent: all continuous.
    #[serde(default)]
    pub levels: Option<Vec<Option<u32>>>,
    /// Whether evaluations are noisy (the incumbent front then comes from the model).
    #[serde(default)]
    pub noisy: bool,
}

/// The evaluations so far.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// n × d points in [0, 1]^d, as evaluated.
    #[serde(rename = "X")]
    pub x: Vec<Vec<f64>>,
    /// n × m observed objective values (minimised); a `null` row or value marks a failed
    /// evaluation (it only informs the feasibility model).
    #[serde(rename = "Y")]
    pub y: Vec<Option<Vec<Option<f64>>>>,
}

/// The response (the file `nago-ask` writes).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Response {
    /// q points in [0, 1]^d (snapped to the levels).
    #[serde(rename = "X")]
    pub x: Vec<Vec<f64>>,
}

impl Response {
    /// The response's bytes: `{"X":[[…],…]}` and a newline (shortest round-trip floats, so
    /// identical responses are identical bytes).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a response serialises");
        s.push('\n');
        s
    }
}

/// A bad request: the field (a path such as `history.X[3][1]`) and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AskError {
    /// The offending field's path.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> AskError {
    AskError {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses and validates a request; errors name the field.
pub fn parse_request(text: &str) -> Result<Request, AskError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let req: Request = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let parent = if path == "." || path.is_empty() {
            None
        } else {
            Some(path)
        };
        // A missing field is reported at its parent: name the field itself.
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split_once('`'))
            .map(|(f, _)| f.to_string());
        let field = match (parent, missing) {
            (Some(p), Some(f)) => format!("{p}.{f}"),
            (None, Some(f)) => f,
            (Some(p), None) => p,
            (None, None) => "request".to_string(),
        };
        bad(field, inner)
    })?;
    req.validate()?;
    Ok(req)
}

impl Request {
    /// Checks every field's value (types are checked by [`parse_request`]).
    pub fn validate(&self) -> Result<(), AskError> {
        if self.protocol != PROTOCOL {
            return Err(bad(
                "protocol",
                format!("expected \"{PROTOCOL}\", got {:?}", self.protocol),
            ));
        }
        let p = &self.problem;
        if p.dim == 0 || p.dim > crate::design::MAX_DIMS {
            return Err(bad(
                "problem.dim",
                format!("must be 1 to {}, got {}", crate::design::MAX_DIMS, p.dim),
            ));
        }
        if !(1..=3).contains(&p.num_objectives) {
            return Err(bad(
                "problem.num_objectives",
                format!("must be 1, 2 or 3, got {}", p.num_objectives),
            ));
        }
        if p.ref_point.len() != p.num_objectives {
            return Err(bad(
                "problem.ref_point",
                format!(
                    "has {} values for {} objectives",
                    p.ref_point.len(),
                    p.num_objectives
                ),
            ));
        }
        if let Some(l) = &p.levels {
            if l.len() != p.dim {
                return Err(bad(
                    "problem.levels",
                    format!("has {} entries for {} inputs", l.len(), p.dim),
                ));
            }
            for (i, v) in l.iter().enumerate() {
                if let Some(v) = v {
                    if *v < 2 {
                        return Err(bad(
                            format!("problem.levels[{i}]"),
                            format!("a discrete input needs at least 2 levels, got {v}"),
                        ));
                    }
                }
            }
        }
        if self.q == 0 {
            return Err(bad("q", "must be at least 1"));
        }
        if self.budget == 0 {
            return Err(bad("budget", "must be at least 1"));
        }
        if self.state_dir.as_deref() == Some("") {
            return Err(bad("state_dir", "is empty (leave it out for no state)"));
        }
        let h = &self.history;
        if h.x.len() != h.y.len() {
            return Err(bad(
                "history.Y",
                format!("has {} rows, history.X has {}", h.y.len(), h.x.len()),
            ));
        }
        for (i, row) in h.x.iter().enumerate() {
            if row.len() != p.dim {
                return Err(bad(
                    format!("history.X[{i}]"),
                    format!("has {} values for {} inputs", row.len(), p.dim),
                ));
            }
            for (j, v) in row.iter().enumerate() {
                if !(0.0..=1.0).contains(v) {
                    return Err(bad(
                        format!("history.X[{i}][{j}]"),
                        format!("{v} is outside [0, 1]"),
                    ));
                }
            }
        }
        for (i, row) in h.y.iter().enumerate() {
            if let Some(row) = row {
                if row.len() != p.num_objectives {
                    return Err(bad(
                        format!("history.Y[{i}]"),
                        format!(
                            "has {} values for {} objectives",
                            row.len(),
                            p.num_objectives
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The history as observations (a row with a missing value is a failed evaluation).
    pub fn observations(&self) -> Vec<Observation> {
        self.history
            .x
            .iter()
            .zip(&self.history.y)
            .map(|(x, y)| {
                let y: Option<Vec<f64>> = y.as_ref().and_then(|r| r.iter().copied().collect());
                Observation {
                    x: x.clone(),
                    feasible: y.is_some(),
                    y,
                }
            })
            .collect()
    }

    /// The snapping rule of the problem's levels.
    pub fn snap(&self) -> LevelSnap {
        LevelSnap {
            levels: self
                .problem
                .levels
                .clone()
                .unwrap_or_else(|| vec![None; self.problem.dim]),
        }
    }
}

/// Snapping to `mo-bench/1` levels: an input with L levels takes the values k/(L−1).
#[derive(Debug, Clone, PartialEq)]
pub struct LevelSnap {
    /// Per input: `None` continuous, `Some(L)` L levels.
    pub levels: Vec<Option<u32>>,
}

impl Snap for LevelSnap {
    fn dims(&self) -> usize {
        self.levels.len()
    }
    fn snap(&self, u: &mut [f64]) {
        for (v, l) in u.iter_mut().zip(&self.levels) {
            *v = if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) };
            if let Some(l) = l {
                let s = (l.max(&2) - 1) as f64;
                *v = (*v * s).round() / s;
            }
        }
    }
}

/// What one ask produced: the response and, once the model took over, the fitted surrogate
/// (to keep for the next ask's warm start).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The points.
    pub response: Response,
    /// The surrogate fitted on the history (`None` during the initial design).
    pub surrogate: Option<Surrogate>,
}

/// Whether `warm` (a previous ask's surrogate) may warm-start this request's fit: same
/// dimension, and its observations a strict prefix of the history.
pub fn usable_warm_start(req: &Request, warm: &Surrogate) -> bool {
    let h = &req.history.x;
    warm.dims == req.problem.dim
        && warm.objectives.len() == req.problem.num_objectives
        && warm.observed.len() < h.len()
        && warm.observed.iter().zip(h).all(|(a, b)| a == b)
}

/// Answers a validated request: Sobol points (snapped) while the history has fewer than
/// [`initial_design_size`] evaluations with values, then the model's batch (topped up from
/// the design if the space has fewer unexplored points). `warm` is the previous ask's
/// surrogate (ignored unless [`usable_warm_start`]).
pub fn ask(req: &Request, warm: Option<&Surrogate>) -> Result<Answer, AskError> {
    req.validate()?;
    let snap = req.snap();
    let d = req.problem.dim;
    let m = req.problem.num_objectives;
    let obs = req.observations();
    let n_values = obs.iter().filter(|o| o.y.is_some()).count();
    let need = initial_design_size(d, req.budget);
    let mut xs: Vec<Vec<f64>> = Vec::with_capacity(req.q);
    let mut surrogate = None;
    if n_values >= need.max(1) {
        let mut fo = fit_options(req.seed);
        let warm = warm
            .filter(|w| usable_warm_start(req, w))
            .map(Surrogate::warm_start);
        fo.warm_start = warm.as_ref();
        if req.problem.noisy {
            fo = fo.noisy();
        }
        let sur =
            fit(&obs, m, &req.problem.ref_point, fo).map_err(|e| bad("history", e.to_string()))?;
        let po = propose_options(req.seed, req.ask_index);
        xs =
            propose(&sur, &snap, &[], &[], req.q, po).map_err(|e| bad("history", e.to_string()))?;
        surrogate = Some(sur);
    }
    let left = req.q - xs.len();
    if left > 0 {
        // The design continues where the history stops (the first asks were all design).
        let pts = crate::design::sobol(obs.len(), left, d, sobol_seed(req.seed))
            .map_err(|e| bad("problem.dim", e.to_string()))?;
        for mut p in pts {
            snap.snap(&mut p);
            xs.push(p);
        }
    }
    Ok(Answer {
        response: Response { x: xs },
        surrogate,
    })
}
