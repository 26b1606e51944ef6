//! The binary's trial lifecycle: flag validation and exit codes, --device, settings recorded
//! in the checkpoint and reused on resume, SIGKILL at any moment, a full disk.

mod common;

use nago_store::{TrialResult, TrialStatus};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

const BIN: &str = env!("CARGO_BIN_EXE_nago-train");

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    arch: PathBuf,
    data: PathBuf,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let data = root.join("data");
    common::write_synthetic_idx(&data, 500, 100, 10);
    let arch = root.join("arch.json");
    std::fs::write(
        &arch,
        common::small_arch(3, common::fmnist_shape()).to_json(),
    )
    .unwrap();
    Setup {
        _tmp: tmp,
        root,
        arch,
        data,
    }
}

impl Setup {
    /// The direct form on the synthetic data, no settings.
    fn bare(&self, out: &Path, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(["--arch", self.arch.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .args(["--dataset", "idx", "--data", self.data.to_str().unwrap()])
            .args(extra);
        c
    }
    /// The direct form on the synthetic data (100 validation images, 300 to train on).
    fn cmd(&self, out: &Path, extra: &[&str]) -> Command {
        let mut c = self.bare(out, &[]);
        c.args([
            "--validation",
            "100",
            "--train-subset",
            "300",
            "--batch-size",
            "50",
        ])
        .args([
            "--test-subset",
            "100",
            "--schedule-epochs",
            "3",
            "--no-progress",
        ])
        .args(extra);
        c
    }
    fn run(&self, out: &Path, extra: &[&str]) -> Output {
        self.cmd(out, extra).output().unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn result(dir: &Path) -> TrialResult {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

fn metrics(r: &TrialResult) -> Vec<Option<f64>> {
    vec![
        r.val_accuracy,
        r.test_accuracy,
        r.extra["val_loss"].as_f64(),
        r.extra["test_loss"].as_f64(),
        r.epochs_done,
    ]
}

fn curve(dir: &Path) -> Vec<[f64; 6]> {
    nago_table::read_epochs(&dir.join("epochs.parquet"))
        .unwrap()
        .iter()
        .map(|r| {
            [
                r.epoch as f64,
                r.train_loss,
                r.train_accuracy,
                r.val_loss,
                r.val_accuracy,
                r.lr,
            ]
        })
        .collect()
}

#[test]
fn bad_flags_exit_1_naming_the_flag_and_write_nothing() {
    let s = setup();
    let out = s.root.join("never");
    let cases: &[(&[&str], &str)] = &[
        (&["--epochs", "1", "--lr", "NaN"], "--lr"),
        (&["--epochs", "1", "--lr=-1"], "--lr"),
        (&["--epochs", "1", "--lr", "0"], "--lr"),
        (&["--epochs", "1", "--batch-size", "0"], "--batch-size"),
        (&["--epochs", "1", "--threads", "0"], "--threads"),
        (&["--epochs", "1", "--momentum", "1"], "--momentum"),
        (&["--epochs", "1", "--momentum=-0.1"], "--momentum"),
        (&["--epochs", "1", "--weight-decay=-1e-4"], "--weight-decay"),
        (
            &["--epochs", "1", "--label-smoothing", "1.0"],
            "--label-smoothing",
        ),
        (&["--epochs", "0"], "--epochs"),
        (&["--epochs", "1", "--time-limit", "0"], "--time-limit"),
        (&["--epochs", "1", "--time-limit=-5"], "--time-limit"),
        (&["--epochs", "1", "--deadline", "0"], "--deadline"),
        (&["--epochs", "1", "--validation", "0"], "--validation"),
        (&["--epochs", "1", "--train-subset", "0"], "--train-subset"),
        (
            &["--epochs", "1", "--schedule-epochs", "inf"],
            "--schedule-epochs",
        ),
        (&["--epochs", "1", "--device", "cuda:x"], "--device"),
        (&["--epochs", "1", "--device", "tpu"], "--device"),
        (&["--epochs", "1", "--no-such-flag"], "--no-such-flag"),
        // Splits that do not fit the dataset (500 training images).
        (&["--epochs", "1", "--validation", "500"], "validation"),
        (
            &[
                "--epochs",
                "1",
                "--validation",
                "100",
                "--train-subset",
                "401",
            ],
            "train_subset",
        ),
    ];
    for (args, needle) in cases {
        let o = s.bare(&out, args).output().unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!out.exists(), "{args:?}: nothing written");
    }
    for flag in ["--help", "--version"] {
        let o = Command::new(BIN).arg(flag).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{flag}");
    }
}

#[test]
fn device_flag() {
    let s = setup();
    let out = s.root.join("cpu");
    let o = s.run(
        &out,
        &["--epochs", "1", "--device", "cpu", "--threads", "1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(result(&out).extra["device"], "cpu");
    // --cpu is an alias.
    let out = s.root.join("cpu-alias");
    let o = s.run(&out, &["--epochs", "1", "--cpu", "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(result(&out).extra["device"], "cpu");
    if !tch::Cuda::is_available() {
        let out = s.root.join("cuda");
        for d in ["cuda", "cuda:0", "cuda:3"] {
            let o = s.run(&out, &["--epochs", "1", "--device", d]);
            assert_eq!(o.status.code(), Some(1), "{d}");
            assert!(stderr(&o).contains("no CUDA device"), "{d}: {}", stderr(&o));
            assert!(!out.exists());
        }
    }
}

#[test]
fn a_resume_uses_the_recorded_thread_count() {
    let s = setup();
    let one_go = s.root.join("one-go");
    let o = s.run(&one_go, &["--epochs", "2", "--threads", "1", "--cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = result(&one_go);
    assert_eq!(a.extra["threads"], 1);
    // One epoch with 1 thread, then continued to 2 epochs by a caller asking for 2 threads.
    let split = s.root.join("split");
    let o = s.run(&split, &["--epochs", "1", "--threads", "1", "--cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = s.run(&split, &["--epochs", "2", "--threads", "2", "--cpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("threads: the continued checkpoint was trained with 1"),
        "{}",
        stderr(&o)
    );
    let b = result(&split);
    assert_eq!(b.extra["start_epoch"], 1);
    assert_eq!(b.extra["threads"], 1, "the recorded thread count is used");
    assert_eq!(metrics(&b), metrics(&a));
    assert_eq!(curve(&split), curve(&one_go));
    // Other recorded settings are reused too (a note names them).
    let lr = s.root.join("lr");
    let o = s.run(&lr, &["--epochs", "1", "--threads", "1", "--cpu"]);
    assert!(o.status.success());
    let o = s.run(
        &lr,
        &["--epochs", "2", "--threads", "1", "--cpu", "--lr", "0.5"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("lr: the continued checkpoint"),
        "{}",
        stderr(&o)
    );
    assert_eq!(metrics(&result(&lr)), metrics(&a));
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn kill9(child: &mut std::process::Child) {
    let _ = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

#[test]
fn sigkill_at_any_moment_then_resume_equals_an_undisturbed_run() {
    let s = setup();
    let args = ["--epochs", "3", "--threads", "1", "--cpu"];
    let calm = s.root.join("calm");
    let o = s.run(&calm, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = result(&calm);
    let out = s.root.join("killed");
    // Kill -9 right after (or shortly after) a checkpoint or an epochs.parquet rename, and
    // once during start-up; each run resumes the previous one's last checkpoint.
    let moments: [(Option<&str>, u64); 6] = [
        (None, 150),
        (Some("checkpoint.safetensors"), 0),
        (Some("epochs.parquet"), 0),
        (Some("checkpoint.safetensors"), 15),
        (Some("epochs.parquet"), 40),
        (Some("checkpoint.safetensors"), 2),
    ];
    let mut kills = 0;
    for (watch, delay) in moments {
        if out.join("result.json").is_file() {
            break;
        }
        let before = watch.and_then(|w| mtime(&out.join(w)));
        let mut child = s.cmd(&out, &args).stderr(Stdio::null()).spawn().unwrap();
        let t0 = Instant::now();
        let mut exited = false;
        if let Some(w) = watch {
            loop {
                if mtime(&out.join(w)) != before {
                    break;
                }
                if child.try_wait().unwrap().is_some() || t0.elapsed() > Duration::from_secs(120) {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        if exited {
            continue;
        }
        std::thread::sleep(Duration::from_millis(delay));
        kill9(&mut child);
        kills += 1;
        // Whatever was left is either nothing or a complete checkpoint.
        if out.join("checkpoint.safetensors").exists() {
            nago_train::checkpoint::load_meta(&out).unwrap();
        }
    }
    assert!(kills >= 4, "only {kills} kills landed");
    let o = s.run(&out, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = result(&out);
    assert_eq!(got.status, TrialStatus::Ok);
    assert_eq!(metrics(&got), metrics(&want));
    assert_eq!(curve(&out), curve(&calm));
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_exits_3_and_leaves_the_previous_state() {
    let s = setup();
    let mnt = s.root.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=8m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .status()
        .map(|st| st.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _guard = Mount(mnt.clone());
    let out = mnt.join("trial");
    let args1 = ["--epochs", "1", "--threads", "1", "--cpu"];
    let o = s.run(&out, &args1);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = result(&out);
    let ckpt = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let epochs = std::fs::read(out.join("epochs.parquet")).unwrap();
    // Fill the disk.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let args2 = ["--epochs", "2", "--threads", "1", "--cpu"];
    let o = s.run(&out, &args2);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("checkpoint"), "{}", stderr(&o));
    // The previous state, untouched, and nothing half-written.
    assert_eq!(result(&out), before);
    assert_eq!(
        std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        ckpt
    );
    assert_eq!(std::fs::read(out.join("epochs.parquet")).unwrap(), epochs);
    let names: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
    // Space again: the retry continues the epoch-1 checkpoint.
    std::fs::remove_file(&filler).unwrap();
    let o = s.run(&out, &args2);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = result(&out);
    assert_eq!(r.status, TrialStatus::Ok);
    assert_eq!(r.extra["start_epoch"], 1);
}
