//! One trial end to end: read the inputs, skip if already done, continue from a checkpoint
//! (a promotion's parent or an interrupted run of this trial), train, write `result.json`
//! and `epochs.parquet`, turn every failure into an explicit status.

use crate::data::Dataset;
use crate::outputs::write_epochs;
use crate::train::{self, EpochRecord, Outcome, Stop, StopFlag, TrainConfig};
use nago_arch::Arch;
use nago_space::{Study, TrainingSpec};
use nago_store::{derive_seed, Proposal, TrialResult, TrialStatus, RESULT_SCHEMA};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use tch::Device;

/// Problems with the inputs: nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A file could not be read or is invalid.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The dataset could not be read.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// Setting up training failed (shape mismatch, parameter mismatch, checkpoint).
    #[error(transparent)]
    Train(#[from] train::TrainError),
    /// Writing an output failed.
    #[error("{0}")]
    Output(String),
}

fn input(path: &Path, message: impl std::fmt::Display) -> JobError {
    JobError::Input {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Training settings given on the command line; each overrides the study's.
#[derive(Debug, Clone, Default)]
pub struct TrainingOverrides {
    /// Peak learning rate.
    pub lr: Option<f64>,
    /// Momentum.
    pub momentum: Option<f64>,
    /// Weight decay.
    pub weight_decay: Option<f64>,
    /// Batch size.
    pub batch_size: Option<u32>,
    /// Label smoothing.
    pub label_smoothing: Option<f64>,
    /// Crop padding.
    pub crop_padding: Option<u32>,
    /// Flips.
    pub flip: Option<bool>,
    /// Cutout size.
    pub cutout: Option<u32>,
    /// Training subset.
    pub train_subset: Option<u32>,
    /// Validation images.
    pub validation: Option<u32>,
    /// Test images to report on (the first N; all when absent).
    pub test_subset: Option<u32>,
}

/// Everything one call of `nago-train` needs.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// `arch.json`.
    pub arch: PathBuf,
    /// `study.json` (training and dataset sections, the schedule horizon, the split seed).
    pub study: Option<PathBuf>,
    /// `proposal.json` (budget, seed, parent).
    pub proposal: Option<PathBuf>,
    /// Output directory (the trial directory).
    pub out: PathBuf,
    /// Where a promotion's parent trial lives (its checkpoint is continued). Without it, a
    /// proposal's `parent` is looked up beside `out`.
    pub parent_dir: Option<PathBuf>,
    /// Dataset kind (overrides the study's `dataset.name`).
    pub dataset: Option<String>,
    /// Dataset location (overrides the study's `dataset.path`).
    pub data_path: Option<PathBuf>,
    /// Where the known datasets live by default (`data/`).
    pub data_root: PathBuf,
    /// Epochs to train to (overrides the proposal's budget).
    pub epochs: Option<u32>,
    /// Trial seed (overrides the proposal's).
    pub seed: Option<u64>,
    /// Cosine horizon in epochs (overrides the study's `budgets.max`).
    pub schedule_epochs: Option<f64>,
    /// Training settings over the study's.
    pub overrides: TrainingOverrides,
    /// CPU threads.
    pub threads: Option<i32>,
    /// Train on the CPU even when CUDA is available.
    pub cpu: bool,
    /// bf16 autocast on CUDA.
    pub bf16: bool,
    /// Channels-last on CUDA.
    pub channels_last: bool,
    /// Time limit in seconds.
    pub time_limit: Option<f64>,
    /// Progress bar.
    pub progress: bool,
    /// One line per epoch on stderr (when there is no progress bar).
    pub log_epochs: bool,
    /// Retrain even if a valid result exists (and ignore this trial's own checkpoint).
    pub force: bool,
}

impl JobSpec {
    /// A spec with everything but the paths at its default.
    pub fn new(arch: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        JobSpec {
            arch: arch.into(),
            study: None,
            proposal: None,
            out: out.into(),
            parent_dir: None,
            dataset: None,
            data_path: None,
            data_root: PathBuf::from("data"),
            epochs: None,
            seed: None,
            schedule_epochs: None,
            overrides: TrainingOverrides::default(),
            threads: None,
            cpu: false,
            bf16: false,
            channels_last: false,
            time_limit: None,
            progress: false,
            log_epochs: false,
            force: false,
        }
    }
}

/// What a call did.
#[derive(Debug)]
pub struct JobReport {
    /// The result written (or found, when skipped).
    pub result: TrialResult,
    /// Whether a valid result for this budget existed and nothing was done.
    pub skipped: bool,
}

impl JobReport {
    /// The process exit code: 0 for success (or a skip), 2 for a failed run.
    pub fn exit_code(&self) -> i32 {
        if self.result.status == TrialStatus::Ok {
            0
        } else {
            2
        }
    }
}

fn read(path: &Path) -> Result<String, JobError> {
    std::fs::read_to_string(path).map_err(|e| input(path, e))
}

/// Runs one trial as `spec` says. Input errors return `Err` with nothing written; training
/// failures are written as results with an explicit status (see [`JobReport::exit_code`]).
pub fn run(spec: &JobSpec, stop: &StopFlag) -> Result<JobReport, JobError> {
    let arch = Arch::from_json(&read(&spec.arch)?).map_err(|e| input(&spec.arch, e))?;
    let study = match &spec.study {
        Some(p) => Some(Study::from_json(&read(p)?).map_err(|e| input(p, e))?),
        None => None,
    };
    let proposal = match &spec.proposal {
        Some(p) => Some(Proposal::from_json(&read(p)?).map_err(|e| input(p, e))?),
        None => None,
    };
    if let Some(p) = &proposal {
        if p.seed != arch.seed || p.generator != arch.generator {
            return Err(input(
                &spec.arch,
                format!(
                    "was not sampled from this proposal ({}): seed {} vs {}, or another generator",
                    spec.proposal.as_ref().unwrap().display(),
                    arch.seed,
                    p.seed
                ),
            ));
        }
    }
    // Budget: integral epochs.
    let budget: f64 = match (spec.epochs, &proposal) {
        (Some(e), _) => e as f64,
        (None, Some(p)) => p.budget,
        (None, None) => {
            return Err(input(
                &spec.arch,
                "no budget: give --epochs or a proposal.json",
            ))
        }
    };
    if budget < 1.0 || budget.fract() != 0.0 {
        return Err(input(
            spec.proposal.as_deref().unwrap_or(&spec.arch),
            format!("budget {budget}: expected a whole number of epochs ≥ 1"),
        ));
    }
    let epochs = budget as u32;
    let trial = proposal
        .as_ref()
        .map(|p| p.trial.clone())
        .or_else(|| {
            spec.out
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "manual".into());
    let result_path = spec.out.join("result.json");
    // Idempotency: a valid result for this budget means there is nothing to do.
    if !spec.force && result_path.is_file() {
        if let Ok(r) = serde_json::from_str::<TrialResult>(&read(&result_path)?) {
            if r.schema == RESULT_SCHEMA && r.status == TrialStatus::Ok && r.budget == budget {
                return Ok(JobReport {
                    result: r,
                    skipped: true,
                });
            }
        }
    }
    let ts: TrainingSpec = study
        .as_ref()
        .map(|s| s.training.clone())
        .unwrap_or_default();
    let o = &spec.overrides;
    let ds_spec = study.as_ref().map(|s| s.dataset.clone());
    let name = spec
        .dataset
        .clone()
        .or_else(|| ds_spec.as_ref().map(|d| d.name.clone()))
        .unwrap_or_else(|| "fashion-mnist".into());
    let data_path = spec
        .data_path
        .clone()
        .or_else(|| ds_spec.as_ref().and_then(|d| d.path.clone()))
        .unwrap_or_else(|| spec.data_root.join(&name));
    let validation = o
        .validation
        .or(ds_spec.as_ref().map(|d| d.validation))
        .unwrap_or(5000);
    let seed = spec
        .seed
        .or(proposal.as_ref().map(|p| p.seed))
        .unwrap_or(arch.seed);
    let schedule_epochs = spec
        .schedule_epochs
        .or(study.as_ref().map(|s| s.budgets.max))
        .unwrap_or(budget)
        .max(budget);
    let device = if spec.cpu {
        Device::Cpu
    } else {
        Device::cuda_if_available()
    };
    let cfg = TrainConfig {
        epochs,
        schedule_epochs,
        lr: o.lr.unwrap_or(ts.lr),
        momentum: o.momentum.unwrap_or(ts.momentum),
        weight_decay: o.weight_decay.unwrap_or(ts.weight_decay),
        batch_size: o.batch_size.unwrap_or(ts.batch_size) as usize,
        label_smoothing: o.label_smoothing.unwrap_or(ts.label_smoothing),
        crop_padding: o.crop_padding.unwrap_or(ts.crop_padding) as i64,
        flip: o.flip.unwrap_or(ts.flip),
        cutout: o.cutout.unwrap_or(ts.cutout) as i64,
        train_subset: o.train_subset.or(ts.train_subset).map(|v| v as usize),
        validation: validation as usize,
        test_subset: o.test_subset.map(|v| v as usize),
        split_seed: study.as_ref().map(|s| s.seed).unwrap_or(0),
        seed: derive_seed(seed, &["train"]),
        threads: spec.threads,
        device,
        time_limit: spec.time_limit,
        progress: spec.progress,
        log_epochs: spec.log_epochs,
        eval_batch: 500,
        bf16: spec.bf16,
        channels_last: spec.channels_last,
    };
    let ds = Dataset::load(&name, &data_path)?;
    train::check_shape(&arch, &ds)?;
    // Which checkpoint to continue: this trial's own (an interrupted run), else the parent's.
    let own = (!spec.force)
        .then(|| train::checkpoint_in(&spec.out))
        .flatten()
        .filter(|d| {
            crate::checkpoint::load(d)
                .map(|c| c.meta.epochs_done <= epochs && c.meta.schedule_epochs == schedule_epochs)
                .unwrap_or(false)
        });
    let parent = proposal.as_ref().and_then(|p| p.parent.clone());
    let resume: Option<PathBuf> = match (own, parent) {
        (Some(d), _) => Some(d),
        (None, Some(par)) => {
            let dir = spec
                .parent_dir
                .clone()
                .unwrap_or_else(|| spec.out.parent().unwrap_or(Path::new(".")).join(&par));
            if !crate::checkpoint::exists(&dir) {
                return Err(input(
                    &dir,
                    format!("the parent trial `{par}` has no checkpoint to continue from"),
                ));
            }
            Some(dir)
        }
        (None, None) => None,
    };
    std::fs::create_dir_all(&spec.out).map_err(|e| input(&spec.out, e))?;
    let epochs_path = spec.out.join("epochs.parquet");
    let mut write_err: Option<String> = None;
    let mut on_epoch = |rows: &[EpochRecord]| {
        if let Err(e) = write_epochs(&epochs_path, rows) {
            write_err = Some(e);
        }
    };
    let outcome = train::train(
        &arch,
        &ds,
        &cfg,
        resume.as_deref(),
        Some(&spec.out),
        stop,
        &mut on_epoch,
    );
    let outcome = match outcome {
        Ok(o) => o,
        Err(train::TrainError::Torch(e)) => {
            // A libtorch failure during set-up (e.g. out of memory moving data): a result.
            let msg = e.to_string();
            let stop = if msg.to_lowercase().contains("out of memory") {
                Stop::OutOfMemory(msg)
            } else {
                Stop::Crashed(msg)
            };
            Outcome {
                epochs: Vec::new(),
                start_epoch: 0,
                stop: Some(stop),
                test_accuracy: None,
                test_loss: None,
                seconds: 0.0,
                images_per_second: None,
                params: arch.counts.params,
                sizes: (0, 0, 0),
                input_stats: None,
            }
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(e) = write_err {
        return Err(JobError::Output(e));
    }
    if !outcome.epochs.is_empty() {
        write_epochs(&epochs_path, &outcome.epochs).map_err(JobError::Output)?;
    }
    let result = make_result(
        &trial,
        budget,
        &arch,
        &cfg,
        &name,
        &outcome,
        resume.as_deref(),
    );
    nago_store::atomic_write_json(&result_path, &result)
        .map_err(|e| JobError::Output(e.to_string()))?;
    Ok(JobReport {
        result,
        skipped: false,
    })
}

fn make_result(
    trial: &str,
    budget: f64,
    arch: &Arch,
    cfg: &TrainConfig,
    dataset: &str,
    o: &Outcome,
    resumed: Option<&Path>,
) -> TrialResult {
    let (status, error) = match &o.stop {
        None => (TrialStatus::Ok, None),
        Some(Stop::Diverged(m)) => (TrialStatus::Diverged, Some(m.clone())),
        Some(Stop::OutOfMemory(m)) => (TrialStatus::OutOfMemory, Some(m.clone())),
        Some(Stop::TimeLimit(m)) => (TrialStatus::TimeLimit, Some(m.clone())),
        Some(Stop::Killed(m)) => (TrialStatus::Killed, Some(m.clone())),
        Some(Stop::Crashed(m)) => (TrialStatus::Crashed, Some(m.clone())),
    };
    let ok = status == TrialStatus::Ok;
    let last = o.epochs.last();
    let mut extra = Map::new();
    let mut put = |k: &str, v: Value| {
        extra.insert(k.to_string(), v);
    };
    put("val_loss", json!(last.filter(|_| ok).map(|l| l.val_loss)));
    put("test_loss", json!(o.test_loss));
    put("images_per_second", json!(o.images_per_second));
    put(
        "device",
        json!(match cfg.device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(i) => format!("cuda:{i}"),
            d => format!("{d:?}"),
        }),
    );
    put("threads", json!(tch::get_num_threads()));
    put("seed", json!(cfg.seed));
    put("split_seed", json!(cfg.split_seed));
    put("batch_size", json!(cfg.batch_size.min(o.sizes.0.max(1))));
    put("lr", json!(cfg.lr));
    put("momentum", json!(cfg.momentum));
    put("weight_decay", json!(cfg.weight_decay));
    put("label_smoothing", json!(cfg.label_smoothing));
    put("schedule_epochs", json!(cfg.schedule_epochs));
    put("start_epoch", json!(o.start_epoch));
    put(
        "resumed_from",
        json!(resumed.map(|p| p.display().to_string())),
    );
    put("dataset", json!(dataset));
    if let Some((mean, std)) = &o.input_stats {
        put("input_mean", json!(mean));
        put("input_std", json!(std));
    }
    put("train_images", json!(o.sizes.0));
    put("val_images", json!(o.sizes.1));
    put("test_images", json!(o.sizes.2));
    put(
        "activation_mb",
        json!(arch.counts.activation_bytes as f64 / 1e6),
    );
    put("bf16", json!(cfg.bf16 && cfg.device.is_cuda()));
    put(
        "channels_last",
        json!(cfg.channels_last && cfg.device.is_cuda()),
    );
    put(
        "versions",
        json!({
            "nago_train": env!("CARGO_PKG_VERSION"),
            "tch": crate::TCH_VERSION,
            "torch": crate::TORCH_VERSION,
        }),
    );
    TrialResult {
        schema: RESULT_SCHEMA.into(),
        trial: trial.into(),
        status,
        budget,
        epochs_done: Some(o.epochs.len() as f64),
        val_accuracy: last.filter(|_| ok).map(|l| l.val_accuracy),
        val_error: last.filter(|_| ok).map(|l| 1.0 - l.val_accuracy),
        test_accuracy: o.test_accuracy,
        params: Some(o.params),
        macs: Some(arch.counts.macs),
        memory_mb: Some(arch.counts.param_bytes as f64 / 1e6),
        train_seconds: Some(o.seconds),
        error,
        retryable: status == TrialStatus::Killed,
        attempts: 0,
        extra,
    }
}
