//! The final round's results, one row per generator: `final.parquet` (schema
//! `nago.final/1`), written by nago-update and shown first by `nago-report best`.
//!
//! A final trial belongs to the generator it samples; the row names the search trial that
//! chose that generator (`source_trial`: the final proposal's `source`, or for older
//! proposals the evaluation at the largest budget with the same generator). Means and standard deviations (sample std, n − 1; null below 2 samples) are
//! over the generator's final trials that ended `ok`.

use crate::trials::{TrialRecord, Trials};
use nago_space::{FlatValue, Generator};
use nago_store::{Origin, TrialStatus};
use nago_table::{Cell, ColType, Table};

/// One chosen generator's final results.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalGenerator {
    /// The search trial whose generator this is (None if no search trial has it).
    pub source_trial: Option<String>,
    /// The generator.
    pub generator: Generator,
    /// Its final trials, by id.
    pub trials: Vec<String>,
    /// How many of them ended `ok`.
    pub done: usize,
    /// Epochs of the final trainings.
    pub epochs: f64,
    /// Test accuracy: (mean, sample std) over the `ok` trials.
    pub test_accuracy: Option<(f64, Option<f64>)>,
    /// Validation accuracy: (mean, sample std).
    pub val_accuracy: Option<(f64, Option<f64>)>,
    /// Parameters: (mean, min, max).
    pub params: Option<(f64, f64, f64)>,
    /// MACs per image, mean.
    pub macs: Option<f64>,
    /// Training seconds, mean.
    pub train_seconds: Option<f64>,
    /// CPU latency at batch 1 in ms, mean (machine-specific; see nago_train::latency).
    pub latency_ms: Option<f64>,
}

/// Mean and sample standard deviation (None below two values).
pub fn mean_std(v: &[f64]) -> Option<(f64, Option<f64>)> {
    if v.is_empty() {
        return None;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.len() > 1)
        .then(|| (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    Some((mean, std))
}

/// The final round's generators in the order of their first final trial.
pub fn final_generators(trials: &Trials) -> Vec<FinalGenerator> {
    // Grouped by generator and the search trial that chose it (proposals before
    // `source` was recorded have none: their generator alone names the group).
    let mut groups: Vec<(Generator, Option<&str>, Vec<&TrialRecord>)> = Vec::new();
    for t in trials
        .records
        .iter()
        .filter(|t| t.proposal.origin == Origin::Final && !t.rejected())
    {
        let source = t.proposal.source.as_deref();
        match groups
            .iter_mut()
            .find(|g| g.0 == t.proposal.generator && g.1 == source)
        {
            Some(g) => g.2.push(t),
            None => groups.push((t.proposal.generator, source, vec![t])),
        }
    }
    groups
        .into_iter()
        .map(|(generator, source, ts)| {
            let ok: Vec<_> = ts
                .iter()
                .filter_map(|t| t.final_result())
                .filter(|r| r.status == TrialStatus::Ok)
                .collect();
            let col = |f: &dyn Fn(&nago_store::TrialResult) -> Option<f64>| -> Vec<f64> {
                ok.iter().filter_map(|r| f(r)).collect()
            };
            let params = col(&|r| r.params.map(|p| p as f64));
            let mean = |v: Vec<f64>| mean_std(&v).map(|m| m.0);
            let source_trial = source.map(String::from).or_else(|| {
                trials
                    .records
                    .iter()
                    .filter(|s| {
                        s.proposal.origin != Origin::Final && s.proposal.generator == generator
                    })
                    .filter(|s| s.final_result().is_some())
                    .max_by(|a, b| {
                        a.proposal
                            .budget
                            .total_cmp(&b.proposal.budget)
                            .then(b.id().cmp(a.id()))
                    })
                    .map(|s| s.id().to_string())
            });
            FinalGenerator {
                source_trial,
                generator,
                trials: ts.iter().map(|t| t.id().to_string()).collect(),
                done: ok.len(),
                epochs: ts[0].proposal.budget,
                test_accuracy: mean_std(&col(&|r| r.test_accuracy)),
                val_accuracy: mean_std(&col(&|r| r.val_accuracy)),
                params: mean_std(&params).map(|(m, _)| {
                    let lo = params.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = params.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    (m, lo, hi)
                }),
                macs: mean(col(&|r| r.macs.map(|m| m as f64))),
                train_seconds: mean(col(&|r| r.train_seconds)),
                latency_ms: mean(col(&|r| r.metric("latency_ms"))),
            }
        })
        .collect()
}

/// The table of `final.parquet`.
pub fn final_table(gens: &[FinalGenerator]) -> Table {
    let mut columns: Vec<(String, ColType)> = vec![
        ("generator".into(), ColType::I64),
        ("source_trial".into(), ColType::Str),
    ];
    let base = Generator::default();
    for (name, v) in base.flat() {
        columns.push((
            name,
            match v {
                FlatValue::Int(_) => ColType::I64,
                FlatValue::Real(_) => ColType::F64,
                FlatValue::Str(_) => ColType::Str,
            },
        ));
    }
    for (n, t) in [
        ("samples", ColType::I64),
        ("done", ColType::I64),
        ("epochs", ColType::F64),
        ("test_accuracy_mean", ColType::F64),
        ("test_accuracy_std", ColType::F64),
        ("val_accuracy_mean", ColType::F64),
        ("val_accuracy_std", ColType::F64),
        ("params_mean", ColType::F64),
        ("params_min", ColType::I64),
        ("params_max", ColType::I64),
        ("macs_mean", ColType::F64),
        ("train_seconds_mean", ColType::F64),
        ("latency_ms_mean", ColType::F64),
        ("trials", ColType::Str),
    ] {
        columns.push((n.into(), t));
    }
    let rows = gens
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut row = vec![Cell::I64(Some(i as i64)), Cell::Str(g.source_trial.clone())];
            for (_, v) in g.generator.flat() {
                row.push(match v {
                    FlatValue::Int(x) => Cell::I64(Some(x)),
                    FlatValue::Real(x) => Cell::F64(Some(x)),
                    FlatValue::Str(x) => Cell::Str(Some(x.to_string())),
                });
            }
            row.extend([
                Cell::I64(Some(g.trials.len() as i64)),
                Cell::I64(Some(g.done as i64)),
                Cell::F64(Some(g.epochs)),
                Cell::F64(g.test_accuracy.map(|m| m.0)),
                Cell::F64(g.test_accuracy.and_then(|m| m.1)),
                Cell::F64(g.val_accuracy.map(|m| m.0)),
                Cell::F64(g.val_accuracy.and_then(|m| m.1)),
                Cell::F64(g.params.map(|p| p.0)),
                Cell::I64(g.params.map(|p| p.1 as i64)),
                Cell::I64(g.params.map(|p| p.2 as i64)),
                Cell::F64(g.macs),
                Cell::F64(g.train_seconds),
                Cell::F64(g.latency_ms),
                Cell::Str(Some(g.trials.join(","))),
            ]);
            row
        })
        .collect();
    Table { columns, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        assert_eq!(mean_std(&[]), None);
        assert_eq!(mean_std(&[0.5]), Some((0.5, None)));
        let (m, s) = mean_std(&[0.9, 0.92, 0.94]).unwrap();
        assert!((m - 0.92).abs() < 1e-12);
        assert!((s.unwrap() - 0.02).abs() < 1e-12);
    }
}
