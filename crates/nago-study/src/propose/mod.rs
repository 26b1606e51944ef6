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

use crate::surrogate::SurrogateFile;
use crate::trials::{TrialRecord, Trials};
use anyhow::{bail, Context as _, Result};
use final_round::largest_param_limit;
use nago_space::{FinalWidth, Generator, Study};
use nago_store::{
    atomic_write_json, derive_seed, Origin, Proposal, RoundProposals, Seen, StudyDir, TrialResult,
    PROPOSAL_SCHEMA, ROUND_SCHEMA,
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
    /// At most this many trials in the round (an asynchronous worker proposes one for
    /// itself); default `search.batch_size`. The final round is proposed whole.
    pub max_trials: Option<usize>,
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
    /// For a final trial, the search trial whose generator it samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// For a trial rejected before training, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// What `nago-propose` did.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ProposeOutcome {
    /// A round was written.
    Proposed {
        /// Its number.
        round: u32,
        /// Its trials to train.
        trials: Vec<ProposedTrial>,
        /// Its trials rejected before training (recorded, never trained).
        rejected: Vec<ProposedTrial>,
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
    /// For a final sample, the search trial whose generator it takes.
    pub source: Option<String>,
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
    /// Generators proposed earlier in this call and rejected before training: the model
    /// treats them as pending points, so that it proposes elsewhere.
    pub rejected: Vec<Generator>,
    /// Initial-design points taken earlier in this call (the Sobol sequence continues after
    /// them).
    pub initial_taken: usize,
    /// The study's `surrogate.json` as this call read it (once, under the study lock).
    pub surrogate: Option<&'a SurrogateFile>,
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
    // What this proposal is made from (the study lock keeps surrogate.json fixed meanwhile).
    let (surrogate, digest) = match SurrogateFile::read_with_digest(sd)? {
        Some((f, d)) => (Some(f), Some(d)),
        None => (None, None),
    };
    let seen = Seen {
        surrogate: digest,
        fitted_on: surrogate
            .as_ref()
            .map(|f| f.fitted_on.clone())
            .unwrap_or_default(),
        results: trials.seen_results(),
        pending: unfinished_ids.clone(),
        warm_start: surrogate
            .as_ref()
            .and_then(|f| f.warm_started_from.as_ref())
            .map(|w| serde_json::to_value(w).expect("a warm start serialises")),
    };
    let mut ctx = Context {
        sd,
        study: &study,
        trials: &trials,
        pending: unfinished.clone(),
        round,
        rejected: Vec::new(),
        initial_taken: 0,
        surrogate: surrogate.as_ref(),
    };
    let mut ids = IdAllocator::new(sd, reuse_ids)?;
    let drafts: (Vec<Proposal>, Vec<(Proposal, TrialResult)>) = if a.final_mode {
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
            samples: a.samples.unwrap_or(study.final_samples()).max(1),
        };
        screened(&study, &mut ids, round, f.propose(&ctx, usize::MAX)?)?
    } else {
        let used = trials.evaluations_used();
        let max = study.search.max_evaluations as usize;
        let has_final = trials
            .records
            .iter()
            .any(|t| t.proposal.origin == Origin::Final);
        if used >= max {
            let spent = format!(
                "the study's budget is spent: {used} of {max} evaluations proposed \
                 (search.max_evaluations)"
            );
            if !unfinished.is_empty() || has_final || !study.final_round.enabled {
                let done = if has_final {
                    format!("{spent} and its final round is proposed")
                } else {
                    spent
                };
                return Ok(done_or_pending(done, unfinished_ids));
            }
            // Every search ends with the final round (study.json `final`).
            let f = FinalRound {
                trials: Vec::new(),
                samples: study.final_samples(),
            };
            if f.chosen(&ctx)?.is_empty() {
                eprintln!(
                    "nago-propose: warning: no final round: no feasible evaluation that learned \
                     at the model budget (see {})",
                    sd.trials_table().display()
                );
                return Ok(done_or_pending(spent, unfinished_ids));
            }
            let drafts = f.propose(&ctx, usize::MAX)?;
            screened(&study, &mut ids, round, drafts)?
        } else {
            if !unfinished.is_empty() && !a.allow_pending {
                return Ok(pending(unfinished_ids));
            }
            let q = (study.search.batch_size as usize)
                .min(max - used)
                .min(a.max_trials.unwrap_or(usize::MAX).max(1));
            let promotions = Promotions.propose(&ctx, q)?;
            let (mut props, mut rejected) = screened(&study, &mut ids, round, promotions)?;
            // New generators until the round is full of trainable ones: each rejected one is
            // recorded and kept away from (as a pending point) by the next model proposal.
            let mut tries = 0;
            while props.len() < q && tries < MAX_SCREEN_PASSES {
                tries += 1;
                let n = q - props.len();
                let mut drafts = ModelProposals.propose(&ctx, n)?;
                let initial = InitialDesign.propose(&ctx, n - drafts.len())?;
                ctx.initial_taken += initial.len();
                drafts.extend(initial);
                if drafts.is_empty() {
                    break;
                }
                let (ok, bad) = screened(&study, &mut ids, round, drafts)?;
                ctx.rejected.extend(bad.iter().map(|(p, _)| p.generator));
                props.extend(ok);
                rejected.extend(bad);
            }
            if props.is_empty() {
                bail!(
                    "every one of the {} generators proposed in {MAX_SCREEN_PASSES} passes was \
                 rejected before training ({}); loosen the constraints or search.min_channels, \
                 or narrow the space to generators that satisfy them",
                    rejected.len(),
                    rejected
                        .first()
                        .map(|(_, r)| r.error.clone().unwrap_or_default())
                        .unwrap_or_default()
                );
            }
            (props, rejected)
        }
    };
    let (props, rejected) = drafts;
    publish(sd, round, &props, &rejected, &seen)?;
    let shown = |p: Proposal, why: Option<String>| ProposedTrial {
        trial: p.trial,
        origin: p.origin,
        budget: p.budget,
        parent: p.parent,
        source: p.source,
        rejected: why,
    };
    Ok(ProposeOutcome::Proposed {
        round,
        trials: props.into_iter().map(|p| shown(p, None)).collect(),
        rejected: rejected
            .into_iter()
            .map(|(p, r)| shown(p, r.error))
            .collect(),
        rolled_back,
    })
}

/// What keeps the study from being done (`None`: it is done): evaluations still to propose,
/// trials without a final result, or the final round still to propose. Reads only; the
/// same rule as [`propose`]'s `done` (a final round with no generator to take aside).
pub fn left_to_do(sd: &StudyDir) -> Result<Option<String>> {
    let study = sd.study()?;
    let trials = Trials::load(sd)?;
    let used = trials.evaluations_used();
    let max = study.search.max_evaluations as usize;
    let unfinished = trials.unfinished().len();
    let has_final = trials
        .records
        .iter()
        .any(|t| t.proposal.origin == Origin::Final);
    Ok(if used < max {
        Some(format!("{used} of {max} evaluations proposed"))
    } else if unfinished > 0 {
        Some(format!("{unfinished} trial(s) without a final result"))
    } else if study.final_round.enabled && !has_final {
        Some("the final round is still to be proposed".into())
    } else {
        None
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

/// Rounds of new proposals `nago-propose` makes to fill a round when generators are
/// rejected before training.
const MAX_SCREEN_PASSES: usize = 20;

/// Trial ids: the round's own when it is re-proposed, then fresh ones.
struct IdAllocator {
    reuse: std::vec::IntoIter<String>,
    fresh: u64,
}

impl IdAllocator {
    fn new(sd: &StudyDir, reuse: Vec<String>) -> Result<Self> {
        Ok(IdAllocator {
            reuse: reuse.into_iter(),
            fresh: sd.next_trial_id()?.parse()?,
        })
    }
    fn next(&mut self) -> String {
        self.reuse.next().unwrap_or_else(|| {
            let id = format!("{:05}", self.fresh);
            self.fresh += 1;
            id
        })
    }
}

/// Gives the drafts ids and seeds and screens each new architecture ([`crate::screen`]):
/// the trials to train, and the rejected ones with the result that records why. Promotions
/// are not screened (their architecture passed when their parent was proposed). Under
/// `search.param_limit: "largest"`, a new generator gets the largest width at which its
/// architecture passes, whatever its own `param_limit` (narrower when that one is too wide,
/// wider when it is too narrow), and is rejected only when no width passes (a promotion
/// keeps its parent's width, a final sample gets the final round's).
#[allow(clippy::type_complexity)]
fn screened(
    study: &Study,
    ids: &mut IdAllocator,
    round: u32,
    drafts: Vec<Draft>,
) -> Result<(Vec<Proposal>, Vec<(Proposal, TrialResult)>)> {
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    for d in drafts {
        let trial = ids.next();
        let seed = d
            .seed
            .unwrap_or_else(|| derive_seed(study.seed, &["trial", &trial]));
        let p = Proposal {
            schema: PROPOSAL_SCHEMA.into(),
            trial,
            round,
            generator: d.generator,
            budget: d.budget,
            seed,
            parent: d.parent,
            origin: d.origin,
            source: d.source,
        };
        if p.origin == Origin::Promotion {
            ok.push(p);
            continue;
        }
        // A new generator trained as wide as the constraints allow gets that width whatever
        // its own limit (the space's may be too wide for a deep graph, or too narrow); it is
        // rejected only when no width passes.
        let widen = matches!(p.origin, Origin::Initial | Origin::Model)
            && study.search.param_limit == FinalWidth::Largest;
        if widen {
            let largest = largest_param_limit(study, &p.generator, &[p.seed], "search.param_limit")
                .with_context(|| format!("trial {} (generator {:?})", p.trial, p.generator))?;
            if let Some(limit) = largest {
                let mut p = p;
                p.generator.param_limit = limit;
                ok.push(p);
                continue;
            }
        }
        let s = crate::screen::screen(study, &p.generator, p.seed)
            .with_context(|| format!("trial {} (generator {:?})", p.trial, p.generator))?;
        if s.passes() {
            ok.push(p);
        } else {
            let mut why = format!("not trained: {}", s.violations.join("; "));
            if widen {
                why.push_str(" (and at every other width: search.param_limit is \"largest\")");
            }
            let r = TrialResult::rejected(&p.trial, p.budget, why, &s.known.pairs());
            rejected.push((p, r));
        }
    }
    Ok((ok, rejected))
}

/// Writes the trial directories (a rejected trial's result with its proposal), then
/// publishes the round with one rename. The round lists its trials to train first (their
/// array indices are 0…), then the rejected ones.
fn publish(
    sd: &StudyDir,
    round: u32,
    props: &[Proposal],
    rejected: &[(Proposal, TrialResult)],
    seen: &Seen,
) -> Result<()> {
    for p in props {
        atomic_write_json(&sd.trial(&p.trial).proposal_path(), p)?;
    }
    for (p, r) in rejected {
        let t = sd.trial(&p.trial);
        atomic_write_json(&t.proposal_path(), p)?;
        atomic_write_json(&t.result_path(), r)?;
    }
    let rp = RoundProposals {
        schema: ROUND_SCHEMA.into(),
        round,
        seen: Some(seen.clone()),
        trials: props
            .iter()
            .chain(rejected.iter().map(|(p, _)| p))
            .map(|p| p.trial.clone())
            .collect(),
    };
    atomic_write_json(&sd.proposals_path(round), &rp)?;
    Ok(())
}
