//! Whether a trial still needs work.

use nago_store::{read_json, StudyDir, TrialResult, TrialStatus, RESULT_SCHEMA};

/// Where one trial stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TrialState {
    /// No usable result: generate and train must run (an interrupted run resumes).
    Pending,
    /// A final result for the trial's budget exists (success or a failure that retrying
    /// would not change).
    Done(Box<TrialResult>),
}

/// Reads a trial's `result.json` and decides. A result with status `killed` (a signal, not a
/// property of the architecture) or for another budget counts as pending, as does a corrupt
/// or missing file.
pub fn trial_state(sd: &StudyDir, trial: &str, budget: f64) -> TrialState {
    let path = sd.trial_dir(trial).join("result.json");
    match read_json::<TrialResult>(&path, Some(RESULT_SCHEMA)) {
        Ok(r) if r.status != TrialStatus::Killed && (r.budget - budget).abs() < 1e-9 => {
            TrialState::Done(Box::new(r))
        }
        _ => TrialState::Pending,
    }
}
