//! Regression tests for the study layer's faults: each provokes the fault for real (a full
//! disk on a small tmpfs, a round whose publication fails, an unreadable file) and checks that
//! the study neither loses nor mixes data and that the binaries say what happened, with their
//! documented exit codes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "nago-propose" => env!("CARGO_BIN_EXE_nago-propose"),
        "nago-update" => env!("CARGO_BIN_EXE_nago-update"),
        "nago-generate" => env!("CARGO_BIN_EXE_nago-generate"),
        _ => env!("CARGO_BIN_EXE_nago-status"),
    })
}

/// (exit code, stdout, stderr)
fn run(name: &str, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin(name))
        .args(args)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const STUDY: &str = r#"{
  "schema": "nago.study/1", "name": "t", "seed": 5,
  "space": {"top.n": {"int": [3, 4]}, "mid.n": {"int": [1, 2]}, "bottom.n": {"int": [3, 4]},
            "param_limit": {"fixed": 20000}},
  "dataset": {"name": "fashion-mnist"},
  "objectives": [
    {"metric": "val_error", "goal": "min"},
    {"metric": "params", "goal": "min", "log": true}
  ],
  "budgets": {"min": 1, "max": 2, "eta": 2},
  "search": {"batch_size": 2, "max_evaluations": 6, "initial_design": 2, "final_samples": 2,
             "min_channels": 0},
  "final": {"enabled": false}
}"#;

fn study_in(dir: &Path) -> String {
    let run = dir.join("s");
    fs::create_dir_all(&run).unwrap();
    fs::write(run.join("study.json"), STUDY).unwrap();
    run.display().to_string()
}

fn trials_of(run: &str, r: u32) -> Vec<String> {
    let (code, out, err) = run_status(run, r);
    assert_eq!(code, 0, "{err}");
    out.lines().map(str::to_string).collect()
}

fn run_status(run: &str, r: u32) -> (i32, String, String) {
    self::run(
        "nago-status",
        &["trials", "--run", run, "--round", &r.to_string(), "--ids"],
    )
}

/// A fake training result (any function of the trial will do).
fn fake_train(run: &str, trial: &str) {
    let d = Path::new(run).join("trials").join(trial);
    let p: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(d.join("proposal.json")).unwrap()).unwrap();
    let n = p["generator"]["top"]["n"].as_f64().unwrap();
    let budget = p["budget"].as_f64().unwrap();
    let err = 0.3 / n + 0.1 / budget;
    let r = serde_json::json!({
        "schema": "nago.result/1", "trial": trial, "status": "ok", "budget": budget,
        "val_error": err, "val_accuracy": 1.0 - err, "params": (1e4 * n) as u64
    });
    fs::write(d.join("result.json"), r.to_string()).unwrap();
}

#[test]
fn exit_codes_and_json_say_proposed_pending_and_done() {
    let d = tempfile::tempdir().unwrap();
    let s = study_in(d.path());
    let (code, out, err) = run("nago-propose", &["--run", &s, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["outcome"], "proposed");
    assert_eq!(v["round"], 0);
    assert_eq!(v["trials"].as_array().unwrap().len(), 2);
    let (code, out, _) = run("nago-propose", &["--run", &s, "--json"]);
    assert_eq!(code, 5, "pending: {out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["outcome"], "pending");
    assert_eq!(v["unfinished"].as_array().unwrap().len(), 2);
    // Drive the study to its end with the fake trainer.
    let mut r = 0;
    loop {
        for t in trials_of(&s, r) {
            fake_train(&s, &t);
        }
        let (code, out, err) = run("nago-update", &["--run", &s, "--json"]);
        assert_eq!(code, 0, "{err}");
        let u: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert!(u["unfinished"].as_array().unwrap().is_empty(), "{u}");
        let (code, out, err) = run("nago-propose", &["--run", &s]);
        if code == 6 {
            assert!(out.starts_with("nago-propose: done:"), "{out}");
            break;
        }
        assert_eq!(code, 0, "{out}{err}");
        r += 1;
        assert!(r < 10, "runaway study");
    }
    // A study lock held by someone else: exit 4.
    let lock = nago_store::StudyLock::acquire(Path::new(&s), "test").unwrap();
    let (code, _, err) = run("nago-update", &["--run", &s]);
    assert_eq!(code, 4, "{err}");
    drop(lock);
}

#[test]
fn an_unreadable_proposal_keeps_its_id_and_counts_as_an_evaluation() {
    let d = tempfile::tempdir().unwrap();
    let s = study_in(d.path());
    assert_eq!(run("nago-propose", &["--run", &s]).0, 0);
    let r0 = trials_of(&s, 0);
    for t in &r0 {
        fake_train(&s, t);
    }
    assert_eq!(run("nago-update", &["--run", &s]).0, 0);
    // The newest trial's proposal becomes unreadable (another schema version).
    let newest = Path::new(&s)
        .join("trials")
        .join(&r0[1])
        .join("proposal.json");
    let text = fs::read_to_string(&newest).unwrap();
    fs::write(&newest, text.replace("nago.proposal/1", "nago.proposal/2")).unwrap();
    let (code, out, err) = run("nago-propose", &["--run", &s, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&r0[1]) && err.contains("proposal.json"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let ids: Vec<&str> = v["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trial"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&r0[1].as_str()),
        "id {} given again: {ids:?}",
        r0[1]
    );
    assert!(!ids.contains(&r0[0].as_str()), "{ids:?}");
    // The old trial's outputs were not touched.
    assert!(Path::new(&s)
        .join("trials")
        .join(&r0[1])
        .join("result.json")
        .is_file());
    // The unreadable trial counts: 6 evaluations = 2 + 2 + 2, so after round 1 only one
    // more round fits (without it counted, the study would run a fourth).
    for t in trials_of(&s, 1) {
        fake_train(&s, &t);
    }
    assert_eq!(run("nago-update", &["--run", &s]).0, 0);
    let (code, out, err) = run("nago-propose", &["--run", &s, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["trials"].as_array().unwrap().len(), 2, "{v}");
    for t in trials_of(&s, 2) {
        fake_train(&s, &t);
    }
    assert_eq!(run("nago-update", &["--run", &s]).0, 0);
    assert_eq!(run("nago-propose", &["--run", &s]).0, 6);
}

#[test]
fn a_propose_that_dies_before_publishing_its_round_is_rolled_back() {
    let d = tempfile::tempdir().unwrap();
    let s = study_in(d.path());
    assert_eq!(run("nago-propose", &["--run", &s]).0, 0);
    for t in trials_of(&s, 0) {
        fake_train(&s, &t);
    }
    assert_eq!(run("nago-update", &["--run", &s]).0, 0);
    // Round 1 cannot be published: its directory's place is taken by a file, so writing
    // rounds/0001/proposals.json fails after the trials' proposal.json are written — the
    // state a crash or a full disk at that moment leaves.
    let blocker = Path::new(&s).join("rounds/0001");
    fs::write(&blocker, "not a directory").unwrap();
    let (code, _, err) = run("nago-propose", &["--run", &s]);
    assert_ne!(code, 0, "{err}");
    let orphans: Vec<String> = fs::read_dir(Path::new(&s).join("trials"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        orphans.len(),
        4,
        "the failed run wrote its trials: {orphans:?}"
    );
    fs::remove_file(&blocker).unwrap();
    // The next run removes them and proposes the round cleanly.
    let (code, out, err) = run("nago-propose", &["--run", &s, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["round"], 1, "{v}");
    assert_eq!(v["rolled_back"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(trials_of(&s, 1).len(), 2);
    let n = fs::read_dir(Path::new(&s).join("trials")).unwrap().count();
    assert_eq!(n, 4, "two trials of round 0, two of round 1");
}

#[test]
fn an_empty_surrogate_json_is_an_error_not_a_new_reference_point() {
    let d = tempfile::tempdir().unwrap();
    let s = study_in(d.path());
    assert_eq!(run("nago-propose", &["--run", &s]).0, 0);
    for t in trials_of(&s, 0) {
        fake_train(&s, &t);
    }
    assert_eq!(run("nago-update", &["--run", &s]).0, 0);
    let table = fs::read(Path::new(&s).join("trials.parquet")).unwrap();
    fs::write(Path::new(&s).join("surrogate.json"), "").unwrap();
    let (code, _, err) = run("nago-update", &["--run", &s]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("surrogate.json") && err.contains("reference point"),
        "{err}"
    );
    assert_eq!(
        table,
        fs::read(Path::new(&s).join("trials.parquet")).unwrap(),
        "nothing written"
    );
    let (code, _, err) = run("nago-propose", &["--run", &s]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn clear_errors_for_a_missing_study_and_stale_temporary_files_removed() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope");
    let (code, _, err) = run("nago-propose", &["--run", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("nope") && err.contains("no study"), "{err}");
    assert!(!err.contains(".lock"), "{err}");
    assert!(!missing.exists(), "nothing created");
    let s = study_in(d.path());
    // A dead writer's temporary file (pid 2^22+1 is beyond any pid_max default) and a live
    // one's (this test's own pid: not ours to remove).
    let dead = Path::new(&s).join(format!("trials.parquet.tmp.{}", (1u32 << 22) + 1));
    let live = Path::new(&s).join(format!("pareto.parquet.tmp.{}", std::process::id()));
    fs::write(&dead, "half").unwrap();
    fs::write(&live, "busy").unwrap();
    assert_eq!(run("nago-propose", &["--run", &s]).0, 0);
    assert!(!dead.exists(), "a dead writer's temporary file is removed");
    assert!(live.exists(), "a live writer's temporary file is kept");
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "mounting a tmpfs at {} failed: this test provokes a full disk for real and needs \
             root (CI runs as root)",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the file system at `dir` with one file until a write fails; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = fs::File::create(&p).unwrap();
    let block = vec![7u8; 4096];
    while f.write_all(&block).and_then(|_| f.flush()).is_ok() {}
    let _ = f.sync_all();
    p
}

#[test]
fn a_full_disk_in_nago_generate_is_retryable_not_a_final_crash() {
    let d = tempfile::tempdir().unwrap();
    let mnt = Tmpfs::mount(&d.path().join("small"), "512k");
    let s = study_in(&mnt.0);
    assert_eq!(run("nago-propose", &["--run", &s]).0, 0);
    let t = trials_of(&s, 0);
    let filler = fill(&mnt.0);
    let (code, _, err) = run(
        "nago-generate",
        &["--run", &s, "--index", "0", "--round", "0"],
    );
    assert_eq!(code, 3, "exit 3 (retryable I/O failure): {err}");
    let dir = Path::new(&s).join("trials").join(&t[0]);
    assert!(!dir.join("arch.json").exists(), "no half-written arch.json");
    let (_, out, _) = run("nago-status", &["trials", "--run", &s, "--round", "0"]);
    let line = out.lines().next().unwrap();
    assert!(
        line.ends_with("pending") || line.ends_with("retry"),
        "not a final failure: {line}"
    );
    // Space freed: the same command succeeds and the trial goes on.
    fs::remove_file(filler).unwrap();
    let (code, _, err) = run(
        "nago-generate",
        &["--run", &s, "--index", "0", "--round", "0"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(dir.join("arch.json").is_file());
    let (_, out, _) = run("nago-status", &["pending", "--run", &s, "--round", "0"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["0", "1"],
        "both still to train"
    );
}
