//! Every trial of a study as a typed record, read once per stage.

use anyhow::Result;
use nago_store::{Origin, Proposal, StudyDir, TrialResult, TrialState, TrialStatus};

/// One trial as found on disk.
#[derive(Debug, Clone)]
pub struct TrialRecord {
    /// Its proposal.
    pub proposal: Proposal,
    /// Its latest readable result (any budget, any status), if any.
    pub result: Option<TrialResult>,
    /// SHA-256 of the `result.json` bytes `result` was read from.
    pub result_digest: Option<String>,
    /// Where it stands ([`nago_store::TrialDir::state`] at the proposal's budget).
    pub state: TrialState,
}

impl TrialRecord {
    /// The trial id.
    pub fn id(&self) -> &str {
        &self.proposal.trial
    }
    /// Whether it still needs generate/train (pending, running, or a retryable failure).
    pub fn unfinished(&self) -> bool {
        !self.state.is_final()
    }
    /// Whether nago-propose rejected it before training ([`crate::screen`]).
    pub fn rejected(&self) -> bool {
        self.result
            .as_ref()
            .is_some_and(|r| r.status == TrialStatus::Rejected)
    }
    /// Its result when that is final (done, or failed for good).
    pub fn final_result(&self) -> Option<&TrialResult> {
        self.state.final_result()
    }
}

/// Every trial of a study.
#[derive(Debug, Clone, Default)]
pub struct Trials {
    /// The readable trials, in id order.
    pub records: Vec<TrialRecord>,
    /// Trial directories whose `proposal.json` cannot be read: `(id, why)`. They still own
    /// their ids and count as evaluations of the study's budget.
    pub unreadable: Vec<(String, String)>,
    /// Results that exist but cannot be read: `(id, why)` (their trials count as pending).
    pub unreadable_results: Vec<(String, String)>,
}

impl Trials {
    /// Reads every trial directory. Unreadable files are kept in the lists above (and
    /// reported by [`Trials::warn`]); nothing is skipped silently.
    pub fn load(sd: &StudyDir) -> Result<Trials> {
        let mut t = Trials::default();
        for id in sd.trial_ids()? {
            let dir = sd.trial(&id);
            let proposal = match dir.proposal() {
                Ok(p) => p,
                Err(e) => {
                    t.unreadable.push((id, e.to_string()));
                    continue;
                }
            };
            let (result, result_digest) = match dir.result_with_digest() {
                Ok(Some((r, d))) => (Some(r), Some(d)),
                Ok(None) => (None, None),
                Err(e) => {
                    t.unreadable_results.push((id.clone(), e.to_string()));
                    (None, None)
                }
            };
            let state = dir.state(proposal.budget);
            t.records.push(TrialRecord {
                proposal,
                result,
                result_digest,
                state,
            });
        }
        Ok(t)
    }

    /// Prints a warning for every unreadable file, naming it, prefixed by `who`.
    pub fn warn(&self, who: &str) {
        for (id, e) in &self.unreadable {
            eprintln!("{who}: warning: trial {id} is not used (its id stays taken): {e}");
        }
        for (id, e) in &self.unreadable_results {
            eprintln!("{who}: warning: trial {id} counts as pending: {e}");
        }
    }

    /// Every final result with the digest of its file, by id: what the optimiser's stages
    /// use (a result that is to be retried counts as pending, whatever it says), and files
    /// that never change again — so a recorded proposal can always be rebuilt.
    pub fn seen_results(&self) -> Vec<nago_store::SeenResult> {
        self.records
            .iter()
            .filter(|t| t.final_result().is_some())
            .filter_map(|t| {
                Some(nago_store::SeenResult {
                    trial: t.id().to_string(),
                    digest: t.result_digest.clone()?,
                })
            })
            .collect()
    }

    /// The trial with id `id`.
    pub fn get(&self, id: &str) -> Option<&TrialRecord> {
        self.records.iter().find(|r| r.id() == id)
    }

    /// Trials that still need work, in id order.
    pub fn unfinished(&self) -> Vec<&TrialRecord> {
        self.records.iter().filter(|r| r.unfinished()).collect()
    }

    /// Evaluations of the study's budget proposed so far: every trial but the final round's
    /// and those rejected before training, unreadable ones included (they were proposed by
    /// some run of nago-propose).
    pub fn evaluations_used(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.proposal.origin != Origin::Final && !r.rejected())
            .count()
            + self.unreadable.len()
    }
}
