//! What the report reads from a study directory: every trial's proposal, result and
//! architecture, the study's objectives, and the Pareto set and hypervolume derived from them.

use anyhow::{Context, Result};
use nago_arch::Arch;
use nago_space::{FlatValue, Goal, Study};
use nago_store::{Proposal, StudyDir, TrialResult, TrialStatus, RESULT_SCHEMA};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One objective of the study, as the report plots it.
#[derive(Debug, Clone)]
pub struct ObjectiveInfo {
    /// The metric name (a field of result.json).
    pub metric: String,
    /// Minimised or maximised.
    pub goal: Goal,
    /// Plotted (and compared for the hypervolume) on a log scale.
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

    /// The value in "smaller is better" coordinates (log10 where `log`), used for dominance
    /// and the hypervolume.
    pub fn min_coord(&self, v: f64) -> f64 {
        let v = if self.log { v.max(1e-300).log10() } else { v };
        match self.goal {
            Goal::Min => v,
            Goal::Max => -v,
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
        _ => "",
    }
}

/// One evaluation: a trial directory with its proposal and (when trained) its result.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The trial id.
    pub id: String,
    /// The trial directory.
    pub dir: PathBuf,
    /// Its proposal.
    pub proposal: Proposal,
    /// Its result, when training has finished (successfully or not).
    pub result: Option<TrialResult>,
    /// Its architecture, when generated.
    pub arch: Option<Arch>,
    /// Seconds from the study's first proposal to this trial's result (file times).
    pub finished_s: Option<f64>,
    /// The weights file, when one exists (`weights.safetensors` or the trainer's
    /// `checkpoint.safetensors`).
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
    /// Every trial with a proposal, in (round, id) order.
    pub trials: Vec<Trial>,
    /// Warnings about files that could not be read (the report lists them).
    pub warnings: Vec<String>,
    /// What nago-update wrote, when `trials.parquet` and `pareto.parquet` exist.
    pub tables: Option<Tables>,
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

/// The weights file of a trial directory, if any: `weights.safetensors` first, then
/// `checkpoint.safetensors` (the trainer's), then any other `*.safetensors`.
pub fn find_weights(dir: &Path) -> Option<PathBuf> {
    let preferred = dir.join("weights.safetensors");
    if preferred.is_file() {
        return Some(preferred);
    }
    let ckpt = dir.join("checkpoint.safetensors");
    if ckpt.is_file() {
        return Some(ckpt);
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
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
    /// Reads `study.json` and every trial directory. Trials whose proposal cannot be read are
    /// skipped with a warning; unreadable results and architectures become warnings too.
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
        let mut warnings = Vec::new();
        let mut trials = Vec::new();
        let mut t0: Option<SystemTime> = None;
        let mut stamps = Vec::new();
        for id in dir.trial_ids()? {
            let tdir = dir.trial_dir(&id);
            let proposal = match dir.proposal(&id) {
                Ok(p) => p,
                Err(e) => {
                    warnings.push(format!("trial {id}: skipped ({e})"));
                    continue;
                }
            };
            if let Some(m) = mtime(&tdir.join("proposal.json")) {
                t0 = Some(t0.map_or(m, |t: SystemTime| t.min(m)));
            }
            let rpath = tdir.join("result.json");
            let result = if rpath.is_file() {
                match nago_store::read_json::<TrialResult>(&rpath, Some(RESULT_SCHEMA)) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        warnings.push(format!("trial {id}: result.json unreadable ({e})"));
                        None
                    }
                }
            } else {
                None
            };
            let apath = tdir.join("arch.json");
            let arch = if apath.is_file() {
                match std::fs::read_to_string(&apath)
                    .map_err(anyhow::Error::from)
                    .and_then(|t| Arch::from_json(&t).map_err(anyhow::Error::from))
                {
                    Ok(a) => Some(a),
                    Err(e) => {
                        warnings.push(format!("trial {id}: arch.json unreadable ({e})"));
                        None
                    }
                }
            } else {
                None
            };
            stamps.push(result.as_ref().and_then(|_| mtime(&rpath)));
            let weights = find_weights(&tdir);
            trials.push(Trial {
                id,
                dir: tdir,
                proposal,
                result,
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
        Ok(StudyData {
            dir,
            study,
            objectives,
            trials,
            warnings,
            tables,
        })
    }

    /// The objective values of a trial (all present), in study order.
    pub fn objective_values(&self, t: &Trial) -> Option<Vec<f64>> {
        self.objectives
            .iter()
            .map(|o| t.metric(&o.metric).filter(|v| v.is_finite()))
            .collect()
    }

    /// Indices (into `trials`) of the completed trials with every objective.
    pub fn scored(&self) -> Vec<usize> {
        (0..self.trials.len())
            .filter(|&i| self.trials[i].is_ok() && self.objective_values(&self.trials[i]).is_some())
            .collect()
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
            front.sort_by(|&a, &b| {
                self.min_coords(&self.trials[a])
                    .partial_cmp(&self.min_coords(&self.trials[b]))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
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
        let pts: Vec<(usize, Vec<f64>)> = self
            .scored()
            .into_iter()
            .filter(|&i| {
                self.study.constraints.iter().all(|c| {
                    self.trials[i]
                        .metric(&c.metric)
                        .is_some_and(|v| v.is_finite() && v <= c.max)
                })
            })
            .map(|i| (i, self.min_coords(&self.trials[i])))
            .collect();
        let mut front: Vec<usize> = pts
            .iter()
            .filter(|(_, p)| !pts.iter().any(|(_, q)| dominates(q, p)))
            .map(|(i, _)| *i)
            .collect();
        front.sort_by(|&a, &b| {
            let (pa, pb) = (
                self.min_coords(&self.trials[a]),
                self.min_coords(&self.trials[b]),
            );
            pa.partial_cmp(&pb).unwrap_or(std::cmp::Ordering::Equal)
        });
        front
    }

    /// A trial's objectives in "smaller is better" coordinates.
    pub fn min_coords(&self, t: &Trial) -> Vec<f64> {
        let v = self.objective_values(t).unwrap_or_default();
        self.objectives
            .iter()
            .zip(v)
            .map(|(o, v)| o.min_coord(v))
            .collect()
    }

    /// The hypervolume after each completed evaluation, in evaluation order
    /// (by finishing time where known, else by round and id), for the first two objectives.
    ///
    /// Objectives are taken in "smaller is better" coordinates (log10 where the study says
    /// `log`) and normalised so that the box from the best to the reference point is the unit
    /// square; the reference point is the worst value of each objective over all completed
    /// trials plus 10% of its range. So the curve ends at most at 1 and is comparable across
    /// the evaluations of one study (not across studies).
    ///
    /// Returns (trial index, hypervolume) pairs.
    pub fn hypervolume_trace(&self) -> Vec<(usize, f64)> {
        let mut order = self.scored();
        order.sort_by(|&a, &b| {
            let ka = (self.trials[a].finished_s.unwrap_or(f64::INFINITY), a);
            let kb = (self.trials[b].finished_s.unwrap_or(f64::INFINITY), b);
            ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
        });
        if self.objectives.len() < 2 || order.is_empty() {
            return Vec::new();
        }
        let pts: Vec<[f64; 2]> = order
            .iter()
            .map(|&i| {
                let c = self.min_coords(&self.trials[i]);
                [c[0], c[1]]
            })
            .collect();
        let mut lo = [f64::INFINITY; 2];
        let mut hi = [f64::NEG_INFINITY; 2];
        for p in &pts {
            for d in 0..2 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        let mut reference = [0.0; 2];
        let mut scale = [1.0; 2];
        for d in 0..2 {
            let span = (hi[d] - lo[d]).max(1e-12);
            reference[d] = hi[d] + 0.1 * span;
            scale[d] = reference[d] - lo[d];
        }
        let norm: Vec<[f64; 2]> = pts
            .iter()
            .map(|p| [(p[0] - lo[0]) / scale[0], (p[1] - lo[1]) / scale[1]])
            .collect();
        (0..order.len())
            .map(|k| (order[k], hypervolume_2d(&norm[..=k], [1.0, 1.0])))
            .collect()
    }

    /// The generator hyperparameters that vary across the study's trials (the searched ones),
    /// in `Generator::flat()` order; all of the main eight when nothing varies yet.
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

/// `a` dominates `b` (minimisation): no worse everywhere, better somewhere.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
}

/// The area dominated by `pts` (minimisation) and bounded by `reference`.
pub fn hypervolume_2d(pts: &[[f64; 2]], reference: [f64; 2]) -> f64 {
    let mut p: Vec<[f64; 2]> = pts
        .iter()
        .copied()
        .filter(|q| q[0] < reference[0] && q[1] < reference[1])
        .collect();
    p.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mut area = 0.0;
    let mut best_y = reference[1];
    for q in p {
        if q[1] < best_y {
            area += (reference[0] - q[0]) * (best_y - q[1]);
            best_y = q[1];
        }
    }
    area
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypervolume_of_a_staircase() {
        let hv = hypervolume_2d(&[[0.0, 0.5], [0.5, 0.0], [0.6, 0.6]], [1.0, 1.0]);
        assert!((hv - 0.75).abs() < 1e-12, "{hv}");
        assert_eq!(hypervolume_2d(&[], [1.0, 1.0]), 0.0);
        assert_eq!(hypervolume_2d(&[[2.0, 0.0]], [1.0, 1.0]), 0.0);
    }

    #[test]
    fn dominance() {
        assert!(dominates(&[0.0, 1.0], &[0.0, 2.0]));
        assert!(!dominates(&[0.0, 1.0], &[0.0, 1.0]));
        assert!(!dominates(&[0.0, 3.0], &[1.0, 2.0]));
    }
}
