//! nago-search: the whole NAGO search on this machine.
use anyhow::{bail, Context, Result};
use clap::Parser;
use nago_pipeline::{init_study, run_search, SearchOptions};
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a multi-objective NAGO search on this machine: rounds of propose → generate → train
/// (several trials at once) → update until the study's budget is spent, then print the
/// Pareto front. Interrupt it at any point and run the same command again to continue.
///
/// Example: nago-search --preset quick --run runs/quick
///          nago-search --preset pipelines/presets/paper.json --run runs/c10 \
///              --set dataset.path=/data/cifar-10-batches-bin --train-arg=--device --train-arg=cuda
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// Study preset: `quick`, `smoke`, `paper` (files under pipelines/presets/) or a path to a
    /// study.json. Used only when the run directory has no study.json yet.
    #[arg(long, default_value = "quick")]
    preset: String,
    /// Study directory.
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// Override a preset field, e.g. `--set search.max_evaluations=40`,
    /// `--set dataset.path=/data/fmnist`, `--set space.param_limit={"log":[1e4,1e5]}`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Trials trained at once.
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// CPU threads per training (default: cores / parallel).
    #[arg(long)]
    threads: Option<usize>,
    /// Extra flag for nago-train (repeat for several), e.g. --train-arg=--device --train-arg=cuda.
    #[arg(long = "train-arg", value_name = "FLAG", allow_hyphen_values = true)]
    train_args: Vec<String>,
    /// Directory of the stage binaries (default: next to this one).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

fn preset_path(name: &str) -> Result<PathBuf> {
    let p = PathBuf::from(name);
    if p.is_file() {
        return Ok(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/presets");
    for dir in [PathBuf::from("pipelines/presets"), root] {
        let f = dir.join(format!("{name}.json"));
        if f.is_file() {
            return Ok(f);
        }
    }
    bail!("--preset {name}: no such file, and not one of quick, smoke, paper")
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
        parallel: args.parallel,
        threads_per_trial: args.threads,
        train_args: args.train_args,
    };
    run_search(&opts)?;
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
