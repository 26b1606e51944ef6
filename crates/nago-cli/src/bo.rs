//! What `nago-update` and `nago-propose` do, over the study directory: scanning trials,
//! building the trial table, fitting and saving the surrogate, and proposing rounds.
//!
//! The optimisation itself is `nago-bo` (no I/O) and the tables are `nago-table`; this module
//! only adapts the study's files to them. Included by both binaries (`#[path]`), so each
//! binary uses only part of it.
#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use nago_bo::engine::{self, FitOptions, Observation, ProposeOptions, Surrogate};
use nago_bo::mf;
use nago_bo::pareto::{hypervolume, pareto_indices};
use nago_bo::Snap;
use nago_space::{DimKind, FlatValue, Generator, Goal, Space, Study};
use nago_store::{
    atomic_write, atomic_write_json, derive_seed, Proposal, RoundProposals, StudyDir, TrialResult,
    TrialStatus, PROPOSAL_SCHEMA, RESULT_SCHEMA, ROUND_SCHEMA,
};
use nago_table::{read_parquet, to_parquet, Cell, ColType, Table, PARETO_SCHEMA, TRIALS_SCHEMA};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Schema tag of `surrogate.json`.
pub const SURROGATE_SCHEMA: &str = "nago.surrogate/1";

/// `surrogate.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SurrogateFile {
    /// [`SURROGATE_SCHEMA`].
    pub schema: String,
    /// The objective metrics, in order.
    pub objectives: Vec<String>,
    /// The hypervolume reference point, in model units (minimised; log where asked).
    pub reference: Vec<f64>,
    /// The budget (epochs) the model was fitted on.
    pub budget: Option<f64>,
    /// Evaluations with objective values at that budget.
    pub n_observations: usize,
    /// The fitted models (absent while no evaluation has succeeded).
    pub model: Option<Surrogate>,
}

/// The study's space as a snapping cube: the canonical point is `encode(decode(u))`.
pub struct SpaceSnap<'a>(pub &'a Space);

impl Snap for SpaceSnap<'_> {
    fn dims(&self) -> usize {
        self.0.n_dims()
    }
    fn snap(&self, u: &mut [f64]) {
        for v in u.iter_mut() {
            *v = if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) };
        }
        if let Ok(g) = self.0.decode(u) {
            if let Ok(c) = self.0.encode(&g) {
                u.copy_from_slice(&c);
            }
        }
    }
}

/// The one-hot groups of a space, `(start, size)`.
pub fn one_hot_groups(space: &Space) -> Vec<(usize, usize)> {
    let mut g: Vec<(usize, usize)> = space
        .dims()
        .iter()
        .filter_map(|d| match d.kind {
            DimKind::OneHot { start, size } => Some((start, size)),
            _ => None,
        })
        .collect();
    g.dedup();
    g
}

/// One trial as found on disk.
#[derive(Debug, Clone)]
pub struct TrialInfo {
    /// Its proposal.
    pub proposal: Proposal,
    /// Its result, if a valid one exists.
    pub result: Option<TrialResult>,
    /// Whether `result.json` exists at all (a corrupt one is not pending).
    pub has_result_file: bool,
}

/// Reads every trial directory; unreadable files are reported on stderr (naming the file)
/// and skipped.
pub fn scan(sd: &StudyDir, who: &str) -> Result<Vec<TrialInfo>> {
    let mut out = Vec::new();
    for id in sd.trial_ids()? {
        let proposal = match sd.proposal(&id) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{who}: warning: skipping trial {id}: {e}");
                continue;
            }
        };
        let rpath = sd.trial_dir(&id).join("result.json");
        let has_result_file = rpath.exists();
        let result = if has_result_file {
            match nago_store::read_json::<TrialResult>(&rpath, Some(RESULT_SCHEMA)) {
                Ok(r) if r.trial != id => {
                    eprintln!(
                        "{who}: warning: skipping {}: field `trial` is `{}`, expected `{id}`",
                        rpath.display(),
                        r.trial
                    );
                    None
                }
                Ok(r) => Some(r),
                Err(e) => {
                    eprintln!("{who}: warning: skipping {e}");
                    None
                }
            }
        } else {
            None
        };
        out.push(TrialInfo {
            proposal,
            result,
            has_result_file,
        });
    }
    Ok(out)
}

/// The model-unit value of an objective (minimised, log if asked), or `None`.
fn model_value(study: &Study, k: usize, r: &TrialResult) -> Option<f64> {
    let o = &study.objectives[k];
    let v = r.metric(&o.metric)?;
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

/// Objective values (model units) and feasibility of a result.
pub fn evaluate_result(study: &Study, r: &TrialResult) -> (Option<Vec<f64>>, bool) {
    if r.status != TrialStatus::Ok {
        return (None, false);
    }
    let y: Option<Vec<f64>> = (0..study.objectives.len())
        .map(|k| model_value(study, k, r))
        .collect();
    let feasible = y.is_some()
        && study.constraints.iter().all(|c| {
            r.metric(&c.metric)
                .is_some_and(|v| v.is_finite() && v <= c.max)
        });
    (y, feasible)
}

const METRICS: [(&str, ColType); 9] = [
    ("epochs_done", ColType::F64),
    ("val_error", ColType::F64),
    ("val_accuracy", ColType::F64),
    ("test_accuracy", ColType::F64),
    ("params", ColType::I64),
    ("macs", ColType::I64),
    ("memory_mb", ColType::F64),
    ("train_seconds", ColType::F64),
    ("error", ColType::Str),
];

/// The trial table's columns for a study.
pub fn columns(study: &Study) -> Vec<(String, ColType)> {
    let mut c: Vec<(String, ColType)> = vec![
        ("trial".into(), ColType::Str),
        ("round".into(), ColType::I64),
        ("parent".into(), ColType::Str),
        ("origin".into(), ColType::Str),
        ("seed".into(), ColType::I64),
        ("budget".into(), ColType::F64),
        ("status".into(), ColType::Str),
    ];
    for (name, v) in study.space.base().flat() {
        c.push((
            name,
            match v {
                FlatValue::Int(_) => ColType::I64,
                FlatValue::Real(_) => ColType::F64,
                FlatValue::Str(_) => ColType::Str,
            },
        ));
    }
    for (n, t) in METRICS {
        c.push((n.into(), t));
    }
    let known: BTreeSet<&str> = METRICS.iter().map(|m| m.0).collect();
    let mut extra = BTreeSet::new();
    for m in study
        .objectives
        .iter()
        .map(|o| &o.metric)
        .chain(study.constraints.iter().map(|c| &c.metric))
    {
        if !known.contains(m.as_str()) {
            extra.insert(format!("metric_{m}"));
        }
    }
    for e in extra {
        c.push((e, ColType::F64));
    }
    c.push(("feasible".into(), ColType::Bool));
    c.push(("hypervolume".into(), ColType::F64));
    c
}

fn row_for(study: &Study, cols: &[(String, ColType)], t: &TrialInfo, r: &TrialResult) -> Vec<Cell> {
    let p = &t.proposal;
    let mut m: BTreeMap<String, Cell> = BTreeMap::new();
    m.insert("trial".into(), Cell::Str(Some(p.trial.clone())));
    m.insert("round".into(), Cell::I64(Some(p.round as i64)));
    m.insert("parent".into(), Cell::Str(p.parent.clone()));
    m.insert("origin".into(), Cell::Str(Some(p.origin.clone())));
    m.insert("seed".into(), Cell::I64(Some(p.seed as i64)));
    m.insert("budget".into(), Cell::F64(Some(r.budget)));
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string));
    m.insert("status".into(), Cell::Str(status));
    for (name, v) in p.generator.flat() {
        m.insert(
            name,
            match v {
                FlatValue::Int(i) => Cell::I64(Some(i)),
                FlatValue::Real(x) => Cell::F64(Some(x)),
                FlatValue::Str(s) => Cell::Str(Some(s.to_string())),
            },
        );
    }
    let fin = |v: Option<f64>| v.filter(|x| x.is_finite());
    m.insert("epochs_done".into(), Cell::F64(fin(r.epochs_done)));
    m.insert("val_error".into(), Cell::F64(fin(r.val_error)));
    m.insert("val_accuracy".into(), Cell::F64(fin(r.val_accuracy)));
    m.insert("test_accuracy".into(), Cell::F64(fin(r.test_accuracy)));
    m.insert("params".into(), Cell::I64(r.params.map(|v| v as i64)));
    m.insert("macs".into(), Cell::I64(r.macs.map(|v| v as i64)));
    m.insert("memory_mb".into(), Cell::F64(fin(r.memory_mb)));
    m.insert("train_seconds".into(), Cell::F64(fin(r.train_seconds)));
    m.insert("error".into(), Cell::Str(r.error.clone()));
    for (name, _) in cols {
        if let Some(metric) = name.strip_prefix("metric_") {
            m.insert(name.clone(), Cell::F64(fin(r.metric(metric))));
        }
    }
    let (_, feasible) = evaluate_result(study, r);
    m.insert("feasible".into(), Cell::Bool(Some(feasible)));
    cols.iter()
        .map(|(n, t)| m.remove(n).unwrap_or(Cell::null(*t)))
        .collect()
}

/// The budget the model and the Pareto front use: the largest rung with at least `need`
/// evaluations with values, else the rung with the most.
pub fn model_budget(study: &Study, trials: &[TrialInfo]) -> Option<f64> {
    let need = study.search.initial_design.max(1) as usize;
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for t in trials {
        if let Some(r) = &t.result {
            if evaluate_result(study, r).0.is_some() {
                *count.entry(r.budget.to_bits()).or_default() += 1;
            }
        }
    }
    let mut by_budget: Vec<(f64, usize)> = count
        .into_iter()
        .map(|(b, n)| (f64::from_bits(b), n))
        .collect();
    by_budget.sort_by(|a, b| b.0.total_cmp(&a.0));
    by_budget
        .iter()
        .find(|(_, n)| *n >= need)
        .or_else(|| {
            by_budget
                .iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.total_cmp(&a.0)))
        })
        .map(|(b, _)| *b)
}

/// What `nago-update` did.
#[derive(Debug, Default)]
pub struct UpdateSummary {
    /// Rows in the table now.
    pub rows: usize,
    /// Rows added.
    pub new: usize,
    /// Rows whose result changed.
    pub changed: usize,
    /// Rows kept from the old table whose files are gone or unreadable now.
    pub kept: usize,
    /// Trials still without a result.
    pub pending: usize,
    /// Points on the Pareto front.
    pub front: usize,
    /// Hypervolume of the front (model units).
    pub hypervolume: Option<f64>,
    /// Budget of the model and front.
    pub budget: Option<f64>,
}

/// `nago-update`: trial table, surrogate and Pareto table. Takes the study lock.
pub fn update(sd: &StudyDir, seed_override: Option<u64>) -> Result<UpdateSummary> {
    let _lock = nago_store::StudyLock::acquire(sd.root(), "nago-update")?;
    let study = sd.study()?;
    let trials = scan(sd, "nago-update")?;
    let cols = columns(&study);
    let key = |row: &[Cell], cols: &[(String, ColType)]| -> (String, u64) {
        let ti = cols.iter().position(|c| c.0 == "trial").unwrap();
        let bi = cols.iter().position(|c| c.0 == "budget").unwrap();
        (
            row[ti].as_str().unwrap_or("").to_string(),
            row[bi].as_f64().unwrap_or(f64::NAN).to_bits(),
        )
    };
    // Old rows, mapped onto the current columns by name.
    let mut rows: BTreeMap<(String, u64), Vec<Cell>> = BTreeMap::new();
    let path = sd.trials_table();
    if path.exists() {
        let old = read_parquet(&path, TRIALS_SCHEMA).with_context(|| {
            "the existing trial table cannot be read; nago-update never drops rows it has \
             seen, so move the file away to rebuild it from the trial directories"
        })?;
        for r in &old.rows {
            let mapped: Vec<Cell> = cols
                .iter()
                .map(|(n, t)| match old.col(n) {
                    Some(i) if r[i].col_type() == *t => r[i].clone(),
                    _ => Cell::null(*t),
                })
                .collect();
            rows.insert(key(&mapped, &cols), mapped);
        }
    }
    let mut s = UpdateSummary::default();
    let hv_col = cols.len() - 1;
    let mut seen = BTreeSet::new();
    for t in &trials {
        let Some(r) = &t.result else {
            if !t.has_result_file {
                s.pending += 1;
            }
            continue;
        };
        let mut row = row_for(&study, &cols, t, r);
        let k = key(&row, &cols);
        seen.insert(k.clone());
        match rows.get(&k) {
            None => s.new += 1,
            Some(old) => {
                row[hv_col] = old[hv_col].clone();
                if *old != row {
                    s.changed += 1;
                }
            }
        }
        rows.insert(k, row);
    }
    s.kept = rows.keys().filter(|k| !seen.contains(*k)).count();

    // Reference point: the study's, else the recorded one, else derived from the data.
    let m = study.objectives.len();
    let prev: Option<SurrogateFile> = sd
        .surrogate_path()
        .exists()
        .then(|| nago_store::read_json(&sd.surrogate_path(), Some(SURROGATE_SCHEMA)))
        .transpose()
        .ok()
        .flatten();
    let metric_names: Vec<String> = study.objectives.iter().map(|o| o.metric.clone()).collect();
    let evals: Vec<(&TrialInfo, Option<Vec<f64>>, bool)> = trials
        .iter()
        .filter_map(|t| {
            t.result.as_ref().map(|r| {
                let (y, f) = evaluate_result(&study, r);
                (t, y, f)
            })
        })
        .collect();
    let reference = reference_point(&study, prev.as_ref(), &metric_names, &evals);

    // Hypervolume after each evaluation (rows in (round, trial, budget) order), over the
    // feasible rows at the front's budget.
    let budget = model_budget(&study, &trials);
    s.budget = budget;
    let mut ordered: Vec<Vec<Cell>> = rows.into_values().collect();
    let ri = cols.iter().position(|c| c.0 == "round").unwrap();
    ordered.sort_by(|a, b| {
        a[ri]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b[ri].as_f64().unwrap_or(0.0))
            .then(key(a, &cols).0.cmp(&key(b, &cols).0))
            .then(f64::from_bits(key(a, &cols).1).total_cmp(&f64::from_bits(key(b, &cols).1)))
    });
    let fi = cols.iter().position(|c| c.0 == "feasible").unwrap();
    let obj_cols: Vec<usize> = study
        .objectives
        .iter()
        .map(|o| {
            cols.iter()
                .position(|c| c.0 == o.metric || c.0 == format!("metric_{}", o.metric))
                .unwrap()
        })
        .collect();
    let row_y = |row: &[Cell]| -> Option<Vec<f64>> {
        (0..m)
            .map(|k| {
                let o = &study.objectives[k];
                let v = row[obj_cols[k]].as_f64()?;
                let v = if o.log { (v > 0.0).then(|| v.ln())? } else { v };
                Some(if o.goal == Goal::Max { -v } else { v })
            })
            .collect()
    };
    let mut front_pts: Vec<Vec<f64>> = Vec::new();
    let mut front_rows: Vec<usize> = Vec::new();
    for (i, row) in ordered.iter_mut().enumerate() {
        let at_budget = budget.is_some_and(|b| row[5].as_f64() == Some(b));
        let ok = row[6].as_str() == Some("ok") && row[fi] == Cell::Bool(Some(true));
        if at_budget && ok {
            if let Some(y) = row_y(row) {
                front_pts.push(y);
                front_rows.push(i);
            }
        }
        let hv = hypervolume(&front_pts, &reference).ok();
        row[hv_col] = Cell::F64(if budget.is_some() { hv } else { None });
    }
    s.rows = ordered.len();
    let table = Table {
        columns: cols.clone(),
        rows: ordered,
    };
    let bytes = to_parquet(&table, TRIALS_SCHEMA).with_context(|| path.display().to_string())?;

    // The Pareto table: the non-dominated feasible rows at the budget.
    let front_idx = pareto_indices(&front_pts);
    s.front = front_idx.len();
    s.hypervolume = budget.and_then(|_| hypervolume(&front_pts, &reference).ok());
    let pareto = Table {
        columns: cols,
        rows: front_idx
            .iter()
            .map(|&i| table.rows[front_rows[i]].clone())
            .collect(),
    };
    let pbytes = to_parquet(&pareto, PARETO_SCHEMA)?;

    // The surrogate, fitted on the evaluations at the model budget.
    let space = &study.space;
    let obs: Vec<Observation> = evals
        .iter()
        .filter(|(t, _, _)| budget.is_some_and(|b| t.result.as_ref().unwrap().budget == b))
        .filter_map(|(t, y, f)| {
            let x = space.encode(&t.proposal.generator).ok()?;
            Some(Observation {
                x,
                y: y.clone(),
                feasible: *f,
            })
        })
        .collect();
    let n_obs = obs.iter().filter(|o| o.y.is_some()).count();
    let model = if n_obs > 0 {
        let mut fo = FitOptions::default();
        fo.gp.seed = derive_seed(seed_override.unwrap_or(study.seed), &["surrogate"]);
        Some(engine::fit(&obs, m, &reference, fo).context("fitting the surrogate")?)
    } else {
        None
    };
    let sf = SurrogateFile {
        schema: SURROGATE_SCHEMA.into(),
        objectives: metric_names,
        reference,
        budget,
        n_observations: n_obs,
        model,
    };
    // Write: table first, then front, then surrogate (each atomic).
    atomic_write(&path, &bytes)?;
    atomic_write(&sd.pareto_table(), &pbytes)?;
    atomic_write_json(&sd.surrogate_path(), &sf)?;
    Ok(s)
}

fn reference_point(
    study: &Study,
    prev: Option<&SurrogateFile>,
    names: &[String],
    evals: &[(&TrialInfo, Option<Vec<f64>>, bool)],
) -> Vec<f64> {
    let m = study.objectives.len();
    let recorded = prev
        .filter(|p| p.objectives == names && p.reference.len() == m)
        .map(|p| p.reference.clone());
    (0..m)
        .map(|k| {
            let o = &study.objectives[k];
            if let Some(r) = o.reference {
                let v = if o.log { r.max(1e-300).ln() } else { r };
                return if o.goal == Goal::Max { -v } else { v };
            }
            if let Some(r) = recorded.as_ref().filter(|r| r[k].is_finite()) {
                return r[k];
            }
            let vals: Vec<f64> = evals
                .iter()
                .filter_map(|e| e.1.as_ref().map(|y| y[k]))
                .collect();
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

/// Options of `nago-propose`.
#[derive(Debug, Clone, Default)]
pub struct ProposeArgs {
    /// Propose this round (default: the next one).
    pub round: Option<u32>,
    /// Re-propose a round that exists (only if none of its trials has started).
    pub force: bool,
    /// Propose although trials of earlier rounds have no result yet (they count as pending).
    pub allow_pending: bool,
    /// Final mode: K samples of each chosen generator at the full budget.
    pub final_mode: bool,
    /// In final mode, the trials whose generators to take (default: the Pareto set).
    pub final_trials: Vec<String>,
    /// In final mode, samples per generator (default: search.final_samples).
    pub samples: Option<u32>,
}

/// What `nago-propose` did.
#[derive(Debug)]
pub enum ProposeOutcome {
    /// A round was written.
    Proposed {
        /// Its number.
        round: u32,
        /// Its trials, with their origin and budget.
        trials: Vec<(String, String, f64)>,
    },
    /// Nothing to do now, and why (trials without a result, a round that exists).
    Nothing(String),
    /// The study is over: its evaluation budget is proposed in full, or its final round
    /// exists. Scripts tell this from `Nothing` by the binary's `nago-propose: done:` line.
    Done(String),
}

fn has_started(sd: &StudyDir, id: &str) -> bool {
    let d = sd.trial_dir(id);
    ["arch.json", "result.json", "checkpoint", "epochs.parquet"]
        .iter()
        .any(|f| d.join(f).exists())
}

/// `nago-propose`. Takes the study lock.
pub fn propose(sd: &StudyDir, a: &ProposeArgs) -> Result<ProposeOutcome> {
    let _lock = nago_store::StudyLock::acquire(sd.root(), "nago-propose")?;
    let study = sd.study()?;
    let space = &study.space;
    let trials = scan(sd, "nago-propose")?;
    let rounds = sd.rounds()?;
    let latest = rounds.last().copied();
    let round = a.round.unwrap_or(latest.map_or(0, |r| r + 1));
    let mut reuse_ids: Vec<String> = Vec::new();
    if rounds.contains(&round) {
        if !a.force {
            return Ok(ProposeOutcome::Nothing(format!(
                "round {round} is already proposed ({}); pass --force to propose it again",
                sd.proposals_path(round).display()
            )));
        }
        let old = sd.proposals(round)?;
        if let Some(t) = old.trials.iter().find(|t| has_started(sd, t)) {
            bail!(
                "{}: cannot re-propose round {round}: trial {t} has already started (its \
                 directory has generate/train outputs)",
                sd.proposals_path(round).display()
            );
        }
        reuse_ids = old.trials;
    } else if let Some(l) = latest {
        if round != l + 1 {
            bail!(
                "{}: round {round} is not the next round (the latest is {l}, so the next is {})",
                sd.root().join("rounds").display(),
                l + 1
            );
        }
    }
    let in_round: BTreeSet<&String> = reuse_ids.iter().collect();
    let trials: Vec<TrialInfo> = trials
        .into_iter()
        .filter(|t| !in_round.contains(&t.proposal.trial))
        .collect();
    let pending: Vec<&TrialInfo> = trials.iter().filter(|t| !t.has_result_file).collect();
    if !pending.is_empty() && !a.allow_pending {
        let ids: Vec<&str> = pending
            .iter()
            .take(8)
            .map(|t| t.proposal.trial.as_str())
            .collect();
        return Ok(ProposeOutcome::Nothing(format!(
            "{} trial(s) have no result yet ({}{}); train them and run nago-update first, or \
             pass --allow-pending to propose with them counted as pending",
            pending.len(),
            ids.join(", "),
            if pending.len() > 8 { ", …" } else { "" }
        )));
    }
    let mut next_id = trials
        .iter()
        .filter_map(|t| t.proposal.trial.parse::<u64>().ok())
        .max()
        .map_or(0, |v| v + 1);
    let mut reuse = reuse_ids.clone().into_iter();
    let mut new_id = || {
        reuse.next().unwrap_or_else(|| {
            let id = format!("{next_id:05}");
            next_id += 1;
            id
        })
    };
    let mut props: Vec<Proposal> = Vec::new();
    let mk = |trial: String,
              generator: Generator,
              budget: f64,
              seed: u64,
              parent: Option<String>,
              origin: &str| Proposal {
        schema: PROPOSAL_SCHEMA.into(),
        trial,
        round,
        generator,
        budget,
        seed,
        parent,
        origin: origin.into(),
    };
    if a.final_mode {
        if trials.iter().any(|t| t.proposal.origin == "final") && !a.force {
            return Ok(ProposeOutcome::Done(
                "the final round is already proposed; pass --force to propose another".into(),
            ));
        }
        let chosen: Vec<&TrialInfo> = if a.final_trials.is_empty() {
            let budget = model_budget(&study, &trials);
            let cand: Vec<(&TrialInfo, Vec<f64>)> = trials
                .iter()
                .filter_map(|t| {
                    let r = t.result.as_ref()?;
                    let (y, f) = evaluate_result(&study, r);
                    (f && Some(r.budget) == budget).then_some((t, y?))
                })
                .collect();
            let ys: Vec<Vec<f64>> = cand.iter().map(|c| c.1.clone()).collect();
            pareto_indices(&ys).into_iter().map(|i| cand[i].0).collect()
        } else {
            a.final_trials
                .iter()
                .map(|id| {
                    trials
                        .iter()
                        .find(|t| &t.proposal.trial == id)
                        .with_context(|| {
                            format!(
                                "--trials: no readable trial `{id}` in {}",
                                sd.root().join("trials").display()
                            )
                        })
                })
                .collect::<Result<_>>()?
        };
        if chosen.is_empty() {
            bail!("{}: no feasible evaluated generator to take to the final round (run nago-update, or name trials with --trials)", sd.trials_table().display());
        }
        let k = a.samples.unwrap_or(study.search.final_samples).max(1);
        for t in chosen {
            for s in 0..k {
                let seed = derive_seed(study.seed, &["final", &t.proposal.trial, &s.to_string()]);
                props.push(mk(
                    new_id(),
                    t.proposal.generator,
                    study.budgets.max,
                    seed,
                    None,
                    "final",
                ));
            }
        }
    } else {
        let used = trials
            .iter()
            .filter(|t| t.proposal.origin != "final")
            .count();
        let max = study.search.max_evaluations as usize;
        if used >= max {
            return Ok(ProposeOutcome::Done(format!(
                "the study's budget is spent: {used} of {max} evaluations proposed \
                 (search.max_evaluations)"
            )));
        }
        let q = (study.search.batch_size as usize).min(max - used);
        let b = &study.budgets;
        let rungs = mf::rungs(b.min, b.max, b.eta);
        // Promotions, highest rung first.
        let promoted: Vec<String> = trials
            .iter()
            .filter_map(|t| t.proposal.parent.clone())
            .collect();
        for i in (0..rungs.len().saturating_sub(1)).rev() {
            let entries: Vec<mf::RungEntry> = trials
                .iter()
                .filter_map(|t| {
                    let r = t.result.as_ref()?;
                    (r.budget == rungs[i] && t.proposal.origin != "final").then(|| {
                        let (y, f) = evaluate_result(&study, r);
                        mf::RungEntry {
                            id: t.proposal.trial.clone(),
                            y,
                            feasible: f,
                        }
                    })
                })
                .collect();
            for id in mf::promotable(&entries, &promoted, b.eta) {
                if props.len() >= q {
                    break;
                }
                let t = trials.iter().find(|t| t.proposal.trial == id).unwrap();
                props.push(mk(
                    new_id(),
                    t.proposal.generator,
                    rungs[i + 1],
                    t.proposal.seed,
                    Some(id.clone()),
                    "promotion",
                ));
            }
        }
        let n_new = q - props.len();
        let mut xs: Vec<(Vec<f64>, &str)> = Vec::new();
        if n_new > 0 {
            let sf: Option<SurrogateFile> = if sd.surrogate_path().exists() {
                Some(nago_store::read_json(
                    &sd.surrogate_path(),
                    Some(SURROGATE_SCHEMA),
                )?)
            } else {
                None
            };
            let snap = SpaceSnap(space);
            let need = study.search.initial_design as usize;
            if let Some(mut model) = sf
                .filter(|s| s.n_observations >= need.max(1))
                .and_then(|s| s.model)
            {
                model
                    .prepare()
                    .with_context(|| sd.surrogate_path().display().to_string())?;
                let pend: Vec<Vec<f64>> = pending
                    .iter()
                    .filter_map(|t| space.encode(&t.proposal.generator).ok())
                    .collect();
                let mut po = ProposeOptions::default();
                po.optimize.seed = derive_seed(study.seed, &["propose", &round.to_string()]);
                let got = engine::propose(&model, &snap, &one_hot_groups(space), &pend, n_new, po)
                    .with_context(|| format!("proposing from {}", sd.surrogate_path().display()))?;
                xs.extend(got.into_iter().map(|x| (x, "model")));
            }
            let n_initial = trials
                .iter()
                .filter(|t| t.proposal.origin == "initial")
                .count();
            let left = n_new - xs.len();
            let pts = nago_bo::design::sobol(
                n_initial,
                left,
                space.n_dims(),
                derive_seed(study.seed, &["sobol"]),
            )?;
            for mut p in pts {
                snap.snap(&mut p);
                xs.push((p, "initial"));
            }
        }
        for (x, origin) in xs {
            let g = space.decode(&x)?;
            let id = new_id();
            let seed = derive_seed(study.seed, &["trial", &id]);
            props.push(mk(id, g, rungs[0], seed, None, origin));
        }
    }
    // Write the trial directories first, then the round (its presence means complete).
    for p in &props {
        atomic_write_json(&sd.trial_dir(&p.trial).join("proposal.json"), p)?;
    }
    let rp = RoundProposals {
        schema: ROUND_SCHEMA.into(),
        round,
        trials: props.iter().map(|p| p.trial.clone()).collect(),
    };
    atomic_write_json(&sd.proposals_path(round), &rp)?;
    Ok(ProposeOutcome::Proposed {
        round,
        trials: props
            .into_iter()
            .map(|p| (p.trial, p.origin, p.budget))
            .collect(),
    })
}
