//! The trial table's columns and rows (`trials.parquet`, and `pareto.parquet` with the same
//! columns). The Parquet encoding itself is `nago-table`'s.

use crate::objectives::Objectives;
use crate::trials::TrialRecord;
use nago_space::{FlatValue, Study};
use nago_store::TrialResult;
use nago_table::{Cell, ColType};
use std::collections::{BTreeMap, BTreeSet};

/// The result metrics every table has, in column order.
pub const METRICS: [(&str, ColType); 13] = [
    ("epochs_done", ColType::F64),
    ("val_error", ColType::F64),
    ("val_accuracy", ColType::F64),
    ("test_accuracy", ColType::F64),
    ("params", ColType::I64),
    ("macs", ColType::I64),
    ("memory_mb", ColType::F64),
    ("min_channels", ColType::I64),
    ("train_seconds", ColType::F64),
    ("latency_ms", ColType::F64),
    ("latency_ms_b32", ColType::F64),
    ("latency_machine", ColType::Str),
    ("error", ColType::Str),
];

/// The trial table's columns for a study, with typed positions of the ones the rules use.
#[derive(Debug, Clone)]
pub struct Columns {
    /// `(name, type)` in order.
    pub cols: Vec<(String, ColType)>,
    /// Position of `trial`.
    pub trial: usize,
    /// Position of `round`.
    pub round: usize,
    /// Position of `budget`.
    pub budget: usize,
    /// Position of `status`.
    pub status: usize,
    /// Position of `feasible`.
    pub feasible: usize,
    /// Position of `hypervolume` (the last column).
    pub hypervolume: usize,
    /// Position of each objective's metric column.
    pub objectives: Vec<usize>,
}

impl Columns {
    /// The columns of `study`'s table.
    pub fn of(study: &Study) -> Columns {
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
        let extra: BTreeSet<String> = study
            .objectives
            .iter()
            .map(|o| &o.metric)
            .chain(study.constraints.iter().map(|c| &c.metric))
            .filter(|m| !known.contains(m.as_str()))
            .map(|m| format!("metric_{m}"))
            .collect();
        for e in extra {
            c.push((e, ColType::F64));
        }
        c.push(("feasible".into(), ColType::Bool));
        c.push(("hypervolume".into(), ColType::F64));
        let pos = |n: &str| c.iter().position(|x| x.0 == n).expect("a fixed column");
        let objectives = study
            .objectives
            .iter()
            .map(|o| {
                c.iter()
                    .position(|x| x.0 == o.metric || x.0 == format!("metric_{}", o.metric))
                    .expect("every objective has a column")
            })
            .collect();
        Columns {
            trial: pos("trial"),
            round: pos("round"),
            budget: pos("budget"),
            status: pos("status"),
            feasible: pos("feasible"),
            hypervolume: c.len() - 1,
            objectives,
            cols: c,
        }
    }

    /// The (trial, budget) key of a row.
    pub fn key(&self, row: &[Cell]) -> (String, u64) {
        (
            row[self.trial].as_str().unwrap_or("").to_string(),
            row[self.budget].as_f64().unwrap_or(f64::NAN).to_bits(),
        )
    }

    /// A row mapped from another table's columns by name (missing or retyped columns null).
    pub fn remap(&self, old_cols: &[(String, ColType)], row: &[Cell]) -> Vec<Cell> {
        self.cols
            .iter()
            .map(|(n, t)| match old_cols.iter().position(|c| &c.0 == n) {
                Some(i) if row[i].col_type() == *t => row[i].clone(),
                _ => Cell::null(*t),
            })
            .collect()
    }

    /// The row of one evaluation (hypervolume null: the table fills it in order).
    pub fn row(&self, obj: &Objectives, t: &TrialRecord, r: &TrialResult) -> Vec<Cell> {
        let p = &t.proposal;
        let mut m: BTreeMap<String, Cell> = BTreeMap::new();
        m.insert("trial".into(), Cell::Str(Some(p.trial.clone())));
        m.insert("round".into(), Cell::I64(Some(p.round as i64)));
        m.insert("parent".into(), Cell::Str(p.parent.clone()));
        m.insert("origin".into(), Cell::Str(Some(p.origin.as_str().into())));
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
        for (name, ty) in METRICS {
            let cell = match (name, ty) {
                ("error", _) => Cell::Str(r.error.clone()),
                (_, ColType::Str) => Cell::Str(
                    r.extra
                        .get(name)
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                ),
                (_, ColType::I64) => Cell::I64(r.metric(name).map(|v| v as i64)),
                _ => Cell::F64(fin(r.metric(name))),
            };
            m.insert(name.into(), cell);
        }
        for (name, _) in &self.cols {
            if let Some(metric) = name.strip_prefix("metric_") {
                m.insert(name.clone(), Cell::F64(fin(r.metric(metric))));
            }
        }
        m.insert(
            "feasible".into(),
            Cell::Bool(Some(obj.evaluate(r).feasible)),
        );
        self.cols
            .iter()
            .map(|(n, t)| m.remove(n).unwrap_or(Cell::null(*t)))
            .collect()
    }

    /// A row's objective values in model units, when it is `ok`, feasible and has them all.
    pub fn model_values(&self, obj: &Objectives, row: &[Cell]) -> Option<Vec<f64>> {
        if row[self.status].as_str() != Some("ok") || row[self.feasible] != Cell::Bool(Some(true)) {
            return None;
        }
        (0..obj.len())
            .map(|k| obj.to_model(k, row[self.objectives[k]].as_f64()?))
            .collect()
    }
}
