//! The search loop: train what needs training, update, propose, until the study is done.

use anyhow::{anyhow, bail, Context, Result};
use nago_space::Study;
use nago_store::{atomic_write, StudyDir, TrialDir, TrialResult, TrialState};
use nago_study::exit;
use serde::Serialize;
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

/// Where nago-train runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// CUDA when available, else the CPU (nago-train's default).
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("`{s}`: expected auto, cpu, cuda or cuda:N")),
        }
    }
}

/// How to run a search.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    /// The study directory.
    pub run: PathBuf,
    /// Where the stage binaries are (normally next to `nago-search`).
    pub bin_dir: PathBuf,
    /// Trials trained at once: asynchronous workers, or the width of a round's pass.
    pub parallel: usize,
    /// Rounds mode: train a whole round, then update and propose the next (the old
    /// barrier); otherwise asynchronous workers ([`crate::workers`]).
    pub rounds: bool,
    /// CPU threads for each training (default: the cores divided among the parallel trials;
    /// the same for every trial of the search, so that a resumed search trains alike).
    pub threads_per_trial: Option<usize>,
    /// Where nago-train runs.
    pub device: Device,
    /// A per-trial time limit in seconds (the study's own: a trial that reaches it is final).
    pub time_limit: Option<f64>,
}

impl SearchOptions {
    /// The trainer's thread count: fixed for the whole search (CPU results depend on it).
    pub fn threads(&self) -> usize {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        self.threads_per_trial
            .unwrap_or((cores / self.parallel.max(1)).max(1))
    }
}

/// What a search did (`nago-search --json`).
#[derive(Debug, Default, Serialize)]
pub struct SearchSummary {
    /// The study directory.
    pub run: PathBuf,
    /// Training passes run (rounds mode: one per published round or retry; 0 for workers).
    pub passes: usize,
    /// Trial runs started (generate + train).
    pub trial_runs: usize,
    /// Whether nago-propose said the study is done.
    pub done: bool,
    /// Wall-clock minutes.
    pub minutes: f64,
}

/// Sets `a.b.c = value` in a JSON object, creating objects on the way. `value` is parsed as
/// JSON when it is JSON (numbers, booleans, arrays, objects, quoted strings); other text is a
/// string, but text that starts like JSON and does not parse is an error (so a typo in
/// `{"log":[1e4,1e5]` is not silently a string).
fn set_path(doc: &mut serde_json::Value, path: &str, value: &str) -> Result<()> {
    let v: serde_json::Value = match serde_json::from_str(value) {
        Ok(v) => v,
        Err(e) => {
            let t = value.trim_start();
            let json_like = t.starts_with(['{', '[', '"'])
                || t.starts_with(|c: char| c.is_ascii_digit())
                || (t.starts_with('-') && t[1..].starts_with(|c: char| c.is_ascii_digit()));
            if json_like {
                bail!(
                    "--set {path}={value}: not valid JSON ({e}); quote a string as \
                     '{path}=\"…\"'"
                );
            }
            serde_json::Value::String(value.to_string())
        }
    };
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

/// Runs one stage binary with `args`, its output appended to `log`. The child gets SIGTERM
/// if the driver dies (so a killed driver leaves no trainer running unattended) and inherits
/// `keep_fd` (the trial lock). Returns its exit code (None: killed by a signal).
pub(crate) fn stage(
    bin: &Path,
    args: &[String],
    log: Option<&Path>,
    keep_fd: Option<i32>,
    env: &[(String, String)],
) -> Result<Option<i32>> {
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
    Ok(out.status.code())
}

pub(crate) fn fmt_result(r: &TrialResult) -> String {
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
    if r.is_retryable_failure() && !r.is_final() {
        s.push_str(", will be retried");
    }
    s
}

/// One trial to run: its round, array index and id.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub(crate) round: u32,
    pub(crate) index: usize,
    pub(crate) trial: String,
}

/// Every trial of every published round that needs work (pending, running elsewhere, or a
/// retryable failure), oldest round first.
pub(crate) fn unfinished_tasks(sd: &StudyDir) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for round in sd.rounds()? {
        for (index, trial) in sd.proposals(round)?.trials.into_iter().enumerate() {
            let p = sd.proposal(&trial)?;
            if !sd.trial(&trial).state(p.budget).is_final() {
                tasks.push(Task {
                    round,
                    index,
                    trial,
                });
            }
        }
    }
    Ok(tasks)
}

/// What the trial's files say now, for the progress check.
fn fingerprint(sd: &StudyDir, t: &Task) -> String {
    let dir = sd.trial(&t.trial);
    match sd.proposal(&t.trial) {
        Ok(p) => match dir.state(p.budget) {
            TrialState::Failed { result, .. } => format!("failed {}", result.attempts),
            s => s.label().to_string(),
        },
        Err(_) => "unreadable".into(),
    }
}

/// Generates and trains one trial under its lock (waiting for a stage left from an earlier
/// run); returns the line to print.
fn run_task(sd: &StudyDir, t: &Task, opts: &SearchOptions) -> Result<String> {
    let dir: TrialDir = sd.trial(&t.trial);
    let lock = match dir.lock(false)? {
        Some(l) => l,
        None => {
            eprintln!(
                "  trial {}: waiting for a stage left from an earlier run to stop…",
                t.trial
            );
            dir.lock(true)?.expect("a waiting lock")
        }
    };
    run_locked(sd, t, opts, lock, "driver")
}

/// Generates and trains a trial whose lock `lock` is held (and released at the end);
/// `worker` names the caller in `logs/stages.tsv`. Returns the line to print.
pub(crate) fn run_locked(
    sd: &StudyDir,
    t: &Task,
    opts: &SearchOptions,
    lock: std::fs::File,
    worker: &str,
) -> Result<String> {
    let dir: TrialDir = sd.trial(&t.trial);
    let fd = Some(lock.as_raw_fd());
    let run = opts.run.display().to_string();
    let base = vec![
        "--run".to_string(),
        run,
        "--index".to_string(),
        t.index.to_string(),
        "--round".to_string(),
        t.round.to_string(),
    ];
    let t0 = Instant::now();
    let started = SystemTime::now();
    let gen = stage(
        &opts.bin_dir.join("nago-generate"),
        &base,
        Some(&dir.generate_log()),
        fd,
        &[],
    )?;
    log_stage(sd, worker, "generate", &t.trial, started, gen);
    if gen == Some(0) {
        let threads = opts.threads();
        let mut args = base.clone();
        args.extend(["--threads".to_string(), threads.to_string()]);
        match &opts.device {
            Device::Auto => {}
            Device::Cpu => args.extend(["--device".into(), "cpu".into()]),
            Device::Cuda(n) => args.extend(["--device".into(), format!("cuda:{n}")]),
        }
        if let Some(tl) = opts.time_limit {
            args.extend(["--time-limit".into(), tl.to_string()]);
        }
        let env = vec![("OMP_NUM_THREADS".to_string(), threads.to_string())];
        let started = SystemTime::now();
        let code = stage(
            &opts.bin_dir.join("nago-train"),
            &args,
            Some(&dir.train_log()),
            fd,
            &env,
        )?;
        log_stage(sd, worker, "train", &t.trial, started, code);
    }
    drop(lock);
    let p = sd.proposal(&t.trial)?;
    Ok(match dir.state(p.budget) {
        TrialState::Done(r) => fmt_result(&r),
        TrialState::Failed { result, .. } => fmt_result(&result),
        _ => {
            let log = if gen == Some(0) {
                dir.train_log()
            } else {
                dir.generate_log()
            };
            format!(
                "interrupted after {:.0} s without a result (it will be run again; see {})",
                t0.elapsed().as_secs_f64(),
                log.display()
            )
        }
    })
}

/// Appends one line to `logs/stages.tsv` — worker, stage, trial, start and end (Unix
/// seconds), exit code — for `make bench-pipeline`'s account of where the wall time went.
/// Best effort: a line that cannot be written is not worth failing a search for.
pub(crate) fn log_stage(
    sd: &StudyDir,
    worker: &str,
    stage: &str,
    trial: &str,
    started: SystemTime,
    code: Option<i32>,
) {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let dir = sd.root().join("logs");
    let line = format!(
        "{worker}\t{stage}\t{trial}\t{:.3}\t{:.3}\t{}\n",
        secs(started),
        secs(SystemTime::now()),
        code.map_or("signal".into(), |c| c.to_string())
    );
    let _ = fs::create_dir_all(&dir).and_then(|_| {
        use std::io::Write;
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stages.tsv"))?
            .write_all(line.as_bytes())
    });
}

/// Runs `tasks`, `opts.parallel` at a time. Errors of single trials are collected.
fn run_tasks(sd: &StudyDir, tasks: &[Task], opts: &SearchOptions) -> Vec<String> {
    let parallel = opts.parallel.max(1).min(tasks.len().max(1));
    eprintln!(
        "training {} trial(s) (rounds {}), {parallel} at a time, {} thread(s) each",
        tasks.len(),
        round_span(tasks),
        opts.threads()
    );
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(t) = tasks.get(k) else { break };
                let res = run_task(sd, t, opts);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                let total = tasks.len();
                match res {
                    Ok(line) => eprintln!("  [{n}/{total}] trial {}: {line}", t.trial),
                    Err(e) => {
                        eprintln!("  [{n}/{total}] trial {}: error: {e:#}", t.trial);
                        errors
                            .lock()
                            .expect("not poisoned")
                            .push(format!("{}: {e:#}", t.trial));
                    }
                }
            });
        }
    });
    errors.into_inner().expect("not poisoned")
}

fn round_span(tasks: &[Task]) -> String {
    let lo = tasks.iter().map(|t| t.round).min().unwrap_or(0);
    let hi = tasks.iter().map(|t| t.round).max().unwrap_or(0);
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

/// Runs a stage that must succeed (nago-update, nago-propose): its exit code, or an error
/// naming the documented failure.
fn study_stage(opts: &SearchOptions, name: &str, extra: &[&str]) -> Result<i32> {
    let mut args = vec!["--run".to_string(), opts.run.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let started = SystemTime::now();
    let code = stage(&opts.bin_dir.join(name), &args, None, None, &[])?;
    let short = name.trim_start_matches("nago-");
    log_stage(
        &StudyDir::new(&opts.run),
        "driver",
        short,
        "-",
        started,
        code,
    );
    match code {
        Some(c) if c == exit::OK as i32 || (name == "nago-propose" && c >= exit::PENDING as i32) => {
            Ok(c)
        }
        Some(c) if c == exit::LOCKED as i32 => bail!(
            "{name}: another nago-propose/nago-update holds the study (exit {c}); wait for it and rerun the same command"
        ),
        Some(c) if c == exit::IO_RETRY as i32 => bail!(
            "{name}: a file system error, e.g. a full disk (exit {c}; its message is above); free space and rerun the same command"
        ),
        other => bail!(
            "{name} failed ({}; its message is above); fix the cause and rerun the same command to continue",
            other.map_or("killed by a signal".into(), |c| format!("exit {c}"))
        ),
    }
}

/// Runs the search to the end of the study's budget.
pub fn run_search(opts: &SearchOptions) -> Result<SearchSummary> {
    let sd = StudyDir::new(&opts.run);
    let study = sd.study()?;
    let t0 = Instant::now();
    eprintln!(
        "study `{}` in {}: {} evaluations at most, {} per round, budgets {}–{} epochs",
        study.name,
        opts.run.display(),
        study.search.max_evaluations,
        study.search.batch_size,
        study.budgets.min,
        study.budgets.max
    );
    let mut summary = SearchSummary {
        run: opts.run.clone(),
        ..Default::default()
    };
    if !opts.rounds {
        eprintln!(
            "{} asynchronous worker(s), {} thread(s) each",
            opts.parallel.max(1),
            opts.threads()
        );
        let totals = crate::workers::run_workers(opts)?;
        summary.trial_runs = totals.trial_runs.into_inner();
        summary.done = true;
        summary.minutes = t0.elapsed().as_secs_f64() / 60.0;
        eprintln!("search done in {:.1} min", summary.minutes);
        finish_report(&sd, opts)?;
        return Ok(summary);
    }
    loop {
        let tasks = unfinished_tasks(&sd)?;
        let before: Vec<String> = tasks.iter().map(|t| fingerprint(&sd, t)).collect();
        let mut errors = Vec::new();
        if !tasks.is_empty() {
            errors = run_tasks(&sd, &tasks, opts);
            summary.passes += 1;
            summary.trial_runs += tasks.len();
        }
        let progressed = tasks
            .iter()
            .zip(&before)
            .any(|(t, b)| fingerprint(&sd, t) != *b);
        if !sd.rounds()?.is_empty() {
            study_stage(opts, "nago-update", &[])?;
            // The current front, as a table (a missing report tool is not worth failing for).
            let best = [
                "best".to_string(),
                "--run".into(),
                opts.run.display().to_string(),
            ];
            let _ = stage(&opts.bin_dir.join("nago-report"), &best, None, None, &[]);
        }
        if !errors.is_empty() && !progressed {
            bail!(
                "{} trial(s) could not be run:\n  {}",
                errors.len(),
                errors.join("\n  ")
            );
        }
        let code = study_stage(opts, "nago-propose", &[])?;
        if code == exit::DONE as i32 {
            summary.done = true;
            break;
        }
        if code == exit::PENDING as i32 && (tasks.is_empty() || !progressed) {
            bail!(
                "{} trial(s) still have no final result after a pass that changed nothing \
                 (see their train.log / generate.log: {}); fix the cause (e.g. free disk \
                 space) and rerun the same command",
                tasks.len(),
                tasks
                    .iter()
                    .map(|t| t.trial.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        eprintln!(
            "elapsed {:.1} min, {} training pass(es)",
            t0.elapsed().as_secs_f64() / 60.0,
            summary.passes
        );
    }
    summary.minutes = t0.elapsed().as_secs_f64() / 60.0;
    eprintln!("search done in {:.1} min", summary.minutes);
    finish_report(&sd, opts)?;
    Ok(summary)
}

/// The HTML report and the front, at the end of a search.
fn finish_report(sd: &StudyDir, opts: &SearchOptions) -> Result<()> {
    let run = opts.run.display().to_string();
    let report = opts.bin_dir.join("nago-report");
    let html = ["html".to_string(), "--run".into(), run.clone()];
    if stage(&report, &html, None, None, &[]).ok().flatten() == Some(0) {
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
    Ok(())
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
    fn malformed_json_values_are_errors_not_strings() {
        let mut doc = serde_json::json!({"space": {}});
        for bad in [r#"{"log":[1e4,1e5]"#, "[1, 2", "7x", "-3e", r#""unclosed"#] {
            let e = set_path(&mut doc, "space.param_limit", bad).unwrap_err();
            assert!(e.to_string().contains("not valid JSON"), "{bad}: {e}");
        }
        set_path(&mut doc, "dataset.name", "fashion-mnist").unwrap();
        assert_eq!(doc["dataset"]["name"], "fashion-mnist");
    }

    #[test]
    fn device_parses() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("cuda:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert!("gpu".parse::<Device>().is_err());
        assert!("cuda:x".parse::<Device>().is_err());
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
