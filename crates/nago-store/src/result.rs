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
    /// Everything else the trainer records (device, images/s, library versions, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl TrialResult {
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
            _ => self.extra.get(name).and_then(|v| v.as_f64()),
        }
    }
}
