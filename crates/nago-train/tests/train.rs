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
    s.cpu = true;
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
