//! nago-update: the trial table, the surrogate and the Pareto front from the trial results.
use anyhow::Result;
use clap::Parser;
use nago_store::StudyDir;
use std::path::PathBuf;
use std::process::ExitCode;

use nago_cli::bo;

/// Scan a study's trial directories and write, atomically: trials.parquet (one row per
/// evaluation, merged with the existing table: new and changed results added, no row ever
/// dropped), surrogate.json (one GP per objective plus a feasibility model, fitted on the
/// largest budget with enough data) and pareto.parquet (the feasible non-dominated set).
/// Unreadable trial files are reported on stderr and skipped. Refuses to run while another
/// nago-propose or nago-update holds the study.
///
///   nago-update --run runs/x
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// The study directory (with study.json).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Seed for the surrogate fit's random restarts (default: derived from the study seed).
    #[arg(long)]
    seed: Option<u64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    nago_cli::finish("nago-update", run(args))
}

fn run(args: Args) -> Result<()> {
    let sd = StudyDir::new(&args.run);
    let s = bo::update(&sd, args.seed)?;
    println!(
        "nago-update: {} rows ({} new, {} changed, {} kept from the old table), {} pending; \
         front {} points at {} epochs, hypervolume {}",
        s.rows,
        s.new,
        s.changed,
        s.kept,
        s.pending,
        s.front,
        s.budget.map_or("-".into(), |b| b.to_string()),
        s.hypervolume.map_or("-".into(), |h| format!("{h:.6}"))
    );
    Ok(())
}
