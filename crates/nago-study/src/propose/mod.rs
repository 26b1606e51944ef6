//! `nago-propose`: the next round of trials, from separate strategies behind one interface.
//!
//! A round is filled in order by [`Promotions`] (successive halving), then [`ModelProposals`]
//! (EHVI on the saved surrogate, once the initial design is evaluated), then
//! [`InitialDesign`] (scrambled Sobol); the final round is [`FinalRound`] alone. Each strategy
//! turns a [`Context`] into [`Draft`]s; this module gives them ids and seeds and publishes
//! the round.
//!
//! Crash safety: the trial directories are written first and the round's `proposals.json`
//! last, in one rename: its presence publishes the round. A run that dies between the two
//! leaves trial directories of an unpublished round with no outputs; the next run (holding
//! the study lock) rolls them back before it does anything else.

mod final_round;
mod initial;
mod model;
mod promotion;

pub use final_round::FinalRound;
pub use initial::InitialDesign;
pub use model::ModelProposals;
pub use promotion::Promotions;

use crate::trials::{TrialRecord, Trials};
use anyhow::{bail, Result};
use nago_space::{Generator, Study};
use nago_store::{
    atomic_write_json, derive_seed, Origin, Proposal, RoundProposals, StudyDir, PROPOSAL_SCHEMA,
    ROUND_SCHEMA,
};
use serde::Serialize;

/// Options of `nago-propose`.
#[derive(Debug, Clone, Default)]
pub struct ProposeArgs {
    /// Propose this round (default: the next one).
    pub round: Option<u32>,
    /// Re-propose a round that exists (only if none of its trials has started).
    pub force: bool,
    /// Propose although earlier trials have no final result yet (they count as pending).
    pub allow_pending: bool,
    /// Final mode: K samples of each chosen generator at the full budget.
    pub final_mode: bool,
    /// In final mode, the trials whose generators to take (default: the Pareto set).
    pub final_trials: Vec<String>,
    /// In final mode, samples per generator (default: search.final_samples).
    pub samples: Option<u32>,
}

/// One proposed trial, as the binary reports it.
#[derive(Debug, Clone, Serialize)]
pub struct ProposedTrial {
    /// Trial id.
    pub trial: String,
    /// Why it was proposed.
    pub origin: Origin,
    /// Budget in epochs.
    pub budget: f64,
    /// For a promotion, the trial it continues.
    pub parent: Option<String>,
}

/// What `nago-propose` did.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProposeOutcome {
    /// A round was written.
    Proposed {
        /// Its number.
        round: u32,
        /// Its trials.
        trials: Vec<ProposedTrial>,
        /// Unpublished trial directories of a crashed earlier run that were removed first.
        rolled_back: Vec<String>,
    },
    /// Nothing to do now: trials still need work (pending, running, or to retry), or the
    /// round exists already.
    Pending {
        /// Why.
        message: String,
        /// The trials that need work.
        unfinished: Vec<String>,
    },
    /// The study is over: its evaluation budget is proposed in full (or its final round
    /// exists) and every trial has a final result.
    Done {
        /// Why.
        message: String,
    },
}

impl ProposeOutcome {
    /// The documented exit code ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            ProposeOutcome::Proposed { .. } => crate::exit::OK,
            ProposeOutcome::Pending { .. } => crate::exit::PENDING,
            ProposeOutcome::Done { .. } => crate::exit::DONE,
        }
    }
}

/// A trial a strategy wants: the module gives it an id (and a seed when `seed` is `None`).
#[derive(Debug, Clone)]
pub struct Draft {
    /// The generator.
    pub generator: Generator,
    /// Budget in epochs.
    pub budget: f64,
    /// The seed, when the strategy fixes it (promotions keep the parent's; final samples
    /// derive theirs); else derived from the study seed and the trial id.
    pub seed: Option<u64>,
    /// For a promotion, the trial it continues.
    pub parent: Option<String>,
    /// Why.
    pub origin: Origin,
}

/// What a strategy sees.
pub struct Context<'a> {
    /// The study directory.
    pub sd: &'a StudyDir,
    /// The study.
    pub study: &'a Study,
    /// Every trial (the round being re-proposed, with `--force`, left out).
    pub trials: &'a Trials,
    /// Trials without a final result: the model fantasises them as pending points.
    pub pending: Vec<&'a TrialRecord>,
    /// The round being proposed.
    pub round: u32,
}

/// A way of proposing trials.
pub trait Strategy {
    /// At most `n` drafts for the round.
    fn propose(&self, ctx: &Context, n: usize) -> Result<Vec<Draft>>;
}

/// `nago-propose`. Takes the study lock.
pub fn propose(sd: &StudyDir, a: &ProposeArgs) -> Result<ProposeOutcome> {
    let _lock = nago_store::StudyLock::acquire(sd.root(), "nago-propose")?;
    let study = sd.study()?;
    let rolled_back = roll_back_unpublished(sd)?;
    let all = Trials::load(sd)?;
    all.warn("nago-propose");
    let rounds = sd.rounds()?;
    let latest = rounds.last().copied();
    let round = a.round.unwrap_or(latest.map_or(0, |r| r + 1));
    let mut reuse_ids: Vec<String> = Vec::new();
    if rounds.contains(&round) {
        if !a.force {
            return Ok(ProposeOutcome::Pending {
                message: format!(
                    "round {round} is already proposed ({}); pass --force to propose it again",
                    sd.proposals_path(round).display()
                ),
                unfinished: Vec::new(),
            });
        }
        let old = sd.proposals(round)?;
        if let Some(t) = old.trials.iter().find(|t| sd.trial(t).has_outputs()) {
            bail!(
                "{}: cannot re-propose round {round}: trial {t} has already started (its \
                 directory has generate/train outputs)",
                sd.proposals_path(round).display()
            );
        }
        reuse_ids = old.trials;
    } else if let Some(l) = latest {
        if round != l + 1 {
            bail!(
                "{}: round {round} is not the next round (the latest is {l}, so the next is {})",
                sd.root().join("rounds").display(),
                l + 1
            );
        }
    }
    let trials = Trials {
        records: all
            .records
            .iter()
            .filter(|t| !reuse_ids.iter().any(|id| id == t.id()))
            .cloned()
            .collect(),
        unreadable: all.unreadable.clone(),
        unreadable_results: all.unreadable_results.clone(),
    };
    let unfinished: Vec<&TrialRecord> = trials.unfinished();
    let unfinished_ids: Vec<String> = unfinished.iter().map(|t| t.id().to_string()).collect();
    let ctx = Context {
        sd,
        study: &study,
        trials: &trials,
        pending: unfinished.clone(),
        round,
    };
    let drafts = if a.final_mode {
        if trials
            .records
            .iter()
            .any(|t| t.proposal.origin == Origin::Final)
            && !a.force
        {
            return Ok(done_or_pending(
                "the final round is already proposed; pass --force to propose another".into(),
                unfinished_ids,
            ));
        }
        if !unfinished.is_empty() && !a.allow_pending {
            return Ok(pending(unfinished_ids));
        }
        let f = FinalRound {
            trials: a.final_trials.clone(),
            samples: a.samples.unwrap_or(study.search.final_samples).max(1),
        };
        f.propose(&ctx, usize::MAX)?
    } else {
        let used = trials.evaluations_used();
        let max = study.search.max_evaluations as usize;
        if used >= max {
            return Ok(done_or_pending(
                format!(
                    "the study's budget is spent: {used} of {max} evaluations proposed \
                     (search.max_evaluations)"
                ),
                unfinished_ids,
            ));
        }
        if !unfinished.is_empty() && !a.allow_pending {
            return Ok(pending(unfinished_ids));
        }
        let q = (study.search.batch_size as usize).min(max - used);
        let mut drafts = Promotions.propose(&ctx, q)?;
        let model = ModelProposals.propose(&ctx, q - drafts.len())?;
        drafts.extend(model);
        let initial = InitialDesign.propose(&ctx, q - drafts.len())?;
        drafts.extend(initial);
        drafts
    };
    let props = assign_ids(sd, &study, round, reuse_ids, drafts)?;
    publish(sd, round, &props)?;
    Ok(ProposeOutcome::Proposed {
        round,
        trials: props
            .into_iter()
            .map(|p| ProposedTrial {
                trial: p.trial,
                origin: p.origin,
                budget: p.budget,
                parent: p.parent,
            })
            .collect(),
        rolled_back,
    })
}

fn pending(unfinished: Vec<String>) -> ProposeOutcome {
    let shown: Vec<&str> = unfinished.iter().take(8).map(String::as_str).collect();
    ProposeOutcome::Pending {
        message: format!(
            "{} trial(s) have no result yet or are to be retried ({}{}); train them and run \
             nago-update first, or pass --allow-pending to propose with them counted as pending",
            unfinished.len(),
            shown.join(", "),
            if unfinished.len() > 8 { ", …" } else { "" }
        ),
        unfinished,
    }
}

/// `Done` when every trial has a final result, else `Pending` (a study is not done while a
/// trial is still to be run or retried).
fn done_or_pending(message: String, unfinished: Vec<String>) -> ProposeOutcome {
    if unfinished.is_empty() {
        ProposeOutcome::Done { message }
    } else {
        let mut p = pending(unfinished);
        if let ProposeOutcome::Pending { message: m, .. } = &mut p {
            *m = format!("{message}, but {m}");
        }
        p
    }
}

/// Removes the trial directories a crashed run left unpublished (see the module docs).
fn roll_back_unpublished(sd: &StudyDir) -> Result<Vec<String>> {
    let ids = sd.unpublished_trials()?;
    for id in &ids {
        sd.roll_back(id)?;
        eprintln!(
            "nago-propose: removed trial {id}: an earlier nago-propose wrote it but died before \
             publishing its round"
        );
    }
    Ok(ids)
}

/// Ids (the round's own when re-proposed, else fresh ones) and seeds for the drafts.
fn assign_ids(
    sd: &StudyDir,
    study: &Study,
    round: u32,
    reuse: Vec<String>,
    drafts: Vec<Draft>,
) -> Result<Vec<Proposal>> {
    let first: u64 = sd.next_trial_id()?.parse()?;
    let mut reuse = reuse.into_iter();
    let mut fresh = first;
    Ok(drafts
        .into_iter()
        .map(|d| {
            let trial = reuse.next().unwrap_or_else(|| {
                let id = format!("{fresh:05}");
                fresh += 1;
                id
            });
            let seed = d
                .seed
                .unwrap_or_else(|| derive_seed(study.seed, &["trial", &trial]));
            Proposal {
                schema: PROPOSAL_SCHEMA.into(),
                trial,
                round,
                generator: d.generator,
                budget: d.budget,
                seed,
                parent: d.parent,
                origin: d.origin,
            }
        })
        .collect())
}

/// Writes the trial directories, then publishes the round with one rename.
fn publish(sd: &StudyDir, round: u32, props: &[Proposal]) -> Result<()> {
    for p in props {
        atomic_write_json(&sd.trial(&p.trial).proposal_path(), p)?;
    }
    let rp = RoundProposals {
        schema: ROUND_SCHEMA.into(),
        round,
        trials: props.iter().map(|p| p.trial.clone()).collect(),
    };
    atomic_write_json(&sd.proposals_path(round), &rp)?;
    Ok(())
}
