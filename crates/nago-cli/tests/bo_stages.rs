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

/// Whether nago-propose rejected the trial before training (its result says so).
fn rejected(run: &str, trial: &str) -> bool {
    std::fs::read_to_string(
        Path::new(run)
            .join("trials")
            .join(trial)
            .join("result.json"),
    )
    .is_ok_and(|t| t.contains("\"status\":\"rejected\"") || t.contains("\"status\": \"rejected\""))
}

/// Runs the search to its end (the final round included) with `trainer`; returns the
/// number of rounds.
fn search_with(run: &str, trainer: fn(&str, &str)) -> usize {
    let mut rounds = 0;
    loop {
        let (code, out, err) = run_ok("nago-propose", &["--run", run]);
        if out.contains("nago-propose: done: the study's budget is spent") {
            assert_eq!(code, 6, "done: {err}");
            return rounds;
        }
        assert_eq!(code, 0, "{out}{err}");
        for t in round_trials(run, rounds as u32) {
            if !rejected(run, &t) {
                trainer(run, &t);
            }
        }
        let (code, _, err) = run_ok("nago-update", &["--run", run]);
        assert_eq!(code, 0, "{err}");
        rounds += 1;
    }
}

/// A study of [`STUDY`] changed by `edit`, in `dir/s`; returns its path.
fn edited_study(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let run = dir.join("s");
    std::fs::create_dir_all(&run).unwrap();
    let mut s: serde_json::Value = serde_json::from_str(STUDY).unwrap();
    edit(&mut s);
    std::fs::write(run.join("study.json"), s.to_string()).unwrap();
    run.display().to_string()
}

/// The study.json of the run at `run`.
fn run_study(run: &str) -> nago_space::Study {
    nago_space::Study::from_json(
        &std::fs::read_to_string(Path::new(run).join("study.json")).unwrap(),
    )
    .unwrap()
}

/// Whether `(g, seed)` passes the study's screen at width `limit`.
fn passes_at(study: &nago_space::Study, g: &nago_space::Generator, limit: f64, seed: u64) -> bool {
    let h = nago_space::Generator {
        param_limit: limit,
        ..*g
    };
    nago_study::screen::screen(study, &h, seed)
        .unwrap()
        .passes()
}

/// A trial's JSON file `name`, parsed.
fn read_json(run: &str, trial: &str, name: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(Path::new(run).join("trials").join(trial).join(name)).unwrap(),
    )
    .unwrap()
}

fn search(run: &str) -> usize {
    search_with(run, train)
}

fn run_ok(name: &str, args: &[&str]) -> (i32, String, String) {
    run(name, args)
}

#[test]
fn full_search_is_deterministic_with_promotions_and_final_round() {
    let d = tempfile::tempdir().unwrap();
    let a = study(d.path());
    let rounds = search(&a);
    assert_eq!(
        rounds, 7,
        "24 evaluations in batches of 4, then the final round"
    );
    let b = study(&d.path().join("b"));
    assert_eq!(search(&b), 7);
    for f in [
        "trials.parquet",
        "pareto.parquet",
        "surrogate.json",
        "rounds/0005/proposals.json",
        "rounds/0006/proposals.json",
        "final.parquet",
    ] {
        assert_eq!(
            std::fs::read(Path::new(&a).join(f)).unwrap(),
            std::fs::read(Path::new(&b).join(f)).unwrap(),
            "{f} differs between identical runs"
        );
    }
    // surrogate.json: the model's estimate of every feasible evaluation at its budget, and
    // that front's hypervolume beside the observed one.
    let sur: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&a).join("surrogate.json")).unwrap())
            .unwrap();
    let budget = sur["budget"].as_f64().unwrap();
    let model_front = sur["model_front"].as_array().unwrap();
    assert!(model_front.len() >= 4, "{model_front:?}");
    let mut ids = std::collections::BTreeSet::new();
    for m in model_front {
        let t = m["trial"].as_str().unwrap();
        assert!(ids.insert(t.to_string()), "{t} twice");
        let r = read_json(&a, t, "result.json");
        assert_eq!(r["budget"].as_f64(), Some(budget), "{t}");
        assert_ne!(read_json(&a, t, "proposal.json")["origin"], "final");
        let v = m["values"].as_array().unwrap();
        assert!(v.len() == 2 && v.iter().all(|x| x.as_f64().is_some_and(f64::is_finite)));
    }
    let mhv = sur["model_hypervolume"].as_f64().unwrap();
    assert!(mhv.is_finite() && mhv >= 0.0, "{mhv}");
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
    // The final round (proposed by the search itself): 2 samples of each chosen generator
    // at the full budget, at most final.max_generators (4) generators.
    let fin = round_trials(&a, 6);
    assert!(
        !fin.is_empty() && fin.len().is_multiple_of(2) && fin.len() <= 8,
        "{fin:?}"
    );
    for t in &fin {
        let p: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(&a).join("trials").join(t).join("proposal.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(p["origin"], "final");
        assert_eq!(p["budget"], 8.0);
    }
    // Asking again: the final round exists, and the study is done.
    let (code, out, _) = run("nago-propose", &["--run", &a, "--final"]);
    assert!(
        code == 6 && out.contains("nago-propose: done: the final round"),
        "{out}"
    );
    // final.parquet: one row per generator, its trials those of round 6.
    let t = nago_table::read_parquet(
        &Path::new(&a).join("final.parquet"),
        nago_table::FINAL_SCHEMA,
    )
    .unwrap();
    let trials_col = t.col("trials").unwrap();
    let mut listed: Vec<String> = t
        .rows
        .iter()
        .flat_map(|r| {
            r[trials_col]
                .as_str()
                .unwrap()
                .split(',')
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    listed.sort();
    assert_eq!(listed, fin);
    let done = t.col("done").unwrap();
    assert!(t
        .rows
        .iter()
        .all(|r| r[done] == nago_table::Cell::I64(Some(2))));
}

/// The fake trainer of [`train`], except that every third trial (by id) stays at chance
/// level (val accuracy 0.1 on 10 classes) with the smallest size of all: non-dominated, but
/// a network that did not learn.
fn train_some_at_chance(run: &str, trial: &str) {
    train(run, trial);
    let id: u64 = trial.parse().unwrap();
    if id.is_multiple_of(3) {
        let d = Path::new(run).join("trials").join(trial);
        let p: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("proposal.json")).unwrap())
                .unwrap();
        let r = serde_json::json!({
            "schema": "nago.result/1", "trial": trial, "status": "ok", "budget": p["budget"],
            "val_error": 0.9, "val_accuracy": 0.1, "params": 1000 + id, "train_seconds": 1.0
        });
        std::fs::write(d.join("result.json"), r.to_string()).unwrap();
    }
}

#[test]
fn chance_level_evaluations_are_never_promoted_nor_final() {
    let d = tempfile::tempdir().unwrap();
    let a = study(d.path());
    search_with(&a, train_some_at_chance);
    let trials = Path::new(&a).join("trials");
    let mut promotions = 0;
    for e in std::fs::read_dir(&trials).unwrap() {
        let id = e.unwrap().file_name().into_string().unwrap();
        let p: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(trials.join(&id).join("proposal.json")).unwrap(),
        )
        .unwrap();
        let gen_of = |t: &str| -> serde_json::Value {
            let q: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(trials.join(t).join("proposal.json")).unwrap(),
            )
            .unwrap();
            q["generator"].clone()
        };
        if let Some(parent) = p["parent"].as_str() {
            promotions += 1;
            let n: u64 = parent.parse().unwrap();
            assert!(
                !n.is_multiple_of(3),
                "trial {id} promotes {parent}, which stayed at chance level"
            );
        }
        if p["origin"] == "final" {
            // Its generator is that of a search trial that learned.
            let g = &p["generator"];
            let sources: Vec<u64> = std::fs::read_dir(&trials)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|t| {
                    let q: serde_json::Value = serde_json::from_str(
                        &std::fs::read_to_string(trials.join(t).join("proposal.json")).unwrap(),
                    )
                    .unwrap();
                    q["origin"] != "final" && &gen_of(t) == g
                })
                .map(|t| t.parse().unwrap())
                .collect();
            assert!(
                sources.iter().any(|n| !n.is_multiple_of(3)),
                "final trial {id} samples a generator that only stayed at chance level: {sources:?}"
            );
        }
    }
    assert!(promotions >= 2, "the rule must still promote: {promotions}");
}

/// The real parameter counts of the trials' architectures, by `nago-generate` (what the
/// screen sees), written under a scratch directory.
fn generated_params(run: &str, trials: &[String]) -> Vec<u64> {
    trials
        .iter()
        .map(|t| {
            let dir = Path::new(run).join("trials").join(t);
            let out = Path::new(run).parent().unwrap().join("scratch").join(t);
            let o = Command::new(env!("CARGO_BIN_EXE_nago-generate"))
                .arg("--proposal")
                .arg(dir.join("proposal.json"))
                .arg("--out")
                .arg(&out)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let a: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out.join("arch.json")).unwrap())
                    .unwrap();
            a["counts"]["params"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn generators_breaking_a_known_before_training_constraint_are_recorded_not_trained() {
    let d = tempfile::tempdir().unwrap();
    // First the sizes the space gives (no limit), then a limit at their median.
    let free = study(&d.path().join("free"));
    let (code, _, err) = run("nago-propose", &["--run", &free]);
    assert_eq!(code, 0, "{err}");
    let mut sizes = generated_params(&free, &round_trials(&free, 0));
    sizes.sort();
    let limit = sizes[sizes.len() / 2 - 1];
    let run_dir = d.path().join("tight/s");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(
        run_dir.join("study.json"),
        STUDY.replace(r#""max": 5e6"#, &format!(r#""max": {limit}"#)),
    )
    .unwrap();
    let s = run_dir.display().to_string();
    let (code, out, err) = run("nago-propose", &["--run", &s, "--json"]);
    assert_eq!(code, 0, "{err}");
    let o: serde_json::Value = serde_json::from_str(&out).unwrap();
    let to_train: Vec<String> = o["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trial"].as_str().unwrap().to_string())
        .collect();
    let rejected_ids: Vec<String> = o["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trial"].as_str().unwrap().to_string())
        .collect();
    // The round is full of trainable trials, and the rejected ones are recorded beside them.
    assert_eq!(to_train.len(), 4, "{out}");
    assert!(
        !rejected_ids.is_empty(),
        "a limit at the median rejects some: {out}"
    );
    for p in generated_params(&s, &to_train) {
        assert!(p <= limit, "{p} > {limit}");
    }
    for t in &rejected_ids {
        let dir = run_dir.join("trials").join(t);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap())
                .unwrap();
        assert_eq!(r["status"], "rejected");
        let why = r["error"].as_str().unwrap();
        assert!(
            why.contains("params") && why.contains("constraints[0]"),
            "{why}"
        );
        assert!(r["params"].as_u64().unwrap() > limit);
        // Never trained: nothing but the proposal and its result.
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(files, ["proposal.json", "result.json"]);
    }
    // The round lists the trials to train first (array indices 0…3), then the rejected.
    let listed = round_trials(&s, 0);
    assert_eq!(&listed[..4], &to_train[..]);
    // nago-status calls the round's rejected trials done, not pending.
    for t in &to_train {
        train(&s, t);
    }
    let (code, uout, err) = run("nago-update", &["--run", &s, "--json"]);
    assert_eq!(code, 0, "{err}");
    let u: serde_json::Value = serde_json::from_str(&uout).unwrap();
    assert!(u["unfinished"].as_array().unwrap().is_empty(), "{uout}");
    assert_eq!(
        u["rows"],
        listed.len(),
        "every trial is a row, rejected ones too"
    );
    let table =
        nago_table::read_parquet(&run_dir.join("trials.parquet"), nago_table::TRIALS_SCHEMA)
            .unwrap();
    let st = table.col("status").unwrap();
    let n_rejected = table
        .rows
        .iter()
        .filter(|r| r[st].as_str() == Some("rejected"))
        .count();
    assert_eq!(n_rejected, rejected_ids.len());
    // Rejections do not use the evaluation budget: the next round is proposed as usual, and
    // the same inputs give the same round (the screen is deterministic).
    let again = d.path().join("tight2/s");
    std::fs::create_dir_all(&again).unwrap();
    std::fs::copy(run_dir.join("study.json"), again.join("study.json")).unwrap();
    let (code, out2, _) = run(
        "nago-propose",
        &["--run", again.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 0);
    assert_eq!(out, out2);
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

/// `final.select: "best"`: every promotion takes the most accurate of its rung (not the
/// non-dominated: the fake trainer's small networks are less accurate but non-dominated), and
/// the final round takes the generator most accurate at the largest budget reached.
#[test]
fn best_selection_promotes_by_accuracy_and_finishes_with_the_most_accurate_generator() {
    let d = tempfile::tempdir().unwrap();
    let a = edited_study(d.path(), |s| {
        s["final"] = serde_json::json!({"max_generators": 1, "samples": 2, "select": "best"});
    });
    let rounds = search(&a);
    let read = |t: &str, f: &str| read_json(&a, t, f);
    // (trial, round, budget, val_error, parent, origin) of every trained trial.
    let mut rows = Vec::new();
    for r in 0..rounds as u32 {
        for t in round_trials(&a, r) {
            if rejected(&a, &t) {
                continue;
            }
            let p = read(&t, "proposal.json");
            let res = read(&t, "result.json");
            rows.push((
                t.clone(),
                r,
                res["budget"].as_f64().unwrap(),
                res["val_error"].as_f64().unwrap(),
                p["parent"].as_str().map(String::from),
                p["origin"].as_str().unwrap().to_string(),
            ));
        }
    }
    let err_of = |id: &str| rows.iter().find(|x| x.0 == id).unwrap().3;
    let parents: Vec<&str> = rows.iter().filter_map(|x| x.4.as_deref()).collect();
    let mut promotions = 0;
    for (_, round, _, _, parent, _) in &rows {
        let Some(parent) = parent else { continue };
        promotions += 1;
        let pb = rows.iter().find(|x| &x.0 == parent).unwrap();
        // Every feasible member of the parent's rung known when this promotion was proposed
        // and never promoted is at most as accurate as the parent (an infeasible one — the
        // fake trainer's largest networks break `params <= 5e6` — is never promoted).
        let feasible = |id: &str| read(id, "result.json")["params"].as_f64().unwrap() <= 5e6;
        for m in rows.iter().filter(|m| {
            m.2 == pb.2
                && m.1 < *round
                && m.5 != "final"
                && !parents.contains(&m.0.as_str())
                && feasible(&m.0)
        }) {
            assert!(
                m.3 >= err_of(parent),
                "promoted {parent} (val_error {}) over {} ({}) at budget {}",
                err_of(parent),
                m.0,
                m.3,
                pb.2
            );
        }
    }
    assert!(promotions >= 2, "{rows:?}");
    // The final round: 2 samples of the generator best at the largest budget reached.
    let top = rows
        .iter()
        .filter(|x| x.5 != "final")
        .map(|x| x.2)
        .fold(0.0, f64::max);
    let best = rows
        .iter()
        .filter(|x| x.5 != "final" && x.2 == top)
        .min_by(|x, y| x.3.total_cmp(&y.3))
        .unwrap();
    let finals: Vec<_> = rows.iter().filter(|x| x.5 == "final").collect();
    assert_eq!(finals.len(), 2, "{rows:?}");
    for f in finals {
        assert_eq!(
            read(&f.0, "proposal.json")["generator"],
            read(&best.0, "proposal.json")["generator"],
            "final trial {} is not of {} (val_error {} at budget {top})",
            f.0,
            best.0,
            best.3
        );
    }
}

/// Two evaluations of one search point at the largest budget (a second seed of a generator,
/// added by hand as a person may): the final round judges the point by the better of them,
/// not by whichever was trained first.
#[test]
fn final_round_judges_a_search_point_by_its_best_evaluation_at_the_top_budget() {
    let d = tempfile::tempdir().unwrap();
    let a = edited_study(d.path(), |s| {
        s["final"] = serde_json::json!({"max_generators": 1, "samples": 2, "select": "best"});
    });
    let rounds = search(&a);
    let read = |t: &str, f: &str| read_json(&a, t, f);
    // (trial, budget, val_error) of the search's feasible evaluations.
    let searched: Vec<(String, f64, f64)> = (0..rounds as u32)
        .flat_map(|r| round_trials(&a, r))
        .filter(|t| !rejected(&a, t) && read(t, "proposal.json")["origin"] != "final")
        .filter_map(|t| {
            let r = read(&t, "result.json");
            (r["params"].as_f64().unwrap() <= 5e6).then(|| {
                (
                    t,
                    r["budget"].as_f64().unwrap(),
                    r["val_error"].as_f64().unwrap(),
                )
            })
        })
        .collect();
    let top = searched.iter().map(|x| x.1).fold(0.0, f64::max);
    let at_top: Vec<&(String, f64, f64)> = searched.iter().filter(|x| x.1 == top).collect();
    let best = at_top.iter().min_by(|x, y| x.2.total_cmp(&y.2)).unwrap();
    let other = at_top
        .iter()
        .find(|x| {
            read(&x.0, "proposal.json")["generator"] != read(&best.0, "proposal.json")["generator"]
        })
        .unwrap_or_else(|| panic!("two generators at budget {top}: {at_top:?}"));
    assert!(other.2 > best.2, "{at_top:?}");
    // Another seed of `other`'s generator, evaluated at the largest budget, better than `best`.
    let id = "00900";
    let dir = Path::new(&a).join("trials").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut p = read(&other.0, "proposal.json");
    p["trial"] = serde_json::json!(id);
    p["seed"] = serde_json::json!(12345);
    p["parent"] = serde_json::Value::Null;
    std::fs::write(dir.join("proposal.json"), p.to_string()).unwrap();
    let mut r = read(&other.0, "result.json");
    r["trial"] = serde_json::json!(id);
    r["val_error"] = serde_json::json!(best.2 - 0.01);
    r["val_accuracy"] = serde_json::json!(1.0 - (best.2 - 0.01));
    std::fs::write(dir.join("result.json"), r.to_string()).unwrap();
    let (code, _, err) = run("nago-update", &["--run", &a]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run("nago-propose", &["--run", &a, "--final", "--force"]);
    assert_eq!(code, 0, "{out}{err}");
    let finals = round_trials(&a, rounds as u32);
    assert_eq!(finals.len(), 2, "{out}{err}");
    for f in &finals {
        assert_eq!(
            read(f, "proposal.json")["generator"],
            p["generator"],
            "final trial {f}: {} at {} (first of its point: {}) against {} at {}",
            id,
            best.2 - 0.01,
            other.2,
            best.0,
            best.2
        );
    }
}

/// The fake trainer of [`train`] with noise of its own per trial (±0.03, from the trial's
/// number): each rung of a promotion chain is a noisy measurement of the same network.
fn train_noisy(run: &str, trial: &str) {
    train_with_error(run, trial, |err, n| {
        err + ((n * 37) % 11) as f64 / 11.0 * 0.06 - 0.03
    });
}

/// The fake trainer of [`train`] with its validation error replaced by
/// `error(its error, the trial's number)` (and the accuracy to match).
fn train_with_error(run: &str, trial: &str, error: impl Fn(f64, u64) -> f64) {
    train(run, trial);
    let f = Path::new(run)
        .join("trials")
        .join(trial)
        .join("result.json");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    let err = error(r["val_error"].as_f64().unwrap(), trial.parse().unwrap());
    r["val_error"] = serde_json::json!(err);
    r["val_accuracy"] = serde_json::json!(1.0 - err);
    std::fs::write(f, r.to_string()).unwrap();
}

/// `final.pool_rungs`: the final round takes the generator whose promotion chain is best
/// once every rung is shifted to the largest budget and averaged — here not the one best
/// at the largest budget alone — and a study that cannot pool is refused with the field.
#[test]
fn pooled_rungs_choose_the_final_generator_by_every_rung() {
    let d = tempfile::tempdir().unwrap();
    let a = edited_study(d.path(), |s| {
        s["final"] = serde_json::json!({"max_generators": 1, "samples": 2, "select": "best",
                                        "pool_rungs": true});
        s["training"] = serde_json::json!({"schedule_horizon": "budget"});
    });
    search_with(&a, train_noisy);
    let read = |t: &str, f: &str| read_json(&a, t, f);
    let trials: Vec<String> = std::fs::read_dir(Path::new(&a).join("trials"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|t| {
            !rejected(&a, t)
                && Path::new(&a)
                    .join("trials")
                    .join(t)
                    .join("result.json")
                    .exists()
        })
        .collect();
    // (trial, budget, val_error, parent) of the search's feasible evaluations.
    let rows: Vec<(String, f64, f64, Option<String>)> = trials
        .iter()
        .filter(|t| read(t, "proposal.json")["origin"] != "final")
        .filter(|t| read(t, "result.json")["params"].as_f64().unwrap() <= 5e6)
        .map(|t| {
            let (p, r) = (read(t, "proposal.json"), read(t, "result.json"));
            (
                t.clone(),
                r["budget"].as_f64().unwrap(),
                r["val_error"].as_f64().unwrap(),
                p["parent"].as_str().map(String::from),
            )
        })
        .collect();
    let top = rows.iter().map(|x| x.1).fold(0.0, f64::max);
    let chain = |id: &str| {
        let mut c = Vec::new();
        let mut cur = Some(id.to_string());
        while let Some(i) = cur {
            let x = rows.iter().find(|x| x.0 == i).unwrap();
            c.push((x.1, x.2));
            cur = x.3.clone();
        }
        c
    };
    let at_top: Vec<&String> = rows.iter().filter(|x| x.1 == top).map(|x| &x.0).collect();
    assert!(at_top.len() >= 2, "{rows:?}");
    let chains: Vec<Vec<(f64, f64)>> = at_top.iter().map(|t| chain(t)).collect();
    assert!(chains.iter().all(|c| c.len() == 3), "{chains:?}");
    let gap = |b: f64| {
        let g: Vec<f64> = chains
            .iter()
            .map(|c| c[0].1 - c.iter().find(|p| p.0 == b).unwrap().1)
            .collect();
        g.iter().sum::<f64>() / g.len() as f64
    };
    let pooled: Vec<f64> = chains
        .iter()
        .map(|c| c.iter().map(|&(b, v)| v + gap(b)).sum::<f64>() / 3.0)
        .collect();
    let argmin = |v: &[f64]| (0..v.len()).min_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap();
    let raw: Vec<f64> = chains.iter().map(|c| c[0].1).collect();
    let (want, alone) = (at_top[argmin(&pooled)], at_top[argmin(&raw)]);
    assert_ne!(
        want, alone,
        "the noise should part the two rules: {chains:?}"
    );
    let finals: Vec<&String> = trials
        .iter()
        .filter(|t| read(t, "proposal.json")["origin"] == "final")
        .collect();
    assert_eq!(finals.len(), 2);
    for f in finals {
        assert_eq!(
            read(f, "proposal.json")["generator"],
            read(want, "proposal.json")["generator"],
            "final trial {f}: chains {chains:?}, pooled {pooled:?}"
        );
    }
    // Pooling needs the best-on-the-first-objective rule and rungs trained on their own.
    for (edit, field) in [
        (
            serde_json::json!({"final": {"select": "contribution", "pool_rungs": true},
                               "training": {"schedule_horizon": "budget"}}),
            "select",
        ),
        (
            serde_json::json!({"final": {"select": "best", "pool_rungs": true}}),
            "schedule_horizon",
        ),
    ] {
        let e = tempfile::tempdir().unwrap();
        let b = edited_study(e.path(), |s| {
            for (k, v) in edit.as_object().unwrap() {
                s[k] = v.clone();
            }
        });
        let (code, _, err) = run("nago-propose", &["--run", &b]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("final.pool_rungs") && err.contains(field),
            "{err}"
        );
        assert!(!Path::new(&b).join("rounds").exists(), "{err}");
    }
    // A seed of its own per rung needs rungs that train from scratch.
    let e = tempfile::tempdir().unwrap();
    let b = edited_study(e.path(), |s| {
        s["training"] = serde_json::json!({"rung_seeds": "own"});
    });
    let (code, _, err) = run("nago-propose", &["--run", &b]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("training.rung_seeds") && err.contains("schedule_horizon"),
        "{err}"
    );
    assert!(!Path::new(&b).join("rounds").exists(), "{err}");
}

/// `final.param_limit: "largest"`: the final round samples the chosen generator's graphs at
/// the widest `param_limit` that the constraints allow (params ≤ 5M), records the
/// search trial it came from, and final.parquet names that trial.
#[test]
fn largest_final_width_widens_the_chosen_generator_up_to_the_constraints() {
    let d = tempfile::tempdir().unwrap();
    let a = edited_study(d.path(), |s| {
        s["space"] = serde_json::json!({"param_limit": {"log": [2e4, 1e5]}});
        s["final"] = serde_json::json!({"max_generators": 1, "samples": 2, "select": "best",
                                        "param_limit": "largest"});
    });
    let rounds = search(&a);
    let read = |t: &str, f: &str| read_json(&a, t, f);
    let finals = round_trials(&a, rounds as u32 - 1);
    assert_eq!(finals.len(), 2, "{finals:?}");
    let source = read(&finals[0], "proposal.json")["source"]
        .as_str()
        .expect("a final proposal names its source")
        .to_string();
    let searched = read(&source, "proposal.json")["generator"].clone();
    for f in &finals {
        let p = read(f, "proposal.json");
        assert_eq!(p["origin"], "final");
        assert_eq!(p["source"], source.as_str());
        let mut g = p["generator"].clone();
        let limit = g["param_limit"].as_f64().unwrap();
        // Wider than searched (the space's largest is 1e5, the constraint 5e6) …
        assert!(
            limit > searched["param_limit"].as_f64().unwrap() && limit > 1e5,
            "{limit} vs {searched}"
        );
        // … and otherwise the searched generator.
        g["param_limit"] = searched["param_limit"].clone();
        assert_eq!(g, searched, "final trial {f}");
    }
    // The row of final.parquet names the source trial and the widened limit.
    let t = nago_table::read_parquet(
        &Path::new(&a).join("final.parquet"),
        nago_table::FINAL_SCHEMA,
    )
    .unwrap();
    assert_eq!(t.rows.len(), 1);
    let row = &t.rows[0];
    assert_eq!(
        row[t.col("source_trial").unwrap()].as_str(),
        Some(source.as_str())
    );
    assert_eq!(
        row[t.col("param_limit").unwrap()],
        nago_table::Cell::F64(
            read(&finals[0], "proposal.json")["generator"]["param_limit"].as_f64()
        )
    );
}

/// The fake trainer of [`train`], reporting the size metrics of the architecture it would
/// train (sampled from the proposal at its width), for studies whose constraints bound them.
fn train_sized(run: &str, trial: &str) {
    train(run, trial);
    let d = Path::new(run).join("trials").join(trial);
    let p: nago_store::Proposal =
        serde_json::from_str(&std::fs::read_to_string(d.join("proposal.json")).unwrap()).unwrap();
    let study = nago_space::Study::from_json(
        &std::fs::read_to_string(Path::new(run).join("study.json")).unwrap(),
    )
    .unwrap();
    let known = nago_study::screen::screen(&study, &p.generator, p.seed)
        .unwrap()
        .known;
    let path = d.join("result.json");
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (name, v) in known.pairs() {
        r[name] = serde_json::json!(v);
    }
    r["params"] = serde_json::json!(known.params);
    r["macs"] = serde_json::json!(known.macs);
    std::fs::write(path, r.to_string()).unwrap();
}

/// `search.param_limit: "largest"`: every new search trial is trained at the edge of the
/// constraints for its seed (one step wider breaks one), a promotion keeps its parent's
/// width, the model still proposes (it sees the space's fixed width), and the final round
/// widens its own samples although `final.param_limit` is left at its default.
#[test]
fn largest_search_width_trains_every_new_trial_at_the_edge_of_the_constraints() {
    let d = tempfile::tempdir().unwrap();
    let a = edited_study(d.path(), |s| {
        s["space"] = serde_json::json!({"param_limit": {"fixed": 20000},
                                        "top.n": {"int": [3, 4]}, "mid.n": {"int": [1, 2]},
                                        "bottom.n": {"int": [3, 4]}});
        s["constraints"] = serde_json::json!([{"metric": "params", "max": 100000},
                                              {"metric": "activation_mb", "max": 1.0}]);
        s["search"]["param_limit"] = serde_json::json!("largest");
        s["final"] = serde_json::json!({"max_generators": 1, "samples": 2, "select": "best"});
    });
    let rounds = search_with(&a, train_sized);
    let study = run_study(&a);
    let mut by_origin: std::collections::BTreeMap<String, usize> = Default::default();
    let mut widened: std::collections::BTreeMap<bool, usize> = Default::default();
    for r in 0..rounds as u32 {
        for t in round_trials(&a, r) {
            if rejected(&a, &t) {
                continue;
            }
            let p: nago_store::Proposal =
                serde_json::from_value(read_json(&a, &t, "proposal.json")).unwrap();
            let origin = serde_json::to_value(p.origin).unwrap();
            *by_origin
                .entry(origin.as_str().unwrap().to_string())
                .or_default() += 1;
            let g = p.generator;
            match p.origin {
                nago_store::Origin::Promotion => {
                    let parent = read_json(&a, p.parent.as_deref().unwrap(), "proposal.json");
                    assert_eq!(serde_json::to_value(g).unwrap(), parent["generator"], "{t}");
                }
                nago_store::Origin::Final => {
                    // Its own width, found from the space's: every sample passes there.
                    assert_ne!(g.param_limit, 20_000.0, "{t}");
                    assert!(passes_at(&study, &g, g.param_limit, p.seed), "{t}");
                    let src = read_json(&a, p.source.as_deref().unwrap(), "proposal.json");
                    let src: nago_space::Generator =
                        serde_json::from_value(src["generator"].clone()).unwrap();
                    assert_eq!(study.search_point(&src), study.search_point(&g), "{t}");
                }
                _ => {
                    // The edge, whichever side of the space's width it is on: narrower only
                    // for a graph too wide there.
                    assert!(passes_at(&study, &g, g.param_limit, p.seed), "{t}");
                    assert!(!passes_at(&study, &g, g.param_limit + 1.0, p.seed), "{t}");
                    assert!(
                        g.param_limit > 20_000.0 || !passes_at(&study, &g, 20_000.0, p.seed),
                        "{t}: {}",
                        g.param_limit
                    );
                    *widened.entry(g.param_limit > 20_000.0).or_default() += 1;
                }
            }
        }
    }
    for o in ["initial", "model", "promotion", "final"] {
        assert!(by_origin.get(o).is_some_and(|&n| n > 0), "{by_origin:?}");
    }
    assert_eq!(by_origin["final"], 2, "{by_origin:?}");
    // Most graphs of this space widen from 20k; the deepest (4 cells of 2 op-graphs of 4
    // operations) pass only narrower, and are trained there instead of rejected.
    assert!(widened.get(&true).is_some_and(|&n| n > 0), "{widened:?}");
}

/// Under `search.param_limit: "largest"` the space's fixed width is only where the search
/// for each generator's width starts: at a width far above the constraints (4M parameters
/// against a 100k limit) the round's new trials are trained at their own largest passing
/// width, not rejected; and when no width passes (a parameter limit below the head's own
/// weights), every trial is rejected saying so, and the error names what to loosen.
#[test]
fn largest_search_width_fits_generators_whose_own_width_breaks_the_constraints() {
    let d = tempfile::tempdir().unwrap();
    let a = edited_study(d.path(), |s| {
        s["space"] = serde_json::json!({"param_limit": {"fixed": 4e6},
                                        "top.n": {"int": [3, 5]}, "bottom.n": {"int": [3, 4]}});
        s["constraints"] = serde_json::json!([{"metric": "params", "max": 100000}]);
        s["search"]["param_limit"] = serde_json::json!("largest");
    });
    let (code, out, err) = run("nago-propose", &["--run", &a]);
    assert_eq!(code, 0, "{out}{err}");
    let study = run_study(&a);
    let trials = round_trials(&a, 0);
    assert!(!trials.is_empty());
    for t in &trials {
        assert!(!rejected(&a, t), "{t}");
        let p: nago_store::Proposal =
            serde_json::from_value(read_json(&a, t, "proposal.json")).unwrap();
        let g = p.generator;
        assert!(g.param_limit < 4e6, "{t}: {}", g.param_limit);
        assert!(
            !passes_at(&study, &g, 4e6, p.seed),
            "{t}: passes at the space's width"
        );
        assert!(passes_at(&study, &g, g.param_limit, p.seed), "{t}");
        assert!(!passes_at(&study, &g, g.param_limit + 1.0, p.seed), "{t}");
    }

    let d = tempfile::tempdir().unwrap();
    let a = edited_study(d.path(), |s| {
        s["space"] = serde_json::json!({"param_limit": {"fixed": 20000}});
        s["constraints"] = serde_json::json!([{"metric": "params", "max": 1000}]);
        s["search"]["param_limit"] = serde_json::json!("largest");
    });
    let (code, out, err) = run("nago-propose", &["--run", &a]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("rejected before training")
            && err.contains("params is")
            && err.contains("at every other width: search.param_limit is \"largest\""),
        "{err}"
    );
    assert!(!Path::new(&a).join("rounds/0000/proposals.json").exists());
}

/// The fake trainer of [`train`] for a search in which no network learns: every evaluation
/// stays at chance level (val accuracy 0.1 on ten classes).
fn train_at_chance(run: &str, trial: &str) {
    train_with_error(run, trial, |_, _| 0.9);
}

/// A search in which nothing learned has no generator for the final round. The automatic end
/// says so and is done without one; asking for the round by hand (`--final`) is an error that
/// names the trial table, exits non-zero and writes no round, and asking again gives the same.
#[test]
fn a_search_where_nothing_learned_has_no_final_round_and_says_why() {
    let d = tempfile::tempdir().unwrap();
    let a = study(d.path());
    let mut rounds = 0u32;
    let err = loop {
        let (code, out, err) = run("nago-propose", &["--run", &a]);
        if code == 6 {
            assert!(out.contains("the study's budget is spent"), "{out}{err}");
            break err;
        }
        assert_eq!(code, 0, "{out}{err}");
        for t in round_trials(&a, rounds) {
            if !rejected(&a, &t) {
                train_at_chance(&a, &t);
            }
        }
        let (code, _, err) = run("nago-update", &["--run", &a]);
        assert_eq!(code, 0, "{err}");
        rounds += 1;
        assert!(rounds < 100, "the search does not end");
    };
    assert!(
        err.contains("no final round: no feasible evaluation that learned"),
        "{err}"
    );
    let trials = Path::new(&a).join("trials");
    let count = || std::fs::read_dir(&trials).unwrap().count();
    let before = count();
    for e in std::fs::read_dir(&trials).unwrap() {
        let t = e.unwrap().file_name().into_string().unwrap();
        assert_ne!(read_json(&a, &t, "proposal.json")["origin"], "final", "{t}");
    }
    for _ in 0..2 {
        let (code, out, err) = run("nago-propose", &["--run", &a, "--final"]);
        assert_ne!(code, 0, "{out}{err}");
        assert_ne!(code, 6, "an error, not done: {out}{err}");
        assert!(
            err.contains("no feasible evaluated generator that learned")
                && err.contains("trials.parquet"),
            "{err}"
        );
        assert_eq!(count(), before, "no trial directory is written");
        assert!(
            !Path::new(&a).join(format!("rounds/{rounds:04}")).exists(),
            "no round is written"
        );
    }
}
