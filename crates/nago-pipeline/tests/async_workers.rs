//! Asynchronous workers under SIGKILL: two `nago-search --parallel 1` processes on one study
//! (two workers that coordinate only through the study directory), killed at seeded random
//! moments — a worker process alone (its stages get SIGTERM) or its whole process group —
//! and restarted, many times. The finished study must have every evaluation exactly once,
//! none lost, none stuck, the final round trained, and every proposal must reproduce with
//! `nago-rerun --proposal`. And a study run with one worker is the same bytes from run to
//! run.
//!
//! Needs the stage binaries next to nago-search and Fashion-MNIST under data/ (as `make test`).

mod common;
use common::{assert_rerun_identical, parquet_cells, repo, trial_diffs, XorShift};
use nago_store::{Origin, StudyDir, TrialStatus};
use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STUDY: &str = r#"{
  "schema": "nago.study/1", "name": "async", "seed": 5,
  "space": {"top.n": {"int": [3, 4]}, "mid.n": {"int": [1, 2]}, "bottom.n": {"int": [3, 4]},
            "param_limit": {"fixed": 40000}},
  "dataset": {"name": "fashion-mnist", "validation": 200},
  "objectives": [
    {"metric": "val_error", "goal": "min"},
    {"metric": "params", "goal": "min", "log": true}
  ],
  "budgets": {"min": 1, "max": 2, "eta": 2},
  "search": {"batch_size": 2, "max_evaluations": 7, "initial_design": 2, "test_images": 500},
  "final": {"max_generators": 1, "samples": 2},
  "training": {"lr": 0.1, "batch_size": 64, "train_subset": 2000, "crop_padding": 0, "flip": false}
}"#;

fn worker(run: &Path) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nago-search"));
    c.arg("--run")
        .arg(run)
        .args(["--parallel", "1", "--threads", "1"])
        .current_dir(repo())
        .env_remove("SLURM_ARRAY_TASK_ID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    c.spawn().unwrap()
}

#[test]
fn two_workers_killed_at_random_moments_record_every_evaluation_once() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("s");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("study.json"), STUDY).unwrap();
    let sd = StudyDir::new(&run);
    let mut rng = XorShift(0x0a51_c0de_7777_0001);
    let mut workers = [worker(&run), worker(&run)];
    let t0 = Instant::now();
    let mut kills = 0;
    while kills < 8 {
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "the study never ended"
        );
        std::thread::sleep(Duration::from_secs_f64(2.0 + rng.next_f64() * 8.0));
        let k = (rng.next_f64() * 2.0) as usize;
        if workers[k].try_wait().unwrap().is_some() {
            break; // the study is done
        }
        let pid = workers[k].id() as i32;
        let group = rng.next_f64() < 0.5;
        unsafe {
            libc::kill(if group { -pid } else { pid }, libc::SIGKILL);
        }
        workers[k].wait().unwrap();
        kills += 1;
        workers[k] = worker(&run);
    }
    for w in &mut workers {
        let st = w.wait().unwrap();
        assert!(st.success(), "a worker failed after {kills} kills: {st}");
    }
    assert!(
        kills >= 4,
        "only {kills} kills landed before the study ended"
    );

    // Every trial once, each with a final result; nothing pending or stuck.
    let ids = sd.trial_ids().unwrap();
    let mut searched = 0;
    let mut finals = 0;
    for t in &ids {
        let p = sd.proposal(t).unwrap();
        let state = sd.trial(t).state(p.budget);
        assert!(state.is_final(), "trial {t} is {}", state.label());
        let r = sd.trial(t).result().unwrap().unwrap();
        match p.origin {
            Origin::Final => finals += 1,
            _ if r.status != TrialStatus::Rejected => searched += 1,
            _ => {}
        }
    }
    assert_eq!(searched, 7, "7 evaluations: {ids:?}");
    assert_eq!(finals, 2, "2 final trials: {ids:?}");
    // Each trial belongs to exactly one published round.
    let mut listed = Vec::new();
    for r in sd.rounds().unwrap() {
        listed.extend(sd.proposals(r).unwrap().trials);
    }
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "a trial listed twice: {listed:?}"
    );
    assert_eq!(listed.len(), ids.len(), "{listed:?} vs {ids:?}");
    // The trial table: one row per (trial, budget), every trial with a result.
    let t = nago_table::read_parquet(&sd.trials_table(), nago_table::TRIALS_SCHEMA).unwrap();
    let (ti, bi) = (t.col("trial").unwrap(), t.col("budget").unwrap());
    let keys: BTreeSet<(String, u64)> = t
        .rows
        .iter()
        .map(|r| {
            (
                r[ti].as_str().unwrap().to_string(),
                r[bi].as_f64().unwrap().to_bits(),
            )
        })
        .collect();
    assert_eq!(keys.len(), t.rows.len(), "duplicate rows");
    let with_rows: BTreeSet<&str> = keys.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(with_rows.len(), ids.len(), "a trial without a row");
    // Every proposal reproduces from the stored artifacts.
    for r in sd.rounds().unwrap() {
        let first = sd.proposals(r).unwrap().trials[0].clone();
        assert_rerun_identical(&run, &["--proposal", &first]);
    }
}

#[test]
fn one_worker_gives_the_same_study_every_run() {
    let d = tempfile::tempdir().unwrap();
    let small = STUDY
        .replace(r#""max_evaluations": 7"#, r#""max_evaluations": 4"#)
        .replace(r#""samples": 2"#, r#""samples": 1"#);
    let mut runs = Vec::new();
    for name in ["a", "b"] {
        let run = d.path().join(name);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("study.json"), &small).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_nago-search"))
            .arg("--run")
            .arg(&run)
            .args(["--parallel", "1", "--threads", "1"])
            .current_dir(repo())
            .env_remove("SLURM_ARRAY_TASK_ID")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        runs.push(StudyDir::new(&run));
    }
    let (a, b) = (&runs[0], &runs[1]);
    let ids = a.trial_ids().unwrap();
    assert_eq!(ids, b.trial_ids().unwrap());
    for r in a.rounds().unwrap() {
        assert_eq!(
            std::fs::read(a.proposals_path(r)).unwrap(),
            std::fs::read(b.proposals_path(r)).unwrap(),
            "round {r}: proposals.json differs"
        );
    }
    for t in &ids {
        assert_eq!(
            std::fs::read(a.trial(t).proposal_path()).unwrap(),
            std::fs::read(b.trial(t).proposal_path()).unwrap()
        );
        let diffs = trial_diffs(&a.trial_dir(t), &b.trial_dir(t), &[]);
        assert!(diffs.is_empty(), "trial {t}: {diffs:?}");
    }
    assert_eq!(
        parquet_cells(&a.trials_table()),
        parquet_cells(&b.trials_table())
    );
}
