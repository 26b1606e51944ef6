//! The report, the best-trials table and export on synthetic studies (real proposals and
//! architectures from nago-generator, invented results).

#[path = "../examples/synthetic_study.rs"]
#[allow(dead_code)]
mod synthetic;

use nago_report::data::dominates;
use nago_report::export::{export_trial, read_safetensors, SafeTensors};
use nago_report::{best, write_report, ReportOptions, StudyData};
use std::collections::BTreeMap;
use std::path::Path;

fn study(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    synthetic::write_study(dir.path(), n);
    dir
}

fn figure_svg<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("data-fig=\"{id}\""))
        .unwrap_or_else(|| panic!("figure {id} missing"));
    let end = start + html[start..].find("</figure>").unwrap();
    &html[start..end]
}

#[test]
fn report_has_every_figure() {
    let s = study(24);
    let sum = write_report(s.path(), &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(s.path().join("report/index.html")).unwrap();
    assert_eq!(sum.path, s.path().join("report/index.html"));
    for id in ["pareto", "hv-evals", "hv-time", "parallel", "curves"] {
        let f = figure_svg(&html, id);
        assert!(f.contains("<svg"), "{id}");
        assert!(!f.contains("data-marks=\"0\""), "{id} has no data");
    }
    let d = StudyData::load(s.path()).unwrap();
    let front = d.pareto();
    assert_eq!(sum.graphviz_pictures + sum.own_pictures, front.len().min(6));
    for &i in front.iter().take(6) {
        assert!(figure_svg(&html, &format!("arch-{}", d.trials[i].id)).contains("<svg"));
    }
    // 21 completed dots + 2 failed crosses + the front staircase.
    assert!(figure_svg(&html, "pareto").contains("data-marks=\"24\""));
    assert!(html.contains("failed (2)"));
    // Offline: no external references.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http"));
}

#[test]
fn own_drawing_without_graphviz() {
    let s = study(12);
    let opts = ReportOptions {
        graphviz: false,
        max_best: 2,
        ..Default::default()
    };
    let sum = write_report(s.path(), &opts).unwrap();
    assert_eq!(sum.graphviz_pictures, 0);
    assert_eq!(sum.own_pictures, 2);
    let html = std::fs::read_to_string(&sum.path).unwrap();
    assert!(html.contains("drawn by nago-report"));
}

#[test]
fn pareto_set_is_exactly_the_non_dominated() {
    let s = study(24);
    let d = StudyData::load(s.path()).unwrap();
    let front = d.pareto();
    let scored = d.scored();
    assert_eq!(scored.len(), 21);
    assert!(!front.is_empty());
    for &i in &scored {
        let p = d.min_coords(&d.trials[i]);
        let dominated = scored
            .iter()
            .any(|&j| dominates(&d.min_coords(&d.trials[j]), &p));
        assert_eq!(front.contains(&i), !dominated, "{}", d.trials[i].id);
    }
    let hv = d.hypervolume_trace();
    assert_eq!(hv.len(), 21);
    for w in hv.windows(2) {
        assert!(w[1].1 >= w[0].1 - 1e-12, "hypervolume must not decrease");
    }
    assert!(hv.last().unwrap().1 <= 1.0 && hv.last().unwrap().1 > 0.0);
}

#[test]
fn best_table_lists_the_front_with_paths() {
    let s = study(24);
    let d = StudyData::load(s.path()).unwrap();
    // pareto.parquet's front (one budget) and the front across budgets.
    let at_model = best::best_rows(&d, best::Front::ModelBudget);
    assert_eq!(at_model.len(), d.pareto().len());
    // (This synthetic study has no pareto.parquet; the smoke end-to-end test checks the
    // one-budget front against nago-update's.)
    let rows = best::best_rows(&d, best::Front::AllBudgets);
    assert_eq!(rows.len(), d.pareto_recomputed().len());
    // No completed evaluation dominates a row of the front across budgets.
    for r in &rows {
        let (e, p) = (r.objectives["val_error"], r.objectives["params"]);
        for i in d.scored() {
            let t = &d.trials[i];
            let (e2, p2) = (t.metric("val_error").unwrap(), t.metric("params").unwrap());
            assert!(
                !(e2 <= e && p2 <= p && (e2 < e || p2 < p)),
                "{} dominates {}",
                t.id,
                r.trial
            );
        }
    }
    for r in &rows {
        assert!(Path::new(&r.arch).is_file());
        assert!(r.objectives.contains_key("val_error") && r.objectives.contains_key("params"));
        assert!(r.generator.contains_key("top_n") && r.generator.contains_key("param_limit"));
    }
    // Sorted by the first objective.
    for w in rows.windows(2) {
        assert!(w[0].objectives["val_error"] <= w[1].objectives["val_error"]);
    }
    let text = best::text_table(&d, best::Front::AllBudgets);
    assert_eq!(text.lines().count(), rows.len() + 2);
    assert!(text.lines().nth(1).unwrap().contains("val_error"));
    let csv = best::csv_table(&d, best::Front::AllBudgets);
    assert_eq!(csv.lines().count(), rows.len() + 1);
}

#[test]
fn empty_study_still_reports() {
    let s = tempfile::tempdir().unwrap();
    synthetic::write_study(s.path(), 1); // one pending trial, no results
    let sum = write_report(s.path(), &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(&sum.path).unwrap();
    assert!(html.contains("no completed trial yet"));
}

#[test]
fn bad_study_is_an_error_naming_the_file() {
    let s = tempfile::tempdir().unwrap();
    let e = write_report(s.path(), &ReportOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("study.json"), "{e:#}");
}

fn f32_bytes(n: usize, v: f32) -> Vec<u8> {
    (0..n).flat_map(|_| v.to_le_bytes()).collect()
}

#[test]
fn export_keeps_the_model_tensors_of_a_checkpoint() {
    let s = study(8);
    let d = StudyData::load(s.path()).unwrap();
    let t = &d.trials[0];
    let params = t.arch.as_ref().unwrap().counts.params as usize;
    // A checkpoint like the trainer's: model/ weights and BN statistics, momentum/ buffers.
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "model/all.weight".to_string(),
        (
            "F32".to_string(),
            vec![params as u64],
            f32_bytes(params, 0.5),
        ),
    );
    tensors.insert(
        "model/bn.running_mean".to_string(),
        ("F32".to_string(), vec![4], f32_bytes(4, 0.0)),
    );
    tensors.insert(
        "momentum/all.weight".to_string(),
        (
            "F32".to_string(),
            vec![params as u64],
            f32_bytes(params, 1.0),
        ),
    );
    std::fs::write(
        t.dir.join("checkpoint.safetensors"),
        SafeTensors::write(&tensors, &BTreeMap::new()),
    )
    .unwrap();
    let out = s.path().join("export");
    let m = export_trial(s.path(), &t.id, &out, None).unwrap();
    assert_eq!(m.params_in_weights, params as u64);
    assert_eq!(m.tensors, 2);
    let w = read_safetensors(&out.join("weights.safetensors")).unwrap();
    let names: Vec<&String> = w.tensors.keys().collect();
    assert_eq!(names, ["all.weight", "bn.running_mean"]);
    assert_eq!(w.bytes("all.weight").unwrap(), &f32_bytes(params, 0.5)[..]);
    assert_eq!(w.metadata["nago.trial"], t.id);
    assert!(out.join("arch.json").is_file() && out.join("export.json").is_file());

    // A weights file whose size disagrees with arch.json is refused, and nothing is written.
    tensors.remove("momentum/all.weight");
    tensors.insert(
        "model/all.weight".to_string(),
        ("F32".to_string(), vec![3], f32_bytes(3, 0.5)),
    );
    std::fs::write(
        t.dir.join("checkpoint.safetensors"),
        SafeTensors::write(&tensors, &BTreeMap::new()),
    )
    .unwrap();
    let out2 = s.path().join("export2");
    let e = export_trial(s.path(), &t.id, &out2, None).unwrap_err();
    assert!(format!("{e:#}").contains("counts"), "{e:#}");
    assert!(!out2.exists());
    // Not safetensors at all.
    std::fs::write(t.dir.join("checkpoint.safetensors"), b"garbage!garbage").unwrap();
    assert!(export_trial(s.path(), &t.id, &out2, None).is_err());
}
