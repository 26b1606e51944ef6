//! What the report reads from a study directory: every trial's proposal, result and
//! architecture (through [`nago_study::Trials`] and [`nago_store::TrialDir`]'s typed paths),
//! the study's objectives, and the Pareto set and hypervolume derived from them.
//!
//! Dominance, Pareto sets and hypervolumes compare objectives in the study's model units
//! ([`nago_study::Objectives`]: minimised, natural log where an objective says `"log": true`),
//! with nago-bo's Pareto functions: the same numbers nago-update writes into trials.parquet.

use anyhow::{Context, Result};
use nago_arch::Arch;
use nago_bo::pareto::{hypervolume, pareto_indices};
use nago_space::{FlatValue, Goal, Study};
use nago_store::{Proposal, StudyDir, TrialDir, TrialResult, TrialStatus};
use nago_study::{Objectives, SurrogateFile, Trials};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One objective of the study, as the report plots it.
#[derive(Debug, Clone)]
pub struct ObjectiveInfo {
    /// The metric name (a field of result.json).
    pub metric: String,
    /// Minimised or maximised.
    pub goal: Goal,
    /// On a log scale: plotted on a log10 axis (in the metric's own units), compared as ln
    /// (the study's model units).
    pub log: bool,
}

impl ObjectiveInfo {
    /// The axis label, with the unit.
    pub fn label(&self) -> String {
        let unit = metric_unit(&self.metric);
        let dir = match self.goal {
            Goal::Min => "min",
            Goal::Max => "max",
        };
        if unit.is_empty() {
            format!("{} ({dir})", self.metric)
        } else {
            format!("{} [{unit}] ({dir})", self.metric)
        }
    }
}

/// The unit of a result.json metric (empty for fractions and counts).
pub fn metric_unit(metric: &str) -> &'static str {
    match metric {
        "val_error" | "val_accuracy" | "test_accuracy" => "fraction",
        "params" => "parameters",
        "macs" => "MACs/image",
        "memory_mb" => "MB",
        "train_seconds" => "s",
        "latency_ms" | "latency_ms_b32" => "ms",
        _ => "",
    }
}

/// One evaluation: a trial directory with its proposal and (when trained) its result.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The trial id.
    pub id: String,
    /// The trial directory (its files' typed paths).
    pub dir: TrialDir,
    /// Its proposal.
    pub proposal: Proposal,
    /// Its result, when training has finished (successfully or not).
    pub result: Option<TrialResult>,
    /// Its architecture, when generated.
    pub arch: Option<Arch>,
    /// Seconds from the study's first proposal to this trial's result (file times).
    pub finished_s: Option<f64>,
    /// The weights file, when one exists (an exported `weights.safetensors` or the trainer's
    /// checkpoint).
    pub weights: Option<PathBuf>,
}

impl Trial {
    /// Trained to its budget with status `ok`.
    pub fn is_ok(&self) -> bool {
        matches!(
            self.result.as_ref().map(|r| r.status),
            Some(TrialStatus::Ok)
        )
    }

    /// Finished with a status other than `ok`.
    pub fn is_failed(&self) -> bool {
        matches!(self.result.as_ref().map(|r| r.status), Some(s) if s != TrialStatus::Ok)
    }

    /// The status word: `ok`, `diverged`, …, or `pending`.
    pub fn status(&self) -> String {
        match &self.result {
            Some(r) => serde_json::to_value(r.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into()),
            None => "pending".into(),
        }
    }

    /// A metric from result.json, else (for size metrics) from arch.json's counts.
    pub fn metric(&self, name: &str) -> Option<f64> {
        if let Some(v) = self.result.as_ref().and_then(|r| r.metric(name)) {
            return Some(v);
        }
        let c = self.arch.as_ref()?.counts;
        match name {
            "params" => Some(c.params as f64),
            "macs" => Some(c.macs as f64),
            "memory_mb" => Some(c.param_bytes as f64 / 1e6),
            _ => None,
        }
    }
}

/// A study directory, read.
#[derive(Debug, Clone)]
pub struct StudyData {
    /// The directory.
    pub dir: StudyDir,
    /// study.json.
    pub study: Study,
    /// The objectives (from study.json).
    pub objectives: Vec<ObjectiveInfo>,
    /// Every trial with a readable proposal, in (round, id) order.
    pub trials: Vec<Trial>,
    /// Every trial as the study layer reads it (unreadable proposals and results listed).
    pub records: Trials,
    /// Warnings about files that could not be read, each naming the file (the report lists
    /// them; `nago-report` prints them on stderr).
    pub warnings: Vec<String>,
    /// What nago-update wrote, when `trials.parquet` and `pareto.parquet` exist.
    pub tables: Option<Tables>,
    /// What the report takes from `surrogate.json`, read once by [`StudyData::load`] (the file
    /// carries the GP's data, large at 1000 observations); `None` when it is absent or
    /// unreadable (a warning says which).
    pub surrogate: Option<SurrogateFacts>,
}

/// The few facts the report takes from `surrogate.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct SurrogateFacts {
    /// The objective metrics the model was fitted on, in order (the facts below count only
    /// when they are this study's objectives).
    pub objectives: Vec<String>,
    /// The recorded reference point (model units).
    pub reference: Vec<f64>,
    /// [`SurrogateFile::model_hypervolume`].
    pub model_hypervolume: Option<f64>,
}

/// The facts taken from nago-update's tables rather than recomputed.
#[derive(Debug, Clone)]
pub struct Tables {
    /// (trial, budget) of every row of `pareto.parquet`.
    pub front: Vec<(String, f64)>,
    /// (trial, budget, hypervolume) of every row of `trials.parquet` with a hypervolume, in
    /// the table's order (round, trial, budget): the hypervolume after that evaluation.
    pub hypervolume: Vec<(String, f64, f64)>,
}

fn read_tables(dir: &StudyDir) -> Result<Option<Tables>> {
    let (tp, pp) = (dir.trials_table(), dir.pareto_table());
    if !tp.is_file() || !pp.is_file() {
        return Ok(None);
    }
    let trials = nago_table::read_parquet(&tp, nago_table::TRIALS_SCHEMA)?;
    let pareto = nago_table::read_parquet(&pp, nago_table::PARETO_SCHEMA)?;
    let key = |t: &nago_table::Table, row: &[nago_table::Cell]| -> Option<(String, f64)> {
        let ti = t.col("trial")?;
        let bi = t.col("budget")?;
        Some((row[ti].as_str()?.to_string(), row[bi].as_f64()?))
    };
    let front = pareto.rows.iter().filter_map(|r| key(&pareto, r)).collect();
    let hypervolume = match trials.col("hypervolume") {
        Some(hi) => trials
            .rows
            .iter()
            .filter_map(|r| {
                let (t, b) = key(&trials, r)?;
                Some((t, b, r[hi].as_f64()?))
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Some(Tables { front, hypervolume }))
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The file name `nago-report export` writes the weights under (and prefers in a trial
/// directory over the trainer's checkpoint).
pub const EXPORTED_WEIGHTS: &str = "weights.safetensors";

/// The weights file of a trial directory, if any: an exported `weights.safetensors` first,
/// then the trainer's checkpoint, then any other `*.safetensors`.
pub fn find_weights(dir: &TrialDir) -> Option<PathBuf> {
    let preferred = dir.path().join(EXPORTED_WEIGHTS);
    if preferred.is_file() {
        return Some(preferred);
    }
    let ckpt = dir.checkpoint_path();
    if ckpt.is_file() {
        return Some(ckpt);
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    names
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "safetensors"))
}

impl StudyData {
    /// Reads `study.json` and every trial directory. Nothing is dropped silently: a trial
    /// whose proposal cannot be read is left out with a warning naming the file, an
    /// unreadable result leaves its trial pending with a warning, and so does an unreadable
    /// architecture.
    pub fn load(root: &Path) -> Result<StudyData> {
        let dir = StudyDir::new(root);
        let study = dir
            .study()
            .with_context(|| format!("{}: not a study directory", root.display()))?;
        let objectives = study
            .objectives
            .iter()
            .map(|o| ObjectiveInfo {
                metric: o.metric.clone(),
                goal: o.goal,
                log: o.log,
            })
            .collect();
        let records = Trials::load(&dir)?;
        // The store's errors start with the file's path.
        let mut warnings: Vec<String> = records
            .unreadable
            .iter()
            .map(|(id, e)| format!("{e} (trial {id} left out: its proposal cannot be read)"))
            .chain(
                records
                    .unreadable_results
                    .iter()
                    .map(|(id, e)| format!("{e} (trial {id} shown as pending)")),
            )
            .collect();
        let mut trials = Vec::new();
        let mut t0: Option<SystemTime> = None;
        let mut stamps = Vec::new();
        for rec in &records.records {
            let id = rec.id().to_string();
            let tdir = dir.trial(&id);
            if let Some(m) = mtime(&tdir.proposal_path()) {
                t0 = Some(t0.map_or(m, |t: SystemTime| t.min(m)));
            }
            let apath = tdir.arch_path();
            let arch = if apath.is_file() {
                match std::fs::read_to_string(&apath)
                    .map_err(anyhow::Error::from)
                    .and_then(|t| Arch::from_json(&t).map_err(anyhow::Error::from))
                {
                    Ok(a) => Some(a),
                    Err(e) => {
                        warnings.push(format!(
                            "{}: unreadable ({e}); trial {id} is drawn without it",
                            apath.display()
                        ));
                        None
                    }
                }
            } else {
                None
            };
            stamps.push(rec.result.as_ref().and_then(|_| mtime(&tdir.result_path())));
            let weights = find_weights(&tdir);
            trials.push(Trial {
                id,
                dir: tdir,
                proposal: rec.proposal.clone(),
                result: rec.result.clone(),
                arch,
                finished_s: None,
                weights,
            });
        }
        for (t, s) in trials.iter_mut().zip(stamps) {
            if let (Some(s), Some(t0)) = (s, t0) {
                t.finished_s = s.duration_since(t0).ok().map(|d| d.as_secs_f64());
            }
        }
        trials.sort_by(|a, b| {
            (a.proposal.round, &a.id)
                .partial_cmp(&(b.proposal.round, &b.id))
                .expect("total")
        });
        let tables = match read_tables(&dir) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!(
                    "trials.parquet/pareto.parquet unreadable, everything recomputed from the trial files ({e:#})"
                ));
                None
            }
        };
        let surrogate = match SurrogateFile::read(&dir) {
            Ok(s) => s.map(|s| SurrogateFacts {
                objectives: s.objectives,
                reference: s.reference,
                model_hypervolume: s.model_hypervolume,
            }),
            Err(e) => {
                warnings.push(format!(
                    "{e:#} (the reference point is recomputed from the trials, the model's \
                     hypervolume is not shown)"
                ));
                None
            }
        };
        Ok(StudyData {
            dir,
            study,
            objectives,
            trials,
            records,
            warnings,
            tables,
            surrogate,
        })
    }

    /// The study's objectives (model units, feasibility, reference point).
    pub fn model(&self) -> Objectives<'_> {
        Objectives::new(&self.study)
    }

    /// The objective values of a trial (all present), in study order and the metrics' units.
    pub fn objective_values(&self, t: &Trial) -> Option<Vec<f64>> {
        self.objectives
            .iter()
            .map(|o| t.metric(&o.metric).filter(|v| v.is_finite()))
            .collect()
    }

    /// A trial's objectives in the study's model units (minimised, ln where `log`), when it
    /// has them all; what dominance and the hypervolume compare.
    pub fn model_values(&self, t: &Trial) -> Option<Vec<f64>> {
        self.model().model_values(|m| t.metric(m))
    }

    /// Indices (into `trials`) of the completed trials with every objective.
    /// (The final round's trials are not evaluations of the search: they are reported per
    /// generator, by [`crate::best::final_text`].)
    pub fn scored(&self) -> Vec<usize> {
        (0..self.trials.len())
            .filter(|&i| {
                let t = &self.trials[i];
                t.proposal.origin != nago_store::Origin::Final
                    && t.is_ok()
                    && self.model_values(t).is_some()
            })
            .collect()
    }

    /// Sorts trial indices by their model values (the first objective first).
    fn sort_by_model(&self, idx: &mut [usize]) {
        idx.sort_by(|&a, &b| {
            self.model_values(&self.trials[a])
                .partial_cmp(&self.model_values(&self.trials[b]))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }

    /// Indices of the Pareto-optimal trials, sorted by the first objective: the rows of
    /// `pareto.parquet` where nago-update has written it (its front is taken at one budget
    /// over the feasible rows), else the non-dominated completed trials computed here.
    pub fn pareto(&self) -> Vec<usize> {
        if let Some(t) = &self.tables {
            let mut front: Vec<usize> = (0..self.trials.len())
                .filter(|&i| {
                    let tr = &self.trials[i];
                    let budget = tr.result.as_ref().map(|r| r.budget);
                    tr.is_ok()
                        && t.front
                            .iter()
                            .any(|(id, b)| *id == tr.id && Some(*b) == budget)
                })
                .collect();
            self.sort_by_model(&mut front);
            return front;
        }
        self.pareto_recomputed()
    }

    /// The non-dominated completed trials over all budgets, computed from the trial files,
    /// leaving out trials that break a study constraint: the trained networks a user can
    /// take, every number measured on the weights in its trial directory (a promotion and its
    /// parent are two networks; the better-trained one usually dominates). Unlike
    /// [`StudyData::pareto`], which compares at the one budget the optimiser models.
    pub fn pareto_recomputed(&self) -> Vec<usize> {
        let obj = self.model();
        let (idx, ys): (Vec<usize>, Vec<Vec<f64>>) = self
            .scored()
            .into_iter()
            .filter(|&i| obj.constraints_met(|m| self.trials[i].metric(m)))
            .filter_map(|i| Some((i, self.model_values(&self.trials[i])?)))
            .unzip();
        let mut front: Vec<usize> = pareto_indices(&ys).into_iter().map(|k| idx[k]).collect();
        self.sort_by_model(&mut front);
        front
    }

    /// The budget nago-update would compare at and the reference point (model units) it
    /// would use, recomputed from the trial files (and surrogate.json's recorded reference).
    pub fn model_budget_and_reference(&self) -> (Option<f64>, Vec<f64>) {
        let obj = self.model();
        let ys: Vec<Vec<f64>> = self
            .records
            .records
            .iter()
            .filter_map(|t| obj.evaluate(t.result.as_ref()?).y)
            .collect();
        let recorded = self
            .surrogate_for_this_study()
            .map(|s| s.reference.as_slice());
        let reference = obj.reference(recorded, &ys);
        (
            nago_study::update::model_budget(&self.study, &self.records),
            reference,
        )
    }

    /// The hypervolume of the model's posterior means at the feasible evaluations
    /// (surrogate.json's `model_hypervolume`, when it is for this study's objectives): the
    /// front without the luck of single noisy observations, beside the observed one.
    pub fn model_hypervolume(&self) -> Option<f64> {
        self.surrogate_for_this_study()?.model_hypervolume
    }

    /// [`StudyData::surrogate`] when it was fitted on this study's objectives (an edited
    /// study's old surrogate.json does not count).
    fn surrogate_for_this_study(&self) -> Option<&SurrogateFacts> {
        self.surrogate
            .as_ref()
            .filter(|s| s.objectives == self.model().names())
    }

    /// The hypervolume of the observed front now: the last of trials.parquet's column, else
    /// of [`StudyData::hypervolume_trace`].
    pub fn observed_hypervolume(&self) -> Option<f64> {
        self.tables
            .as_ref()
            .and_then(|t| t.hypervolume.last().map(|h| h.2))
            .or_else(|| self.hypervolume_trace().last().map(|h| h.1))
    }

    /// The hypervolume after each evaluation, recomputed from the trial files the way
    /// nago-update fills trials.parquet's `hypervolume` column: every trial with a result in
    /// (round, id) order, the hypervolume (nago-bo's, exact for 1–3 objectives) of the
    /// feasible evaluations so far at the model budget, in the study's model units (minimised,
    /// ln where the study says `log`), bounded by the study's reference point (its
    /// `reference`, else surrogate.json's, else the worst value plus 10% of the range).
    ///
    /// Returns (trial index, hypervolume) pairs; empty when there is no budget to compare at
    /// or more than three objectives.
    pub fn hypervolume_trace(&self) -> Vec<(usize, f64)> {
        let obj = self.model();
        let (Some(budget), reference) = self.model_budget_and_reference() else {
            return Vec::new();
        };
        let mut pts: Vec<Vec<f64>> = Vec::new();
        let mut out = Vec::new();
        for (i, t) in self.trials.iter().enumerate() {
            let Some(r) = &t.result else { continue };
            if r.budget == budget {
                let e = obj.evaluate(r);
                if let (Some(y), true) = (e.y, e.feasible) {
                    pts.push(y);
                }
            }
            match hypervolume(&pts, &reference) {
                Ok(hv) => out.push((i, hv)),
                Err(_) => return Vec::new(),
            }
        }
        out
    }

    /// The generator hyperparameters that vary across the study's trials (the searched ones,
    /// and `param_limit` where `search.param_limit: "largest"` widens each trial), in
    /// `Generator::flat()` order; all of the main eight when nothing varies yet.
    pub fn varying_params(&self) -> Vec<String> {
        let flats: Vec<Vec<(String, FlatValue)>> = self
            .trials
            .iter()
            .map(|t| t.proposal.generator.flat())
            .collect();
        let Some(first) = flats.first() else {
            return Vec::new();
        };
        let varying: Vec<String> = first
            .iter()
            .enumerate()
            .filter(|(k, (_, v))| flats.iter().any(|f| &f[*k].1 != v))
            .map(|(_, (n, _))| n.clone())
            .collect();
        if varying.is_empty() {
            [
                "top_n", "top_k", "top_p", "mid_n", "mid_p", "bottom_n", "bottom_k", "bottom_p",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        } else {
            varying
        }
    }
}

/// A flat hyperparameter value as a number (string columns: their index in `levels`).
pub fn flat_number(v: &FlatValue) -> Option<f64> {
    match v {
        FlatValue::Int(i) => Some(*i as f64),
        FlatValue::Real(r) => Some(*r),
        FlatValue::Str(_) => None,
    }
}

/// A flat hyperparameter value as text.
pub fn flat_text(v: &FlatValue) -> String {
    match v {
        FlatValue::Int(i) => i.to_string(),
        FlatValue::Real(r) => {
            if r.abs() >= 1000.0 {
                format!("{r:.0}")
            } else {
                let s = format!("{r:.3}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
        }
        FlatValue::Str(s) => s.to_string(),
    }
}
