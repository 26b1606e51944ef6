//! nago-rerun: re-execute a stored trial and compare.
use anyhow::{bail, Context, Result};
use clap::Parser;
use nago_pipeline::rerun::{
    compare, compare_files, current_warm_start, default_scratch, prepare_round_scratch,
    prepare_scratch, write_warm_start,
};
use nago_store::StudyDir;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Re-execute stored work in a scratch study and compare with what was stored. Exits 0 when
/// identical, 1 otherwise.
///
/// --trial ID   generate and train one trial from its stored inputs (study.json, proposal.json,
///              the parent's checkpoint for a promotion): arch.json byte for byte, and every
///              field of result.json (status, metrics, losses, settings) exactly but the
///              wall-clock timings (training on CPU is deterministic).
/// --round N    update and propose from the state before round N (the earlier rounds' proposals
///              and results, the recorded reference point): the round's proposals.json and
///              every proposal.json byte for byte.
/// --proposal ID   rebuild exactly what the proposal of trial ID's round saw (the results its
///              surrogate was fitted on and the others, each checked by digest; the pending
///              trials), refit and propose: surrogate.json's digest, proposals.json and every
///              proposal.json byte for byte (--round N does this too for rounds that recorded it)
/// --update     update from every stored trial: trials.parquet, pareto.parquet and
///              surrogate.json byte for byte.
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// The study directory.
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// The trial id (its directory name under trials/).
    #[arg(long, required_unless_present_any = ["round", "update", "proposal"], conflicts_with_all = ["round", "update", "proposal"])]
    trial: Option<String>,
    /// Rerun the proposal that made this trial (its round): rebuild exactly what it saw
    /// (the results its surrogate was fitted on, checked by digest; the other results; the
    /// pending trials), refit, propose, compare bytes. Works for asynchronous workers'
    /// one-trial proposals as for whole rounds.
    #[arg(long, value_name = "ID", conflicts_with_all = ["round", "update"])]
    proposal: Option<String>,
    /// Rerun update and propose for this round.
    #[arg(long, value_name = "N", conflicts_with = "update")]
    round: Option<u32>,
    /// Rerun update over every stored trial.
    #[arg(long)]
    update: bool,
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

fn bin_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(d) => Ok(d),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("no binary directory")?
            .to_path_buf()),
    }
}

fn stage(bin_dir: &std::path::Path, stage: &str, args: &[String]) -> Result<bool> {
    eprintln!("rerun: {stage} {}", args.join(" "));
    let status = Command::new(bin_dir.join(stage))
        .args(args)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .status()
        .with_context(|| format!("cannot start {}", bin_dir.join(stage).display()))?;
    Ok(status.success())
}

fn report(
    what: &str,
    scratch: &std::path::Path,
    diffs: &[nago_pipeline::rerun::Difference],
) -> bool {
    if diffs.is_empty() {
        println!(
            "identical: {what} reproduces; rerun in {}",
            scratch.display()
        );
        true
    } else {
        println!("{what} differs from its rerun in {}:", scratch.display());
        for d in diffs {
            println!("  {:<14} stored {:<24} rerun {}", d.what, d.stored, d.rerun);
        }
        false
    }
}

/// `--proposal ID` (and `--round N` for a round that recorded what it saw).
fn run_proposal(args: &Args, sd: &StudyDir, round: u32) -> Result<bool> {
    let label = format!("proposal-r{round}");
    let scratch = args
        .out
        .clone()
        .unwrap_or_else(|| default_scratch(sd, &label));
    let s = nago_pipeline::rerun::ProposalScratch::fit(sd, round, &scratch)?;
    let bins = bin_dir(args.bin_dir.clone())?;
    let run = vec!["--run".to_string(), scratch.display().to_string()];
    let mut diffs = Vec::new();
    match &s.seen.surrogate {
        Some(digest) => {
            let warm = write_warm_start(&s.out, s.seen.warm_start.as_ref())?;
            let mut update = run.clone();
            update.extend(["--warm-start".to_string(), warm.display().to_string()]);
            if !stage(&bins, "nago-update", &update)? {
                bail!("nago-update failed on the stored inputs");
            }
            let got = nago_store::file_digest(&s.out.surrogate_path()).unwrap_or_default();
            if &got != digest {
                diffs.push(nago_pipeline::rerun::Difference {
                    what: "surrogate.json".into(),
                    stored: format!("sha256 {}", &digest[..12.min(digest.len())]),
                    rerun: format!("sha256 {}", &got[..12.min(got.len())]),
                });
            }
        }
        None => {
            let _ = std::fs::remove_file(s.out.surrogate_path());
        }
    }
    s.complete(sd)?;
    let stored = sd.proposals(round)?;
    let trainable = stored
        .trials
        .iter()
        .filter(|t| {
            !sd.trial(t)
                .result()
                .ok()
                .flatten()
                .is_some_and(|r| r.status == nago_store::TrialStatus::Rejected)
        })
        .count();
    let mut prop = run.clone();
    prop.extend([
        "--allow-pending".to_string(),
        "--max-trials".to_string(),
        trainable.max(1).to_string(),
    ]);
    if !stage(&bins, "nago-propose", &prop)? {
        bail!("nago-propose failed on the stored inputs");
    }
    let mut files = vec![PathBuf::from("rounds")
        .join(
            sd.proposals_path(round)
                .parent()
                .unwrap()
                .file_name()
                .unwrap(),
        )
        .join("proposals.json")];
    for t in &stored.trials {
        files.push(PathBuf::from("trials").join(t).join("proposal.json"));
        if sd
            .trial(t)
            .result()
            .ok()
            .flatten()
            .is_some_and(|r| r.status == nago_store::TrialStatus::Rejected)
        {
            files.push(PathBuf::from("trials").join(t).join("result.json"));
        }
    }
    diffs.extend(compare_files(sd.root(), s.out.root(), &files));
    Ok(report(
        &format!("the proposal of round {round}"),
        &scratch,
        &diffs,
    ))
}

fn run_study_level(args: &Args, sd: &StudyDir) -> Result<bool> {
    if let Some(r) = args.round {
        if sd.proposals(r)?.seen.is_some() {
            return run_proposal(args, sd, r);
        }
    }
    let label = match args.round {
        Some(r) => format!("round-{r}"),
        None => "update".to_string(),
    };
    let scratch = args
        .out
        .clone()
        .unwrap_or_else(|| default_scratch(sd, &label));
    let out = prepare_round_scratch(sd, args.round, &scratch)?;
    let bins = bin_dir(args.bin_dir.clone())?;
    let run = vec!["--run".to_string(), scratch.display().to_string()];
    // The last update began from what today's surrogate.json records; a round that did not
    // record what it saw was proposed before fits were warm-started (a cold fit).
    let warm = match args.round {
        None => current_warm_start(sd)?,
        Some(_) => None,
    };
    let mut update = run.clone();
    update.extend([
        "--warm-start".to_string(),
        write_warm_start(&out, warm.as_ref())?.display().to_string(),
    ]);
    if !stage(&bins, "nago-update", &update)? {
        bail!("nago-update failed on the stored inputs");
    }
    let files: Vec<PathBuf> = match args.round {
        None => ["trials.parquet", "pareto.parquet", "surrogate.json"]
            .iter()
            .map(PathBuf::from)
            .collect(),
        Some(r) => {
            let stored = sd.proposals(r)?;
            // A final round is proposed by plain nago-propose once the budget is spent (the
            // search's own); one proposed by hand with --final flags is rerun by hand.
            if !stage(&bins, "nago-propose", &run)? {
                bail!("nago-propose failed on the stored inputs");
            }
            let mut f = vec![out
                .proposals_path(r)
                .strip_prefix(out.root())?
                .to_path_buf()];
            f.extend(
                stored
                    .trials
                    .iter()
                    .map(|t| PathBuf::from("trials").join(t).join("proposal.json")),
            );
            // A trial rejected before training: its result.json is nago-propose's output too.
            f.extend(
                stored
                    .trials
                    .iter()
                    .filter(|t| {
                        sd.trial(t)
                            .result()
                            .ok()
                            .flatten()
                            .is_some_and(|res| res.status == nago_store::TrialStatus::Rejected)
                    })
                    .map(|t| PathBuf::from("trials").join(t).join("result.json")),
            );
            f
        }
    };
    Ok(report(
        &label,
        &scratch,
        &compare_files(sd.root(), out.root(), &files),
    ))
}

fn run(args: Args) -> Result<bool> {
    let sd = StudyDir::new(&args.run);
    if let Some(id) = &args.proposal {
        let round = sd.proposal(id)?.round;
        return run_proposal(&args, &sd, round);
    }
    let Some(trial) = args.trial.clone() else {
        return run_study_level(&args, &sd);
    };
    let stored = sd.trial_dir(&trial);
    if let Ok(Some(r)) = sd.trial(&trial).result() {
        if r.status == nago_store::TrialStatus::Rejected {
            bail!(
                "trial {trial} was rejected before training by nago-propose ({}); rerun its \
                 round instead: nago-rerun --run {} --round {}",
                r.error.unwrap_or_default(),
                args.run.display(),
                sd.proposal(&trial)?.round
            );
        }
    }
    if !stored.join("result.json").is_file() {
        bail!(
            "{}: the trial has no result.json to compare with",
            stored.display()
        );
    }
    let scratch = args
        .out
        .clone()
        .unwrap_or_else(|| default_scratch(&sd, &trial));
    let out = prepare_scratch(&sd, &trial, &scratch)?;
    let round = sd.proposal(&trial)?.round.to_string();
    let bins = bin_dir(args.bin_dir.clone())?;
    let base: Vec<String> = [
        "--run",
        &scratch.display().to_string(),
        "--index",
        "0",
        "--round",
        &round,
    ]
    .map(String::from)
    .to_vec();
    if !stage(&bins, "nago-generate", &base)? {
        bail!("nago-generate failed on the stored inputs");
    }
    // A failed training is compared too: its status and partial metrics must reproduce.
    let mut train = base.clone();
    // The same number of threads as the stored run (CPU reductions depend on it).
    let stored_result: nago_store::TrialResult =
        nago_store::read_json(&stored.join("result.json"), Some(nago_store::RESULT_SCHEMA))?;
    if let Some(t) = stored_result.extra.get("threads").and_then(|v| v.as_u64()) {
        if !args.train_args.iter().any(|a| a == "--threads") {
            train.extend(["--threads".to_string(), t.to_string()]);
        }
    }
    train.extend(args.train_args.iter().cloned());
    stage(&bins, "nago-train", &train)?;
    let what = format!("trial {trial} (arch.json byte for byte, result.json but timings exactly)");
    Ok(report(
        &what,
        &scratch,
        &compare(&stored, &out.trial_dir(&trial))?,
    ))
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
