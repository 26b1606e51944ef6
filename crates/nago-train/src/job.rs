//! One trial end to end: read the inputs, skip if already done, continue from a checkpoint
//! (a promotion's parent or an interrupted run of this trial), train, write `result.json`
//! and `epochs.parquet`, turn every failure into an explicit status.
//!
//! **What ends how.** Bad input (a file, a flag, a setting, a split that does not fit the
//! dataset): [`JobError`] other than [`JobError::Output`], nothing written, exit 1. Training
//! that fails: a `result.json` with the status, exit 2; retryable (`retryable: true`, the
//! attempt count continued from a previous retryable result) for a signal (`killed`), the
//! job's deadline (`time_limit` via [`JobSpec::deadline`]) and a libtorch error (`crashed`);
//! final for `diverged`, `out_of_memory` and the study's own time limit
//! ([`JobSpec::time_limit`]). An output that cannot be written (disk full):
//! [`JobError::Output`], exit 3, no failure recorded, the previous files intact (each is
//! written to a temporary name and renamed).
//!
//! **Done already.** A trial whose `result.json` is final ([`TrialResult::is_final`]) for
//! this budget is left alone (exit 0 for `ok`, 2 for a final failure) unless `--force`.
//!
//! **Recorded settings.** A continued checkpoint (the trial's own or a promotion's parent's)
//! records the settings it was trained with ([`crate::checkpoint::Settings`]: threads,
//! device, lr, batch size, …); they are reused, with a note on stderr for each setting the
//! caller asked differently, so a resumed trial reproduces an uninterrupted one.

use crate::checkpoint::{self, CheckpointMeta, Settings};
use crate::data::Dataset;
use crate::train::{self, Outcome, Stop, StopFlag, TrainConfig};
use nago_arch::Arch;
use nago_space::{RungSeeds, ScheduleHorizon, Study, TrainingSpec};
use nago_store::{derive_seed, Proposal, TrialResult, TrialStatus, RESULT_SCHEMA};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};
use tch::Device;

/// Exit status: trained, or already done with an `ok` result.
pub const EXIT_OK: i32 = 0;
/// Exit status: bad input (a file, a flag, a setting), nothing written.
pub const EXIT_BAD_INPUT: i32 = 1;
/// Exit status: training failed, recorded in `result.json` (retryable or final).
pub const EXIT_FAILED: i32 = 2;
/// Exit status: an output could not be written (disk full, I/O error); nothing recorded,
/// the previous files intact: run again.
pub const EXIT_IO: i32 = 3;

/// Problems with the inputs (nothing is written), or an output that could not be written.
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
    /// A setting (a flag or a study field) is out of range or does not fit the dataset, or
    /// the device asked for is not there.
    #[error("{0}")]
    Setting(String),
    /// The dataset could not be read.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// Setting up training failed (shape mismatch, parameter mismatch, checkpoint).
    #[error(transparent)]
    Train(#[from] train::TrainError),
    /// Writing an output failed (exit [`EXIT_IO`]): retry.
    #[error("{0}")]
    Output(String),
}

impl JobError {
    /// The process exit code for this error: [`EXIT_IO`] for an output, else
    /// [`EXIT_BAD_INPUT`].
    pub fn exit_code(&self) -> i32 {
        match self {
            JobError::Output(_) => EXIT_IO,
            _ => EXIT_BAD_INPUT,
        }
    }
}

fn input(path: &Path, message: impl std::fmt::Display) -> JobError {
    JobError::Input {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Where to train: `auto` (CUDA when available, else the CPU), `cpu`, `cuda` (device 0) or
/// `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when available, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// A CUDA device (None: device 0); an error when there is none.
    Cuda(Option<usize>),
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(None)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<usize>().ok())
                .map(|n| DeviceChoice::Cuda(Some(n)))
                .ok_or_else(|| {
                    format!("`{s}`: expected auto, cpu, cuda or cuda:N (N a device index ≥ 0)")
                }),
        }
    }
}

impl DeviceChoice {
    /// The libtorch device, or why it is not available.
    pub fn resolve(self) -> Result<Device, String> {
        let count = || {
            if tch::Cuda::is_available() {
                tch::Cuda::device_count().max(0) as usize
            } else {
                0
            }
        };
        match self {
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(i) => {
                let i = i.unwrap_or(0);
                let n = count();
                if n == 0 {
                    Err(format!(
                        "--device {}: no CUDA device is available here (no GPU, or a libtorch without CUDA); use --device cpu or auto",
                        if i == 0 { "cuda".to_string() } else { format!("cuda:{i}") }
                    ))
                } else if i >= n {
                    Err(format!(
                        "--device cuda:{i}: there are {n} CUDA devices (cuda:0 to cuda:{})",
                        n - 1
                    ))
                } else {
                    Ok(Device::Cuda(i))
                }
            }
        }
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
    /// CPU threads (a continued checkpoint's recorded count wins).
    pub threads: Option<i32>,
    /// Where to train.
    pub device: DeviceChoice,
    /// bf16 autocast on CUDA.
    pub bf16: bool,
    /// Channels-last on CUDA.
    pub channels_last: bool,
    /// The study's own time limit in seconds of this run: status `time_limit`, final.
    pub time_limit: Option<f64>,
    /// The job's remaining time in seconds from the start of [`run`] (a scheduler's limit):
    /// status `time_limit` with `retryable: true`; the next run continues the checkpoint.
    pub deadline: Option<f64>,
    /// Progress bar.
    pub progress: bool,
    /// One line per epoch on stderr (when there is no progress bar).
    pub log_epochs: bool,
    /// Retrain even if a final result exists (and ignore this trial's own checkpoint).
    pub force: bool,
    /// Measure the trained network's CPU latency (`latency_ms`, `latency_ms_b32`).
    pub measure_latency: bool,
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
            device: DeviceChoice::Auto,
            bf16: false,
            channels_last: false,
            time_limit: None,
            deadline: None,
            progress: false,
            log_epochs: false,
            force: false,
            measure_latency: true,
        }
    }
}

/// What a call did.
#[derive(Debug)]
pub struct JobReport {
    /// The result written (or found, when skipped).
    pub result: TrialResult,
    /// Whether a final result for this budget existed and nothing was done.
    pub skipped: bool,
    /// Notes for the user (recorded settings reused, stale files removed, …).
    pub notes: Vec<String>,
}

impl JobReport {
    /// The process exit code: [`EXIT_OK`] for success (or a skipped `ok`), [`EXIT_FAILED`]
    /// for a failed run (or a skipped final failure).
    pub fn exit_code(&self) -> i32 {
        if self.result.status == TrialStatus::Ok {
            EXIT_OK
        } else {
            EXIT_FAILED
        }
    }
}

fn read(path: &Path) -> Result<String, JobError> {
    std::fs::read_to_string(path).map_err(|e| input(path, e))
}

/// The parsed input files.
struct Inputs {
    arch: Arch,
    study: Option<Study>,
    proposal: Option<Proposal>,
}

/// Reads arch.json, study.json and proposal.json and checks they belong together.
fn read_inputs(spec: &JobSpec) -> Result<Inputs, JobError> {
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
    Ok(Inputs {
        arch,
        study,
        proposal,
    })
}

/// The budget in whole epochs: `--epochs`, else the proposal's.
fn resolve_budget(spec: &JobSpec, inp: &Inputs) -> Result<u32, JobError> {
    let budget: f64 = match (spec.epochs, &inp.proposal) {
        (Some(e), _) => e as f64,
        (None, Some(p)) => p.budget,
        (None, None) => {
            return Err(input(
                &spec.arch,
                "no budget: give --epochs or a proposal.json",
            ))
        }
    };
    if budget < 1.0 || budget.fract() != 0.0 || budget > u32::MAX as f64 {
        return Err(input(
            spec.proposal.as_deref().unwrap_or(&spec.arch),
            format!("budget {budget}: expected a whole number of epochs ≥ 1"),
        ));
    }
    Ok(budget as u32)
}

fn trial_id(spec: &JobSpec, inp: &Inputs) -> String {
    inp.proposal
        .as_ref()
        .map(|p| p.trial.clone())
        .or_else(|| {
            spec.out
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "manual".into())
}

/// The trial's existing `result.json`, if it parses as one.
fn previous_result(path: &Path) -> Option<TrialResult> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<TrialResult>(&text)
        .ok()
        .filter(|r| r.schema == RESULT_SCHEMA)
}

/// The dataset name and location.
fn resolve_dataset(spec: &JobSpec, inp: &Inputs) -> (String, PathBuf) {
    let ds_spec = inp.study.as_ref().map(|s| &s.dataset);
    let name = spec
        .dataset
        .clone()
        .or_else(|| ds_spec.map(|d| d.name.clone()))
        .unwrap_or_else(|| "fashion-mnist".into());
    let path = spec
        .data_path
        .clone()
        .or_else(|| ds_spec.and_then(|d| d.path.clone()))
        .unwrap_or_else(|| spec.data_root.join(&name));
    (name, path)
}

/// How an image folder is read: the network's input channels, the study's image size, and
/// a test split seeded by the study (the same for every trial of it).
fn folder_options(inp: &Inputs) -> crate::data::FolderOptions {
    let study = inp.study.as_ref();
    crate::data::FolderOptions {
        channels: inp.arch.input.channels,
        image_size: study.and_then(|s| s.dataset.image_size),
        split_seed: nago_store::derive_seed(study.map_or(0, |s| s.seed), &["data", "test-split"]),
        ..Default::default()
    }
}

/// The training configuration: the flags over the study's settings over the defaults.
fn resolve_config(
    spec: &JobSpec,
    inp: &Inputs,
    epochs: u32,
    started: Instant,
) -> Result<TrainConfig, JobError> {
    let study = inp.study.as_ref();
    // A final-round trial is trained as the study's `final` section says, its schedule
    // annealing over its own epochs.
    let is_final = is_final_trial(inp);
    let ts: TrainingSpec = study
        .map(|s| {
            if is_final {
                s.final_training().clone()
            } else {
                s.training.clone()
            }
        })
        .unwrap_or_default();
    let o = &spec.overrides;
    let validation = o
        .validation
        .or(study.map(|s| s.dataset.validation))
        .unwrap_or(5000);
    let seed = spec
        .seed
        .or(inp.proposal.as_ref().map(|p| p.seed))
        .unwrap_or(inp.arch.seed);
    let schedule_epochs = spec
        .schedule_epochs
        .or(study.map(|s| {
            if is_final {
                s.final_epochs()
            } else if anneals_per_budget(spec, inp) {
                epochs as f64
            } else {
                s.budgets.max
            }
        }))
        .unwrap_or(epochs as f64)
        .max(epochs as f64);
    let device = spec.device.resolve().map_err(JobError::Setting)?;
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
        // A search trial reports on `search.test_images`; a final-round trial on the whole
        // test split.
        test_subset: o
            .test_subset
            .or(study
                .filter(|_| !is_final)
                .and_then(|s| s.search.test_images))
            .map(|v| v as usize),
        split_seed: study.map(|s| s.seed).unwrap_or(0),
        seed: train_seed(spec, inp, seed, epochs),
        threads: spec.threads,
        device,
        time_limit: spec.time_limit,
        deadline: spec
            .deadline
            .map(|s| started + Duration::from_secs_f64(s.clamp(0.0, 1e9))),
        progress: spec.progress,
        log_epochs: spec.log_epochs,
        eval_batch: 500,
        bf16: spec.bf16,
        channels_last: spec.channels_last,
        measure_latency: spec.measure_latency,
    };
    check_config(&cfg)?;
    Ok(cfg)
}

/// Range checks of the resolved settings (flags are checked by the binary already; these
/// also cover study.json values and library callers). Each error names the setting.
pub fn check_config(cfg: &TrainConfig) -> Result<(), JobError> {
    let bad = |what: &str, v: &dyn std::fmt::Display, range: &str| -> Result<(), JobError> {
        Err(JobError::Setting(format!(
            "{what} is {v}: expected {range}"
        )))
    };
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return bad("training.lr (--lr)", &cfg.lr, "a finite number > 0");
    }
    if !(0.0..1.0).contains(&cfg.momentum) {
        return bad(
            "training.momentum (--momentum)",
            &cfg.momentum,
            "a number in [0, 1)",
        );
    }
    if !(cfg.weight_decay.is_finite() && cfg.weight_decay >= 0.0) {
        return bad(
            "training.weight_decay (--weight-decay)",
            &cfg.weight_decay,
            "a finite number ≥ 0",
        );
    }
    if !(0.0..1.0).contains(&cfg.label_smoothing) {
        return bad(
            "training.label_smoothing (--label-smoothing)",
            &cfg.label_smoothing,
            "a number in [0, 1)",
        );
    }
    if cfg.batch_size == 0 {
        return bad("training.batch_size (--batch-size)", &0, "an integer ≥ 1");
    }
    if !(cfg.schedule_epochs.is_finite() && cfg.schedule_epochs > 0.0) {
        return bad(
            "the schedule horizon (--schedule-epochs, budgets.max)",
            &cfg.schedule_epochs,
            "a finite number > 0",
        );
    }
    if let Some(t) = cfg.threads {
        if t < 1 {
            return bad("--threads", &t, "an integer ≥ 1");
        }
    }
    if let Some(t) = cfg.time_limit {
        if !(t.is_finite() && t > 0.0) {
            return bad("--time-limit", &t, "a finite number of seconds > 0");
        }
    }
    Ok(())
}

/// Which checkpoint to continue: this trial's own (an interrupted run, when it fits this
/// budget and schedule), else the promotion parent's; with its metadata.
fn choose_checkpoint(
    spec: &JobSpec,
    inp: &Inputs,
    cfg: &TrainConfig,
    notes: &mut Vec<String>,
) -> Result<Option<(PathBuf, CheckpointMeta)>, JobError> {
    if !spec.force && checkpoint::exists(&spec.out) {
        match checkpoint::load_meta(&spec.out) {
            Ok(m) if m.epochs_done <= cfg.epochs && m.schedule_epochs == cfg.schedule_epochs => {
                return Ok(Some((spec.out.clone(), m)))
            }
            Ok(m) => notes.push(format!(
                "the trial's own checkpoint ({} epochs, schedule {}) does not fit this run ({} epochs, schedule {}): not continued",
                m.epochs_done, m.schedule_epochs, cfg.epochs, cfg.schedule_epochs
            )),
            Err(e) => notes.push(format!("the trial's own checkpoint is unreadable, not continued: {e}")),
        }
    }
    let Some(par) = inp.proposal.as_ref().and_then(|p| p.parent.clone()) else {
        return Ok(None);
    };
    let dir = spec
        .parent_dir
        .clone()
        .unwrap_or_else(|| spec.out.parent().unwrap_or(Path::new(".")).join(&par));
    if !checkpoint::exists(&dir) {
        return Err(input(
            &dir,
            format!("the parent trial `{par}` has no checkpoint to continue from"),
        ));
    }
    let meta = checkpoint::load_meta(&dir).map_err(|e| input(&dir, e))?;
    if meta.schedule_epochs != cfg.schedule_epochs && anneals_per_budget(spec, inp) {
        notes.push(format!(
            "the study anneals within every budget (training.schedule_horizon \"budget\"): the parent `{par}` followed a schedule over {} epochs, this run's is over {}, so it trains from scratch",
            meta.schedule_epochs, cfg.schedule_epochs
        ));
        return Ok(None);
    }
    Ok(Some((dir, meta)))
}

/// Whether this run's schedule anneals over its own budget because the study says so
/// (`training.schedule_horizon: "budget"`, a search trial, no `--schedule-epochs`): then a
/// promotion's parent followed another schedule and is not continued.
fn anneals_per_budget(spec: &JobSpec, inp: &Inputs) -> bool {
    spec.schedule_epochs.is_none()
        && !is_final_trial(inp)
        && inp
            .study
            .as_ref()
            .is_some_and(|s| s.training.schedule_horizon == ScheduleHorizon::Budget)
}

/// The training seed (initial weights, data order, augmentation) of a run whose trial seed
/// is `seed`: `derive_seed(seed, ["train"])`, except for a promotion that the study trains
/// from scratch with a seed of its own per rung (`training.rung_seeds: "own"`), which adds
/// its budget, so each rung is an independent evaluation of the same network.
fn train_seed(spec: &JobSpec, inp: &Inputs, seed: u64, epochs: u32) -> u64 {
    let own = spec.seed.is_none()
        && anneals_per_budget(spec, inp)
        && inp.proposal.as_ref().is_some_and(|p| p.parent.is_some())
        && inp
            .study
            .as_ref()
            .is_some_and(|s| s.training.rung_seeds == RungSeeds::Own);
    if own {
        derive_seed(seed, &["train", &format!("rung {epochs}")])
    } else {
        derive_seed(seed, &["train"])
    }
}

/// Whether this run is a trial of the final round (trained with the `final` section's
/// settings, annealing over its own epochs).
fn is_final_trial(inp: &Inputs) -> bool {
    inp.proposal
        .as_ref()
        .is_some_and(|p| p.origin == nago_store::Origin::Final)
}

/// Makes `cfg` use the settings a continued checkpoint recorded (a note for each that the
/// caller's settings would have changed). The device is reused when it is available here
/// and the caller did not name another one.
fn apply_recorded(
    cfg: &mut TrainConfig,
    rec: &Settings,
    spec: &JobSpec,
    notes: &mut Vec<String>,
) -> Result<(), JobError> {
    fn note(notes: &mut Vec<String>, what: &str, asked: String, used: String) {
        if asked != used {
            notes.push(format!(
                "{what}: the continued checkpoint was trained with {used}, which is reused (this call asked for {asked})"
            ));
        }
    }
    let asked_threads = cfg
        .threads
        .map_or_else(|| "libtorch's default".into(), |t| t.to_string());
    note(notes, "threads", asked_threads, rec.threads.to_string());
    cfg.threads = Some(rec.threads);
    macro_rules! reuse {
        ($field:ident) => {
            note(
                notes,
                stringify!($field),
                format!("{:?}", cfg.$field),
                format!("{:?}", rec.$field),
            );
            cfg.$field = rec.$field.clone();
        };
    }
    reuse!(lr);
    reuse!(momentum);
    reuse!(weight_decay);
    reuse!(batch_size);
    reuse!(label_smoothing);
    reuse!(crop_padding);
    reuse!(flip);
    reuse!(cutout);
    reuse!(train_subset);
    reuse!(validation);
    reuse!(split_seed);
    let here = train::device_name(cfg.device);
    if rec.device != here {
        let recorded = DeviceChoice::from_str(&rec.device)
            .ok()
            .and_then(|d| d.resolve().ok());
        match (spec.device, recorded) {
            (DeviceChoice::Auto, Some(d)) => {
                note(notes, "device", here, rec.device.clone());
                cfg.device = d;
            }
            _ => notes.push(format!(
                "device: the continued checkpoint was trained on {}, this run trains on {here}: the result will differ from an uninterrupted run",
                rec.device
            )),
        }
    }
    if cfg.device.is_cuda() {
        reuse!(bf16);
        reuse!(channels_last);
    }
    check_config(cfg)
}

/// Removes `*.tmp.<pid>` files in `dir` whose pid is not a live process (left by a killed
/// writer; this trainer is the directory's writer now). Returns the names removed.
pub fn remove_stale_temporaries(dir: &Path) -> Vec<String> {
    nago_store::remove_stale_temp_files(dir)
}

/// Trains, turning a libtorch failure during set-up into an outcome and a failed write into
/// [`JobError::Output`].
fn train_outcome(
    inp: &Inputs,
    ds: &Dataset,
    cfg: &TrainConfig,
    resume: Option<&Path>,
    out: &Path,
    stop: &StopFlag,
) -> Result<Outcome, JobError> {
    let epochs_path = out.join("epochs.parquet");
    let mut on_epoch = |rows: &[train::EpochRecord]| {
        nago_table::write_epochs(&epochs_path, rows).map_err(|e| e.to_string())
    };
    match train::train(&inp.arch, ds, cfg, resume, Some(out), stop, &mut on_epoch) {
        Ok(o) => Ok(o),
        Err(train::TrainError::Torch(e)) => {
            // A libtorch failure during set-up (e.g. out of memory moving data): a result.
            let msg = e.to_string();
            let stop = if msg.to_lowercase().contains("out of memory") {
                Stop::OutOfMemory(msg)
            } else {
                Stop::Crashed(msg)
            };
            Ok(Outcome {
                epochs: Vec::new(),
                start_epoch: 0,
                stop: Some(stop),
                test_accuracy: None,
                test_loss: None,
                seconds: 0.0,
                images_per_second: None,
                params: inp.arch.counts.params,
                sizes: (0, 0, 0),
                input_stats: None,
                latency: None,
            })
        }
        Err(train::TrainError::Output(e)) => Err(JobError::Output(e)),
        Err(train::TrainError::Checkpoint(e @ checkpoint::CheckpointError::Write { .. })) => {
            Err(JobError::Output(e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs one trial as `spec` says. Input errors return `Err` with nothing written; training
/// failures are written as results with an explicit status (see [`JobReport::exit_code`]);
/// a failed write returns [`JobError::Output`].
pub fn run(spec: &JobSpec, stop: &StopFlag) -> Result<JobReport, JobError> {
    let started = Instant::now();
    let inp = read_inputs(spec)?;
    let epochs = resolve_budget(spec, &inp)?;
    let budget = epochs as f64;
    let trial = trial_id(spec, &inp);
    let result_path = spec.out.join("result.json");
    let previous = previous_result(&result_path);
    // Idempotency: a final result for this budget means there is nothing to do.
    if let Some(r) = previous.as_ref() {
        if !spec.force && r.budget == budget && r.is_final() {
            return Ok(JobReport {
                result: r.clone(),
                skipped: true,
                notes: Vec::new(),
            });
        }
    }
    let mut cfg = resolve_config(spec, &inp, epochs, started)?;
    let (name, data_path) = resolve_dataset(spec, &inp);
    let mut notes = Vec::new();
    let resume = choose_checkpoint(spec, &inp, &cfg, &mut notes)?;
    if let Some(rec) = resume.as_ref().and_then(|(_, m)| m.settings.as_ref()) {
        apply_recorded(&mut cfg, rec, spec, &mut notes)?;
    }
    let t_data = Instant::now();
    let ds = Dataset::load_with(&name, &data_path, &folder_options(&inp))?;
    eprintln!(
        "nago-train: data: {name} ({} training + {} test images) loaded in {:.3} s",
        ds.train.len(),
        ds.test.len(),
        t_data.elapsed().as_secs_f64()
    );
    train::check_shape(&inp.arch, &ds)?;
    train::check_sizes(&cfg, ds.train.len()).map_err(JobError::Setting)?;
    std::fs::create_dir_all(&spec.out).map_err(|e| input(&spec.out, e))?;
    let stale = remove_stale_temporaries(&spec.out);
    if !stale.is_empty() {
        notes.push(format!(
            "removed temporary files of writers that are gone: {}",
            stale.join(", ")
        ));
    }
    for n in &notes {
        eprintln!("nago-train: note: {n}");
    }
    let resume_dir = resume.map(|(d, _)| d);
    let outcome = train_outcome(&inp, &ds, &cfg, resume_dir.as_deref(), &spec.out, stop)?;
    let result = make_result(
        &trial,
        budget,
        &inp.arch,
        &cfg,
        &name,
        &outcome,
        resume_dir.as_deref(),
        previous.as_ref(),
    );
    write_outputs(&spec.out, &outcome, &result)?;
    Ok(JobReport {
        result,
        skipped: false,
        notes,
    })
}

/// Writes `epochs.parquet` (when there are epochs) and then `result.json`, each atomically.
fn write_outputs(out: &Path, outcome: &Outcome, result: &TrialResult) -> Result<(), JobError> {
    if !outcome.epochs.is_empty() {
        nago_table::write_epochs(&out.join("epochs.parquet"), &outcome.epochs)
            .map_err(|e| JobError::Output(e.to_string()))?;
    }
    nago_store::atomic_write_json(&out.join("result.json"), result)
        .map_err(|e| JobError::Output(e.to_string()))
}

/// The status of an outcome, its error message and whether it is retryable.
fn status_of(stop: &Option<Stop>) -> (TrialStatus, Option<String>, bool) {
    match stop {
        None => (TrialStatus::Ok, None, false),
        Some(Stop::Diverged(m)) => (TrialStatus::Diverged, Some(m.clone()), false),
        Some(Stop::OutOfMemory(m)) => (TrialStatus::OutOfMemory, Some(m.clone()), false),
        Some(Stop::TimeLimit(m)) => (TrialStatus::TimeLimit, Some(m.clone()), false),
        Some(Stop::Deadline(m)) => (TrialStatus::TimeLimit, Some(m.clone()), true),
        Some(Stop::Killed(m)) => (TrialStatus::Killed, Some(m.clone()), true),
        Some(Stop::Crashed(m)) => (TrialStatus::Crashed, Some(m.clone()), true),
    }
}

#[allow(clippy::too_many_arguments)]
fn make_result(
    trial: &str,
    budget: f64,
    arch: &Arch,
    cfg: &TrainConfig,
    dataset: &str,
    o: &Outcome,
    resumed: Option<&Path>,
    previous: Option<&TrialResult>,
) -> TrialResult {
    let (status, error, retryable) = status_of(&o.stop);
    let attempts = if retryable {
        previous
            .filter(|p| p.is_retryable_failure())
            .map_or(0, |p| p.attempts.max(1))
            + 1
    } else {
        0
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
    put("device", json!(train::device_name(cfg.device)));
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
    put("min_channels", json!(arch.min_channels()));
    match &o.latency {
        Some(Ok(l)) => {
            put("latency_ms", json!(l.batch1.median_ms));
            put("latency_ms_b32", json!(l.batch32.median_ms));
            put("latency_machine", json!(l.machine));
            put("latency", json!(l));
        }
        Some(Err(e)) => put("latency_error", json!(e)),
        None => {}
    }
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
        retryable,
        attempts,
        extra,
    }
}
