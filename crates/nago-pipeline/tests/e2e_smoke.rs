//! End to end with the smoke preset: a full search through the real stage binaries, and a
//! search killed with SIGKILL in the middle of a round and restarted.
//!
//! Needs every stage binary built next to nago-search (`make test` builds them first) and
//! Fashion-MNIST under data/ (`make data`, a prerequisite of `make test`).

mod common;
use common::{assert_rerun_identical, repo};
use nago_store::{read_json, Origin, StudyDir, TrialResult, TrialStatus, RESULT_SCHEMA};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn search(run: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nago-search"));
    c.args(["--preset", "smoke", "--run"])
        .arg(run)
        .args(["--parallel", "2", "--rounds"]);
    c.current_dir(repo()).env_remove("SLURM_ARRAY_TASK_ID");
    c
}

fn results(sd: &StudyDir) -> Vec<(String, TrialResult, SystemTime)> {
    let mut out = Vec::new();
    for r in sd.rounds().unwrap() {
        for t in sd.proposals(r).unwrap().trials {
            let path = sd.trial_dir(&t).join("result.json");
            let res: TrialResult =
                read_json(&path, Some(RESULT_SCHEMA)).unwrap_or_else(|e| panic!("{e}"));
            let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
            out.push((t, res, mtime));
        }
    }
    out
}

fn table_rows(sd: &StudyDir) -> Vec<(String, f64)> {
    let t = nago_table::read_parquet(&sd.trials_table(), nago_table::TRIALS_SCHEMA).unwrap();
    let (ti, bi) = (t.col("trial").unwrap(), t.col("budget").unwrap());
    t.rows
        .iter()
        .map(|r| (r[ti].as_str().unwrap().to_string(), r[bi].as_f64().unwrap()))
        .collect()
}

#[test]
fn smoke_search_runs_to_the_end() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("smoke");
    let out = search(&run).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nago-search failed:\n{err}");
    let sd = StudyDir::new(&run);
    let study = sd.study().unwrap();
    let all = results(&sd);
    let origin = |t: &str| sd.proposal(t).unwrap().origin;
    // The search's evaluations (rejected generators are recorded but use none), then the
    // final round: 2 architectures of 1 generator (the preset's `final`).
    let res: Vec<_> = all
        .iter()
        .filter(|(t, r, _)| origin(t) != Origin::Final && r.status != TrialStatus::Rejected)
        .cloned()
        .collect();
    let finals: Vec<_> = all
        .iter()
        .filter(|(t, _, _)| origin(t) == Origin::Final)
        .cloned()
        .collect();
    assert_eq!(res.len() as u32, study.search.max_evaluations, "{err}");
    assert_eq!(finals.len(), 2, "{err}");
    assert!(sd.rounds().unwrap().len() >= 3);
    assert!(
        res.iter()
            .chain(&finals)
            .all(|(_, r, _)| r.status == TrialStatus::Ok),
        "{all:?}"
    );
    assert!(finals
        .iter()
        .all(|(_, r, _)| r.budget == study.final_epochs()));
    assert!(sd.final_table().is_file());
    // `nago-report best` shows the final round first.
    let bin = Path::new(env!("CARGO_BIN_EXE_nago-search")).with_file_name("nago-report");
    let out_best = Command::new(&bin)
        .args(["best", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out_best.stdout);
    assert!(
        text.starts_with("smoke: the final round, 1 generator(s)") && text.contains("±"),
        "{text}"
    );
    // Training learned something on 256 images: better than chance (10 classes).
    assert!(
        res.iter().any(|(_, r, _)| r.val_accuracy.unwrap() > 0.2),
        "{res:?}"
    );
    let rows = table_rows(&sd);
    assert_eq!(rows.len(), all.len());
    assert!(sd.pareto_table().is_file());
    assert!(err.contains("search done"), "{err}");

    // The best-trials table: pareto.parquet's one-budget front, and the front across budgets.
    let best = |front: &str| -> Vec<serde_json::Value> {
        let bin = Path::new(env!("CARGO_BIN_EXE_nago-search")).with_file_name("nago-report");
        let out = Command::new(bin)
            .args(["best", "--format", "json", "--front", front, "--run"])
            .arg(&run)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let pareto = nago_table::read_parquet(&sd.pareto_table(), nago_table::PARETO_SCHEMA).unwrap();
    let pi = pareto.col("trial").unwrap();
    let mut in_parquet: Vec<String> = pareto
        .rows
        .iter()
        .map(|r| r[pi].as_str().unwrap().to_string())
        .collect();
    let mut at_model: Vec<String> = best("model-budget")
        .iter()
        .map(|r| r["trial"].as_str().unwrap().to_string())
        .collect();
    in_parquet.sort();
    at_model.sort();
    assert_eq!(at_model, in_parquet);
    let across = best("all-budgets");
    assert!(!across.is_empty());
    let objectives = |r: &TrialResult| (r.val_error.unwrap(), r.params.unwrap() as f64);
    for row in &across {
        let id = row["trial"].as_str().unwrap();
        let (_, mine, _) = res.iter().find(|(t, _, _)| t == id).unwrap();
        let (e, p) = objectives(mine);
        for (other, r, _) in &res {
            let (e2, p2) = objectives(r);
            assert!(
                !(e2 <= e && p2 <= p && (e2 < e || p2 < p)),
                "{other} dominates {id} on the front across budgets"
            );
        }
    }

    // Every stage reruns from the stored artifacts to the same result.
    let rerun = |args: &[&str]| assert_rerun_identical(&run, args);
    rerun(&["--round", "1"]);
    rerun(&["--update"]);
    rerun(&["--trial", &res[2].0]);
}

#[test]
fn killed_search_resumes_with_every_trial_once() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("killed");
    let sd = StudyDir::new(&run);
    let mut child = search(&run)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the second round is training, then kill the driver outright.
    let t0 = Instant::now();
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "round 1 never started"
        );
        if let Ok(p) = sd.proposals(1) {
            if p.trials
                .iter()
                .any(|t| sd.trial_dir(t).join("train.log").is_file())
            {
                break;
            }
        }
        if let Ok(Some(_)) = child.try_wait() {
            panic!("the search ended before it could be killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // It was killed in the middle of round 1: not every trial of the round has a final result.
    let r1 = sd.proposals(1).unwrap().trials;
    let finished = r1
        .iter()
        .filter(|t| matches!(sd.trial(t).state(1.0), nago_store::TrialState::Done(_)))
        .count();
    assert!(
        finished < r1.len(),
        "the kill came after round 1 had finished"
    );
    let before: Vec<(String, TrialResult, SystemTime)> = sd
        .proposals(0)
        .unwrap()
        .trials
        .iter()
        .map(|t| {
            let p = sd.trial_dir(t).join("result.json");
            (
                t.clone(),
                read_json(&p, Some(RESULT_SCHEMA)).unwrap(),
                std::fs::metadata(&p).unwrap().modified().unwrap(),
            )
        })
        .collect();
    // The same command continues.
    let out = search(&run).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the restarted search failed:\n{err}");
    let res: Vec<_> = results(&sd)
        .into_iter()
        .filter(|(_, r, _)| r.status != TrialStatus::Rejected)
        .collect();
    let study = sd.study().unwrap();
    let searched = res
        .iter()
        .filter(|(t, _, _)| sd.proposal(t).unwrap().origin != Origin::Final)
        .count();
    assert_eq!(searched as u32, study.search.max_evaluations, "{err}");
    assert!(
        res.iter().all(|(_, r, _)| r.status == TrialStatus::Ok),
        "{res:?}"
    );
    // Trials finished before the kill were not trained again.
    for (t, r, mtime) in &before {
        let (_, r2, m2) = res.iter().find(|(x, _, _)| x == t).unwrap();
        assert_eq!(r, r2, "trial {t} changed");
        assert_eq!(mtime, m2, "trial {t} was trained again");
    }
    // Every evaluation counted once in the trial table.
    let mut rows = table_rows(&sd);
    let n = rows.len();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
    assert_eq!(rows.len(), n, "duplicate rows in trials.parquet");
    assert_eq!(n, results(&sd).len());
}

/// An unknown preset is refused before anything is written, naming every preset file there
/// is: the repository's and those in `pipelines/presets` of the working directory (a new
/// preset is listed without a code change).
#[test]
fn an_unknown_preset_names_the_presets_there_are() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("r");
    let local = d.path().join("pipelines/presets");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("zz-new.json"), "{}").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nago-search"))
        .args(["--preset", "no-such-preset", "--run"])
        .arg(&run)
        .current_dir(d.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--preset no-such-preset"), "{err}");
    let mut n = 0;
    for e in std::fs::read_dir(repo().join("pipelines/presets")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            assert!(err.contains(&stem), "{stem} missing: {err}");
            n += 1;
        }
    }
    assert!(n >= 4, "{n} presets");
    assert!(err.contains("zz-new"), "{err}");
    assert!(!run.exists(), "nothing is written for a refused preset");
}
