//! `nago-update`: the trial table, the Pareto table and the surrogate, from the trials.

use crate::final_table::{final_generators, final_table};
use crate::objectives::Objectives;
use crate::surrogate::{ModelValue, SurrogateFile, WarmInput, SURROGATE_SCHEMA};
use crate::table::Columns;
use crate::trials::{TrialRecord, Trials};
use anyhow::{Context, Result};
use nago_bo::engine::{self, Observation};
use nago_bo::pareto::{hypervolume, pareto_indices};
use nago_space::Study;
use nago_store::{atomic_write, Origin, StudyDir, TrialResult};
use nago_table::{
    read_parquet, to_parquet, Cell, Table, FINAL_SCHEMA, PARETO_SCHEMA, TRIALS_SCHEMA,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What `nago-update` did (printed by the binary, and as `--json`).
#[derive(Debug, Default, Serialize)]
pub struct UpdateSummary {
    /// Rows in the table now.
    pub rows: usize,
    /// Rows added.
    pub new: usize,
    /// Rows whose result changed.
    pub changed: usize,
    /// Rows kept from the old table whose files are gone or unreadable now.
    pub kept: usize,
    /// Trials that still need work (pending, running, or a retryable failure), by id.
    pub unfinished: Vec<String>,
    /// Points on the Pareto front.
    pub front: usize,
    /// Hypervolume of the front of the observed values (model units).
    pub hypervolume: Option<f64>,
    /// Hypervolume of the model's posterior means at the same evaluations
    /// ([`SurrogateFile::model_hypervolume`]).
    pub model_hypervolume: Option<f64>,
    /// Budget of the model and front.
    pub budget: Option<f64>,
    /// Generators with final-round trials (rows of `final.parquet`).
    pub final_generators: usize,
}

/// The budget the model and the Pareto front use: the largest budget with at least
/// `search.initial_design` evaluations with values, else the budget with the most.
pub fn model_budget(study: &Study, trials: &Trials) -> Option<f64> {
    let obj = Objectives::new(study);
    let need = study.search.initial_design.max(1) as usize;
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for r in search_results(trials) {
        if obj.evaluate(r.1).y.is_some() {
            *count.entry(r.1.budget.to_bits()).or_default() += 1;
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

/// Every readable result with its trial (any status: the table records every evaluation).
pub fn results(trials: &Trials) -> impl Iterator<Item = (&TrialRecord, &TrialResult)> {
    trials
        .records
        .iter()
        .filter_map(|t| t.result.as_ref().map(|r| (t, r)))
}

/// The results of the search proper: the final round's left out (it is trained with the
/// final protocol, so it is neither a fidelity of the model nor part of the search's front).
pub fn search_results(trials: &Trials) -> impl Iterator<Item = (&TrialRecord, &TrialResult)> {
    results(trials).filter(|(t, _)| t.proposal.origin != Origin::Final)
}

/// The objective values (model units) of the search's results that have them: what the
/// study's reference point is derived from (once, then recorded in surrogate.json).
pub fn search_values<'a>(
    obj: &'a Objectives,
    trials: &'a Trials,
) -> impl Iterator<Item = (&'a TrialRecord, Vec<f64>)> + 'a {
    search_results(trials).filter_map(|(t, r)| obj.evaluate(r).y.map(|y| (t, y)))
}

/// The study's hypervolume reference point (model units): the one `recorded` in
/// surrogate.json when it is for these objectives, with what it lacks (everything, in a new
/// study) derived from the search's values ([`Objectives::reference`]).
pub fn reference_point(
    obj: &Objectives,
    recorded: Option<&SurrogateFile>,
    trials: &Trials,
) -> Vec<f64> {
    let ys: Vec<Vec<f64>> = search_values(obj, trials).map(|(_, y)| y).collect();
    let recorded = recorded
        .filter(|p| p.objectives == obj.names())
        .map(|p| p.reference.as_slice());
    obj.reference(recorded, &ys)
}

/// `nago-update`: trial table, surrogate and Pareto table. Takes the study lock. `warm` says
/// where the surrogate's fit is warm-started from ([`WarmInput::Previous`] but in reruns).
pub fn update(
    sd: &StudyDir,
    seed_override: Option<u64>,
    warm: &WarmInput,
) -> Result<UpdateSummary> {
    let _lock = nago_store::StudyLock::acquire(sd.root(), "nago-update")?;
    let study = sd.study()?;
    let trials = Trials::load(sd)?;
    trials.warn("nago-update");
    let obj = Objectives::new(&study);
    let cols = Columns::of(&study);
    let prev = SurrogateFile::read(sd)?;

    let mut s = UpdateSummary {
        unfinished: trials
            .unfinished()
            .iter()
            .map(|t| t.id().to_string())
            .collect(),
        ..Default::default()
    };
    let rows = merge_rows(sd, &cols, &obj, &trials, &mut s)?;

    let reference = reference_point(&obj, prev.as_ref(), &trials);
    let budget = model_budget(&study, &trials);
    s.budget = budget;

    let (table, front_pts, front_rows) = with_hypervolume(&cols, &obj, rows, budget, &reference);
    s.rows = table.rows.len();
    let bytes = to_parquet(&table, TRIALS_SCHEMA)
        .with_context(|| sd.trials_table().display().to_string())?;
    let front_idx = pareto_indices(&front_pts);
    s.front = front_idx.len();
    s.hypervolume = budget.and_then(|_| hypervolume(&front_pts, &reference).ok());
    let pareto = Table {
        columns: cols.cols.clone(),
        rows: front_idx
            .iter()
            .map(|&i| table.rows[front_rows[i]].clone())
            .collect(),
    };
    let pbytes = to_parquet(&pareto, PARETO_SCHEMA)?;

    let fit = FitInputs {
        budget,
        reference,
        seed_override,
        warm,
        prev: prev.as_ref(),
    };
    let sf = fit_surrogate(&study, &obj, &trials, fit)?;
    s.model_hypervolume = sf.model_hypervolume;
    let finals = final_generators(&trials);
    s.final_generators = finals.len();
    let fbytes = if finals.is_empty() {
        None
    } else {
        Some(to_parquet(&final_table(&finals), FINAL_SCHEMA)?)
    };
    // Write: table first, then front, then final results, then surrogate (each atomic).
    atomic_write(&sd.trials_table(), &bytes)?;
    atomic_write(&sd.pareto_table(), &pbytes)?;
    if let Some(f) = fbytes {
        atomic_write(&sd.final_table(), &f)?;
    }
    sf.write(sd)?;
    Ok(s)
}

/// The old table's rows (mapped onto the current columns by name) merged with a row for every
/// readable result: new keys added, changed rows replaced, rows whose files are gone kept.
fn merge_rows(
    sd: &StudyDir,
    cols: &Columns,
    obj: &Objectives,
    trials: &Trials,
    s: &mut UpdateSummary,
) -> Result<Vec<Vec<Cell>>> {
    let mut rows: BTreeMap<(String, u64), Vec<Cell>> = BTreeMap::new();
    let path = sd.trials_table();
    if path.exists() {
        let old = read_parquet(&path, TRIALS_SCHEMA).with_context(|| {
            "the existing trial table cannot be read; nago-update never drops rows it has \
             seen, so move the file away to rebuild it from the trial directories"
        })?;
        for r in &old.rows {
            let mapped = cols.remap(&old.columns, r);
            rows.insert(cols.key(&mapped), mapped);
        }
    }
    let mut seen = BTreeSet::new();
    for (t, r) in results(trials) {
        let mut row = cols.row(obj, t, r);
        let k = cols.key(&row);
        seen.insert(k.clone());
        match rows.get(&k) {
            None => s.new += 1,
            Some(old) => {
                row[cols.hypervolume] = old[cols.hypervolume].clone();
                if *old != row {
                    s.changed += 1;
                }
            }
        }
        rows.insert(k, row);
    }
    s.kept = rows.keys().filter(|k| !seen.contains(*k)).count();
    Ok(rows.into_values().collect())
}

/// Orders the rows by (round, trial, budget) and fills the hypervolume column: the
/// hypervolume of the feasible front at `budget` after each row. Returns the table, the front
/// candidates' model values and their row positions.
fn with_hypervolume(
    cols: &Columns,
    obj: &Objectives,
    mut rows: Vec<Vec<Cell>>,
    budget: Option<f64>,
    reference: &[f64],
) -> (Table, Vec<Vec<f64>>, Vec<usize>) {
    rows.sort_by(|a, b| {
        let (ka, kb) = (cols.key(a), cols.key(b));
        a[cols.round]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b[cols.round].as_f64().unwrap_or(0.0))
            .then(ka.0.cmp(&kb.0))
            .then(f64::from_bits(ka.1).total_cmp(&f64::from_bits(kb.1)))
    });
    let mut front_pts: Vec<Vec<f64>> = Vec::new();
    let mut front_rows: Vec<usize> = Vec::new();
    let origin = cols
        .cols
        .iter()
        .position(|c| c.0 == "origin")
        .expect("an origin column");
    for (i, row) in rows.iter_mut().enumerate() {
        let at_budget = budget.is_some_and(|b| row[cols.budget].as_f64() == Some(b))
            && row[origin].as_str() != Some(Origin::Final.as_str());
        if at_budget {
            if let Some(y) = cols.model_values(obj, row) {
                front_pts.push(y);
                front_rows.push(i);
            }
        }
        let hv = budget.and_then(|_| hypervolume(&front_pts, reference).ok());
        row[cols.hypervolume] = Cell::F64(hv);
    }
    let table = Table {
        columns: cols.cols.clone(),
        rows,
    };
    (table, front_pts, front_rows)
}

/// What the surrogate's fit depends on besides the study and its trials.
struct FitInputs<'a> {
    budget: Option<f64>,
    reference: Vec<f64>,
    seed_override: Option<u64>,
    warm: &'a WarmInput,
    prev: Option<&'a SurrogateFile>,
}

/// SHA-256 of the observations a model is fitted on (their JSON: points, values and
/// feasibility, floats written exactly).
fn observations_digest(obs: &[Observation]) -> String {
    /// One observation as written into the digest: point, values, feasibility.
    type Row<'a> = (&'a [f64], Option<&'a [f64]>, bool);
    let rows: Vec<Row> = obs
        .iter()
        .map(|o| (o.x.as_slice(), o.y.as_deref(), o.feasible))
        .collect();
    nago_store::sha256_hex(&serde_json::to_vec(&rows).expect("floats and bools serialise"))
}

/// The surrogate, fitted on the evaluations at the model budget.
fn fit_surrogate(
    study: &Study,
    obj: &Objectives,
    trials: &Trials,
    f: FitInputs,
) -> Result<SurrogateFile> {
    let FitInputs {
        budget,
        reference,
        seed_override,
        warm,
        prev,
    } = f;
    // A rejected generator is infeasible at every budget (it was never trained).
    // Only final results: a failure that is to be retried (a killed task) is pending, not
    // evidence that the generator cannot work.
    let (obs, obs_trials): (Vec<Observation>, Vec<&str>) = search_results(trials)
        .filter(|(t, _)| t.final_result().is_some())
        .filter(|(t, r)| budget == Some(r.budget) || t.rejected())
        .filter_map(|(t, r)| {
            let x = study
                .space
                .encode(&study.search_point(&t.proposal.generator))
                .ok()?;
            let e = obj.evaluate(r);
            let o = Observation {
                x,
                y: e.y,
                feasible: e.feasible,
            };
            Some((o, t.id()))
        })
        .unzip();
    if let (WarmInput::Given(Some(w)), Some(o)) = (warm, obs.first()) {
        if w.dims != o.x.len() || w.objectives.len() != obj.len() {
            anyhow::bail!(
                "--warm-start: a warm start for {} coordinates and {} objectives; this study's \
                 space has {} and it has {} objectives ({})",
                w.dims,
                w.objectives.len(),
                o.x.len(),
                obj.len(),
                obj.names().join(", ")
            );
        }
    }
    let n_obs = obs.iter().filter(|o| o.y.is_some()).count();
    let digest = observations_digest(&obs);
    // A previous fit of another space or other objectives (the study was edited) is no start.
    let warm_start = match obs.first() {
        Some(o) if n_obs > 0 => warm
            .resolve(prev, &digest)
            .filter(|w| w.dims == o.x.len() && w.objectives.len() == obj.len()),
        _ => None,
    };
    let model = if n_obs > 0 {
        let mut fo = nago_bo::defaults::fit_options(seed_override.unwrap_or(study.seed));
        fo.warm_start = warm_start.as_ref();
        Some(engine::fit(&obs, obj.len(), &reference, fo).context("fitting the surrogate")?)
    } else {
        None
    };
    // The posterior means once: listed by trial, and their hypervolume (none without a
    // feasible evaluation).
    let means = model.as_ref().map(|m| m.model_front()).unwrap_or_default();
    let model_hypervolume = (!means.is_empty())
        .then(|| hypervolume(&means, &reference).ok())
        .flatten();
    let model_front: Vec<ModelValue> = model
        .as_ref()
        .map(|m| m.front_index.as_slice())
        .unwrap_or_default()
        .iter()
        .zip(means)
        .map(|(&i, values)| ModelValue {
            trial: obs_trials[i].to_string(),
            values,
        })
        .collect();
    Ok(SurrogateFile {
        schema: SURROGATE_SCHEMA.into(),
        objectives: obj.names(),
        reference,
        budget,
        n_observations: n_obs,
        model,
        fitted_on: trials.seen_results(),
        warm_started_from: warm_start,
        observations_digest: Some(digest),
        model_front,
        model_hypervolume,
    })
}
