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
