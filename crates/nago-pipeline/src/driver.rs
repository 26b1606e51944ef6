//! The round loop.

use crate::status::{trial_state, TrialState};
use anyhow::{anyhow, bail, Context, Result};
use nago_space::Study;
use nago_store::{atomic_write, StudyDir, TrialResult};
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How to run a search.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// The study directory.
    pub run: PathBuf,
    /// Where the stage binaries are (normally next to `nago-search`).
    pub bin_dir: PathBuf,
    /// Trials trained at once.
    pub parallel: usize,
    /// CPU threads for each training (default: the cores divided among the parallel trials).
    pub threads_per_trial: Option<usize>,
    /// Extra flags for every `nago-train` call (e.g. `--device cuda`).
    pub train_args: Vec<String>,
}

/// Sets `a.b.c = value` in a JSON object, creating objects on the way. `value` is parsed as
/// JSON when it parses (numbers, booleans, arrays), else taken as a string.
fn set_path(doc: &mut serde_json::Value, path: &str, value: &str) -> Result<()> {
    let v: serde_json::Value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    let mut cur = doc;
    // Space keys contain dots themselves: `space.top.n` addresses `space["top.n"]`.
    let parts: Vec<String> = match path.strip_prefix("space.") {
        Some(key) => vec!["space".to_string(), key.to_string()],
        None => path.split('.').map(str::to_string).collect(),
    };
    for (i, p) in parts.iter().enumerate() {
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| anyhow!("--set {path}: `{}` is not an object", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            obj.insert(p.clone(), v);
            return Ok(());
        }
        cur = obj
            .entry(p.clone())
            .or_insert_with(|| serde_json::json!({}));
    }
    Ok(())
}

/// Creates `<run>/study.json` from a preset with `key.path=value` overrides, unless the study
/// exists already (then the preset must not be given with overrides that differ: a running
/// study's definition never changes under it). Returns the study.
pub fn init_study(run: &Path, preset: &Path, overrides: &[(String, String)]) -> Result<Study> {
    let sd = StudyDir::new(run);
    let text = fs::read_to_string(preset)
        .with_context(|| format!("{}: cannot read the preset", preset.display()))?;
    let mut doc: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", preset.display()))?;
    for (k, v) in overrides {
        set_path(&mut doc, k, v)?;
    }
    let mut wanted = serde_json::to_string_pretty(&doc)?;
    wanted.push('\n');
    let study = Study::from_json(&wanted)
        .with_context(|| format!("{} with the overrides given", preset.display()))?;
    if sd.study_path().exists() {
        let existing = sd.study()?;
        if existing != study && !overrides.is_empty() {
            bail!(
                "{} exists and differs from {} with these overrides; resume it without --set, or use another --run directory",
                sd.study_path().display(),
                preset.display()
            );
        }
        return Ok(existing);
    }
    atomic_write(&sd.study_path(), wanted.as_bytes())?;
    Ok(study)
}

/// A lock on one trial, held by the driver and inherited by the stage processes it starts, so
/// that after the driver is killed a restarted driver waits for orphaned stages to finish.
struct TrialLock(File);

impl TrialLock {
    fn acquire(dir: &Path, trial: &str) -> Result<Self> {
        fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let path = dir.join(".lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}", path.display()))?;
        if f.try_lock().is_err() {
            eprintln!("  trial {trial}: waiting for a stage left from an earlier run to stop…");
            f.lock().with_context(|| format!("{}", path.display()))?;
        }
        Ok(TrialLock(f))
    }
}

/// Runs one stage binary with `args`, its output appended to `log`. The child gets SIGTERM
/// if the driver dies (so a killed driver leaves no trainer running unattended) and inherits
/// `keep_fd` (the trial lock).
fn stage(
    bin: &Path,
    args: &[String],
    log: Option<&Path>,
    keep_fd: Option<i32>,
    env: &[(String, String)],
) -> Result<bool> {
    let mut cmd = duct::cmd(bin, args).unchecked();
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    if let Some(log) = log {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("{}", log.display()))?;
        let f2 = f.try_clone()?;
        cmd = cmd.stdout_file(f).stderr_file(f2);
    }
    cmd = cmd.before_spawn(move |c| {
        unsafe {
            c.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if let Some(fd) = keep_fd {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                }
                Ok(())
            });
        }
        Ok(())
    });
    let out = cmd.run().with_context(|| {
        format!(
            "cannot start {} (build it with `make build`)",
            bin.display()
        )
    })?;
    Ok(out.status.success())
}

fn fmt_result(r: &TrialResult) -> String {
    let status = serde_json::to_value(r.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut s = status;
    if let Some(e) = r.val_error {
        s.push_str(&format!(", val_error {e:.4}"));
    }
    if let Some(p) = r.params {
        s.push_str(&format!(", {p} params"));
    }
    if let Some(t) = r.train_seconds {
        s.push_str(&format!(", {t:.0} s"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" ({})", e.lines().next().unwrap_or("")));
    }
    s
}

/// Trains every pending trial of `round`, `parallel` at a time.
fn run_round(sd: &StudyDir, round: u32, opts: &SearchOptions) -> Result<()> {
    let props = sd.proposals(round)?;
    let mut pending = Vec::new();
    for (i, t) in props.trials.iter().enumerate() {
        let p = sd.proposal(t)?;
        if let TrialState::Pending = trial_state(sd, t, p.budget) {
            pending.push((i, t.clone()));
        }
    }
    let total = props.trials.len();
    let already = total - pending.len();
    if pending.is_empty() {
        return Ok(());
    }
    let parallel = opts.parallel.max(1).min(pending.len());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let threads = opts.threads_per_trial.unwrap_or((cores / parallel).max(1));
    eprintln!(
        "round {round}: training {} of {total} trials ({already} done before), {parallel} at a time, {threads} thread(s) each",
        pending.len()
    );
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(already);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let run = opts.run.display().to_string();
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some((index, trial)) = pending.get(k) else {
                    break;
                };
                let dir = sd.trial_dir(trial);
                let res = (|| -> Result<String> {
                    let lock = TrialLock::acquire(&dir, trial)?;
                    let fd = Some(lock.0.as_raw_fd());
                    let base = vec![
                        "--run".to_string(),
                        run.clone(),
                        "--index".to_string(),
                        index.to_string(),
                        "--round".to_string(),
                        round.to_string(),
                    ];
                    let t0 = Instant::now();
                    let ok = stage(
                        &opts.bin_dir.join("nago-generate"),
                        &base,
                        Some(&dir.join("generate.log")),
                        fd,
                        &[],
                    )?;
                    if !ok {
                        let log = fs::read_to_string(dir.join("generate.log")).unwrap_or_default();
                        let r = TrialResult::failure(
                            trial,
                            sd.proposal(trial)?.budget,
                            nago_store::TrialStatus::Crashed,
                            format!(
                                "nago-generate failed: {}",
                                log.lines().last().unwrap_or("")
                            ),
                            false,
                            None,
                        );
                        nago_store::atomic_write_json(&dir.join("result.json"), &r)?;
                        return Ok(fmt_result(&r));
                    }
                    let mut args = base.clone();
                    args.extend(["--threads".to_string(), threads.to_string()]);
                    args.extend(opts.train_args.iter().cloned());
                    let env = vec![("OMP_NUM_THREADS".to_string(), threads.to_string())];
                    stage(
                        &opts.bin_dir.join("nago-train"),
                        &args,
                        Some(&dir.join("train.log")),
                        fd,
                        &env,
                    )?;
                    drop(lock);
                    let p = sd.proposal(trial)?;
                    Ok(match trial_state(sd, trial, p.budget) {
                        TrialState::Done(r) => fmt_result(&r),
                        TrialState::Pending => format!(
                            "interrupted after {:.0} s (no final result; see {})",
                            t0.elapsed().as_secs_f64(),
                            dir.join("train.log").display()
                        ),
                    })
                })();
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                match res {
                    Ok(line) => eprintln!("  [{n}/{total}] trial {trial}: {line}"),
                    Err(e) => {
                        eprintln!("  [{n}/{total}] trial {trial}: error: {e:#}");
                        errors
                            .lock()
                            .expect("not poisoned")
                            .push(format!("{trial}: {e:#}"));
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().expect("not poisoned");
    if !errors.is_empty() {
        bail!(
            "round {round}: {} trial(s) could not be run:\n  {}",
            errors.len(),
            errors.join("\n  ")
        );
    }
    Ok(())
}

/// Runs the search to the end of the study's budget; returns the number of rounds run.
pub fn run_search(opts: &SearchOptions) -> Result<usize> {
    let sd = StudyDir::new(&opts.run);
    let study = sd.study()?;
    let run = opts.run.display().to_string();
    let t0 = Instant::now();
    eprintln!(
        "study `{}` in {}: {} evaluations at most, {} per round, budgets {}–{} epochs",
        study.name,
        run,
        study.search.max_evaluations,
        study.search.batch_size,
        study.budgets.min,
        study.budgets.max
    );
    let mut rounds_run = 0;
    loop {
        let rounds = sd.rounds()?;
        if let Some(&r) = rounds.last() {
            run_round(&sd, r, opts)?;
            rounds_run += 1;
            let ok = stage(
                &opts.bin_dir.join("nago-update"),
                &["--run".into(), run.clone()],
                None,
                None,
                &[],
            )?;
            if !ok {
                bail!("nago-update failed (its message is above); fix the cause and rerun the same command to continue");
            }
            // The current front, as a table (a missing report tool is not worth failing for).
            let best = ["best".to_string(), "--run".into(), run.clone()];
            let _ = stage(&opts.bin_dir.join("nago-report"), &best, None, None, &[]);
        }
        let before = rounds.len();
        let ok = stage(
            &opts.bin_dir.join("nago-propose"),
            &["--run".into(), run.clone()],
            None,
            None,
            &[],
        )?;
        if !ok {
            bail!("nago-propose failed (its message is above); fix the cause and rerun the same command to continue");
        }
        if sd.rounds()?.len() == before {
            // nago-propose proposes nothing when the study is done, or when a trial has no
            // result.json (never after a round this loop trained, but a study directory
            // edited by hand can be so): only the first is the end of the search.
            let missing: Vec<String> = sd
                .trial_ids()?
                .into_iter()
                .filter(|t| !sd.trial_dir(t).join("result.json").exists())
                .collect();
            if !missing.is_empty() {
                bail!(
                    "nago-propose proposed nothing because {} trial(s) have no result.json ({}); train them by hand (README: the stages by hand) and rerun the same command",
                    missing.len(),
                    missing.join(", ")
                );
            }
            break;
        }
        eprintln!(
            "elapsed {:.1} min, {rounds_run} round(s) trained",
            t0.elapsed().as_secs_f64() / 60.0
        );
    }
    eprintln!(
        "search done in {:.1} min",
        t0.elapsed().as_secs_f64() / 60.0
    );
    let report = opts.bin_dir.join("nago-report");
    let html = ["html".to_string(), "--run".into(), run.clone()];
    if stage(&report, &html, None, None, &[]).unwrap_or(false) {
        eprintln!("report: {}", sd.root().join("report/index.html").display());
    }
    eprintln!("the Pareto front:");
    stage(
        &report,
        &["best".into(), "--run".into(), run.clone()],
        None,
        None,
        &[],
    )?;
    eprintln!(
        "each trial: {run}/trials/<id>/ (arch.json, arch.dot, result.json, epochs.parquet, checkpoint.safetensors); all evaluations: {}",
        sd.trials_table().display()
    );
    Ok(rounds_run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_reach_nested_and_space_keys() {
        let mut doc = serde_json::json!({"search": {"batch_size": 4}, "space": {}});
        set_path(&mut doc, "search.batch_size", "8").unwrap();
        set_path(&mut doc, "space.top.n", r#"{"int": [3, 5]}"#).unwrap();
        set_path(&mut doc, "dataset.path", "/data/x").unwrap();
        assert_eq!(doc["search"]["batch_size"], 8);
        assert_eq!(doc["space"]["top.n"]["int"][1], 5);
        assert_eq!(doc["dataset"]["path"], "/data/x");
        assert!(set_path(&mut doc, "search.batch_size.x", "1").is_err());
    }

    #[test]
    fn init_study_writes_once_and_refuses_changed_overrides() {
        let d = tempfile::tempdir().unwrap();
        let preset =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/presets/smoke.json");
        let run = d.path().join("s");
        let s = init_study(
            &run,
            &preset,
            &[("search.max_evaluations".into(), "6".into())],
        )
        .unwrap();
        assert_eq!(s.search.max_evaluations, 6);
        let text = fs::read_to_string(run.join("study.json")).unwrap();
        // Resuming without overrides keeps the study as it is.
        let again = init_study(&run, &preset, &[]).unwrap();
        assert_eq!(again.search.max_evaluations, 6);
        assert_eq!(text, fs::read_to_string(run.join("study.json")).unwrap());
        let err = init_study(
            &run,
            &preset,
            &[("search.max_evaluations".into(), "8".into())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("differs"), "{err}");
        let err = init_study(
            &d.path().join("t"),
            &preset,
            &[("budgets.min".into(), "-1".into())],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("budgets"), "{err:#}");
        assert!(!d.path().join("t/study.json").exists());
    }
}
