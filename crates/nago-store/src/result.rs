//! `result.json`: what training a trial produced. The trainer writes it; `nago-update` reads it.
//!
//! Every field but `schema`, `trial`, `status` and `budget` may be absent (a trial that failed
//! early has no metrics), so readers must not assume them.

use serde::{Deserialize, Serialize};

/// Schema tag of `result.json`.
pub const RESULT_SCHEMA: &str = "nago.result/1";

/// How a training run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// Trained to its budget.
    Ok,
    /// The loss became NaN or infinite.
    Diverged,
    /// Out of (GPU or host) memory.
    OutOfMemory,
    /// Stopped by the time limit.
    TimeLimit,
    /// Stopped by a signal (SIGTERM/SIGINT from a scheduler or a person).
    Killed,
    /// Any other error.
    Crashed,
    /// Never trained: what is known before training (parameters, MACs, memory, the
    /// narrowest layer) violates a constraint of the study. Decided by `nago-propose`, final.
    Rejected,
}

/// The outcome of one training run (one trial at one budget).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    /// Must be [`RESULT_SCHEMA`].
    pub schema: String,
    /// The trial id.
    pub trial: String,
    /// How it ended.
    pub status: TrialStatus,
    /// The budget trained to, in epochs.
    pub budget: f64,
    /// Epochs actually completed.
    #[serde(default)]
    pub epochs_done: Option<f64>,
    /// Validation accuracy in [0, 1] (held out of the training set).
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    /// Validation error in [0, 1] (1 − accuracy).
    #[serde(default)]
    pub val_error: Option<f64>,
    /// Test accuracy in [0, 1]: reported only, never used to choose anything.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Trainable parameters.
    #[serde(default)]
    pub params: Option<u64>,
    /// Multiply-accumulates per image.
    #[serde(default)]
    pub macs: Option<u64>,
    /// Parameter memory in MB (float32, 10⁶ bytes).
    #[serde(default)]
    pub memory_mb: Option<f64>,
    /// Wall-clock seconds spent training (this run only).
    #[serde(default)]
    pub train_seconds: Option<f64>,
    /// The error message, for a failed run.
    #[serde(default)]
    pub error: Option<String>,
    /// Whether the failure is not a property of the trial (a signal from a scheduler, a
    /// cancelled task, a full disk, a crash of a stage, the time limit of a Slurm job): such a
    /// trial is run again (resuming its checkpoint) up to [`MAX_ATTEMPTS`] times.
    /// `killed` results are retryable whatever this says (older files lack the field).
    #[serde(default, skip_serializing_if = "is_false")]
    pub retryable: bool,
    /// How many runs of this trial have ended in a retryable failure so far (1 for the first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Everything else the trainer records (device, images/s, library versions, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `result.json` fields that differ between two runs of the same training: wall-clock
/// timings (the training's and the latency measurement's, with the machine it was taken on)
/// and the path a checkpoint was continued from. Left out of [`result_digest`] and of
/// nago-rerun's comparisons; everything else is a function of the inputs and the seed.
pub const WALL_CLOCK_FIELDS: [&str; 8] = [
    "train_seconds",
    "images_per_second",
    "resumed_from",
    "latency_ms",
    "latency_ms_b32",
    "latency",
    "latency_machine",
    "latency_error",
];

/// The SHA-256 of a `result.json` text's content without [`WALL_CLOCK_FIELDS`] (keys sorted,
/// compact): the same for two runs of the same training, so a recorded proposal is the same
/// bytes from run to run, and different as soon as a metric or status differs. Text that is
/// not a JSON object is digested as it is.
pub fn result_digest(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(mut m)) => {
            for k in WALL_CLOCK_FIELDS {
                m.remove(k);
            }
            let canonical = serde_json::to_string(&serde_json::Value::Object(m))
                .expect("a JSON value serialises");
            crate::sha256_hex(canonical.as_bytes())
        }
        _ => crate::sha256_hex(text.as_bytes()),
    }
}

/// Retryable failures of one trial after which it counts as failed for good (so that a cause
/// that repeats every time, e.g. a generator whose sampling always fails, cannot loop forever).
pub const MAX_ATTEMPTS: u32 = 3;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TrialResult {
    /// A failed run with nothing measured: the one constructor for failures outside the
    /// trainer (nago-generate failing, a task cancelled before training). `previous` is the
    /// trial's earlier result, if any, whose attempt count a retryable failure continues.
    pub fn failure(
        trial: &str,
        budget: f64,
        status: TrialStatus,
        error: impl Into<String>,
        retryable: bool,
        previous: Option<&TrialResult>,
    ) -> Self {
        TrialResult {
            schema: RESULT_SCHEMA.into(),
            trial: trial.into(),
            status,
            budget,
            epochs_done: Some(0.0),
            val_accuracy: None,
            val_error: None,
            test_accuracy: None,
            params: None,
            macs: None,
            memory_mb: None,
            train_seconds: None,
            error: Some(error.into()),
            retryable,
            attempts: if retryable {
                previous.map_or(0, |p| p.attempts) + 1
            } else {
                0
            },
            extra: Default::default(),
        }
    }

    /// The result of a trial that is not trained because its architecture violates a
    /// constraint known before training (`why` names it). `known` are the metrics the
    /// architecture has without training (`params`, `macs`, `memory_mb`, `activation_mb`,
    /// `min_channels`): they are recorded so that the table shows what was rejected.
    pub fn rejected(
        trial: &str,
        budget: f64,
        why: impl Into<String>,
        known: &[(&str, f64)],
    ) -> Self {
        let mut r = TrialResult::failure(trial, budget, TrialStatus::Rejected, why, false, None);
        for (name, v) in known {
            match *name {
                "params" => r.params = Some(*v as u64),
                "macs" => r.macs = Some(*v as u64),
                "memory_mb" => r.memory_mb = Some(*v),
                _ => {
                    r.extra.insert((*name).to_string(), serde_json::json!(*v));
                }
            }
        }
        r
    }

    /// Whether this result is a retryable failure (see [`TrialResult::retryable`]).
    pub fn is_retryable_failure(&self) -> bool {
        self.status != TrialStatus::Ok && (self.retryable || self.status == TrialStatus::Killed)
    }

    /// Whether this result is final: a success, a failure that retrying would not change, or a
    /// retryable failure that has used up its [`MAX_ATTEMPTS`].
    pub fn is_final(&self) -> bool {
        !self.is_retryable_failure() || self.attempts >= MAX_ATTEMPTS
    }

    /// Looks up a metric by name: the typed fields first, then numeric `extra` fields.
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "val_accuracy" => self.val_accuracy,
            "val_error" => self.val_error,
            "test_accuracy" => self.test_accuracy,
            "params" => self.params.map(|v| v as f64),
            "macs" => self.macs.map(|v| v as f64),
            "memory_mb" => self.memory_mb,
            "train_seconds" => self.train_seconds,
            "epochs_done" => self.epochs_done,
            _ => self.extra.get(name).and_then(|v| v.as_f64()),
        }
    }
}
