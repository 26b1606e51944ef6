//! nago-update: the trial table, the surrogate and the Pareto front from the trial results.
use anyhow::Result;
use clap::Parser;
use nago_store::StudyDir;
use std::path::PathBuf;
use std::process::ExitCode;

/// Scan a study's trial directories and write, atomically: trials.parquet (one row per
/// evaluation, merged with the existing table: new and changed results added, no row ever
/// dropped), surrogate.json (one GP per objective plus a feasibility model, fitted on the
/// largest budget with enough data) and pareto.parquet (the feasible non-dominated set).
/// The fit is warm-started from the previous surrogate.json's hyperparameters (recorded in
/// the new file as `warm_started_from`); on the same observations again it starts where that
/// fit started, so rerunning nago-update writes the same files.
/// Unreadable trial files are reported on stderr, naming the file. An unreadable
/// trials.parquet or surrogate.json is an error (nothing is written). Refuses to run while
/// another nago-propose or nago-update holds the study.
///
/// Exit status: 0 written; 4 another nago-propose/nago-update holds the study; 3 a retryable
/// I/O failure (disk full; the old files are intact); 1 bad input.
///
///   nago-update --run runs/x [--json] [--warm-start FILE]
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// The study directory (with study.json).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Seed for the surrogate fit's random restarts (default: derived from the study seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Warm-start the fit from this file instead of the previous surrogate.json: a JSON
    /// object as in surrogate.json's `warm_started_from`, or `null` for a cold fit (what
    /// nago-rerun passes to refit a recorded surrogate exactly).
    #[arg(long, value_name = "FILE")]
    warm_start: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    nago_cli::finish_with("nago-update", run(args).map(|()| 0))
}

fn run(args: Args) -> Result<()> {
    let sd = StudyDir::new(&args.run);
    let warm = match &args.warm_start {
        Some(f) => nago_study::WarmInput::from_file(f)?,
        None => nago_study::WarmInput::Previous,
    };
    let s = nago_study::update(&sd, args.seed, &warm)?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(());
    }
    println!(
        "nago-update: {} rows ({} new, {} changed, {} kept from the old table), {} pending; \
         front {} points at {} epochs, hypervolume {} (observed values; the model's \
         posterior means: {})",
        s.rows,
        s.new,
        s.changed,
        s.kept,
        s.unfinished.len(),
        s.front,
        s.budget.map_or("-".into(), |b| b.to_string()),
        s.hypervolume.map_or("-".into(), |h| format!("{h:.6}")),
        s.model_hypervolume
            .map_or("-".into(), |h| format!("{h:.6}"))
    );
    Ok(())
}
