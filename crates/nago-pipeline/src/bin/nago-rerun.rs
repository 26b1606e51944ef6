//! nago-rerun: re-execute a stored trial and compare.
use anyhow::{bail, Context, Result};
use clap::Parser;
use nago_pipeline::rerun::{compare, default_scratch, prepare_scratch};
use nago_store::StudyDir;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Re-execute a stored trial's generate and train stages from its stored inputs (study.json,
/// proposal.json, and the parent's checkpoint for a promotion) in a scratch study, then
/// compare with what the trial stored: arch.json byte for byte, the status and every metric
/// exactly (on CPU, training is deterministic). Exits 0 when identical, 1 otherwise.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// The study directory.
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// The trial id (its directory name under trials/).
    #[arg(long)]
    trial: String,
    /// Scratch study directory (default: <run>/reruns/<trial>-<n>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Extra flag for nago-train (repeatable), e.g. --train-arg=--threads --train-arg=2.
    #[arg(long = "train-arg", value_name = "FLAG", allow_hyphen_values = true)]
    train_args: Vec<String>,
    /// Directory of the stage binaries (default: next to this one).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

fn run(args: Args) -> Result<bool> {
    let sd = StudyDir::new(&args.run);
    let stored = sd.trial_dir(&args.trial);
    if !stored.join("result.json").is_file() {
        bail!(
            "{}: the trial has no result.json to compare with",
            stored.display()
        );
    }
    let scratch = args
        .out
        .unwrap_or_else(|| default_scratch(&sd, &args.trial));
    let out = prepare_scratch(&sd, &args.trial, &scratch)?;
    let round = sd.proposal(&args.trial)?.round.to_string();
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .context("no binary directory")?
            .to_path_buf(),
    };
    let base = [
        "--run",
        &scratch.display().to_string(),
        "--index",
        "0",
        "--round",
        &round,
    ]
    .map(String::from);
    for (stage, extra) in [
        ("nago-generate", vec![]),
        ("nago-train", args.train_args.clone()),
    ] {
        eprintln!("rerun: {stage} {}", base.join(" "));
        let status = Command::new(bin_dir.join(stage))
            .args(&base)
            .args(&extra)
            .env_remove("SLURM_ARRAY_TASK_ID")
            .status()
            .with_context(|| format!("cannot start {}", bin_dir.join(stage).display()))?;
        if !status.success() && stage == "nago-generate" {
            bail!("{stage} failed on the stored inputs");
        }
    }
    let diffs = compare(&stored, &out.trial_dir(&args.trial))?;
    if diffs.is_empty() {
        println!("identical: trial {} reproduces (arch.json byte for byte, status and metrics exactly); rerun in {}", args.trial, scratch.display());
        Ok(true)
    } else {
        println!(
            "trial {} differs from its rerun in {}:",
            args.trial,
            scratch.display()
        );
        for d in &diffs {
            println!("  {:<14} stored {:<24} rerun {}", d.what, d.stored, d.rerun);
        }
        Ok(false)
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("nago-rerun: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
