//! A search with promotions and its final round, killed with SIGKILL at seeded random moments
//! many times (the driver alone, or its whole process group) and once while a final-round
//! trial trains, resumed each time: the finished study must equal an undisturbed run's —
//! every result (losses and settings included, timings excepted), every epochs.parquet row,
//! the trial table and the final round's table, which must match the trial files.
//!
//! Needs the stage binaries next to nago-search and Fashion-MNIST under data/ (as `make test`).

mod common;
use common::{parquet_cells, repo, trial_diffs, XorShift};
use nago_store::StudyDir;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STUDY: &str = r#"{
  "schema": "nago.study/1", "name": "kills", "seed": 11,
  "space": {"top.n": {"int": [3, 4]}, "mid.n": {"int": [1, 2]}, "bottom.n": {"int": [3, 4]},
            "param_limit": {"fixed": 20000}},
  "dataset": {"name": "fashion-mnist", "validation": 200},
  "objectives": [
    {"metric": "val_error", "goal": "min"},
    {"metric": "params", "goal": "min", "log": true}
  ],
  "budgets": {"min": 1, "max": 2, "eta": 2},
  "search": {"batch_size": 2, "max_evaluations": 5, "initial_design": 2, "test_images": 500},
  "final": {"max_generators": 1, "samples": 2},
  "training": {"lr": 0.1, "batch_size": 64, "train_subset": 2000, "crop_padding": 0, "flip": false}
}"#;

fn search(run: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nago-search"));
    c.arg("--run")
        .arg(run)
        .args(["--parallel", "2", "--rounds"]);
    c.current_dir(repo()).env_remove("SLURM_ARRAY_TASK_ID");
    c
}

fn new_study(run: &Path) {
    std::fs::create_dir_all(run).unwrap();
    std::fs::write(run.join("study.json"), STUDY).unwrap();
}

fn trial_ids(sd: &StudyDir) -> Vec<String> {
    sd.trial_ids().unwrap()
}

#[test]
fn sigkill_at_random_moments_then_resume_equals_an_undisturbed_run() {
    let d = tempfile::tempdir().unwrap();
    // The undisturbed run.
    let a = d.path().join("a");
    new_study(&a);
    let t0 = Instant::now();
    let out = search(&a).output().unwrap();
    let wall = t0.elapsed();
    assert!(
        out.status.success(),
        "undisturbed search failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sa = StudyDir::new(&a);
    let ids = trial_ids(&sa);
    let finals: Vec<String> = ids
        .iter()
        .filter(|t| sa.proposal(t).unwrap().origin == nago_store::Origin::Final)
        .cloned()
        .collect();
    assert_eq!(ids.len(), 7, "5 evaluations and 2 final trials: {ids:?}");
    assert_eq!(finals.len(), 2, "{ids:?}");
    assert!(
        ids.iter()
            .any(|t| sa.proposal(t).unwrap().origin == nago_store::Origin::Promotion),
        "the study has a promotion (a checkpoint continued by another trial)"
    );

    // The disturbed run: killed at seeded random moments, alternately the driver alone (its
    // stages get SIGTERM and record `killed`) and the whole process group (nothing is
    // recorded), and restarted after each kill.
    let b = d.path().join("b");
    new_study(&b);
    let mut rng = XorShift(0x5eed_1234_abcd_0042);
    let sb = StudyDir::new(&b);
    let has_final = || {
        trial_ids(&sb).iter().any(|t| {
            sb.proposal(t)
                .is_ok_and(|p| p.origin == nago_store::Origin::Final)
        })
    };
    let spawn = |group: bool| {
        let mut cmd = search(&b);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        if group {
            cmd.process_group(0);
        }
        cmd.spawn().unwrap()
    };
    let kills = 5;
    let mut killed = 0;
    // Random kills during the search, until its final round is proposed.
    let mut running = None;
    for k in 0..kills {
        let group = k % 2 == 1;
        let mut child = spawn(group);
        let at = Duration::from_secs_f64(1.0 + rng.next_f64() * wall.as_secs_f64() * 0.5);
        let start = Instant::now();
        let mut stop = false;
        while start.elapsed() < at {
            if child.try_wait().unwrap().is_some() || has_final() {
                stop = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if stop {
            running = Some(child);
            break;
        }
        let pid = child.id() as i32;
        unsafe {
            libc::kill(if group { -pid } else { pid }, libc::SIGKILL);
        }
        child.wait().unwrap();
        killed += 1;
    }
    // Then killed (the whole group) while a final-round trial trains.
    let mut child = running.unwrap_or_else(|| spawn(true));
    let mut in_final = false;
    while child.try_wait().unwrap().is_none() {
        let training_final = trial_ids(&sb).iter().any(|t| {
            sb.proposal(t)
                .is_ok_and(|p| p.origin == nago_store::Origin::Final)
                && sb.trial(t).train_log().exists()
                && !sb.trial(t).result_path().exists()
        });
        if training_final {
            std::thread::sleep(Duration::from_millis(300));
            let pid = child.id() as i32;
            // The child of the random phase may be in this test's group: then kill it alone
            // (its stages get SIGTERM), else its group.
            let target = if unsafe { libc::getpgid(pid) } == pid {
                -pid
            } else {
                pid
            };
            unsafe {
                libc::kill(target, libc::SIGKILL);
            }
            in_final = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait().unwrap();
    assert!(
        in_final,
        "the search ended before its final round could be killed"
    );
    let out = search(&b).output().unwrap();
    assert!(
        out.status.success(),
        "the resumed search failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        killed >= 2,
        "only {killed} kills landed before the search ended"
    );

    assert_eq!(trial_ids(&sb), ids, "the same trials, each once");
    for t in &ids {
        let (da, db) = (sa.trial_dir(t), sb.trial_dir(t));
        let diffs = trial_diffs(&da, &db, &["start_epoch"]);
        assert!(
            diffs.is_empty(),
            "trial {t} differs after {killed} kills: {diffs:?}"
        );
        if !da.join("epochs.parquet").exists() {
            continue; // rejected before training
        }
        assert_eq!(
            parquet_cells(&da.join("epochs.parquet")),
            parquet_cells(&db.join("epochs.parquet")),
            "trial {t}: epochs.parquet differs"
        );
    }
    assert_eq!(
        parquet_cells(&sa.trials_table()),
        parquet_cells(&sb.trials_table()),
        "trials.parquet differs"
    );
    assert_eq!(
        parquet_cells(&sa.final_table()),
        parquet_cells(&sb.final_table()),
        "final.parquet differs"
    );
    // The final table says what the final trials' files say.
    let t = nago_table::read_parquet(&sb.final_table(), nago_table::FINAL_SCHEMA).unwrap();
    assert_eq!(t.rows.len(), 1, "one generator");
    let cell = |n: &str| t.rows[0][t.col(n).unwrap()].clone();
    assert_eq!(cell("trials").as_str(), Some(finals.join(",").as_str()));
    assert_eq!(cell("done"), nago_table::Cell::I64(Some(2)));
    let acc: Vec<f64> = finals
        .iter()
        .map(|t| {
            sb.trial(t)
                .result()
                .unwrap()
                .unwrap()
                .test_accuracy
                .unwrap()
        })
        .collect();
    let mean = cell("test_accuracy_mean").as_f64().unwrap();
    assert!(
        (mean - (acc[0] + acc[1]) / 2.0).abs() < 1e-12,
        "{mean} vs {acc:?}"
    );
}
