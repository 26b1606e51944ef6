//! nago-status: where a study's trials stand, in forms a script reads without parsing JSON.
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use nago_store::StudyDir;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where a study's trials stand (the one rule: a result `ok` at the trial's budget is done; a
/// failure is final unless it is retryable — a signal, a full disk, a crash of a stage, a
/// Slurm job's time limit — with attempts left; anything else is pending, or running while a
/// process holds the trial's lock).
///
///   nago-status trials  --run runs/x [--round R] [--json|--ids]   a line per trial
///   nago-status pending --run runs/x --round R              array indices that need work
///   nago-status done --run runs/x                           exit 0 when the study is done, 5 if not
///   nago-status trial   --run runs/x --round R --index I    the trial id of an array task
///
/// Plain output is one item per line, so shell scripts read it with `read` or `mapfile`.
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Every trial (of one round, with --round): id, round, origin, budget, state.
    Trials {
        /// The study directory.
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// Only this round's trials, in array-index order.
        #[arg(long, value_name = "R")]
        round: Option<u32>,
        /// One JSON object per line instead of columns.
        #[arg(long, conflicts_with = "ids")]
        json: bool,
        /// Only the trial ids, one per line.
        #[arg(long)]
        ids: bool,
    },
    /// The array indices of round R whose trials need work (pending, or a retryable failure),
    /// one per line.
    Pending {
        /// The study directory.
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// The round.
        #[arg(long, value_name = "R")]
        round: u32,
    },
    /// The trial id that array task --index of round R evaluates.
    Trial {
        /// The study directory.
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
        /// The round (default: the latest).
        #[arg(long, value_name = "R")]
        round: Option<u32>,
        /// The array index.
        #[arg(long, value_name = "I")]
        index: usize,
    },
    /// Whether the study is done (its evaluation budget proposed and every trial, the final
    /// round's included, with a final result): prints `done` and exits 0, or prints what is
    /// left and exits 5. Proposes nothing (for scripts that wait on workers).
    Done {
        /// The study directory.
        #[arg(long, value_name = "DIR")]
        run: PathBuf,
    },
}

fn main() -> ExitCode {
    nago_cli::finish("nago-status", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    match args.what {
        What::Done { run } => {
            let sd = StudyDir::new(&run);
            match nago_study::left_to_do(&sd)? {
                None => println!("done"),
                Some(why) => {
                    println!("not done: {why}");
                    std::process::exit(nago_study::exit::PENDING as i32);
                }
            }
        }
        What::Trials {
            run,
            round,
            json,
            ids: ids_only,
        } => {
            let sd = StudyDir::new(&run);
            sd.study()?;
            let ids = match round {
                Some(r) => sd.proposals(r)?.trials,
                None => sd.trial_ids()?,
            };
            for id in ids {
                if ids_only {
                    println!("{id}");
                    continue;
                }
                let t = sd.trial(&id);
                let p = t.proposal().with_context(|| format!("trial {id}"))?;
                let state = t.state(p.budget);
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "trial": id, "round": p.round, "origin": p.origin,
                            "budget": p.budget, "parent": p.parent, "state": state.label(),
                        })
                    );
                } else {
                    println!(
                        "{id}  round {:<4} {:<9} {:>6} epochs  {}",
                        p.round,
                        p.origin.as_str(),
                        p.budget,
                        state.label()
                    );
                }
            }
        }
        What::Pending { run, round } => {
            let sd = StudyDir::new(&run);
            for (i, id) in sd.proposals(round)?.trials.iter().enumerate() {
                let t = sd.trial(id);
                let p = t.proposal().with_context(|| format!("trial {id}"))?;
                if t.state(p.budget).needs_work() {
                    println!("{i}");
                }
            }
        }
        What::Trial { run, round, index } => {
            println!("{}", StudyDir::new(&run).trial_for_index(round, index)?);
        }
    }
    Ok(())
}
