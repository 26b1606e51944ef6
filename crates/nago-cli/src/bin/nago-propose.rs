//! nago-propose: the next round of trials.
use anyhow::Result;
use clap::Parser;
use nago_store::StudyDir;
use nago_study::{propose, ProposeArgs, ProposeOutcome};
use std::path::PathBuf;
use std::process::ExitCode;

/// Propose the next round of a study: promotions (successive halving by non-dominated
/// sorting) first, then new generators at the lowest budget, from the scrambled Sobol design
/// until search.initial_design evaluations exist at the model's budget, then by expected
/// hypervolume improvement on surrogate.json (written by nago-update; never refitted here),
/// batched by kriging believer. Writes trials/<id>/proposal.json for each trial, then
/// publishes rounds/<r>/proposals.json with one rename. Deterministic for the same files and
/// seed. Trial directories that a crashed earlier run left unpublished are removed first.
///
/// Trials without a final result (pending, running, or a retryable failure such as a killed
/// task): by default nothing is proposed; with --allow-pending they are fantasised as pending
/// points so the new round avoids them. A round that exists is not proposed again unless
/// --force (allowed only while none of its trials has started).
///
/// Generators whose architecture breaks a constraint known before training (params, MACs,
/// memory, the narrowest layer's channels, search.min_channels) are recorded as `rejected`
/// (result.json says why) and never trained; the round is filled with others. Once the
/// evaluation budget is spent and trained, the study's final round is proposed (study.json
/// `final`). The round's proposals.json records what the proposal saw (result digests,
/// pending trials, the surrogate's digest) for `nago-rerun --proposal`.
///
/// Exit status: 0 a round was proposed; 5 nothing to propose now (trials still need work;
/// they are listed); 6 the study is done (its budget is proposed and every trial has a final
/// result); 4 another nago-propose/nago-update holds the study; 3 a retryable I/O failure
/// (disk full): nothing was published, run it again; 1 bad input.
///
///   nago-propose --run runs/x [--json]
///   nago-propose --run runs/x --final            (K samples of each Pareto generator)
///   nago-propose --run runs/x --allow-pending --max-trials 1   (an asynchronous worker)
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
    /// Propose even though earlier trials have no final result yet (they count as pending).
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
    #[arg(long, value_name = "K", requires = "final_mode", value_parser = clap::value_parser!(u32).range(1..))]
    samples: Option<u32>,
    /// At most N trials in the round (default: search.batch_size); an asynchronous worker
    /// proposes one trial for itself.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_trials: Option<u64>,
    /// Print the outcome as one JSON object on stdout (`outcome`: proposed, pending or done).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.json;
    nago_cli::finish_with(
        "nago-propose",
        run(args).map(|o| {
            print_outcome(&o, json);
            o.exit_code()
        }),
    )
}

fn run(args: Args) -> Result<ProposeOutcome> {
    let sd = StudyDir::new(&args.run);
    let a = ProposeArgs {
        round: args.round,
        force: args.force,
        allow_pending: args.allow_pending,
        final_mode: args.final_mode,
        final_trials: args.trials,
        samples: args.samples,
        max_trials: args.max_trials.map(|n| n as usize),
    };
    propose(&sd, &a)
}

fn print_outcome(o: &ProposeOutcome, json: bool) {
    if json {
        println!("{}", serde_json::to_string(o).expect("serialisable"));
        return;
    }
    match o {
        ProposeOutcome::Proposed {
            round,
            trials,
            rejected,
            ..
        } => {
            println!("nago-propose: round {round}: {} trial(s)", trials.len());
            for t in trials {
                println!(
                    "  {}  {:<9}  {} epochs",
                    t.trial,
                    t.origin.as_str(),
                    t.budget
                );
            }
            if !rejected.is_empty() {
                println!(
                    "nago-propose: {} generator(s) rejected before training (recorded, not trained):",
                    rejected.len()
                );
                for t in rejected {
                    println!("  {}  {}", t.trial, t.rejected.as_deref().unwrap_or(""));
                }
            }
        }
        ProposeOutcome::Pending { message, .. } => {
            println!("nago-propose: nothing proposed: {message}")
        }
        ProposeOutcome::Done { message } => println!("nago-propose: done: {message}"),
    }
}
