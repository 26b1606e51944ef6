//! nago-search: the whole NAGO search on this machine.
use anyhow::{bail, Context, Result};
use clap::Parser;
use nago_pipeline::{init_study, run_search, Device, SearchOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a multi-objective NAGO search on this machine with --parallel asynchronous workers:
/// each, when free, takes a trial that needs work or records what finished (update) and
/// proposes one trial for itself (the others' count as pending), then generates and trains
/// it — no round barrier — until the study is done (its budget and final round are trained);
/// then print the final round's results and the Pareto front. Several nago-search processes
/// on one study are simply more workers (e.g. the tasks of a Slurm array). With --rounds: the
/// round barrier (train a whole round of search.batch_size, then update and propose).
/// Interrupt it at any point and run the same command again to continue; a trial whose run
/// failed for a retryable cause (a signal, a full disk, a crash of a stage) is run again.
///
/// Exit status: 0 the study is done; 1 an error (the message says what to fix; rerun the same
/// command afterwards).
///
/// Example: nago-search --preset quick --run runs/quick
///          nago-search --preset pipelines/presets/paper.json --run runs/c10 \
///              --set dataset.path=/data/cifar-10-batches-bin --device cuda --parallel 1
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// Study preset: `quick`, `standard`, `smoke`, `paper` (files under pipelines/presets/) or a
    /// path to a study.json. Used only when the run directory has no study.json yet.
    #[arg(long, default_value = "quick")]
    preset: String,
    /// Study directory.
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// Override a preset field, e.g. `--set search.max_evaluations=40`,
    /// `--set dataset.path=/data/fmnist`, `--set space.param_limit={"log":[1e4,1e5]}`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Trials trained at once (asynchronous workers; with --rounds, a round's width).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    parallel: u64,
    /// Rounds mode: propose search.batch_size trials, train them all, update, repeat. A
    /// whole study is then the same bytes whatever --parallel; with workers, only a study
    /// run with --parallel 1 is.
    #[arg(long)]
    rounds: bool,
    /// CPU threads per training (default: cores / parallel, the same for every trial).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// Where to train: auto (CUDA when present, else CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: Device,
    /// A time limit per trial run in seconds; a trial that reaches it is recorded as
    /// `time_limit` (final).
    #[arg(long, value_name = "S", value_parser = positive_seconds)]
    time_limit: Option<f64>,
    /// Print a JSON summary on stdout at the end (run, passes, trial runs, done, minutes).
    #[arg(long)]
    json: bool,
    /// Directory of the stage binaries (default: next to this one).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}`: expected a positive number of seconds")),
    }
}

fn preset_path(name: &str) -> Result<PathBuf> {
    let p = PathBuf::from(name);
    if p.is_file() {
        return Ok(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/presets");
    let dirs = [PathBuf::from("pipelines/presets"), root];
    for dir in &dirs {
        let f = dir.join(format!("{name}.json"));
        if f.is_file() {
            return Ok(f);
        }
    }
    // The presets there are, read from the directories searched (a new one is listed too).
    let mut known: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "json").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    known.sort();
    known.dedup();
    if known.is_empty() {
        bail!(
            "--preset {name}: no such file, and no preset directory (pipelines/presets) here or \
             beside the sources; give the path of a study file"
        )
    }
    bail!(
        "--preset {name}: no such file, and not a preset (known: {}; in pipelines/presets)",
        known.join(", ")
    )
}

fn run(args: Args) -> Result<()> {
    let preset = preset_path(&args.preset)?;
    let run = args
        .run
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&args.preset));
    let overrides: Vec<(String, String)> = args
        .set
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--set {kv}: expected KEY=VALUE"))
        })
        .collect::<Result<_>>()?;
    init_study(&run, &preset, &overrides)?;
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("no binary directory")?
            .to_path_buf(),
    };
    let opts = SearchOptions {
        run,
        bin_dir,
        parallel: args.parallel as usize,
        rounds: args.rounds,
        threads_per_trial: args.threads.map(|t| t as usize),
        device: args.device,
        time_limit: args.time_limit,
    };
    let summary = run_search(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nago-search: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
