//! The report, the best-trials table and export on synthetic studies (real proposals and
//! architectures from nago-generator, invented results).

#[path = "../examples/synthetic_study.rs"]
#[allow(dead_code)]
mod synthetic;

use nago_bo::pareto::dominates;
use nago_report::export::{export_trial, read_safetensors, Dtype, Tensor, WeightsFile};
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
        let p = d.model_values(&d.trials[i]).unwrap();
        let dominated = scored
            .iter()
            .any(|&j| dominates(&d.model_values(&d.trials[j]).unwrap(), &p));
        assert_eq!(front.contains(&i), !dominated, "{}", d.trials[i].id);
    }
    // One value per evaluation with a result (21 ok, 2 failed), as trials.parquet has.
    let hv = d.hypervolume_trace();
    assert_eq!(hv.len(), 23);
    for w in hv.windows(2) {
        assert!(w[1].1 >= w[0].1 - 1e-12, "hypervolume must not decrease");
    }
    assert!(hv.last().unwrap().1 > 0.0);
}

#[test]
fn hypervolume_trace_equals_nago_updates_column() {
    let s = study(24);
    let d = StudyData::load(s.path()).unwrap();
    assert!(d.tables.is_none());
    let ours: Vec<(String, f64)> = d
        .hypervolume_trace()
        .into_iter()
        .map(|(i, hv)| (d.trials[i].id.clone(), hv))
        .collect();
    nago_study::update(&d.dir, None, &nago_study::WarmInput::Previous).unwrap();
    let d2 = StudyData::load(s.path()).unwrap();
    let table = &d2
        .tables
        .as_ref()
        .expect("trials.parquet written")
        .hypervolume;
    assert_eq!(ours.len(), table.len());
    for ((id, hv), (tid, _, thv)) in ours.iter().zip(table) {
        assert_eq!(id, tid);
        assert!(
            (hv - thv).abs() <= 1e-12 * thv.abs().max(1.0),
            "{id}: {hv} vs {thv}"
        );
    }
    // After nago-update the report recomputes the same numbers (surrogate.json's reference).
    let again: Vec<f64> = d2.hypervolume_trace().into_iter().map(|p| p.1).collect();
    let col: Vec<f64> = table.iter().map(|r| r.2).collect();
    assert_eq!(again, col);
    // The front the report shows at the model budget is pareto.parquet's.
    assert_eq!(d2.pareto().len(), d2.tables.as_ref().unwrap().front.len());
    // Both hypervolumes are shown: the observed front's (the table's last value) and the
    // model's posterior means' (surrogate.json).
    assert_eq!(d2.observed_hypervolume(), col.last().copied());
    let sur = nago_study::SurrogateFile::read(&d2.dir).unwrap().unwrap();
    let m = d2
        .model_hypervolume()
        .expect("surrogate.json has a model hypervolume");
    assert_eq!(Some(m), sur.model_hypervolume);
    let budget = sur.budget.unwrap();
    for front in [best::Front::ModelBudget, best::Front::AllBudgets] {
        let text = best::text_table(&d2, front);
        let line = format!(
            "hypervolume at {budget} epochs: {:.4} of the observed values, {m:.4} of the \
             model's posterior means",
            col.last().unwrap()
        );
        assert!(text.contains(&line), "{text}");
    }
    // surrogate.json is read once, at load; a corrupt one is a warning naming it, the
    // report goes on without the model's hypervolume and with the recomputed reference.
    assert_eq!(d2.surrogate.as_ref().unwrap().reference, sur.reference);
    let sp = d2.dir.surrogate_path();
    std::fs::write(&sp, b"{ truncated").unwrap();
    let d3 = StudyData::load(s.path()).unwrap();
    assert!(d3.surrogate.is_none());
    assert_eq!(d3.model_hypervolume(), None);
    assert_eq!(d3.warnings.len(), 1, "{:?}", d3.warnings);
    assert!(
        d3.warnings[0].contains(&sp.display().to_string()),
        "{:?}",
        d3.warnings
    );
    assert_eq!(d3.observed_hypervolume(), col.last().copied());
}

#[test]
fn best_reports_unreadable_files_and_still_succeeds() {
    let s = study(12);
    let d = StudyData::load(s.path()).unwrap();
    let bad = d.trials[1].dir.result_path();
    std::fs::write(&bad, b"{ not json").unwrap();
    let bad_p = d.trials[2].dir.proposal_path();
    std::fs::write(&bad_p, b"[]").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nago-report"))
        .args(["best", "--run"])
        .arg(s.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&bad.display().to_string()), "{stderr}");
    assert!(stderr.contains(&bad_p.display().to_string()), "{stderr}");
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    // The others are still there: 12 trials, one pending, two unreadable.
    let d = StudyData::load(s.path()).unwrap();
    assert_eq!(d.trials.len(), 11);
    assert_eq!(d.warnings.len(), 2);
    let rows = best::best_rows(&d, best::Front::AllBudgets);
    assert!(!rows.is_empty());
    for r in &rows {
        assert!(stdout.contains(&r.trial), "{stdout}");
    }
    assert!(
        stdout.contains(&format!("({} trials in all)", 11)),
        "{stdout}"
    );
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

fn f32_tensor(shape: Vec<usize>, v: f32) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(Dtype::F32, shape, f32_bytes(n, v)).unwrap()
}

fn write_weights(path: &Path, tensors: &BTreeMap<String, Tensor>) {
    let f = WeightsFile {
        tensors: tensors.clone(),
        metadata: BTreeMap::new(),
    };
    std::fs::write(path, f.to_bytes().unwrap()).unwrap();
}

#[test]
fn export_keeps_the_model_tensors_of_a_checkpoint() {
    let s = study(8);
    let d = StudyData::load(s.path()).unwrap();
    let t = &d.trials[0];
    let params = t.arch.as_ref().unwrap().counts.params as usize;
    // A checkpoint like the trainer's: model/ weights and BN statistics, momentum/ buffers,
    // and the checkpoint's metadata as a uint8 tensor.
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "model/all.weight".to_string(),
        f32_tensor(vec![params], 0.5),
    );
    tensors.insert(
        "model/bn.running_mean".to_string(),
        f32_tensor(vec![4], 0.0),
    );
    tensors.insert(
        "momentum/all.weight".to_string(),
        f32_tensor(vec![params], 1.0),
    );
    let meta = br#"{"epoch":3}"#.to_vec();
    tensors.insert(
        "meta/json".to_string(),
        Tensor::new(Dtype::U8, vec![meta.len()], meta).unwrap(),
    );
    let ckpt = t.dir.checkpoint_path();
    write_weights(&ckpt, &tensors);
    let out = s.path().join("export");
    let m = export_trial(s.path(), &t.id, &out, None).unwrap();
    assert_eq!(m.params_in_weights, params as u64);
    assert_eq!(m.tensors, 2);
    let w = read_safetensors(&out.join("weights.safetensors")).unwrap();
    let names: Vec<&String> = w.tensors.keys().collect();
    assert_eq!(names, ["all.weight", "bn.running_mean"]);
    assert_eq!(w.bytes("all.weight").unwrap(), &f32_bytes(params, 0.5)[..]);
    assert_eq!(w.tensors["all.weight"].dtype, Dtype::F32);
    assert_eq!(w.tensors["all.weight"].shape, [params]);
    assert_eq!(w.metadata["nago.trial"], t.id);
    assert_eq!(w.metadata["format"], "pt");
    assert!(out.join("arch.json").is_file() && out.join("export.json").is_file());
    // The layout python/nago_export reads: 8-byte length, a JSON header padded to 8 bytes,
    // each tensor's byte range inside the data section.
    let bytes = std::fs::read(out.join("weights.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["all.weight"]["dtype"], "F32");
    assert_eq!(header["all.weight"]["shape"][0], params as u64);
    assert_eq!(header["__metadata__"]["nago.study"], d.study.name.as_str());

    // A weights file whose size disagrees with arch.json is refused, and nothing is written.
    tensors.remove("momentum/all.weight");
    tensors.insert("model/all.weight".to_string(), f32_tensor(vec![3], 0.5));
    write_weights(&ckpt, &tensors);
    let out2 = s.path().join("export2");
    let e = export_trial(s.path(), &t.id, &out2, None).unwrap_err();
    assert!(format!("{e:#}").contains("counts"), "{e:#}");
    assert!(!out2.exists());
    // Not safetensors at all.
    std::fs::write(&ckpt, b"garbage!garbage").unwrap();
    assert!(export_trial(s.path(), &t.id, &out2, None).is_err());
}

/// The ONNX export needs a Python with the exporter: without one it says what to install and
/// writes nothing; an exporter that dies leaves no model.onnx, and a re-export of the weights
/// removes an older model.onnx and a killed export's temporary file. (The export itself, run
/// with the real exporter and onnxruntime, is `make test-export`.)
#[test]
fn onnx_export_without_the_exporter_writes_nothing_and_names_what_to_install() {
    use nago_report::export::export_trial_onnx;
    use nago_report::onnx::OnnxOptions;
    let s = study(4);
    let d = StudyData::load(s.path()).unwrap();
    let t = &d.trials[0];
    let params = t.arch.as_ref().unwrap().counts.params as usize;
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "model/all.weight".to_string(),
        f32_tensor(vec![params], 0.5),
    );
    write_weights(&t.dir.checkpoint_path(), &tensors);
    let opts = |python: &Path| OnnxOptions {
        python: python.as_os_str().to_owned(),
        opset: 18,
        verify: true,
    };
    let out = s.path().join("onnx-export");
    let e = export_trial_onnx(
        s.path(),
        &t.id,
        &out,
        None,
        &opts(Path::new("/nonexistent/python3")),
    )
    .unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("/nonexistent/python3") && e.contains("--python"),
        "{e}"
    );
    assert!(!out.exists());
    // A Python that lacks the packages (a stand-in: the real one would need them removed).
    let fake = s.path().join("python-without-torch");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'onnxscript'\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = format!(
        "{:#}",
        export_trial_onnx(s.path(), &t.id, &out, None, &opts(&fake)).unwrap_err()
    );
    assert!(
        e.contains("onnxscript") && e.contains("pip install torch onnx onnxscript"),
        "{e}"
    );
    assert!(!out.exists());
    // A Python that passes the check, and a trial without the input statistics that the
    // model's normalisation needs: refused, nothing written.
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    let e = format!(
        "{:#}",
        export_trial_onnx(s.path(), &t.id, &out, None, &opts(&fake)).unwrap_err()
    );
    assert!(e.contains("input_mean") && e.contains("result.json"), "{e}");
    assert!(!out.exists());
    let rp = t.dir.path().join("result.json");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rp).unwrap()).unwrap();
    r["input_mean"] = serde_json::json!([0.5]);
    r["input_std"] = serde_json::json!([0.25]);
    std::fs::write(&rp, r.to_string()).unwrap();
    // A Python that passes the check but whose exporter dies: the weights are exported,
    // model.onnx is not, and the error says so.
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$*\" in *to_onnx*) echo 'Killed' >&2; exit 137;; esac\nexit 0\n",
    )
    .unwrap();
    let e = format!(
        "{:#}",
        export_trial_onnx(s.path(), &t.id, &out, None, &opts(&fake)).unwrap_err()
    );
    assert!(e.contains("no model.onnx written"), "{e}");
    assert!(out.join("weights.safetensors").is_file() && !out.join("model.onnx").exists());
    // A re-export of the weights alone: an older model.onnx and a dead writer's temporary
    // file do not survive it.
    std::fs::write(out.join("model.onnx"), b"older").unwrap();
    std::fs::write(out.join("model.onnx.tmp.4194301"), b"partial").unwrap();
    export_trial(s.path(), &t.id, &out, None).unwrap();
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["arch.json", "export.json", "weights.safetensors"]);
}
