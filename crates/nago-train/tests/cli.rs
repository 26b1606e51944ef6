//! The binary: the study + index form, idempotency, SIGTERM → status `killed`, exit codes.

mod common;

use nago_store::{TrialResult, TrialStatus};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_nago-train");

fn study(root: &Path, data: &Path, budget_max: u32) {
    let s = serde_json::json!({
        "schema": "nago.study/1",
        "name": "cli-test",
        "seed": 3,
        "dataset": {"name": "idx", "path": data, "channels": 1, "height": 28, "width": 28,
                    "classes": 10, "validation": 100},
        "objectives": [{"metric": "val_error", "goal": "min"}],
        "budgets": {"min": 1, "max": budget_max, "eta": 2},
        "training": {"batch_size": 50, "train_subset": 300}
    });
    std::fs::create_dir_all(root.join("rounds/0000")).unwrap();
    std::fs::write(root.join("study.json"), s.to_string()).unwrap();
}

fn trial(root: &Path, id: &str, budget: u32, parent: Option<&str>) {
    let arch = common::small_arch(9, common::fmnist_shape());
    let dir = root.join("trials").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("arch.json"), arch.to_json()).unwrap();
    let p = serde_json::json!({
        "schema": "nago.proposal/1", "trial": id, "round": 0, "generator": arch.generator,
        "budget": budget, "seed": 9, "parent": parent, "origin": "manual"
    });
    std::fs::write(dir.join("proposal.json"), p.to_string()).unwrap();
}

fn result(root: &Path, id: &str) -> TrialResult {
    let t = std::fs::read_to_string(root.join("trials").join(id).join("result.json")).unwrap();
    serde_json::from_str(&t).unwrap()
}

#[test]
fn study_and_index_form_promotion_and_idempotency() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic_idx(&data, 500, 100, 10);
    let root = tmp.path().join("run");
    study(&root, &data, 2);
    trial(&root, "t0", 1, None);
    trial(&root, "t1", 2, Some("t0"));
    std::fs::write(
        root.join("rounds/0000/proposals.json"),
        r#"{"schema": "nago.round/1", "round": 0, "trials": ["t0", "t1"]}"#,
    )
    .unwrap();
    let run = |idx: &str| {
        Command::new(BIN)
            .args([
                "--run",
                root.to_str().unwrap(),
                "--index",
                idx,
                "--threads",
                "2",
                "--cpu",
            ])
            .output()
            .unwrap()
    };
    let o = run("0");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r0 = result(&root, "t0");
    assert_eq!(r0.status, TrialStatus::Ok);
    assert!(root.join("trials/t0/epochs.parquet").is_file());
    let o = run("1");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r1 = result(&root, "t1");
    assert_eq!(
        r1.extra["start_epoch"], 1,
        "the promotion continues t0's checkpoint"
    );
    assert_eq!(r1.epochs_done, Some(2.0));
    // Done already: nothing happens, exit 0.
    let o = run("1");
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already trained"));
    // Out of range index: exit 1, a clear message.
    let o = run("7");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("out of range"));
}

#[test]
fn sigterm_is_recorded_as_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic_idx(&data, 500, 100, 10);
    let arch = common::small_arch(2, common::fmnist_shape());
    std::fs::write(tmp.path().join("arch.json"), arch.to_json()).unwrap();
    let out = tmp.path().join("out");
    let child = Command::new(BIN)
        .args(["--arch", tmp.path().join("arch.json").to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--dataset", "idx"])
        .args([
            "--data",
            data.to_str().unwrap(),
            "--epochs",
            "1000",
            "--validation",
            "100",
        ])
        .args(["--threads", "1", "--cpu"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first epoch's checkpoint, then SIGTERM.
    for _ in 0..600 {
        if out.join("epochs.parquet").is_file() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unsafe_kill(child.id());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let r: TrialResult =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r.status, TrialStatus::Killed);
    assert!(r.val_accuracy.is_none());
    assert!(r.epochs_done.unwrap() >= 1.0);
    assert!(r.error.unwrap().contains("signal"));
}

fn unsafe_kill(pid: u32) {
    let s = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(s.success());
}

#[test]
fn a_bad_image_folder_exits_1_naming_the_file_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("folder");
    for c in ["0", "1"] {
        let d = data.join("train").join(c);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..3 {
            image::GrayImage::from_pixel(28, 28, image::Luma([30 * i]))
                .save(d.join(format!("{i}.png")))
                .unwrap();
        }
    }
    std::fs::write(data.join("train/1/2.png"), b"\x89PNG garbage").unwrap();
    let arch = common::small_arch(2, common::fmnist_shape());
    std::fs::write(tmp.path().join("arch.json"), arch.to_json()).unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(BIN)
        .args(["--arch", tmp.path().join("arch.json").to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--dataset", "folder"])
        .args(["--data", data.to_str().unwrap(), "--epochs", "1"])
        .args(["--threads", "1", "--cpu"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&data.join("train/1/2.png").display().to_string()),
        "{err}"
    );
    assert!(!out.exists(), "{err}");
    assert!(!data.join(".nago-cache").exists());
}

#[test]
fn latency_is_measured_after_training_and_again_by_nago_latency() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic_idx(&data, 400, 100, 10);
    let root = tmp.path().join("run");
    study(&root, &data, 1);
    trial(&root, "t0", 1, None);
    trial(&root, "t1", 1, None);
    let train = |id: &str, extra: &[&str]| {
        let o = Command::new(BIN)
            .args(["--run", root.to_str().unwrap(), "--trial", id])
            .args(["--threads", "2", "--cpu"])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let log = train("t0", &[]);
    assert!(log.contains("latency (CPU, 1 thread)"), "{log}");
    let r = result(&root, "t0");
    let b1 = r.metric("latency_ms").expect("latency_ms");
    let b32 = r.metric("latency_ms_b32").expect("latency_ms_b32");
    assert!(b1.is_finite() && b1 > 0.0, "{b1}");
    assert!(
        b32 > b1,
        "32 images ({b32} ms) must take longer than one ({b1} ms)"
    );
    let l = &r.extra["latency"];
    assert_eq!(l["threads"], 1);
    assert!(l["batch1"]["runs"].as_u64().unwrap() >= 7, "{l}");
    assert!(l["batch1"]["min_ms"].as_f64().unwrap() <= b1);
    assert!(l["batch1"]["max_ms"].as_f64().unwrap() >= b1);
    assert!(!r.extra["latency_machine"].as_str().unwrap().is_empty());
    // Measuring with one thread left the training's thread count as it was.
    assert_eq!(r.extra["threads"], 2);
    // --no-latency: nothing measured.
    train("t1", &["--no-latency"]);
    let r1 = result(&root, "t1");
    assert!(r1.metric("latency_ms").is_none() && !r1.extra.contains_key("latency"));

    // nago-latency on the trial, table and JSON: the same protocol, the same order of
    // magnitude on the same machine.
    let lat = env!("CARGO_BIN_EXE_nago-latency");
    let o = Command::new(lat)
        .args(["--run", root.to_str().unwrap(), "--trial", "t0"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        table.contains("median ms") && table.contains("recorded after training"),
        "{table}"
    );
    let o = Command::new(lat)
        .args(["--dir", root.join("trials/t0").to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let again = j["batch1"]["median_ms"].as_f64().unwrap();
    assert!(
        again > b1 / 10.0 && again < b1 * 10.0,
        "recorded {b1} ms, measured again {again} ms"
    );
    assert!(j["batch32"]["median_ms"].as_f64().unwrap() > again);

    // Bad input: exit 1, the file named, nothing written.
    let bad = tmp.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let o = Command::new(lat).arg("--dir").arg(&bad).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("arch.json"), "{e}");
    // Another network's arch.json beside t0's weights.
    let g = nago_space::Generator {
        param_limit: 20_000.0,
        ..Default::default()
    };
    let other = nago_generator::sample(&g, 10, common::fmnist_shape()).unwrap();
    std::fs::write(bad.join("arch.json"), other.to_json()).unwrap();
    std::fs::copy(
        root.join("trials/t0/checkpoint.safetensors"),
        bad.join("checkpoint.safetensors"),
    )
    .unwrap();
    let o = Command::new(lat).arg("--dir").arg(&bad).output().unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("checkpoint.safetensors"), "{e}");
    assert_eq!(std::fs::read_dir(&bad).unwrap().count(), 2);
    let o = Command::new(lat)
        .args(["--run", root.to_str().unwrap(), "--trial", "nope"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no trial `nope`"));
}
