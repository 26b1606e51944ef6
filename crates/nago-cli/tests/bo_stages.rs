//! nago-propose / nago-update end to end with a fake trainer (a synthetic function of the
//! generator), plus the robustness cases: missing and corrupt results, a half-written trial
//! directory, NaN metrics, a duplicated proposal, two updates at once, determinism.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin(name: &str) -> PathBuf {
    match name {
        "nago-propose" => PathBuf::from(env!("CARGO_BIN_EXE_nago-propose")),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_nago-update")),
    }
}

/// (exit code, stdout, stderr); nago-propose exits 5 when it has nothing to propose yet and
/// 6 when the study is done.
fn run(name: &str, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin(name)).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const STUDY: &str = r#"{
  "schema": "nago.study/1", "name": "t", "seed": 3,
  "dataset": {"name": "fashion-mnist"},
  "objectives": [
    {"metric": "val_error", "goal": "min"},
    {"metric": "params", "goal": "min", "log": true}
  ],
  "constraints": [{"metric": "params", "max": 5e6}],
  "budgets": {"min": 2, "max": 8, "eta": 2},
  "search": {"batch_size": 4, "max_evaluations": 24, "initial_design": 6, "final_samples": 2}
}"#;

fn study(dir: &Path) -> String {
    let run = dir.join("s");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("study.json"), STUDY).unwrap();
    run.display().to_string()
}

/// The fake trainer: error falls with the top-level node count and the budget; params grow
/// with the node counts.
fn train(run: &str, trial: &str) {
    let d = Path::new(run).join("trials").join(trial);
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("proposal.json")).unwrap()).unwrap();
    let g = &p["generator"];
    let top_n = g["top"]["n"].as_f64().unwrap();
    let bot_n = g["bottom"]["n"].as_f64().unwrap();
    let top_p = g["top"]["p"].as_f64().unwrap();
    let budget = p["budget"].as_f64().unwrap();
    let err = 0.5 / top_n + (top_p - 0.4).powi(2) + 0.1 / budget;
    let params = (1e5 * top_n * bot_n) as u64;
    let r = serde_json::json!({
        "schema": "nago.result/1", "trial": trial, "status": "ok", "budget": budget,
        "val_error": err, "val_accuracy": 1.0 - err, "params": params, "train_seconds": 1.0
    });
    std::fs::write(d.join("result.json"), r.to_string()).unwrap();
}

fn round_trials(run: &str, r: u32) -> Vec<String> {
    let p: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(run).join(format!("rounds/{r:04}/proposals.json")))
            .unwrap(),
    )
    .unwrap();
    p["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn search(run: &str) -> usize {
    let mut rounds = 0;
    loop {
        let (code, out, err) = run_ok("nago-propose", &["--run", run]);
        if out.contains("nago-propose: done: the study's budget is spent") {
            assert_eq!(code, 6, "done: {err}");
            return rounds;
        }
        assert_eq!(code, 0, "{err}");
        for t in round_trials(run, rounds as u32) {
            train(run, &t);
        }
        let (code, _, err) = run_ok("nago-update", &["--run", run]);
        assert_eq!(code, 0, "{err}");
        rounds += 1;
    }
}

fn run_ok(name: &str, args: &[&str]) -> (i32, String, String) {
    run(name, args)
}

#[test]
fn full_search_is_deterministic_with_promotions_and_final_round() {
    let d = tempfile::tempdir().unwrap();
    let a = study(d.path());
    let rounds = search(&a);
    assert_eq!(rounds, 6, "24 evaluations in batches of 4");
    let b = study(&d.path().join("b"));
    assert_eq!(search(&b), 6);
    for f in [
        "trials.parquet",
        "pareto.parquet",
        "surrogate.json",
        "rounds/0005/proposals.json",
    ] {
        assert_eq!(
            std::fs::read(Path::new(&a).join(f)).unwrap(),
            std::fs::read(Path::new(&b).join(f)).unwrap(),
            "{f} differs between identical runs"
        );
    }
    // Origins: the Sobol design, then the model, and promotions with parents.
    let mut origins = std::collections::BTreeMap::<String, usize>::new();
    let mut promoted_budgets = Vec::new();
    for r in 0..6 {
        for t in round_trials(&a, r) {
            let p: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(
                    Path::new(&a).join("trials").join(&t).join("proposal.json"),
                )
                .unwrap(),
            )
            .unwrap();
            let o = p["origin"].as_str().unwrap().to_string();
            if o == "promotion" {
                let parent = p["parent"].as_str().unwrap();
                let pp: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(
                        Path::new(&a)
                            .join("trials")
                            .join(parent)
                            .join("proposal.json"),
                    )
                    .unwrap(),
                )
                .unwrap();
                assert_eq!(pp["generator"], p["generator"]);
                assert_eq!(pp["seed"], p["seed"]);
                assert!(p["budget"].as_f64() > pp["budget"].as_f64());
                promoted_budgets.push(p["budget"].as_f64().unwrap());
            }
            *origins.entry(o).or_default() += 1;
        }
    }
    assert!(
        origins.get("initial").copied().unwrap_or(0) >= 6,
        "{origins:?}"
    );
    assert!(
        origins.get("model").copied().unwrap_or(0) >= 1,
        "{origins:?}"
    );
    assert!(
        origins.get("promotion").copied().unwrap_or(0) >= 2,
        "{origins:?}"
    );
    // The final round: 2 samples of each Pareto generator at the full budget.
    let (code, out, err) = run("nago-propose", &["--run", &a, "--final"]);
    assert!(code == 0 && out.contains("round 6"), "{out}{err}");
    let fin = round_trials(&a, 6);
    assert!(!fin.is_empty() && fin.len().is_multiple_of(2));
    // A second --final while the final trials are untrained: they are pending.
    let (code, out, _) = run("nago-propose", &["--run", &a, "--final"]);
    assert!(
        code == 5 && out.contains("nothing proposed") && out.contains("no result yet"),
        "{out}"
    );
    for t in &fin {
        train(&a, t);
    }
    let (code, out, _) = run("nago-propose", &["--run", &a, "--final"]);
    assert!(
        code == 6 && out.contains("nago-propose: done: the final round"),
        "{out}"
    );
}

#[test]
fn robustness() {
    let d = tempfile::tempdir().unwrap();
    let s = study(d.path());
    let (code, out, _) = run("nago-propose", &["--run", &s]);
    assert!(code == 0 && out.contains("round 0"), "{out}");
    // Duplicated proposal: a second call while round 0 is pending proposes nothing.
    let (code, out, _) = run("nago-propose", &["--run", &s]);
    assert!(
        code == 5 && out.contains("nothing proposed") && out.contains("no result yet"),
        "{out}"
    );
    let (code, out, _) = run("nago-propose", &["--run", &s, "--round", "0"]);
    assert!(code == 5 && out.contains("already proposed"), "{out}");
    let before = std::fs::read(Path::new(&s).join("rounds/0000/proposals.json")).unwrap();
    let (code, _, err) = run("nago-propose", &["--run", &s, "--round", "0", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        before,
        std::fs::read(Path::new(&s).join("rounds/0000/proposals.json")).unwrap()
    );
    let t = round_trials(&s, 0);
    train(&s, &t[0]);
    // A corrupt result, a result with NaN metrics, a missing one, a half-written trial dir.
    std::fs::write(
        Path::new(&s).join("trials").join(&t[1]).join("result.json"),
        "{\"schema\": ",
    )
    .unwrap();
    std::fs::write(
        Path::new(&s).join("trials").join(&t[2]).join("result.json"),
        format!(r#"{{"schema":"nago.result/1","trial":"{}","status":"ok","budget":2.0,"val_error":NaN}}"#, t[2]),
    )
    .unwrap();
    std::fs::create_dir_all(Path::new(&s).join("trials/99999")).unwrap();
    std::fs::write(Path::new(&s).join("trials/99999/proposal.json"), "{").unwrap();
    let (code, out, err) = run("nago-update", &["--run", &s]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("result.json") && err.contains(&t[1]), "{err}");
    assert!(err.contains("99999"), "{err}");
    // The missing result and the two unreadable ones: all three trials are to be (re)trained.
    assert!(out.contains("3 pending"), "{out}");
    // NaN is not valid JSON: that result is reported too; the valid one is a row.
    assert!(out.contains("1 rows"), "{out}");
    // With NaN written as a number-free failure instead: status ok but val_error missing.
    std::fs::write(
        Path::new(&s).join("trials").join(&t[2]).join("result.json"),
        format!(
            r#"{{"schema":"nago.result/1","trial":"{}","status":"ok","budget":2.0}}"#,
            t[2]
        ),
    )
    .unwrap();
    let (code, out, err) = run("nago-update", &["--run", &s]);
    assert!(
        code == 0 && out.contains("2 rows") && out.contains("1 new"),
        "{out}{err}"
    );
    // The row of a trial whose result disappears is kept.
    std::fs::remove_file(Path::new(&s).join("trials").join(&t[0]).join("result.json")).unwrap();
    let (code, out, _) = run("nago-update", &["--run", &s]);
    assert!(
        code == 0 && out.contains("2 rows") && out.contains("1 kept"),
        "{out}"
    );
    // Two updates at once: the second is refused while the first holds the lock.
    let lock = nago_store::StudyLock::acquire(Path::new(&s), "test").unwrap();
    let (code, _, err) = run("nago-update", &["--run", &s]);
    assert!(code == 4 && err.contains(".lock"), "{err}");
    let (code, _, err) = run("nago-propose", &["--run", &s]);
    assert!(code == 4 && err.contains(".lock"), "{err}");
    drop(lock);
    // A corrupt trial table is an error, never silently rebuilt.
    std::fs::write(Path::new(&s).join("trials.parquet"), "garbage").unwrap();
    let (code, _, err) = run("nago-update", &["--run", &s]);
    assert!(code == 1 && err.contains("trials.parquet"), "{err}");
    // A bad study is a clear error naming the file.
    std::fs::write(Path::new(&s).join("study.json"), "{}").unwrap();
    let (code, _, err) = run("nago-propose", &["--run", &s]);
    assert!(code == 1 && err.contains("study.json"), "{err}");
}
