//! nago-propose: the next round of trials.
use anyhow::Result;
use clap::Parser;
use nago_store::StudyDir;
use std::path::PathBuf;
use std::process::ExitCode;

use nago_cli::bo;

/// Propose the next round of a study: promotions (successive halving by non-dominated
/// sorting) first, then new generators at the lowest budget, from the scrambled Sobol design
/// until search.initial_design evaluations exist at the model's budget, then by expected
/// hypervolume improvement on surrogate.json (written by nago-update; never refitted here),
/// batched by kriging believer. Writes trials/<id>/proposal.json for each trial, then
/// rounds/<r>/proposals.json. Deterministic for the same files and seed.
///
/// Pending trials (no result.json yet): by default nothing is proposed and the command says
/// which trials are pending (exit 0); with --allow-pending they are fantasised as pending
/// points so the new round avoids them. A round that exists is not proposed again unless
/// --force (allowed only while none of its trials has started). When the study's
/// max_evaluations are all proposed, nothing is proposed and the output's line starts with
/// `nago-propose: done:` (the search is over; scripts test for that prefix, exit status 0);
/// every other case of nothing to do prints `nago-propose: nothing proposed: <why>`.
///
///   nago-propose --run runs/x
///   nago-propose --run runs/x --final            (K samples of each Pareto generator)
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// The study directory (with study.json).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// The round to propose (default: the one after the latest).
    #[arg(long, value_name = "R")]
    round: Option<u32>,
    /// Propose a round that already exists again (refused once one of its trials started).
    #[arg(long)]
    force: bool,
    /// Propose even though earlier trials have no result yet (they count as pending).
    #[arg(long)]
    allow_pending: bool,
    /// The final round: K architectures (different seeds) of each chosen generator at the
    /// full budget.
    #[arg(long = "final")]
    final_mode: bool,
    /// With --final: the trials whose generators to take (default: the Pareto set).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ID,ID",
        requires = "final_mode"
    )]
    trials: Vec<String>,
    /// With --final: architectures per generator (default: search.final_samples).
    #[arg(long, value_name = "K", requires = "final_mode")]
    samples: Option<u32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    nago_cli::finish("nago-propose", run(args))
}

fn run(args: Args) -> Result<()> {
    let sd = StudyDir::new(&args.run);
    let a = bo::ProposeArgs {
        round: args.round,
        force: args.force,
        allow_pending: args.allow_pending,
        final_mode: args.final_mode,
        final_trials: args.trials,
        samples: args.samples,
    };
    match bo::propose(&sd, &a)? {
        bo::ProposeOutcome::Proposed { round, trials } => {
            println!("nago-propose: round {round}: {} trial(s)", trials.len());
            for (id, origin, budget) in trials {
                println!("  {id}  {origin:<9}  {budget} epochs");
            }
        }
        bo::ProposeOutcome::Nothing(why) => println!("nago-propose: nothing proposed: {why}"),
        bo::ProposeOutcome::Done(why) => println!("nago-propose: done: {why}"),
    }
    Ok(())
}
