//! The study definition, `study.json`: everything a search needs to know, in one file.
//!
//! Each section is owned by the stage that reads it: `space` by everyone, `dataset` and
//! `training` by the trainer, `objectives`, `constraints`, `budgets` and `search` by the
//! optimiser. Unknown keys are errors everywhere, so a typo never silently falls back to a
//! default.

use crate::json::finite;
use crate::{Domain, Generator, Space, SpaceError};
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
    /// The final round that ends every search.
    #[serde(default, rename = "final")]
    pub final_round: FinalSpec,
    /// Metrics beyond [`KNOWN_METRICS`] that objectives and constraints may name: numbers
    /// that a custom trainer writes into `result.json`. Declaring them is what lets a typo in
    /// a metric name be an error instead of a study where every trial is infeasible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_metrics: Vec<String>,
}

/// The metrics that `nago-train` writes into `result.json` and that objectives and
/// constraints may name, with their units.
pub const KNOWN_METRICS: [(&str, &str); 15] = [
    ("val_error", "validation error, fraction in [0, 1]"),
    ("val_accuracy", "validation accuracy, fraction in [0, 1]"),
    (
        "test_accuracy",
        "test accuracy, fraction in [0, 1] (reported, never chosen on)",
    ),
    ("params", "trainable parameters"),
    ("macs", "multiply-accumulates per image"),
    ("memory_mb", "parameter memory, MB"),
    ("activation_mb", "activation memory per image, MB"),
    (
        "min_channels",
        "channels of the narrowest operation (known before training)",
    ),
    ("train_seconds", "wall-clock seconds of training"),
    (
        "latency_ms",
        "CPU inference latency at batch 1, one thread, ms (specific to the machine measured on)",
    ),
    (
        "latency_ms_b32",
        "CPU inference latency at batch 32, one thread, ms (specific to the machine measured on)",
    ),
    ("epochs_done", "epochs completed"),
    ("val_loss", "validation cross-entropy"),
    ("test_loss", "test cross-entropy"),
    ("images_per_second", "training throughput"),
];

/// The dataset kinds the trainer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// Fashion-MNIST (IDX files; the embedded default).
    FashionMnist,
    /// MNIST (IDX files).
    Mnist,
    /// Any directory of MNIST-style IDX files.
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// CIFAR-100 binary batches.
    Cifar100,
    /// A Hugging Face-style Parquet image table.
    Parquet,
    /// Image files in one folder per class (`train/<class>/*.png|jpg|jpeg`, optionally
    /// `test/<class>/…`), the layout of torchvision's ImageFolder.
    Folder,
}

impl DatasetKind {
    /// Every kind with its name in `study.json`.
    pub const ALL: [(&'static str, DatasetKind); 7] = [
        ("fashion-mnist", DatasetKind::FashionMnist),
        ("mnist", DatasetKind::Mnist),
        ("idx", DatasetKind::Idx),
        ("cifar10", DatasetKind::Cifar10),
        ("cifar100", DatasetKind::Cifar100),
        ("parquet", DatasetKind::Parquet),
        ("folder", DatasetKind::Folder),
    ];

    /// The kind named `name`, or an error naming `field` and the valid names.
    pub fn parse(field: &str, name: &str) -> Result<Self, SpaceError> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| SpaceError::UnknownKey {
                field: field.into(),
                key: name.into(),
                expected: Self::ALL.map(|(n, _)| n).join(", "),
            })
    }

    /// Its name in `study.json`.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).unwrap().0
    }

    /// Images in the training set of a dataset whose size is known without reading it.
    pub fn known_train_size(self) -> Option<u32> {
        match self {
            DatasetKind::FashionMnist | DatasetKind::Mnist => Some(60_000),
            DatasetKind::Cifar10 | DatasetKind::Cifar100 => Some(50_000),
            _ => None,
        }
    }
}

/// The dataset and the shape of its images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// `fashion-mnist` (the embedded default), `cifar10`, `cifar100`, `idx` (a directory of
    /// MNIST-style IDX files), `parquet` (a Hugging Face-style image table) or `folder`
    /// (image files, one folder per class).
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
    /// `folder` only: every image is resized so that its shorter side has this many pixels,
    /// then centre-cropped to a square of that size (also the default height and width).
    /// Without it every image must already have the study's height × width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<u32>,
    /// Images held out of the training set to score trials.
    #[serde(default = "default_validation")]
    pub validation: u32,
}

fn default_validation() -> u32 {
    5000
}

impl DatasetSpec {
    /// The dataset's kind (`name`, checked).
    pub fn kind(&self) -> Result<DatasetKind, SpaceError> {
        DatasetKind::parse("dataset.name", &self.name)
    }

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
        // A folder's images are resized to image_size × image_size when it is given.
        let side = self.image_size.filter(|_| self.name == "folder");
        Ok((
            pick("channels", self.channels, known.map(|k| k.0))?,
            pick("height", self.height, known.map(|k| k.1).or(side))?,
            pick("width", self.width, known.map(|k| k.2).or(side))?,
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

/// A hard limit: trials whose metric exceeds `max` (or is below `min`) are infeasible. A
/// limit on a metric known before training (see [`PRE_TRAINING_METRICS`]) is checked when
/// the trial is proposed: such a trial is never trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// A metric name, e.g. `params`.
    pub metric: String,
    /// The largest allowed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The smallest allowed value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

impl Constraint {
    /// Whether `v` is within the limits (a missing or non-finite value is not).
    pub fn allows(&self, v: Option<f64>) -> bool {
        v.is_some_and(|v| {
            v.is_finite() && self.max.is_none_or(|m| v <= m) && self.min.is_none_or(|m| v >= m)
        })
    }
}

/// The metrics an architecture has before it is trained (nago-generate computes them from
/// arch.json alone): constraints on them are checked when a trial is proposed.
pub const PRE_TRAINING_METRICS: [&str; 5] = [
    "params",
    "macs",
    "memory_mb",
    "activation_mb",
    "min_channels",
];

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
    /// Architectures sampled per chosen generator in the final round (the `final` section's
    /// `samples` takes precedence when given).
    #[serde(default = "default_final_samples")]
    pub final_samples: u32,
    /// The narrowest operation's channels below which an architecture is not trained (it is
    /// recorded as `rejected` when proposed). Measured (README): operations of one channel
    /// learn little (1-epoch validation accuracy 0.21 and 0.51) at a sixth of the images/s
    /// of two-channel ones (0.59, 0.70). 0 turns the rule off.
    #[serde(default = "default_min_channels")]
    pub min_channels: u32,
    /// Validation accuracy, as a fraction of the way from chance (1/classes) to 1, that an
    /// evaluation must pass to be promoted or taken to the final round: an evaluation at
    /// chance level has not learned, and is never promoted although it may be non-dominated
    /// (the smallest network).
    #[serde(default = "default_learned_fraction")]
    pub learned_fraction: f64,
    /// Test images each search trial is evaluated on (the first N of the test split); all
    /// when absent, 0 for none. The search chooses on validation error, so its trials' test
    /// accuracy is only reported; evaluating 10,000 test images costs a third of a one-epoch
    /// trial on 8,000 images. The final round always evaluates the whole test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_images: Option<u32>,
    /// The width every new search trial is trained at (`searched` by default: the
    /// generator's own `param_limit`). `largest` trains each architecture as wide as the
    /// study's constraints allow, starting from the space's fixed `param_limit`: what the
    /// search measures is then the network that `final.param_limit: "largest"` trains, not
    /// a narrower one that ranks graphs differently (a graph that the activation limit stops
    /// early widens less). The width is no longer searched, so the space must fix
    /// `param_limit` (the narrowest width tried); the model sees each trial at that fixed
    /// value ([`Study::search_point`]), and the final round widens its samples too,
    /// whatever `final.param_limit` says.
    #[serde(default, skip_serializing_if = "FinalWidth::is_searched")]
    pub param_limit: FinalWidth,
}

/// Which generators the final round takes, and how it trains them (`final` in study.json).
/// Every search ends with it: `samples` architectures (new seeds) of each chosen generator,
/// trained for `epochs` with `training` (the study's own training section when absent);
/// results are reported as mean ± std per generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalSpec {
    /// Run the final round at the end of `nago-search` and the Slurm pipeline.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// At most this many generators, chosen by `select` among the feasible evaluations at
    /// the model budget that learned.
    #[serde(default = "default_final_generators")]
    pub max_generators: u32,
    /// How the generators are chosen (`contribution` by default).
    #[serde(default)]
    pub select: FinalSelect,
    /// Architectures per generator (default: `search.final_samples`).
    #[serde(default)]
    pub samples: Option<u32>,
    /// Epochs of each final training (default: `budgets.max`); also the schedule's horizon.
    #[serde(default)]
    pub epochs: Option<f64>,
    /// Training settings of the final round (default: the study's `training` section), e.g.
    /// the whole training split where the search used a subset.
    #[serde(default)]
    pub training: Option<TrainingSpec>,
    /// The parameter limit (width) the final round samples each chosen generator at
    /// (`searched` by default; `search.param_limit: "largest"` makes it `largest`).
    #[serde(default)]
    pub param_limit: FinalWidth,
    /// With `select: "best"`: judge each candidate by all its evaluations — its own at the
    /// largest budget and its promotion ancestors' at the lower ones, each shifted by the
    /// mean gap between that budget and the largest among the candidates, then averaged (in
    /// the model's units) — rather than by the one at the largest budget alone. Needs
    /// `training.schedule_horizon: "budget"`, where every rung is a training of its own
    /// (its own schedule; the same network, initial weights and data order); under `"max"`
    /// a promotion continues its parent's run, whose earlier, unannealed values add little.
    #[serde(default)]
    pub pool_rungs: bool,
}

/// The width networks are trained at (`final.param_limit`, `search.param_limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalWidth {
    /// The generator's own `param_limit`, as the search proposed it.
    #[default]
    Searched,
    /// The largest `param_limit` at which every final sample of the generator still meets
    /// the study's constraints known before training (`params`, `macs`, `memory_mb`,
    /// `activation_mb` maxima): the same graphs, each operation as wide as the constraints
    /// allow. For a study that wants the most accurate network within its constraints
    /// (`select: "best"`): short, low-fidelity trainings cannot tell a wider network's
    /// worth, and at a fixed graph accuracy grows with width while the network underfits.
    Largest,
}

impl FinalWidth {
    /// Whether this is the default, the generator's own width.
    pub fn is_searched(&self) -> bool {
        *self == FinalWidth::Searched
    }
}

/// The rule that picks the final round's generators (`final.select`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalSelect {
    /// The Pareto set, cut to `max_generators` by greedy hypervolume contribution: a spread
    /// of the trade-off (its most accurate member is often not among them, since the
    /// largest network adds little volume on a log-size axis).
    #[default]
    Contribution,
    /// The `max_generators` best on the first objective (e.g. the lowest validation error):
    /// for a study whose constraints say how large a network may be and whose user wants
    /// the best one within them.
    Best,
}

fn default_final_generators() -> u32 {
    4
}
fn default_min_channels() -> u32 {
    2
}
fn default_learned_fraction() -> f64 {
    0.1
}

impl Default for FinalSpec {
    fn default() -> Self {
        FinalSpec {
            enabled: true,
            max_generators: default_final_generators(),
            select: FinalSelect::default(),
            samples: None,
            epochs: None,
            training: None,
            param_limit: FinalWidth::default(),
            pool_rungs: false,
        }
    }
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
            min_channels: default_min_channels(),
            learned_fraction: default_learned_fraction(),
            test_images: None,
            param_limit: FinalWidth::default(),
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
    /// Over which horizon the cosine schedule anneals during the search (the final round
    /// always anneals over its own epochs).
    #[serde(default)]
    pub schedule_horizon: ScheduleHorizon,
    /// Which training seed a promotion uses when it trains from scratch (only under
    /// `schedule_horizon: "budget"`).
    #[serde(default)]
    pub rung_seeds: RungSeeds,
}

/// The horizon of the search's cosine schedule (`training.schedule_horizon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleHorizon {
    /// One cosine over `budgets.max` for every budget: a promotion continues its parent's
    /// checkpoint (no epoch is trained twice), but a low budget ends at a learning rate that
    /// has not annealed.
    #[default]
    Max,
    /// A cosine over each trial's own budget: every evaluation ends annealed, so a low budget
    /// ranks networks more like the full one; a promotion trains from scratch (its parent's
    /// checkpoint followed another schedule), which costs the parent's epochs again.
    Budget,
}

/// The training seed of a promotion that trains from scratch (`training.rung_seeds`).
///
/// Under `schedule_horizon: "budget"` every rung is a training of its own. With the parent's
/// seed it repeats the parent's initial weights and data order, so whatever luck lifted the
/// parent into the promotion is carried up to the top rung and into the final choice; with a
/// seed of its own each rung is an independent evaluation of the same network, and the rungs
/// of one chain can be pooled (`final.pool_rungs`) into a less noisy judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RungSeeds {
    /// The trial's seed, as its parent (studies written before this setting train the same).
    #[default]
    Shared,
    /// A seed derived from the trial's seed and its budget: a new initialisation and data
    /// order at every rung.
    Own,
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
            schedule_horizon: ScheduleHorizon::Max,
            rung_seeds: RungSeeds::Shared,
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
        self.validate_dataset()?;
        self.validate_metrics()?;
        self.validate_budgets()?;
        self.validate_search()?;
        Self::validate_training_spec("training", &self.training)?;
        if self.training.rung_seeds == RungSeeds::Own
            && self.training.schedule_horizon != ScheduleHorizon::Budget
        {
            return Err(SpaceError::invalid(
                "training.rung_seeds",
                "\"own\" needs training.schedule_horizon \"budget\" (the default is \"max\"): \
                 under \"max\" a promotion continues its parent's checkpoint, whose seed it must \
                 keep",
            ));
        }
        self.validate_final()
    }

    /// Samples per generator in the final round.
    pub fn final_samples(&self) -> u32 {
        self.final_round
            .samples
            .unwrap_or(self.search.final_samples)
    }

    /// Epochs of a final-round training.
    pub fn final_epochs(&self) -> f64 {
        self.final_round.epochs.unwrap_or(self.budgets.max)
    }

    /// The training settings of the final round.
    pub fn final_training(&self) -> &TrainingSpec {
        self.final_round.training.as_ref().unwrap_or(&self.training)
    }

    fn validate_final(&self) -> Result<(), SpaceError> {
        let f = &self.final_round;
        if let Some(s) = f.samples {
            if !(1..=10_000).contains(&s) {
                return Err(SpaceError::range(
                    "final.samples",
                    s,
                    "an integer from 1 to 10000",
                ));
            }
        }
        if !(1..=1000).contains(&f.max_generators) {
            return Err(SpaceError::range(
                "final.max_generators",
                f.max_generators,
                "an integer from 1 to 1000",
            ));
        }
        if let Some(e) = f.epochs {
            finite("final.epochs", e)?;
            if e < 1.0 || e.fract() != 0.0 || e > 100_000.0 {
                return Err(SpaceError::range(
                    "final.epochs",
                    e,
                    "a whole number of epochs from 1 to 100000",
                ));
            }
        }
        if f.param_limit == FinalWidth::Largest {
            self.check_size_bounded("final.param_limit", "final network")?;
        }
        if f.pool_rungs && f.select != FinalSelect::Best {
            return Err(SpaceError::invalid(
                "final.pool_rungs",
                "pools each candidate's evaluations on the first objective, which only \
                 `\"select\": \"best\"` judges by: set final.select to \"best\" or drop pool_rungs",
            ));
        }
        if f.pool_rungs && self.training.schedule_horizon != ScheduleHorizon::Budget {
            return Err(SpaceError::invalid(
                "final.pool_rungs",
                "needs training.schedule_horizon \"budget\" (the default is \"max\"): under \
                 \"max\" a promotion continues its parent's training, so the lower rungs are \
                 earlier points of the same run, not evaluations of their own",
            ));
        }
        if let Some(t) = &f.training {
            Self::validate_training_spec("final.training", t)?;
            if let (Some(s), Some(n)) = (t.train_subset, self.dataset.kind()?.known_train_size()) {
                let most = n.saturating_sub(self.dataset.validation);
                if s > most {
                    return Err(SpaceError::range(
                        "final.training.train_subset",
                        s,
                        format!("at most {most} (the training split less dataset.validation)"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `name` is a metric that objectives and constraints may use.
    pub fn knows_metric(&self, name: &str) -> bool {
        KNOWN_METRICS.iter().any(|(m, _)| *m == name)
            || self.extra_metrics.iter().any(|m| m == name)
    }

    fn validate_metrics(&self) -> Result<(), SpaceError> {
        if self.objectives.is_empty() {
            return Err(SpaceError::invalid(
                "objectives",
                "at least one objective is needed",
            ));
        }
        for (i, m) in self.extra_metrics.iter().enumerate() {
            if m.is_empty() || !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(SpaceError::invalid(
                    format!("extra_metrics[{i}]"),
                    format!("`{m}`: a metric name is letters, digits and `_`"),
                ));
            }
        }
        let unknown = |field: String, name: &str| SpaceError::UnknownKey {
            field,
            key: name.into(),
            expected: format!(
                "{}{} (a metric of your own trainer must be declared in `extra_metrics`)",
                KNOWN_METRICS.map(|m| m.0).join(", "),
                if self.extra_metrics.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", and this study's extra_metrics {}",
                        self.extra_metrics.join(", ")
                    )
                }
            ),
        };
        for (i, o) in self.objectives.iter().enumerate() {
            if !self.knows_metric(&o.metric) {
                return Err(unknown(format!("objectives[{i}].metric"), &o.metric));
            }
            if let Some(r) = o.reference {
                finite(&format!("objectives[{i}].reference"), r)?;
                if o.log && r <= 0.0 {
                    return Err(SpaceError::range(
                        format!("objectives[{i}].reference"),
                        r,
                        "a positive number (the objective is on a log scale)",
                    ));
                }
            }
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if !self.knows_metric(&c.metric) {
                return Err(unknown(format!("constraints[{i}].metric"), &c.metric));
            }
            if c.max.is_none() && c.min.is_none() {
                return Err(SpaceError::invalid(
                    format!("constraints[{i}]"),
                    "give `max`, `min` or both",
                ));
            }
            for (f, v) in [("max", c.max), ("min", c.min)] {
                if let Some(v) = v {
                    finite(&format!("constraints[{i}].{f}"), v)?;
                }
            }
        }
        Ok(())
    }

    fn validate_dataset(&self) -> Result<(), SpaceError> {
        let d = &self.dataset;
        let (c, h, w, _) = d.shape()?;
        let kind = d.kind()?;
        if let Some(s) = d.image_size {
            if kind != DatasetKind::Folder {
                return Err(SpaceError::invalid(
                    "dataset.image_size",
                    "only for dataset `folder` (the other formats have one image size)",
                ));
            }
            if !(4..=1024).contains(&s) {
                return Err(SpaceError::range(
                    "dataset.image_size",
                    s,
                    "4 to 1024 pixels",
                ));
            }
            if (h, w) != (s, s) {
                return Err(SpaceError::invalid(
                    "dataset.height",
                    format!("{h} × {w} (height × width) but image_size {s} makes {s} × {s} images"),
                ));
            }
        }
        if kind == DatasetKind::Folder && c != 1 && c != 3 {
            return Err(SpaceError::range(
                "dataset.channels",
                c,
                "1 (grayscale: colour images are converted) or 3 (RGB: grayscale images are replicated)",
            ));
        }
        if d.validation == 0 {
            return Err(SpaceError::range(
                "dataset.validation",
                0,
                "at least 1 image (trials are scored on the validation split)",
            ));
        }
        if let Some(n) = kind.known_train_size() {
            if d.validation >= n {
                return Err(SpaceError::range(
                    "dataset.validation",
                    d.validation,
                    format!("fewer than the {n} training images of {}", kind.name()),
                ));
            }
            if let Some(s) = self.training.train_subset {
                if s > n - d.validation {
                    return Err(SpaceError::range(
                        "training.train_subset",
                        s,
                        format!(
                            "at most {} ({n} training images of {} less dataset.validation {})",
                            n - d.validation,
                            kind.name(),
                            d.validation
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_budgets(&self) -> Result<(), SpaceError> {
        let b = &self.budgets;
        finite("budgets.min", b.min)?;
        finite("budgets.max", b.max)?;
        finite("budgets.eta", b.eta)?;
        for (f, v) in [("budgets.min", b.min), ("budgets.max", b.max)] {
            if v < 1.0 || v.fract() != 0.0 || v > 100_000.0 {
                return Err(SpaceError::range(
                    f,
                    v,
                    "a whole number of epochs from 1 to 100000",
                ));
            }
        }
        if b.max < b.min {
            return Err(SpaceError::range(
                "budgets.max",
                b.max,
                format!("at least budgets.min ({})", b.min),
            ));
        }
        if b.eta <= 1.0 {
            return Err(SpaceError::range("budgets.eta", b.eta, "a number > 1"));
        }
        Ok(())
    }

    fn validate_search(&self) -> Result<(), SpaceError> {
        let s = &self.search;
        // The Sobol design holds at most 2^16 points.
        for (f, v, lo, hi) in [
            ("search.batch_size", s.batch_size, 1, 65_536),
            ("search.max_evaluations", s.max_evaluations, 1, 1_000_000),
            ("search.initial_design", s.initial_design, 0, 65_536),
            ("search.final_samples", s.final_samples, 1, 10_000),
        ] {
            if v < lo || v > hi {
                return Err(SpaceError::range(
                    f,
                    v,
                    format!("an integer from {lo} to {hi}"),
                ));
            }
        }
        finite("search.learned_fraction", s.learned_fraction)?;
        if !(0.0..1.0).contains(&s.learned_fraction) {
            return Err(SpaceError::range(
                "search.learned_fraction",
                s.learned_fraction,
                "a number in [0, 1) (0: every evaluation above chance level counts as learned)",
            ));
        }
        if s.param_limit == FinalWidth::Largest {
            self.check_size_bounded("search.param_limit", "search trial's network")?;
            let fixed = self
                .space
                .params()
                .iter()
                .any(|p| p.name == "param_limit" && matches!(p.domain, Domain::Fixed(_)));
            if !fixed {
                return Err(SpaceError::invalid(
                    "search.param_limit",
                    "\"largest\" trains every search trial as wide as the constraints allow, so \
                     the width is not searched: fix it in the space at the narrowest width to \
                     start from (e.g. \"param_limit\": {\"fixed\": 20000})",
                ));
            }
        }
        if s.test_images == Some(0) {
            let named = self
                .objectives
                .iter()
                .map(|o| (o.metric.as_str(), "objectives"))
                .chain(
                    self.constraints
                        .iter()
                        .map(|c| (c.metric.as_str(), "constraints")),
                )
                .find(|(m, _)| *m == "test_accuracy");
            if let Some((_, section)) = named {
                return Err(SpaceError::range(
                    "search.test_images",
                    0,
                    format!("at least 1: {section} name test_accuracy, which a search trial without test images does not report"),
                ));
            }
        }
        Ok(())
    }

    /// For a `"largest"` width: a constraint that bounds the network's size.
    fn check_size_bounded(&self, field: &str, what: &str) -> Result<(), SpaceError> {
        let bounded = self.constraints.iter().any(|c| {
            c.max.is_some()
                && ["params", "macs", "memory_mb", "activation_mb"].contains(&c.metric.as_str())
        });
        if bounded {
            return Ok(());
        }
        Err(SpaceError::invalid(
            field,
            format!(
                "\"largest\" widens each {what} up to the study's constraints, but no \
                 constraint bounds its size: add one with a `max` on params, macs, memory_mb or \
                 activation_mb (e.g. {{\"metric\": \"params\", \"max\": 100000}})"
            ),
        ))
    }

    /// The generator as the search's space knows it: under `search.param_limit: "largest"`,
    /// a search trial's generator holds the width it was trained at, and the space's fixed
    /// `param_limit` (the point the search proposed) is put back; otherwise `g` itself.
    /// What the model is fitted on and what the final round widens from.
    pub fn search_point(&self, g: &Generator) -> Generator {
        match self.search.param_limit {
            FinalWidth::Searched => *g,
            FinalWidth::Largest => Generator {
                param_limit: self.space.base().param_limit,
                ..*g
            },
        }
    }

    fn validate_training_spec(prefix: &str, t: &TrainingSpec) -> Result<(), SpaceError> {
        let f = |name: &str| format!("{prefix}.{name}");
        finite(&f("lr"), t.lr)?;
        if t.lr <= 0.0 {
            return Err(SpaceError::range(f("lr"), t.lr, "a number > 0"));
        }
        for (name, v) in [
            (f("momentum"), t.momentum),
            (f("label_smoothing"), t.label_smoothing),
        ] {
            finite(&name, v)?;
            if !(0.0..1.0).contains(&v) {
                return Err(SpaceError::range(name, v, "a number in [0, 1)"));
            }
        }
        finite(&f("weight_decay"), t.weight_decay)?;
        if t.weight_decay < 0.0 {
            return Err(SpaceError::range(
                f("weight_decay"),
                t.weight_decay,
                "a number ≥ 0",
            ));
        }
        if t.batch_size == 0 {
            return Err(SpaceError::range(f("batch_size"), 0, "at least 1"));
        }
        if t.train_subset == Some(0) {
            return Err(SpaceError::range(
                f("train_subset"),
                0,
                "at least 1 image (leave it out to train on the whole training split)",
            ));
        }
        Ok(())
    }
}
