//! The best trials (the current Pareto set) as a table.

use crate::data::{flat_text, StudyData};
use crate::svg::fmt_num;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One row of the best-trials table.
#[derive(Debug, Clone, Serialize)]
pub struct BestRow {
    /// The trial id.
    pub trial: String,
    /// The round that proposed it.
    pub round: u32,
    /// Training budget, epochs.
    pub budget: f64,
    /// Objective values, by metric name (result.json units).
    pub objectives: BTreeMap<String, f64>,
    /// The searched generator hyperparameters, by flat column name.
    pub generator: BTreeMap<String, String>,
    /// Path of the trial's arch.json.
    pub arch: String,
    /// Path of its weights (safetensors or checkpoint), when present.
    pub weights: Option<String>,
}

/// Which Pareto set a best-trials table lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Front {
    /// Every completed evaluation at whatever budget it was trained to (constraints
    /// respected): the networks a user can take. What a search prints at its end.
    #[default]
    AllBudgets,
    /// `pareto.parquet`: the front at the one budget nago-update compares (the largest with
    /// enough evaluations), the set the optimiser and the hypervolume see.
    ModelBudget,
}

impl Front {
    fn indices(self, d: &StudyData) -> Vec<usize> {
        match self {
            Front::AllBudgets => d.pareto_recomputed(),
            Front::ModelBudget => d.pareto(),
        }
    }
}

/// The Pareto set of the completed trials, sorted by the first objective.
pub fn best_rows(d: &StudyData, front: Front) -> Vec<BestRow> {
    let params = d.varying_params();
    front
        .indices(d)
        .into_iter()
        .map(|i| {
            let t = &d.trials[i];
            let flat: BTreeMap<String, String> = t
                .proposal
                .generator
                .flat()
                .into_iter()
                .filter(|(n, _)| params.contains(n))
                .map(|(n, v)| (n, flat_text(&v)))
                .collect();
            BestRow {
                trial: t.id.clone(),
                round: t.proposal.round,
                budget: t.proposal.budget,
                objectives: d
                    .objectives
                    .iter()
                    .filter_map(|o| t.metric(&o.metric).map(|v| (o.metric.clone(), v)))
                    .collect(),
                generator: flat,
                arch: t.dir.arch_path().display().to_string(),
                weights: t.weights.as_ref().map(|p| p.display().to_string()),
            }
        })
        .collect()
}

/// The header and cells of the table, in display order.
pub fn table_cells(d: &StudyData, rows: &[BestRow]) -> (Vec<String>, Vec<Vec<String>>) {
    let params = d.varying_params();
    let mut head = vec!["trial".to_string(), "round".into(), "budget".into()];
    head.extend(d.objectives.iter().map(|o| o.metric.clone()));
    head.extend(params.iter().cloned());
    head.push("arch.json".into());
    head.push("weights".into());
    let body = rows
        .iter()
        .map(|r| {
            let mut c = vec![r.trial.clone(), r.round.to_string(), fmt_num(r.budget)];
            for o in &d.objectives {
                c.push(r.objectives.get(&o.metric).map_or("-".into(), |v| {
                    if v.abs() >= 1000.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.4}")
                    }
                }));
            }
            for p in &params {
                c.push(r.generator.get(p).cloned().unwrap_or_else(|| "-".into()));
            }
            c.push(r.arch.clone());
            c.push(r.weights.clone().unwrap_or_else(|| "-".into()));
            c
        })
        .collect();
    (head, body)
}

/// The final round's table (header, cells): one row per generator (mean ± sample std over
/// its final trials), best test accuracy first; `None` before the final round has trials.
pub fn final_cells(d: &StudyData) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let mut gens = nago_study::final_table::final_generators(&d.records);
    if gens.is_empty() {
        return None;
    }
    gens.sort_by(|a, b| {
        let key = |g: &nago_study::final_table::FinalGenerator| g.test_accuracy.map(|m| m.0);
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let pm = |m: Option<(f64, Option<f64>)>| match m {
        Some((mean, Some(sd))) => format!("{:.2} ± {:.2}", 100.0 * mean, 100.0 * sd),
        Some((mean, None)) => format!("{:.2}", 100.0 * mean),
        None => "-".into(),
    };
    let head: Vec<String> = [
        "generator of",
        "done",
        "epochs",
        "test acc %",
        "val acc %",
        "params (min–max)",
        "final trials",
    ]
    .map(String::from)
    .to_vec();
    let body: Vec<Vec<String>> = gens
        .iter()
        .map(|g| {
            vec![
                g.source_trial.clone().unwrap_or_else(|| "-".into()),
                format!("{}/{}", g.done, g.trials.len()),
                fmt_num(g.epochs),
                pm(g.test_accuracy),
                pm(g.val_accuracy),
                g.params.map_or("-".into(), |(m, lo, hi)| {
                    format!("{} ({}–{})", fmt_num(m.round()), fmt_num(lo), fmt_num(hi))
                }),
                g.trials.join(","),
            ]
        })
        .collect();
    Some((head, body))
}

/// [`final_cells`] as aligned text.
pub fn final_text(d: &StudyData) -> Option<String> {
    let (head, body) = final_cells(d)?;
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (k, c) in r.iter().enumerate() {
            width[k] = width[k].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(k, c)| format!("{c:<w$}", w = width[k]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = format!(
        "{}: the final round, {} generator(s), mean ± std over their architectures (final.parquet)\n",
        d.study.name,
        body.len()
    );
    out.push_str(&line(head.clone()));
    out.push('\n');
    for r in body {
        out.push_str(&line(r));
        out.push('\n');
    }
    Some(out)
}

/// The table as aligned text, one row per Pareto-optimal trial; the final round's results
/// first, when it has run.
pub fn text_table(d: &StudyData, front: Front) -> String {
    let mut out = final_text(d).map(|f| f + "\n").unwrap_or_default();
    out.push_str(&front_text(d, front));
    out
}

/// The search's Pareto set as aligned text.
fn front_text(d: &StudyData, front: Front) -> String {
    let rows = best_rows(d, front);
    let (head, body) = table_cells(d, &rows);
    let mut width: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (k, c) in r.iter().enumerate() {
            width[k] = width[k].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (k, c) in cells.iter().enumerate() {
            if k > 0 {
                s.push_str("  ");
            }
            let pad = width[k] - c.chars().count();
            if k + 2 >= cells.len() {
                s.push_str(c);
                if k + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    let scored = d.scored();
    out.push_str(&format!(
        "{}: {} Pareto-optimal of {} completed evaluations ({} trials in all)",
        d.study.name,
        rows.len(),
        scored.len(),
        d.trials.len()
    ));
    // Say which front this is, so nobody reads a one-budget front as the study's last word.
    let budgets: BTreeSet<u64> = rows.iter().map(|r| r.budget.to_bits()).collect();
    let at = |b: u64| fmt_num(f64::from_bits(b));
    match front {
        Front::AllBudgets => out.push_str(&format!(
            ", across budgets (its members trained for {} epochs)",
            budgets
                .iter()
                .map(|&b| at(b))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Front::ModelBudget => {
            if let Some(&b) = budgets.iter().next().filter(|_| budgets.len() == 1) {
                let beyond = scored
                    .iter()
                    .filter(|&&i| {
                        d.trials[i]
                            .result
                            .as_ref()
                            .is_some_and(|r| r.budget > f64::from_bits(b))
                    })
                    .count();
                out.push_str(&format!(", compared at {} epochs (pareto.parquet)", at(b)));
                if beyond > 0 {
                    out.push_str(&format!("; {beyond} evaluations at larger budgets"));
                }
            }
        }
    }
    out.push('\n');
    // The study's hypervolume both ways (at the front's budget, whichever front is listed).
    if let (Some(h), Some(m), (Some(b), _)) = (
        d.observed_hypervolume(),
        d.model_hypervolume(),
        d.model_budget_and_reference(),
    ) {
        out.push_str(&format!(
            "hypervolume at {} epochs: {h:.4} of the observed values, {m:.4} of the model's \
             posterior means (single noisy evaluations shrunk towards their neighbours)\n",
            fmt_num(b)
        ));
    }
    out.push_str(&line(&head));
    out.push('\n');
    for r in &body {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// The table as CSV (RFC 4180 quoting).
pub fn csv_table(d: &StudyData, front: Front) -> String {
    let rows = best_rows(d, front);
    let (head, body) = table_cells(d, &rows);
    let q = |s: &String| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.clone()
        }
    };
    let mut out = head.iter().map(q).collect::<Vec<_>>().join(",");
    out.push('\n');
    for r in &body {
        out.push_str(&r.iter().map(q).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}
