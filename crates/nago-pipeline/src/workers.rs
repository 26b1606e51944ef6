//! Asynchronous workers: no round barrier.
//!
//! Each worker, in turn: takes a trial that needs work and that no process holds (an
//! interrupted or retryable one, or a trial another worker proposed), or else records what
//! has finished (`nago-update`) and proposes one trial for itself (`nago-propose
//! --allow-pending --max-trials 1`: the other workers' trials count as pending points);
//! then generates and trains it under the trial's lock; and so on until `nago-propose` says
//! the study is done (its evaluation budget and its final round are trained).
//!
//! Workers coordinate only through the study directory — the study lock that nago-update and
//! nago-propose take, and each trial's lock — so several `nago-search` processes on one
//! study (on one machine, or as the tasks of a Slurm array on a shared file system) are
//! simply more workers. Every stage is a child process with the flags a person would type.

use crate::driver::{log_stage, run_locked, stage, unfinished_tasks, SearchOptions, Task};
use anyhow::{bail, Context, Result};
use nago_store::StudyDir;
use nago_study::exit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// How long a worker waits for the study lock (another worker's update or proposal) before
/// it gives up: a lock held this long is a stage that hangs.
const LOCK_PATIENCE: Duration = Duration::from_secs(600);
/// How long a worker polls while nothing is left to propose and another process holds every
/// unfinished trial (their results decide what comes next).
const POLL: Duration = Duration::from_millis(500);
/// Polls without any process holding an unfinished trial after which the study is stuck.
const STUCK_POLLS: usize = 120;

/// What the workers did.
#[derive(Debug, Default)]
pub struct WorkerTotals {
    /// Trial runs started (generate + train).
    pub trial_runs: AtomicUsize,
    /// Trials proposed by these workers.
    pub proposed: AtomicUsize,
}

/// The first trial of a published round that needs work and that no process holds, locked
/// for this worker.
fn claim(sd: &StudyDir) -> Result<Option<(Task, std::fs::File)>> {
    for t in unfinished_tasks(sd)? {
        if let Some(lock) = sd.trial(&t.trial).lock(false)? {
            // The state may have changed between the listing and the lock.
            let p = sd.proposal(&t.trial)?;
            if sd.trial(&t.trial).state(p.budget).is_final() {
                continue;
            }
            return Ok(Some((t, lock)));
        }
    }
    Ok(None)
}

/// Runs `nago-update` or `nago-propose` (with `extra` flags), waiting while another worker
/// holds the study lock. Returns the exit code and stdout.
fn study_call(
    opts: &SearchOptions,
    worker: &str,
    name: &str,
    extra: &[&str],
) -> Result<(i32, String)> {
    let sd = StudyDir::new(&opts.run);
    let mut args = vec!["--run".to_string(), opts.run.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let t0 = Instant::now();
    let mut wait = Duration::from_millis(50);
    loop {
        let started = SystemTime::now();
        let out = duct::cmd(opts.bin_dir.join(name), &args)
            .unchecked()
            .stdout_capture()
            .stderr_capture()
            .run()
            .with_context(|| format!("cannot start {name} (build it with `make build`)"))?;
        let code = out.status.code();
        log_stage(
            &sd,
            worker,
            name.trim_start_matches("nago-"),
            "-",
            started,
            code,
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        // Waiting for the lock is routine between workers; anything else is worth showing.
        if code != Some(exit::LOCKED as i32) && !out.stderr.is_empty() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        match code {
            Some(c) if c == exit::LOCKED as i32 && t0.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Some(c)
                if c == exit::OK as i32
                    || (name == "nago-propose"
                        && (c == exit::PENDING as i32 || c == exit::DONE as i32)) =>
            {
                return Ok((c, stdout))
            }
            Some(c) if c == exit::IO_RETRY as i32 => bail!(
                "{name}: a file system error, e.g. a full disk (exit {c}; its message is \
                 above); free space and rerun the same command"
            ),
            other => bail!(
                "{name} failed ({}; its message is above); fix the cause and rerun the same \
                 command to continue",
                other.map_or("killed by a signal".into(), |c| format!("exit {c}"))
            ),
        }
    }
}

/// One worker's loop; `name` labels its lines (`w1`, `w2`, … or a Slurm task).
pub fn worker_loop(opts: &SearchOptions, name: &str, totals: &WorkerTotals) -> Result<()> {
    let sd = StudyDir::new(&opts.run);
    let mut idle_polls = 0;
    loop {
        if let Some((t, lock)) = claim(&sd)? {
            idle_polls = 0;
            totals.trial_runs.fetch_add(1, Ordering::SeqCst);
            let p = sd.proposal(&t.trial)?;
            eprintln!(
                "  [{name}] trial {} ({}, {} epochs): training",
                t.trial, p.origin, p.budget
            );
            let line = run_locked(&sd, &t, opts, lock, name)?;
            eprintln!("  [{name}] trial {}: {line}", t.trial);
            continue;
        }
        study_call(opts, name, "nago-update", &[])?;
        let (code, out) = study_call(
            opts,
            name,
            "nago-propose",
            &["--allow-pending", "--max-trials", "1", "--json"],
        )?;
        if code == exit::DONE as i32 {
            return Ok(());
        }
        if code == exit::OK as i32 {
            totals.proposed.fetch_add(1, Ordering::SeqCst);
            idle_polls = 0;
            // The next pass claims it (or another worker already has: then it proposes again).
            continue;
        }
        // Pending: nothing can be proposed until trials that others hold finish.
        let held = unfinished_tasks(&sd)?
            .iter()
            .any(|t| sd.trial(&t.trial).is_locked());
        idle_polls = if held { 0 } else { idle_polls + 1 };
        if idle_polls > STUCK_POLLS {
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
            bail!(
                "nothing to propose and no process holds the unfinished trials: {}",
                v["message"].as_str().unwrap_or(out.trim())
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `opts.parallel` workers in this process until the study is done.
pub fn run_workers(opts: &SearchOptions) -> Result<WorkerTotals> {
    let totals = WorkerTotals::default();
    let label = std::env::var("SLURM_ARRAY_TASK_ID")
        .map(|t| format!("task{t}-"))
        .unwrap_or_default();
    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.parallel.max(1))
            .map(|i| {
                let name = format!("{label}w{}", i + 1);
                let totals = &totals;
                s.spawn(move || {
                    worker_loop(opts, &name, totals).map_err(|e| format!("{name}: {e:#}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().expect("a worker does not panic").err())
            .collect()
    });
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    // The last word: the table and front with every result in (idempotent).
    let _ = stage(
        &opts.bin_dir.join("nago-update"),
        &["--run".to_string(), opts.run.display().to_string()],
        None,
        None,
        &[],
    );
    Ok(totals)
}
