//! The study definition, `study.json`: everything a search needs to know, in one file.
//!
//! Each section is owned by the stage that reads it: `space` by everyone, `dataset` and
//! `training` by the trainer, `objectives`, `constraints`, `budgets` and `search` by the
//! optimiser. Unknown keys are errors everywhere, so a typo never silently falls back to a
//! default.

use crate::json::finite;
use crate::{Space, SpaceError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Schema tag of `study.json`.
pub const STUDY_SCHEMA: &str = "nago.study/1";

/// A whole study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Study {
    /// Must be [`STUDY_SCHEMA`].
    pub schema: String,
    /// Human-readable name.
    pub name: String,
    /// The seed every other seed of the study derives from.
    pub seed: u64,
    /// The search space (hyperparameters not named keep the paper's defaults).
    #[serde(default)]
    pub space: Space,
    /// The data to train on.
    pub dataset: DatasetSpec,
    /// What to optimise.
    pub objectives: Vec<Objective>,
    /// Hard limits on metrics.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Multi-fidelity budgets, in epochs.
    pub budgets: Budgets,
    /// How many evaluations, in which batches.
    #[serde(default)]
    pub search: SearchSpec,
    /// How each architecture is trained.
    #[serde(default)]
    pub training: TrainingSpec,
}

/// The dataset and the shape of its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// `fashion-mnist` (the embedded default), `cifar10`, `cifar100`, `idx` (a directory of
    /// MNIST-style IDX files), or `parquet` (a Hugging Face-style image table).
    pub name: String,
    /// Where the files are; the known datasets have a default location under `data/`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Image channels (known datasets fill this in).
    #[serde(default)]
    pub channels: Option<u32>,
    /// Image height in pixels.
    #[serde(default)]
    pub height: Option<u32>,
    /// Image width in pixels.
    #[serde(default)]
    pub width: Option<u32>,
    /// Number of classes.
    #[serde(default)]
    pub classes: Option<u32>,
    /// Images held out of the training set to score trials.
    #[serde(default = "default_validation")]
    pub validation: u32,
}

fn default_validation() -> u32 {
    5000
}

impl DatasetSpec {
    /// (channels, height, width, classes): given explicitly, or known for the named datasets.
    pub fn shape(&self) -> Result<(u32, u32, u32, u32), SpaceError> {
        let known = match self.name.as_str() {
            "fashion-mnist" | "mnist" => Some((1, 28, 28, 10)),
            "cifar10" => Some((3, 32, 32, 10)),
            "cifar100" => Some((3, 32, 32, 100)),
            _ => None,
        };
        let pick = |field: &str, given: Option<u32>, k: Option<u32>| -> Result<u32, SpaceError> {
            match given.or(k) {
                Some(0) => Err(SpaceError::range(format!("dataset.{field}"), 0, "a positive integer")),
                Some(v) => Ok(v),
                None => Err(SpaceError::invalid(
                    format!("dataset.{field}"),
                    format!("required for dataset `{}` (only fashion-mnist, mnist, cifar10 and cifar100 are known)", self.name),
                )),
            }
        };
        Ok((
            pick("channels", self.channels, known.map(|k| k.0))?,
            pick("height", self.height, known.map(|k| k.1))?,
            pick("width", self.width, known.map(|k| k.2))?,
            pick("classes", self.classes, known.map(|k| k.3))?,
        ))
    }
}

/// Whether an objective is minimised or maximised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Min,
    Max,
}

/// One objective: a metric of `result.json` and its direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// A metric name, e.g. `val_error`, `params`, `macs`, `memory_mb`.
    pub metric: String,
    /// Minimise or maximise.
    pub goal: Goal,
    /// Model it on a log scale (for sizes spanning orders of magnitude).
    #[serde(default)]
    pub log: bool,
    /// The hypervolume reference value in the metric's own units (e.g. 1.0 for
    /// `val_error`). When absent, `nago-update` derives one from the first data (the worst
    /// value plus 10% of the range, in model units) and records it in `surrogate.json`, after
    /// which it never changes.
    #[serde(default)]
    pub reference: Option<f64>,
}

/// A hard limit: trials whose metric exceeds `max` are infeasible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// A metric name, e.g. `params`.
    pub metric: String,
    /// The largest allowed value.
    pub max: f64,
}

/// Multi-fidelity budgets in epochs: successive halving from `min` to `max` by factor `eta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// The smallest budget (epochs).
    pub min: f64,
    /// The largest budget (epochs).
    pub max: f64,
    /// The promotion factor η (≥ 2 is usual; the paper used 2).
    #[serde(default = "default_eta")]
    pub eta: f64,
}

fn default_eta() -> f64 {
    2.0
}

/// The size of the search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// Proposals per round (q): the size of one job array.
    #[serde(default = "default_batch")]
    pub batch_size: u32,
    /// Stop after this many evaluations (trial × budget).
    #[serde(default = "default_max_evaluations")]
    pub max_evaluations: u32,
    /// Evaluations from the space-filling design before the model takes over.
    #[serde(default = "default_initial_design")]
    pub initial_design: u32,
    /// Architectures sampled per chosen generator in `--final` mode.
    #[serde(default = "default_final_samples")]
    pub final_samples: u32,
}

fn default_batch() -> u32 {
    4
}
fn default_max_evaluations() -> u32 {
    40
}
fn default_initial_design() -> u32 {
    8
}
fn default_final_samples() -> u32 {
    8
}

impl Default for SearchSpec {
    fn default() -> Self {
        SearchSpec {
            batch_size: default_batch(),
            max_evaluations: default_max_evaluations(),
            initial_design: default_initial_design(),
            final_samples: default_final_samples(),
        }
    }
}

/// How each architecture is trained (the trainer's section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    /// Peak learning rate of SGD (cosine schedule).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// L2 weight decay.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Images per step.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Label smoothing ε.
    #[serde(default)]
    pub label_smoothing: f64,
    /// Random-crop padding in pixels (0: no crop).
    #[serde(default = "default_crop_padding")]
    pub crop_padding: u32,
    /// Random horizontal flips.
    #[serde(default = "default_true")]
    pub flip: bool,
    /// Cutout square size in pixels (0: none).
    #[serde(default)]
    pub cutout: u32,
    /// Train on only this many training images (a cheap low fidelity); all when absent.
    #[serde(default)]
    pub train_subset: Option<u32>,
}

fn default_lr() -> f64 {
    0.025
}
fn default_momentum() -> f64 {
    0.9
}
fn default_weight_decay() -> f64 {
    3e-4
}
fn default_batch_size() -> u32 {
    96
}
fn default_crop_padding() -> u32 {
    4
}
fn default_true() -> bool {
    true
}

impl Default for TrainingSpec {
    fn default() -> Self {
        TrainingSpec {
            lr: default_lr(),
            momentum: default_momentum(),
            weight_decay: default_weight_decay(),
            batch_size: default_batch_size(),
            label_smoothing: 0.0,
            crop_padding: default_crop_padding(),
            flip: true,
            cutout: 0,
            train_subset: None,
        }
    }
}

impl Study {
    /// Parses and validates `study.json` text.
    pub fn from_json(text: &str) -> Result<Self, SpaceError> {
        let s: Study = crate::json::parse(text, Some(STUDY_SCHEMA))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks the cross-field rules that serde cannot.
    pub fn validate(&self) -> Result<(), SpaceError> {
        self.dataset.shape()?;
        if self.objectives.is_empty() {
            return Err(SpaceError::invalid(
                "objectives",
                "at least one objective is needed",
            ));
        }
        for (i, c) in self.constraints.iter().enumerate() {
            finite(&format!("constraints[{i}].max"), c.max)?;
        }
        let b = &self.budgets;
        finite("budgets.min", b.min)?;
        finite("budgets.max", b.max)?;
        finite("budgets.eta", b.eta)?;
        if b.min <= 0.0 || b.max < b.min {
            return Err(SpaceError::range(
                "budgets",
                format!("min {} max {}", b.min, b.max),
                "0 < min ≤ max",
            ));
        }
        if b.eta <= 1.0 {
            return Err(SpaceError::range("budgets.eta", b.eta, "a number > 1"));
        }
        if self.search.batch_size == 0 {
            return Err(SpaceError::range("search.batch_size", 0, "at least 1"));
        }
        let t = &self.training;
        for (f, v) in [
            ("training.lr", t.lr),
            ("training.momentum", t.momentum),
            ("training.weight_decay", t.weight_decay),
            ("training.label_smoothing", t.label_smoothing),
        ] {
            finite(f, v)?;
            if v < 0.0 {
                return Err(SpaceError::range(f, v, "a number ≥ 0"));
            }
        }
        if t.batch_size == 0 {
            return Err(SpaceError::range("training.batch_size", 0, "at least 1"));
        }
        Ok(())
    }
}
