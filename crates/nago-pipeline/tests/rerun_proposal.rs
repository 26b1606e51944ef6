//! `nago-rerun --proposal` on one-trial proposals (the asynchronous workers' kind) whose
//! surrogate was fitted on failures only: such a surrogate had no reference point yet, and
//! the rerun must not give it today's. Results are written by hand as the trainer writes
//! them (no training: what is tested is the fit and the proposal).

mod common;
use common::assert_rerun_identical;
use std::path::{Path, PathBuf};
use std::process::Command;

const STUDY: &str = r#"{
  "schema": "nago.study/1", "name": "rerun", "seed": 11,
  "dataset": {"name": "fashion-mnist"},
  "objectives": [
    {"metric": "val_error", "goal": "min"},
    {"metric": "params", "goal": "min", "log": true}
  ],
  "budgets": {"min": 1, "max": 2, "eta": 2},
  "search": {"batch_size": 1, "max_evaluations": 6, "initial_design": 2}
}"#;

fn stage(name: &str, args: &[&str]) {
    let bin: PathBuf = Path::new(env!("CARGO_BIN_EXE_nago-rerun")).with_file_name(name);
    let out = Command::new(&bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn propose_one(run: &str) {
    stage("nago-update", &["--run", run]);
    stage(
        "nago-propose",
        &["--run", run, "--allow-pending", "--max-trials", "1"],
    );
}

fn write_result(run: &Path, trial: &str, result: serde_json::Value) {
    std::fs::write(
        run.join("trials").join(trial).join("result.json"),
        result.to_string(),
    )
    .unwrap();
}

#[test]
fn a_proposal_fitted_on_failures_only_reruns_identical() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("s");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("study.json"), STUDY).unwrap();
    let r = run.display().to_string();

    // Round 0; its trial fails for good (a diverged loss).
    propose_one(&r);
    write_result(
        &run,
        "00000",
        serde_json::json!({"schema": "nago.result/1", "trial": "00000", "status": "diverged",
            "budget": 1.0, "error": "the loss became NaN in epoch 1", "retryable": false}),
    );
    // Round 1 is proposed from a surrogate fitted on that failure alone (no reference
    // point yet); then results with values arrive and the reference point is recorded.
    propose_one(&r);
    for (t, err, params) in [("00001", 0.3, 50_000), ("00002", 0.2, 90_000)] {
        if t == "00002" {
            propose_one(&r);
        }
        write_result(
            &run,
            t,
            serde_json::json!({"schema": "nago.result/1", "trial": t, "status": "ok",
                "budget": 1.0, "val_error": err, "val_accuracy": 1.0 - err, "params": params,
                "train_seconds": 1.0}),
        );
    }
    propose_one(&r);
    let surrogate: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("surrogate.json")).unwrap())
            .unwrap();
    assert!(
        surrogate["reference"][0].is_f64(),
        "a reference point is recorded by now: {surrogate}"
    );
    for trial in ["00000", "00001", "00002", "00003"] {
        assert_rerun_identical(&run, &["--proposal", trial]);
    }
}

/// A result as the trainer writes it, with values that depend on the proposal's generator
/// (so the fits have something to learn and differ from round to round).
fn fake_result(run: &Path, trial: &str) -> serde_json::Value {
    let p: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("trials").join(trial).join("proposal.json")).unwrap(),
    )
    .unwrap();
    let text = p["generator"].to_string();
    let h = text.bytes().fold(7u64, |h, b| {
        h.wrapping_mul(1_099_511_628_211).wrapping_add(b as u64)
    });
    let err = 0.1 + (h % 1000) as f64 / 2000.0;
    let params = 20_000 + (h / 1000) % 200_000;
    serde_json::json!({"schema": "nago.result/1", "trial": trial, "status": "ok",
        "budget": p["budget"], "val_error": err, "val_accuracy": 1.0 - err, "params": params,
        "train_seconds": 1.0})
}

#[test]
fn warm_started_fits_rerun_identical_and_an_update_twice_writes_the_same_model() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("s");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("study.json"),
        STUDY.replace("\"max_evaluations\": 6", "\"max_evaluations\": 7"),
    )
    .unwrap();
    let r = run.display().to_string();
    let surrogate = || std::fs::read(run.join("surrogate.json")).unwrap();
    let mut trials = Vec::new();
    for i in 0..6 {
        propose_one(&r);
        let t = format!("{i:05}");
        write_result(&run, &t, fake_result(&run, &t));
        trials.push(t);
    }
    stage("nago-update", &["--run", &r]);
    let first = surrogate();
    let sf: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let warm = &sf["warm_started_from"];
    assert!(
        warm["objectives"][0]["theta"].is_array(),
        "the fit is warm-started from the previous surrogate: {warm}"
    );
    // The same observations again: the same start, so the same bytes (a resumed driver or a
    // person rerunning nago-update changes nothing).
    stage("nago-update", &["--run", &r]);
    assert_eq!(
        surrogate(),
        first,
        "a second nago-update on the same trials"
    );

    // --warm-start: null is a cold fit; a bad file is an error naming it, nothing written.
    let cold = d.path().join("cold.json");
    std::fs::write(&cold, "null").unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_nago-rerun")).with_file_name("nago-update");
    let scratch = d.path().join("copy");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&run)
        .arg(&scratch)
        .status()
        .unwrap();
    assert!(cp.success());
    stage(
        "nago-update",
        &[
            "--run",
            scratch.to_str().unwrap(),
            "--warm-start",
            cold.to_str().unwrap(),
        ],
    );
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scratch.join("surrogate.json")).unwrap()).unwrap();
    assert!(
        c["warm_started_from"].is_null(),
        "{}",
        c["warm_started_from"]
    );
    for (bad, says) in [
        ("{\"dims\": 8}", "not a warm start"),
        (
            "{\"dims\": 3, \"warm_fits\": 0, \"objectives\": []}",
            "a warm start for 3 coordinates and 0 objectives",
        ),
    ] {
        let f = d.path().join("bad.json");
        std::fs::write(&f, bad).unwrap();
        let out = Command::new(&bin)
            .args(["--run", &r, "--warm-start", f.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
        if says.starts_with("not") {
            assert!(err.contains(f.to_str().unwrap()), "names the file: {err}");
        }
        assert_eq!(surrogate(), first, "{bad}: surrogate.json untouched");
    }

    // Every proposal and the last update reproduce from the stored files.
    for t in &trials {
        assert_rerun_identical(&run, &["--proposal", t]);
    }
    assert_rerun_identical(&run, &["--update"]);
}
