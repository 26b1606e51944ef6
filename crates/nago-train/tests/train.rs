//! Training behaviour: learning on Fashion-MNIST, determinism, exact resume, failures as
//! results, clear input errors.

mod common;

use nago_store::{TrialResult, TrialStatus};
use nago_train::job::{self, JobError, JobSpec};
use nago_train::train::StopFlag;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// libtorch's seed and thread count are process-global: the tests train one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_arch(dir: &Path, seed: u64) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let a = common::small_arch(seed, common::fmnist_shape());
    let p = dir.join("arch.json");
    std::fs::write(&p, a.to_json()).unwrap();
    p
}

fn spec(arch: &Path, out: &Path, data: &Path, dataset: &str) -> JobSpec {
    let mut s = JobSpec::new(arch, out);
    s.dataset = Some(dataset.into());
    s.data_path = Some(data.to_path_buf());
    s.device = job::DeviceChoice::Cpu;
    s.threads = Some(2);
    s.overrides.validation = Some(200);
    s.overrides.batch_size = Some(50);
    s.overrides.train_subset = Some(400);
    s.overrides.test_subset = Some(200);
    s.overrides.cutout = Some(8);
    s
}

fn synthetic(dir: &Path) -> std::path::PathBuf {
    let d = dir.join("synthetic");
    common::write_synthetic_idx(&d, 700, 200, 10);
    d
}

fn read_result(dir: &Path) -> TrialResult {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

#[test]
fn learns_fashion_mnist_subset() {
    let _serial = serial();
    let data = common::fmnist_dir();
    assert!(
        data.join("train-images-idx3-ubyte.gz").is_file(),
        "Fashion-MNIST is missing: run `make data/fashion-mnist`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let arch = write_arch(tmp.path(), 11);
    let out = tmp.path().join("trial");
    let mut s = spec(&arch, &out, &data, "fashion-mnist");
    s.overrides.train_subset = Some(2000);
    s.overrides.validation = Some(1000);
    s.overrides.test_subset = Some(1000);
    s.overrides.batch_size = Some(64);
    s.overrides.lr = Some(0.05);
    s.overrides.cutout = Some(0);
    s.overrides.crop_padding = Some(0);
    s.overrides.flip = Some(false);
    s.epochs = Some(3);
    let r = job::run(&s, &StopFlag::default()).unwrap();
    eprintln!(
        "Fashion-MNIST, 2000 images, 3 epochs: val {:?} test {:?} params {:?}",
        r.result.val_accuracy, r.result.test_accuracy, r.result.params
    );
    assert_eq!(r.result.status, TrialStatus::Ok);
    assert!(r.result.val_accuracy.unwrap() > 0.5, "{:?}", r.result);
    assert!(r.result.test_accuracy.unwrap() > 0.5, "{:?}", r.result);
    assert!(out.join("epochs.parquet").is_file());
    assert!(out.join("checkpoint.safetensors").is_file());
    // Idempotent: a second call finds the valid result and does nothing.
    let again = job::run(&s, &StopFlag::default()).unwrap();
    assert!(again.skipped);
}

#[test]
fn same_seed_same_metrics_and_resume_equals_one_run() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 4);
    let base = |out: &str, epochs: u32| {
        let mut s = spec(&arch, &tmp.path().join(out), &data, "idx");
        s.epochs = Some(epochs);
        s.schedule_epochs = Some(2.0);
        s
    };
    // Two epochs in one go, twice: identical.
    let a = job::run(&base("a", 2), &StopFlag::default())
        .unwrap()
        .result;
    let b = job::run(&base("b", 2), &StopFlag::default())
        .unwrap()
        .result;
    assert_eq!(a.status, TrialStatus::Ok);
    assert_eq!(a.val_accuracy, b.val_accuracy);
    assert_eq!(a.test_accuracy, b.test_accuracy);
    assert_eq!(a.extra["val_loss"], b.extra["val_loss"]);
    // One epoch, then a promotion to two that continues the parent's checkpoint.
    let p1 = job::run(&base("p1", 1), &StopFlag::default())
        .unwrap()
        .result;
    assert_eq!(p1.epochs_done, Some(1.0));
    let mut s2 = base("p2", 2);
    s2.parent_dir = Some(tmp.path().join("p1"));
    // Through a proposal: parent named, found beside the output directory.
    let prop = serde_json::json!({
        "schema": "nago.proposal/1", "trial": "p2", "round": 1,
        "generator": common::small_arch(4, common::fmnist_shape()).generator,
        "budget": 2.0, "seed": 4, "parent": "p1", "origin": "promotion"
    });
    let pp = tmp.path().join("proposal-p2.json");
    std::fs::write(&pp, prop.to_string()).unwrap();
    s2.proposal = Some(pp);
    s2.epochs = None;
    s2.seed = Some(4);
    let c = job::run(&s2, &StopFlag::default()).unwrap().result;
    assert_eq!(c.extra["start_epoch"], 1);
    assert_eq!(c.epochs_done, Some(2.0));
    // The one-go runs used the architecture's seed (4) too.
    assert_eq!(a.extra["seed"], c.extra["seed"]);
    assert_eq!(
        a.val_accuracy, c.val_accuracy,
        "resume-then-continue vs one run"
    );
    assert_eq!(a.test_accuracy, c.test_accuracy);
    assert_eq!(a.extra["val_loss"], c.extra["val_loss"]);
}

/// A study on the synthetic data whose search trials anneal within their own budget
/// (`schedule_horizon: "budget"`), with `training` merged over the tests' small settings.
fn per_budget_study(
    dir: &Path,
    name: &str,
    data: &Path,
    training: serde_json::Value,
) -> std::path::PathBuf {
    let mut t = serde_json::json!({"batch_size": 50, "train_subset": 400,
                                   "schedule_horizon": "budget"});
    for (k, v) in training.as_object().unwrap() {
        t[k] = v.clone();
    }
    let study = dir.join(format!("{name}.json"));
    let doc = serde_json::json!({
        "schema": "nago.study/1", "name": name, "seed": 3,
        "dataset": {"name": "idx", "path": data, "channels": 1, "height": 28, "width": 28,
                    "classes": 10, "validation": 200},
        "objectives": [{"metric": "val_error", "goal": "min"}],
        "budgets": {"min": 1, "max": 4, "eta": 2},
        "training": t
    });
    std::fs::write(&study, doc.to_string()).unwrap();
    study
}

/// A proposal of the small test network (trial seed 4) at `budget`, a promotion of `parent`
/// when there is one.
fn small_proposal(dir: &Path, id: &str, budget: f64, parent: Option<&str>) -> std::path::PathBuf {
    let prop = serde_json::json!({
        "schema": "nago.proposal/1", "trial": id, "round": 0,
        "generator": common::small_arch(4, common::fmnist_shape()).generator,
        "budget": budget, "seed": 4, "parent": parent,
        "origin": if parent.is_some() { "promotion" } else { "initial" }
    });
    let pp = dir.join(format!("proposal-{id}.json"));
    std::fs::write(&pp, prop.to_string()).unwrap();
    pp
}

/// `training.schedule_horizon: "budget"`: each trial anneals over its own budget, and a
/// promotion trains from scratch (its parent's checkpoint followed a 1-epoch schedule), so it
/// equals a one-go run annealed over its budget.
#[test]
fn a_study_that_anneals_per_budget_trains_promotions_from_scratch() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 4);
    let study = per_budget_study(
        tmp.path(),
        "per-budget",
        &data,
        serde_json::json!({"cutout": 8}),
    );
    let proposal = |id: &str, budget: f64, parent: Option<&str>| {
        small_proposal(tmp.path(), id, budget, parent)
    };
    let run = |id: &str, budget: f64, parent: Option<&str>| {
        let mut s = spec(&arch, &tmp.path().join(id), &data, "idx");
        s.study = Some(study.clone());
        s.proposal = Some(proposal(id, budget, parent));
        job::run(&s, &StopFlag::default()).unwrap()
    };
    let p1 = run("p1", 1.0, None).result;
    assert_eq!(p1.status, TrialStatus::Ok);
    assert_eq!(
        p1.extra["schedule_epochs"], 1.0,
        "a 1-epoch trial anneals over 1 epoch"
    );
    let p2 = run("p2", 2.0, Some("p1"));
    assert_eq!(p2.result.extra["schedule_epochs"], 2.0);
    assert_eq!(
        p2.result.extra["start_epoch"], 0,
        "the parent is not continued"
    );
    assert!(
        p2.notes.iter().any(|n| n.contains("trains from scratch")),
        "{:?}",
        p2.notes
    );
    // The same as a 2-epoch trial without a parent.
    let one = run("one", 2.0, None).result;
    assert_eq!(one.val_accuracy, p2.result.val_accuracy);
    assert_eq!(one.extra["val_loss"], p2.result.extra["val_loss"]);
    // The lr at the end of every trial is (almost) 0: the schedule annealed within it.
    for id in ["p1", "p2"] {
        let rows = nago_table::read_epochs(&tmp.path().join(id).join("epochs.parquet")).unwrap();
        let last = rows.last().unwrap();
        assert!(last.lr < 0.01, "{id}: last lr {}", last.lr);
    }
}

/// `training.rung_seeds: "own"`: a promotion that trains from scratch draws a training seed
/// of its own (another initialisation and data order than a fresh trial of the same seed and
/// budget), recorded in its result; the default shares the trial's seed.
#[test]
fn own_rung_seeds_give_a_promotion_a_training_of_its_own() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 4);
    let write_study = |name: &str, rung_seeds: &str| {
        per_budget_study(
            tmp.path(),
            name,
            &data,
            serde_json::json!({"rung_seeds": rung_seeds}),
        )
    };
    let proposal = |id: &str, budget: f64, parent: Option<&str>| {
        small_proposal(tmp.path(), id, budget, parent)
    };
    let run = |study: &Path, id: &str, parent: Option<&str>| {
        let mut s = spec(&arch, &tmp.path().join(id), &data, "idx");
        s.study = Some(study.to_path_buf());
        s.proposal = Some(proposal(
            id,
            if parent.is_some() { 2.0 } else { 1.0 },
            parent,
        ));
        job::run(&s, &StopFlag::default()).unwrap().result
    };
    let shared = write_study("shared", "shared");
    let own = write_study("own", "own");
    // A parent at budget 1, then its promotion to budget 2 under each setting, and a fresh
    // 2-epoch trial of the same seed.
    run(&own, "p1", None);
    let promoted_own = run(&own, "p2-own", Some("p1"));
    let promoted_shared = run(&shared, "p2-shared", Some("p1"));
    let mut fresh = spec(&arch, &tmp.path().join("fresh"), &data, "idx");
    fresh.study = Some(own.clone());
    fresh.proposal = Some(proposal("fresh", 2.0, None));
    let fresh = job::run(&fresh, &StopFlag::default()).unwrap().result;
    assert_eq!(promoted_own.extra["start_epoch"], 0);
    assert_eq!(promoted_shared.extra["start_epoch"], 0);
    assert_eq!(
        promoted_shared.extra["val_loss"], fresh.extra["val_loss"],
        "a shared seed trains the promotion exactly as a fresh trial of its seed"
    );
    assert_ne!(promoted_own.extra["seed"], fresh.extra["seed"]);
    assert_ne!(
        promoted_own.extra["val_loss"], fresh.extra["val_loss"],
        "an own seed trains the promotion anew"
    );
    // Reproducible: the same promotion again gives the same numbers.
    let again = run(&own, "p2-own-again", Some("p1"));
    assert_eq!(again.extra["seed"], promoted_own.extra["seed"]);
    assert_eq!(again.extra["val_loss"], promoted_own.extra["val_loss"]);
}

/// `search.test_images`: a search trial is evaluated on that many test images (0: none, and
/// no test accuracy), a final-round trial on the whole test split; `--test-subset` wins.
#[test]
fn search_trials_report_on_search_test_images_and_final_trials_on_the_whole_split() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 6);
    let study = |n: u32| {
        let p = tmp.path().join(format!("study-{n}.json"));
        let doc = serde_json::json!({
            "schema": "nago.study/1", "name": "test-images", "seed": 3,
            "dataset": {"name": "idx", "path": data, "channels": 1, "height": 28, "width": 28,
                        "classes": 10, "validation": 200},
            "objectives": [{"metric": "val_error", "goal": "min"}],
            "budgets": {"min": 1, "max": 1, "eta": 2},
            "search": {"test_images": n},
            "training": {"batch_size": 50, "train_subset": 400}
        });
        std::fs::write(&p, doc.to_string()).unwrap();
        p
    };
    let run = |id: &str, n: u32, origin: &str, cli: Option<u32>| {
        let prop = serde_json::json!({
            "schema": "nago.proposal/1", "trial": id, "round": 0,
            "generator": common::small_arch(6, common::fmnist_shape()).generator,
            "budget": 1.0, "seed": 6, "parent": null, "origin": origin
        });
        let pp = tmp.path().join(format!("proposal-{id}.json"));
        std::fs::write(&pp, prop.to_string()).unwrap();
        let mut s = spec(&arch, &tmp.path().join(id), &data, "idx");
        s.overrides.test_subset = cli;
        s.study = Some(study(n));
        s.proposal = Some(pp);
        job::run(&s, &StopFlag::default()).unwrap().result
    };
    let none = run("none", 0, "model", None);
    assert_eq!(none.status, TrialStatus::Ok, "{none:?}");
    assert!(none.test_accuracy.is_none(), "{none:?}");
    assert!(none.val_accuracy.is_some());
    assert_eq!(none.extra["test_images"], 0);
    let some = run("some", 50, "model", None);
    assert_eq!(some.extra["test_images"], 50);
    assert!(some.test_accuracy.is_some());
    let fin = run("final", 0, "final", None);
    assert_eq!(
        fin.extra["test_images"], 200,
        "the final round sees the whole split"
    );
    assert!(fin.test_accuracy.is_some());
    let cli = run("cli", 0, "model", Some(20));
    assert_eq!(cli.extra["test_images"], 20, "--test-subset wins");
    // The validation result does not depend on the test images.
    assert_eq!(none.val_accuracy, some.val_accuracy);
}

#[test]
fn failures_are_results() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 5);
    // Divergence: an absurd learning rate.
    let mut s = spec(&arch, &tmp.path().join("div"), &data, "idx");
    s.epochs = Some(2);
    s.overrides.lr = Some(1e12);
    let r = job::run(&s, &StopFlag::default()).unwrap();
    assert_eq!(r.result.status, TrialStatus::Diverged, "{:?}", r.result);
    assert_eq!(r.exit_code(), 2);
    assert!(r.result.val_accuracy.is_none() && r.result.val_error.is_none());
    assert!(r.result.error.as_deref().unwrap().contains("loss"));
    assert_eq!(
        read_result(&tmp.path().join("div")).status,
        TrialStatus::Diverged
    );
    // Time limit after the first epoch: partial curve kept.
    let mut s = spec(&arch, &tmp.path().join("time"), &data, "idx");
    s.epochs = Some(50);
    s.time_limit = Some(0.5);
    let r = job::run(&s, &StopFlag::default()).unwrap();
    assert_eq!(r.result.status, TrialStatus::TimeLimit);
    assert_eq!(r.exit_code(), 2);
    assert!(r.result.epochs_done.unwrap() < 50.0);
    // A signal (SIGTERM sets the flag): killed.
    let stop = StopFlag::default();
    stop.0.store(true, Ordering::SeqCst);
    let mut s = spec(&arch, &tmp.path().join("kill"), &data, "idx");
    s.epochs = Some(1);
    let r = job::run(&s, &stop).unwrap();
    assert_eq!(r.result.status, TrialStatus::Killed);
    assert_eq!(r.exit_code(), 2);
    assert!(r.result.test_accuracy.is_none());
    // A failed result is not mistaken for a valid one: the next call trains again.
    let mut s = spec(&arch, &tmp.path().join("kill"), &data, "idx");
    s.epochs = Some(1);
    let r = job::run(&s, &StopFlag::default()).unwrap();
    assert!(!r.skipped);
    assert_eq!(r.result.status, TrialStatus::Ok);
}

fn err_text(e: JobError) -> String {
    e.to_string()
}

#[test]
fn bad_inputs_give_clear_errors_and_write_nothing() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 6);
    // Corrupt arch.json.
    let bad = tmp.path().join("bad-arch.json");
    let text = std::fs::read_to_string(&arch).unwrap();
    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    let mut s = spec(&bad, &tmp.path().join("o1"), &data, "idx");
    s.epochs = Some(1);
    let e = err_text(job::run(&s, &StopFlag::default()).unwrap_err());
    assert!(e.contains("bad-arch.json"), "{e}");
    assert!(!tmp.path().join("o1").exists());
    // Wrong recorded parameter count.
    let wrong = tmp.path().join("wrong-arch.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["counts"]["params"] = serde_json::json!(12345);
    std::fs::write(&wrong, v.to_string()).unwrap();
    let mut s = spec(&wrong, &tmp.path().join("o1"), &data, "idx");
    s.epochs = Some(1);
    let e = err_text(job::run(&s, &StopFlag::default()).unwrap_err());
    assert!(e.contains("wrong-arch.json") && e.contains("counts"), "{e}");
    // Mismatched image size: a CIFAR-shaped architecture on 28×28 data.
    let cifar = common::small_arch(
        6,
        nago_arch::InputShape {
            channels: 3,
            height: 32,
            width: 32,
            classes: 10,
        },
    );
    let cp = tmp.path().join("cifar-arch.json");
    std::fs::write(&cp, cifar.to_json()).unwrap();
    let mut s = spec(&cp, &tmp.path().join("o2"), &data, "idx");
    s.epochs = Some(1);
    let e = err_text(job::run(&s, &StopFlag::default()).unwrap_err());
    assert!(e.contains("1×28×28") && e.contains("3×32×32"), "{e}");
    assert!(!tmp.path().join("o2").exists());
    // Missing dataset.
    let mut s = spec(
        &arch,
        &tmp.path().join("o3"),
        &tmp.path().join("nowhere"),
        "fashion-mnist",
    );
    s.epochs = Some(1);
    let e = err_text(job::run(&s, &StopFlag::default()).unwrap_err());
    assert!(
        e.contains("nowhere") && e.contains("make data/fashion-mnist"),
        "{e}"
    );
    // Truncated IDX.
    let trunc = tmp.path().join("trunc");
    common::write_synthetic_idx(&trunc, 50, 20, 10);
    let f = trunc.join("t10k-labels-idx1-ubyte");
    let b = std::fs::read(&f).unwrap();
    std::fs::write(&f, &b[..b.len() - 5]).unwrap();
    let mut s = spec(&arch, &tmp.path().join("o4"), &trunc, "idx");
    s.epochs = Some(1);
    let e = err_text(job::run(&s, &StopFlag::default()).unwrap_err());
    assert!(
        e.contains("t10k-labels-idx1-ubyte") && e.contains("truncated"),
        "{e}"
    );
    // No budget at all.
    let s = spec(&arch, &tmp.path().join("o5"), &data, "idx");
    let e = err_text(job::run(&s, &StopFlag::default()).unwrap_err());
    assert!(e.contains("budget"), "{e}");
}

/// The metrics a resumed run must reproduce (timings excluded).
fn metrics(r: &TrialResult) -> Vec<Option<f64>> {
    vec![
        r.val_accuracy,
        r.test_accuracy,
        r.extra["val_loss"].as_f64(),
        r.extra["test_loss"].as_f64(),
        r.epochs_done,
    ]
}

/// epochs.parquet without its timing columns.
fn curve(dir: &Path) -> Vec<(u32, f64, f64, f64, f64, f64)> {
    nago_table::read_epochs(&dir.join("epochs.parquet"))
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.epoch,
                r.train_loss,
                r.train_accuracy,
                r.val_loss,
                r.val_accuracy,
                r.lr,
            )
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn torn_checkpoint_states_resume_to_the_uninterrupted_result() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 7);
    let base = |out: &Path, epochs: u32| {
        let mut s = spec(&arch, out, &data, "idx");
        s.epochs = Some(epochs);
        s.schedule_epochs = Some(2.0);
        s
    };
    let one_go = tmp.path().join("one-go");
    let a = job::run(&base(&one_go, 2), &StopFlag::default())
        .unwrap()
        .result;
    assert_eq!(a.status, TrialStatus::Ok);
    // The checkpoints of epoch 1 and of epoch 2 of another copy.
    let b = tmp.path().join("b");
    job::run(&base(&b, 1), &StopFlag::default()).unwrap();
    let ck1 = tmp.path().join("ck1");
    copy_dir(&b, &ck1);
    job::run(&base(&b, 2), &StopFlag::default()).unwrap();
    let ck2 = tmp.path().join("ck2");
    copy_dir(&b, &ck2);
    assert!(!ck2.join("checkpoint.json").exists(), "one file only");
    let meta = |d: &Path| {
        let mut m = nago_train::checkpoint::load_meta(d).unwrap();
        m.schema = nago_train::checkpoint::LEGACY_CHECKPOINT_SCHEMA.into();
        serde_json::to_string(&m).unwrap()
    };
    assert_eq!(
        nago_train::checkpoint::load_meta(&ck2).unwrap().epochs_done,
        2
    );
    // What a kill between the old trainer's two renames left: the weights of one epoch with
    // a checkpoint.json of the other. The metadata inside the weights file wins.
    for (weights, json, name) in [(&ck2, &ck1, "w2-m1"), (&ck1, &ck2, "w1-m2")] {
        let dir = tmp.path().join(name);
        copy_dir(weights, &dir);
        std::fs::remove_file(dir.join("result.json")).unwrap();
        std::fs::write(dir.join("checkpoint.json"), meta(json.as_path())).unwrap();
        let r = job::run(&base(&dir, 2), &StopFlag::default())
            .unwrap()
            .result;
        assert_eq!(r.status, TrialStatus::Ok, "{name}");
        assert_eq!(metrics(&r), metrics(&a), "{name}: resumed vs one go");
        assert_eq!(curve(&dir), curve(&one_go), "{name}");
        if name == "w1-m2" {
            assert!(!dir.join("checkpoint.json").exists(), "{name}: replaced");
        }
    }
    // What a kill during the new save leaves: the epoch-1 checkpoint and a half-written
    // temporary of a writer that is gone (removed at start), beside one of a live process
    // (this one: kept).
    let dir = tmp.path().join("half");
    copy_dir(&ck1, &dir);
    std::fs::remove_file(dir.join("result.json")).unwrap();
    let full = std::fs::read(ck2.join("checkpoint.safetensors")).unwrap();
    let dead = dir.join("checkpoint.safetensors.tmp.4000000000");
    std::fs::write(&dead, &full[..full.len() / 2]).unwrap();
    // (A name the trainer itself never writes: in this test the trainer runs in this process,
    // so its own result.json.tmp.<pid> would be renamed away by its own atomic write.)
    let live = dir.join(format!("notes.txt.tmp.{}", std::process::id()));
    std::fs::write(&live, "{").unwrap();
    let r = job::run(&base(&dir, 2), &StopFlag::default()).unwrap();
    assert_eq!(r.result.extra["start_epoch"], 1);
    assert_eq!(metrics(&r.result), metrics(&a));
    assert_eq!(curve(&dir), curve(&one_go));
    assert!(!dead.exists(), "a dead writer's temporary file is removed");
    assert!(live.exists(), "a live process's temporary file is kept");
    assert!(
        r.notes.iter().any(|n| n.contains("tmp.4000000000")),
        "{:?}",
        r.notes
    );
}

#[test]
fn retryable_and_final_failures_and_attempts() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    let arch = write_arch(tmp.path(), 8);
    // Signals: retryable, the attempt count grows, and after MAX_ATTEMPTS it is final.
    let stop = StopFlag::default();
    stop.0.store(true, Ordering::SeqCst);
    let out = tmp.path().join("kill");
    let mut s = spec(&arch, &out, &data, "idx");
    s.epochs = Some(1);
    for attempt in 1..=nago_store::MAX_ATTEMPTS {
        let r = job::run(&s, &stop).unwrap();
        assert!(!r.skipped);
        assert_eq!(r.result.status, TrialStatus::Killed);
        assert!(r.result.retryable);
        assert_eq!(r.result.attempts, attempt);
        assert_eq!(read_result(&out).attempts, attempt);
    }
    let r = job::run(&s, &StopFlag::default()).unwrap();
    assert!(
        r.skipped,
        "retryable failures that used up their attempts are final"
    );
    // The job's deadline: time_limit, retryable; the next run continues the checkpoint.
    // The deadline leaves room for a few epochs at this machine's current speed (a fixed 2 s
    // ended inside the first epoch on a loaded 2-core machine), measured by one epoch first.
    let probe = tmp.path().join("probe");
    let mut s = spec(&arch, &probe, &data, "idx");
    s.epochs = Some(1);
    let one = job::run(&s, &StopFlag::default()).unwrap().result;
    assert_eq!(one.status, TrialStatus::Ok, "{one:?}");
    let epoch_s = one.train_seconds.unwrap();
    let out = tmp.path().join("deadline");
    let mut s = spec(&arch, &out, &data, "idx");
    s.epochs = Some(200);
    s.deadline = Some((4.0 * epoch_s).max(2.0) + 1.0);
    let r = job::run(&s, &StopFlag::default()).unwrap().result;
    assert_eq!(r.status, TrialStatus::TimeLimit);
    assert!(r.retryable && !r.is_final(), "{r:?}");
    assert_eq!(r.attempts, 1);
    let done = r.epochs_done.unwrap();
    assert!(done >= 1.0, "{r:?}");
    let r = job::run(&s, &StopFlag::default()).unwrap();
    assert!(!r.skipped);
    assert_eq!(r.result.extra["start_epoch"], done);
    assert_eq!(r.result.attempts, 2);
    // The study's own time limit: final, not run again.
    let out = tmp.path().join("limit");
    let mut s = spec(&arch, &out, &data, "idx");
    s.epochs = Some(200);
    s.time_limit = Some(0.5);
    let r = job::run(&s, &StopFlag::default()).unwrap().result;
    assert_eq!(r.status, TrialStatus::TimeLimit);
    assert!(!r.retryable && r.is_final() && r.attempts == 0, "{r:?}");
    let again = job::run(&s, &StopFlag::default()).unwrap();
    assert!(again.skipped);
    assert_eq!(again.exit_code(), 2);
    // Diverged: final.
    let out = tmp.path().join("div");
    let mut s = spec(&arch, &out, &data, "idx");
    s.epochs = Some(1);
    s.overrides.lr = Some(1e12);
    let r = job::run(&s, &StopFlag::default()).unwrap().result;
    assert_eq!(r.status, TrialStatus::Diverged);
    assert!(!r.retryable);
    assert!(job::run(&s, &StopFlag::default()).unwrap().skipped);
    // --force retrains.
    s.force = true;
    assert!(!job::run(&s, &StopFlag::default()).unwrap().skipped);
}

#[test]
fn settings_that_do_not_fit_the_dataset_are_input_errors() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path()); // 700 training images
    let arch = write_arch(tmp.path(), 6);
    type Edit = Box<dyn Fn(&mut JobSpec)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "v-all",
            Box::new(|s: &mut JobSpec| s.overrides.validation = Some(700)),
            "validation",
        ),
        (
            "v-zero",
            Box::new(|s: &mut JobSpec| s.overrides.validation = Some(0)),
            "validation",
        ),
        (
            "sub-zero",
            Box::new(|s: &mut JobSpec| s.overrides.train_subset = Some(0)),
            "train_subset",
        ),
        (
            "sub-big",
            Box::new(|s: &mut JobSpec| s.overrides.train_subset = Some(501)),
            "expected 1 to 500",
        ),
        (
            "lr-nan",
            Box::new(|s: &mut JobSpec| s.overrides.lr = Some(f64::NAN)),
            "training.lr",
        ),
        (
            "mom",
            Box::new(|s: &mut JobSpec| s.overrides.momentum = Some(1.0)),
            "momentum",
        ),
        (
            "wd",
            Box::new(|s: &mut JobSpec| s.overrides.weight_decay = Some(-1.0)),
            "weight_decay",
        ),
        (
            "ls",
            Box::new(|s: &mut JobSpec| s.overrides.label_smoothing = Some(1.0)),
            "label_smoothing",
        ),
        (
            "bs",
            Box::new(|s: &mut JobSpec| s.overrides.batch_size = Some(0)),
            "batch_size",
        ),
        (
            "th",
            Box::new(|s: &mut JobSpec| s.threads = Some(0)),
            "--threads",
        ),
        (
            "tl",
            Box::new(|s: &mut JobSpec| s.time_limit = Some(0.0)),
            "--time-limit",
        ),
    ];
    for (name, f, needle) in cases {
        let out = tmp.path().join(name);
        let mut s = spec(&arch, &out, &data, "idx");
        s.epochs = Some(1);
        s.overrides.validation = Some(200);
        f(&mut s);
        let e = job::run(&s, &StopFlag::default()).unwrap_err();
        assert_eq!(e.exit_code(), 1, "{name}");
        let e = e.to_string();
        assert!(e.contains(needle), "{name}: {e}");
        assert!(!out.exists(), "{name}: nothing written");
    }
    // The largest subset that fits is accepted.
    let mut s = spec(&arch, &tmp.path().join("fits"), &data, "idx");
    s.epochs = Some(1);
    s.overrides.train_subset = Some(500);
    assert_eq!(
        job::run(&s, &StopFlag::default()).unwrap().result.status,
        TrialStatus::Ok
    );
}

/// The hand-made references of `make bench-search` (nago_generator::baselines) are networks
/// the trainer builds with arch.json's parameter count and that learn.
#[test]
fn the_hand_made_baselines_train() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic(tmp.path());
    for b in nago_generator::Baseline::ALL {
        let dir = tmp.path().join(b.name());
        std::fs::create_dir_all(&dir).unwrap();
        let a = nago_generator::baseline(b, common::fmnist_shape()).unwrap();
        let arch = dir.join("arch.json");
        std::fs::write(&arch, a.to_json()).unwrap();
        let out = dir.join("trial");
        let mut s = spec(&arch, &out, &data, "idx");
        s.overrides.train_subset = Some(480);
        s.overrides.test_subset = Some(100);
        s.overrides.batch_size = Some(16);
        s.overrides.cutout = Some(0);
        s.overrides.lr = Some(0.05);
        s.epochs = Some(2);
        s.measure_latency = false;
        let r = job::run(&s, &StopFlag::default()).unwrap().result;
        eprintln!(
            "{}: {:?} parameters, val {:?}",
            b.name(),
            r.params,
            r.val_accuracy
        );
        assert_eq!(r.status, TrialStatus::Ok, "{r:?}");
        assert_eq!(r.params, Some(a.counts.params));
        // Ten bands of bright rows: chance is 0.1.
        assert!(r.val_accuracy.unwrap() > 0.3, "{}: {r:?}", b.name());
    }
}
