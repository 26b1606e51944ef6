//! One trial directory: its typed paths and the one rule that says where the trial stands.
//!
//! Every file of a trial is named here and nowhere else, and [`TrialDir::state`] is the only
//! place that decides whether a trial is done, failed for good, to be retried or still to
//! run: the local pipeline, the optimiser, the trainer's skip check and the Slurm worker all
//! ask it.

use crate::fsio::is_not_found;
use crate::{Proposal, StoreError, TrialResult, TrialStatus, RESULT_SCHEMA};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// A trial's directory, `trials/<id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialDir {
    id: String,
    path: PathBuf,
}

/// Where one trial stands (see [`TrialDir::state`]).
#[derive(Debug, Clone, PartialEq)]
pub enum TrialState {
    /// No result yet for the proposal's budget (never run, interrupted without a result, or a
    /// result file that cannot be read): generate and train must run.
    Pending,
    /// A process holds the trial's lock (a stage is generating or training it now).
    Running,
    /// Trained to its budget.
    Done(Box<TrialResult>),
    /// The last run failed. `retry` says whether the failure is retryable (a signal, a full
    /// disk, a crash of a stage, a Slurm job's time limit) with attempts left, so that the
    /// trial is run again (resuming its checkpoint); otherwise it is final.
    Failed {
        /// The failed result.
        result: Box<TrialResult>,
        /// Whether it will be run again.
        retry: bool,
    },
}

impl TrialState {
    /// Whether generate/train still have to run for this trial.
    pub fn needs_work(&self) -> bool {
        matches!(
            self,
            TrialState::Pending | TrialState::Failed { retry: true, .. }
        )
    }
    /// Whether the trial has a final result (done, or failed for good).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TrialState::Done(_) | TrialState::Failed { retry: false, .. }
        )
    }
    /// The final result, if any.
    pub fn final_result(&self) -> Option<&TrialResult> {
        match self {
            TrialState::Done(r) => Some(r),
            TrialState::Failed { result, retry } if !retry => Some(result),
            _ => None,
        }
    }
    /// A word for tables and `--json`: `pending`, `running`, `done`, `retry`, `failed`.
    pub fn label(&self) -> &'static str {
        match self {
            TrialState::Pending => "pending",
            TrialState::Running => "running",
            TrialState::Done(_) => "done",
            TrialState::Failed { retry: true, .. } => "retry",
            TrialState::Failed { retry: false, .. } => "failed",
        }
    }
}

impl TrialDir {
    /// The directory of trial `id` under a study's `trials/`.
    pub fn new(trials_root: &Path, id: &str) -> Self {
        TrialDir {
            id: id.to_string(),
            path: trials_root.join(id),
        }
    }
    /// A trial directory anywhere (e.g. a scratch copy); the id is its last component.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("manual")
            .to_string();
        TrialDir { id, path }
    }
    /// The trial id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `proposal.json` (nago-propose).
    pub fn proposal_path(&self) -> PathBuf {
        self.path.join("proposal.json")
    }
    /// `arch.json` (nago-generate).
    pub fn arch_path(&self) -> PathBuf {
        self.path.join("arch.json")
    }
    /// `arch.dot` (nago-generate).
    pub fn dot_path(&self) -> PathBuf {
        self.path.join("arch.dot")
    }
    /// `result.json` (nago-train, or the pipeline for a failure before training).
    pub fn result_path(&self) -> PathBuf {
        self.path.join("result.json")
    }
    /// `epochs.parquet` (nago-train).
    pub fn epochs_path(&self) -> PathBuf {
        self.path.join("epochs.parquet")
    }
    /// `checkpoint.safetensors` (nago-train).
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join("checkpoint.safetensors")
    }
    /// `checkpoint.json` (nago-train).
    pub fn checkpoint_meta_path(&self) -> PathBuf {
        self.path.join("checkpoint.json")
    }
    /// `generate.log` (the local pipeline's copy of nago-generate's output).
    pub fn generate_log(&self) -> PathBuf {
        self.path.join("generate.log")
    }
    /// `train.log` (the local pipeline's copy of nago-train's output).
    pub fn train_log(&self) -> PathBuf {
        self.path.join("train.log")
    }
    /// `.lock`: held by whoever runs the trial's stages.
    pub fn lock_path(&self) -> PathBuf {
        self.path.join(".lock")
    }

    /// Reads and validates `proposal.json`.
    pub fn proposal(&self) -> Result<Proposal, StoreError> {
        let path = self.proposal_path();
        let text = crate::read_text(&path)?;
        let p = Proposal::from_json(&text).map_err(|source| StoreError::Invalid {
            path: path.clone(),
            source,
        })?;
        if p.trial != self.id {
            return Err(StoreError::Other {
                path,
                message: format!("field `trial` is `{}`, expected `{}`", p.trial, self.id),
            });
        }
        Ok(p)
    }

    /// Reads `result.json`: `Ok(None)` when there is none, an error when it cannot be read
    /// or belongs to another trial.
    pub fn result(&self) -> Result<Option<TrialResult>, StoreError> {
        Ok(self.result_with_digest()?.map(|(r, _)| r))
    }

    /// [`TrialDir::result`] with its [`crate::result_digest`] (one read, so the digest is
    /// of exactly the result returned).
    pub fn result_with_digest(&self) -> Result<Option<(TrialResult, String)>, StoreError> {
        let path = self.result_path();
        let text = match crate::read_text(&path) {
            Ok(t) => t,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let digest = crate::result_digest(&text);
        let parsed =
            nago_space::json::parse::<TrialResult>(&text, Some(RESULT_SCHEMA)).map_err(|source| {
                StoreError::Invalid {
                    path: path.clone(),
                    source,
                }
            });
        match parsed.map(|r| (r, digest)) {
            Ok((r, _)) if r.trial != self.id => Err(StoreError::Other {
                path,
                message: format!("field `trial` is `{}`, expected `{}`", r.trial, self.id),
            }),
            Ok(r) => Ok(Some(r)),
            Err(e) => Err(e),
        }
    }

    /// Whether any stage after nago-propose has written an output here (generate, train or
    /// a failure record). The `rejected` result that nago-propose itself writes is part of
    /// the proposal, not an output.
    pub fn has_outputs(&self) -> bool {
        let result = self.result_path().exists()
            && !matches!(self.result(), Ok(Some(r)) if r.status == TrialStatus::Rejected);
        result
            || [
                self.arch_path(),
                self.epochs_path(),
                self.checkpoint_path(),
                self.checkpoint_meta_path(),
            ]
            .iter()
            .any(|p| p.exists())
    }

    /// Whether a live process holds the trial's lock.
    pub fn is_locked(&self) -> bool {
        let Ok(f) = OpenOptions::new().write(true).open(self.lock_path()) else {
            return false;
        };
        match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        }
    }

    /// Where the trial stands for a proposal of `budget` epochs. The one rule:
    /// - a readable result for that budget with status `ok` is done;
    /// - a failed result for that budget is final unless it is retryable with attempts left
    ///   ([`TrialResult::is_final`]);
    /// - anything else (no result, a result for another budget, an unreadable file) is
    ///   pending, or running while a process holds the trial's lock.
    pub fn state(&self, budget: f64) -> TrialState {
        if let Ok(Some(r)) = self.result() {
            if (r.budget - budget).abs() < 1e-9 {
                if r.status == TrialStatus::Ok {
                    return TrialState::Done(Box::new(r));
                }
                let retry = !r.is_final();
                if !retry || !self.is_locked() {
                    return TrialState::Failed {
                        result: Box::new(r),
                        retry,
                    };
                }
                return TrialState::Running;
            }
        }
        if self.is_locked() {
            TrialState::Running
        } else {
            TrialState::Pending
        }
    }

    /// Records a failure of a stage other than the trainer (nago-generate, a task that could
    /// not start): the one writer of such results. A retryable failure continues the attempt
    /// count of an earlier retryable result for the same budget; a final result already there
    /// is kept (a late failure never overwrites a finished trial).
    pub fn record_failure(
        &self,
        budget: f64,
        status: TrialStatus,
        error: impl Into<String>,
        retryable: bool,
    ) -> Result<TrialResult, StoreError> {
        let previous = self.result().ok().flatten().filter(|r| r.budget == budget);
        if let Some(p) = previous.as_ref().filter(|p| p.is_final()) {
            return Ok(p.clone());
        }
        let r = TrialResult::failure(
            &self.id,
            budget,
            status,
            error,
            retryable,
            previous.as_ref(),
        );
        crate::atomic_write_json(&self.result_path(), &r)?;
        Ok(r)
    }

    /// Takes the trial's lock, waiting for it (`wait`) or failing at once when another
    /// process holds it. The lock is inherited by child processes that keep the descriptor.
    pub fn lock(&self, wait: bool) -> Result<Option<File>, StoreError> {
        std::fs::create_dir_all(&self.path).map_err(|e| StoreError::io(&self.path, e))?;
        let path = self.lock_path();
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(f)),
            Err(std::fs::TryLockError::WouldBlock) if wait => {
                f.lock().map_err(|e| StoreError::io(&path, e))?;
                Ok(Some(f))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
        }
    }
}
