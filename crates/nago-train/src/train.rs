//! The training loop: SGD with momentum and weight decay written as tensor arithmetic (so its
//! state can be saved), a cosine schedule over a fixed horizon, augmentation on batched
//! tensors, evaluation, checkpoints and explicit stop reasons.
//!
//! **Schedule.** The learning rate at training progress `t` (in epochs, fractional within an
//! epoch: `epoch + step/steps_per_epoch`) is `lr · ½(1 + cos(π·t/T))`, where the horizon `T`
//! is fixed by the study (its largest budget, `budgets.max`), not by the trial's budget. A
//! trial trained to 4 epochs and later continued to 8 therefore follows the same curve as one
//! trained to 8 in one go; with per-epoch data order and augmentation seeded from
//! (trial seed, epoch), the continuation is exact on CPU.

use crate::checkpoint::{self, CheckpointMeta, Settings};
use crate::data::{channel_stats, Dataset, Split};
use crate::latency::{Latency, LatencyOptions};
use crate::net::{count_params, Net};
use crate::rng::SplitMix;
use nago_arch::Arch;
use nago_store::derive_seed;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Everything that decides how a network is trained.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Train until this many epochs are done (the fidelity budget).
    pub epochs: u32,
    /// Horizon `T` of the cosine schedule, in epochs (the study's `budgets.max`).
    pub schedule_epochs: f64,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay (added to the gradient, as PyTorch's SGD does).
    pub weight_decay: f64,
    /// Images per step.
    pub batch_size: usize,
    /// Label smoothing ε.
    pub label_smoothing: f64,
    /// Random-crop padding in pixels (0: none).
    pub crop_padding: i64,
    /// Random horizontal flips.
    pub flip: bool,
    /// Cutout square side in pixels (0: none).
    pub cutout: i64,
    /// Train on only this many images of the training split.
    pub train_subset: Option<usize>,
    /// Images held out of the training set for validation.
    pub validation: usize,
    /// Report test accuracy on only the first this many test images (cheap checks; 0: no
    /// test evaluation).
    pub test_subset: Option<usize>,
    /// Seed of the validation split and the training subset (the study seed, so every trial
    /// of a study sees the same split).
    pub split_seed: u64,
    /// The trial's seed: initialisation, data order, augmentation, dropout.
    pub seed: u64,
    /// CPU threads for libtorch (None: libtorch's default).
    pub threads: Option<i32>,
    /// Where to train.
    pub device: Device,
    /// Stop with status `time_limit` (final) after this many seconds of training.
    pub time_limit: Option<f64>,
    /// Stop with status `time_limit`, retryable, at this moment (the job's deadline).
    pub deadline: Option<Instant>,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Without the bar: print one line per epoch on stderr.
    pub log_epochs: bool,
    /// Images per evaluation batch.
    pub eval_batch: usize,
    /// bf16 autocast on CUDA (ignored on CPU).
    pub bf16: bool,
    /// Channels-last memory format on CUDA (ignored on CPU).
    pub channels_last: bool,
    /// Measure the trained network's CPU inference latency ([`crate::latency`]) after a
    /// run that reached its budget.
    pub measure_latency: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 1,
            schedule_epochs: 1.0,
            lr: 0.025,
            momentum: 0.9,
            weight_decay: 3e-4,
            batch_size: 96,
            label_smoothing: 0.0,
            crop_padding: 4,
            flip: true,
            cutout: 0,
            train_subset: None,
            validation: 5000,
            test_subset: None,
            split_seed: 0,
            seed: 0,
            threads: None,
            device: Device::Cpu,
            time_limit: None,
            deadline: None,
            progress: false,
            log_epochs: false,
            eval_batch: 500,
            bf16: false,
            channels_last: false,
            measure_latency: true,
        }
    }
}

/// One row of `epochs.parquet`: [`nago_table::EpochRow`] (its columns and units documented
/// there).
pub type EpochRecord = nago_table::EpochRow;

/// Why training stopped early.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Loss became NaN or infinite.
    Diverged(String),
    /// Out of memory.
    OutOfMemory(String),
    /// The study's own time limit was reached (final).
    TimeLimit(String),
    /// The job's deadline (`--deadline`, the scheduler's remaining time) was reached:
    /// recorded as `time_limit` with `retryable: true`.
    Deadline(String),
    /// SIGTERM or SIGINT.
    Killed(String),
    /// Any other libtorch error.
    Crashed(String),
}

/// Setup errors: the network or data do not fit, the checkpoint is not this network's.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The network's parameter count differs from arch.json's.
    #[error(
        "the built network has {built} parameters but arch.json's counts.params is {recorded}"
    )]
    ParamMismatch {
        /// Built.
        built: u64,
        /// Recorded.
        recorded: u64,
    },
    /// The dataset's images do not fit the architecture.
    #[error("{0}")]
    Shape(String),
    /// A checkpoint problem.
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    /// A libtorch error during setup.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Writing an output (`epochs.parquet`) failed.
    #[error("{0}")]
    Output(String),
}

/// What a training run produced.
#[derive(Debug)]
pub struct Outcome {
    /// Every epoch's record, including those of the run this one continued.
    pub epochs: Vec<EpochRecord>,
    /// The epoch this run started from (0: fresh).
    pub start_epoch: u32,
    /// Set when training stopped early.
    pub stop: Option<Stop>,
    /// Test accuracy after the last epoch (only when trained to the budget).
    pub test_accuracy: Option<f64>,
    /// Test loss.
    pub test_loss: Option<f64>,
    /// Seconds of this run (training and evaluation).
    pub seconds: f64,
    /// Training images per second in this run.
    pub images_per_second: Option<f64>,
    /// Trainable parameters of the built network.
    pub params: u64,
    /// Images in the training subset, the validation split and the test set.
    pub sizes: (usize, usize, usize),
    /// Per-channel mean and standard deviation of the training subset (pixel values scaled to
    /// [0, 1]) that inputs are normalised with: an exported model needs them.
    pub input_stats: Option<(Vec<f64>, Vec<f64>)>,
    /// CPU inference latency of the trained network (when trained to the budget and
    /// [`TrainConfig::measure_latency`]), or why it could not be measured.
    pub latency: Option<Result<Latency, String>>,
}

/// Signals asking training to stop (set by SIGTERM/SIGINT handlers).
#[derive(Debug, Clone, Default)]
pub struct StopFlag(pub Arc<AtomicBool>);

impl StopFlag {
    /// Registers SIGTERM and SIGINT to set this flag.
    pub fn register_signals(&self) -> std::io::Result<()> {
        signal_hook::flag::register(signal_hook::consts::SIGTERM, self.0.clone())?;
        signal_hook::flag::register(signal_hook::consts::SIGINT, self.0.clone())?;
        Ok(())
    }
    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The learning rate at progress `t` epochs of a cosine schedule over `horizon` epochs.
pub fn cosine_lr(lr: f64, t: f64, horizon: f64) -> f64 {
    let x = (t / horizon).clamp(0.0, 1.0);
    lr * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())
}

/// Checks the split sizes against the dataset's: `validation` in 1..train images,
/// `train_subset` in 1..=(what the validation split leaves). (`test_subset` may be 0: no
/// test evaluation; beyond the test split it takes the whole split.)
pub fn check_sizes(cfg: &TrainConfig, train: usize) -> Result<(), String> {
    if cfg.validation == 0 || cfg.validation >= train {
        return Err(format!(
            "dataset.validation (--validation) is {}: expected 1 to {} (the dataset has {train} training images, and some must be left to train on)",
            cfg.validation,
            train.saturating_sub(1)
        ));
    }
    let left = train - cfg.validation;
    if let Some(s) = cfg.train_subset {
        if s == 0 || s > left {
            return Err(format!(
                "training.train_subset (--train-subset) is {s}: expected 1 to {left} (the {train} training images less the {} held out for validation)",
                cfg.validation
            ));
        }
    }
    Ok(())
}

/// The data as the trainer uses it: training subset, validation split, test set, on device,
/// with the normalisation computed from the training subset.
#[derive(Debug)]
pub struct Prepared {
    train: Split,
    val: Split,
    test: Split,
    mean: Tensor,
    std: Tensor,
}

impl Prepared {
    /// Splits off the validation images (a permutation from `split_seed`), takes the
    /// training subset, moves everything to `device`.
    pub fn new(ds: &Dataset, cfg: &TrainConfig) -> Result<Prepared, TrainError> {
        check_sizes(cfg, ds.train.len()).map_err(TrainError::Shape)?;
        let n = ds.train.len();
        let perm = SplitMix::new(derive_seed(cfg.split_seed, &["validation-split"])).permutation(n);
        let (val_idx, rest) = perm.split_at(cfg.validation);
        let take = cfg.train_subset.unwrap_or(rest.len());
        let mut tr: Vec<i64> = rest[..take].to_vec();
        tr.sort_unstable();
        let mut va: Vec<i64> = val_idx.to_vec();
        va.sort_unstable();
        let train = ds.train.select(&Tensor::from_slice(&tr));
        let val = ds.train.select(&Tensor::from_slice(&va));
        let (m, s) = channel_stats(&train.images);
        let c = m.len() as i64;
        let to = |s: Split| Split {
            images: s.images.to_device(cfg.device),
            labels: s.labels.to_device(cfg.device),
        };
        Ok(Prepared {
            train: to(train),
            val: to(val),
            test: {
                let nt = cfg.test_subset.unwrap_or(ds.test.len()).min(ds.test.len()) as i64;
                Split {
                    images: ds.test.images.narrow(0, 0, nt),
                    labels: ds.test.labels.narrow(0, 0, nt),
                }
            },
            mean: Tensor::from_slice(&m)
                .to_kind(Kind::Float)
                .view([1, c, 1, 1])
                .to_device(cfg.device),
            std: Tensor::from_slice(&s)
                .to_kind(Kind::Float)
                .view([1, c, 1, 1])
                .to_device(cfg.device),
        })
    }

    /// The per-channel (mean, std) inputs are normalised with.
    pub fn input_stats(&self) -> (Vec<f64>, Vec<f64>) {
        let v = |t: &Tensor| -> Vec<f64> {
            let t = t
                .to_device(Device::Cpu)
                .to_kind(Kind::Double)
                .flatten(0, -1);
            (0..t.size()[0]).map(|i| t.double_value(&[i])).collect()
        };
        (v(&self.mean), v(&self.std))
    }

    fn normalise(&self, x: &Tensor) -> Tensor {
        (x.to_kind(Kind::Float) / 255.0 - &self.mean) / &self.std
    }
}

/// Random crop (zero padding `pad`), horizontal flip and cutout on a uint8 batch, drawn from
/// libtorch's generator (seeded per epoch). Returns the normalised float batch.
fn augment(p: &Prepared, x: &Tensor, cfg: &TrainConfig) -> Tensor {
    let s = x.size();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let dev = x.device();
    let mut x = x.shallow_clone();
    if cfg.crop_padding > 0 {
        let pd = cfg.crop_padding;
        let xp = x.constant_pad_nd([pd, pd, pd, pd]);
        let dy = Tensor::randint(2 * pd + 1, [n, 1], (Kind::Int64, dev));
        let dx = Tensor::randint(2 * pd + 1, [n, 1], (Kind::Int64, dev));
        let rows = (Tensor::arange(h, (Kind::Int64, dev)).view([1, h]) + dy)
            .view([n, 1, h, 1])
            .expand([n, c, h, w + 2 * pd], false);
        let xr = xp.gather(2, &rows, false);
        let cols = (Tensor::arange(w, (Kind::Int64, dev)).view([1, w]) + dx)
            .view([n, 1, 1, w])
            .expand([n, c, h, w], false);
        x = xr.gather(3, &cols, false);
    }
    if cfg.flip {
        let m = Tensor::rand([n, 1, 1, 1], (Kind::Float, dev)).lt(0.5);
        x = x.flip([3]).where_self(&m, &x);
    }
    let mut y = p.normalise(&x);
    if cfg.cutout > 0 {
        let cy = Tensor::randint(h, [n, 1, 1, 1], (Kind::Int64, dev));
        let cx = Tensor::randint(w, [n, 1, 1, 1], (Kind::Int64, dev));
        let half = cfg.cutout / 2;
        let ys = Tensor::arange(h, (Kind::Int64, dev)).view([1, 1, h, 1]);
        let xs = Tensor::arange(w, (Kind::Int64, dev)).view([1, 1, 1, w]);
        let inside = (ys - &cy)
            .abs()
            .le(half)
            .logical_and(&(xs - &cx).abs().le(half));
        // Even sizes: the square spans [c - half, c + half) like the usual implementation.
        let inside = if cfg.cutout % 2 == 0 {
            let ys = Tensor::arange(h, (Kind::Int64, dev)).view([1, 1, h, 1]);
            let xs = Tensor::arange(w, (Kind::Int64, dev)).view([1, 1, 1, w]);
            let ry = (&ys - &cy).ge(-half).logical_and(&(&ys - &cy).lt(half));
            let rx = (&xs - &cx).ge(-half).logical_and(&(&xs - &cx).lt(half));
            let _ = inside;
            ry.logical_and(&rx)
        } else {
            inside
        };
        y = y.masked_fill(&inside, 0.0);
    }
    y
}

/// Loss sum and correct count over a split, in evaluation mode.
fn evaluate(net: &Net, p: &Prepared, split: &Split, batch: usize, cfg: &TrainConfig) -> (f64, f64) {
    let _g = tch::no_grad_guard();
    let n = split.len();
    let mut loss = 0.0;
    let mut correct = 0i64;
    let mut i = 0;
    while i < n {
        let len = batch.min(n - i) as i64;
        let x = split.images.narrow(0, i as i64, len).to_device(cfg.device);
        let y = split.labels.narrow(0, i as i64, len).to_device(cfg.device);
        let x = prepare_input(&p.normalise(&x), cfg);
        let logits = forward(net, &x, false, cfg);
        loss += logits
            .cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100, 0.0)
            .double_value(&[]);
        correct += logits
            .argmax(1, false)
            .eq_tensor(&y)
            .sum(Kind::Int64)
            .int64_value(&[]);
        i += len as usize;
    }
    (loss / n as f64, correct as f64 / n as f64)
}

fn prepare_input(x: &Tensor, cfg: &TrainConfig) -> Tensor {
    if cfg.channels_last && cfg.device.is_cuda() {
        x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        x.shallow_clone()
    }
}

fn forward(net: &Net, x: &Tensor, train: bool, cfg: &TrainConfig) -> Tensor {
    if cfg.bf16 && cfg.device.is_cuda() {
        tch::autocast(true, || net.forward_t(x, train)).to_kind(Kind::Float)
    } else {
        net.forward_t(x, train)
    }
}

/// SGD state: momentum buffers keyed by variable name.
struct Sgd {
    params: Vec<(String, Tensor)>,
    momentum: BTreeMap<String, Tensor>,
}

impl Sgd {
    fn new(vs: &nn::VarStore) -> Sgd {
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let momentum = params
            .iter()
            .map(|(k, t)| (k.clone(), t.zeros_like()))
            .collect();
        Sgd { params, momentum }
    }
    /// Backpropagates `loss` and takes one step. The gradients are returned by the autograd
    /// engine rather than accumulated into `.grad` (no zeroing, no accumulation kernels).
    fn backward_step(&mut self, loss: &Tensor, lr: f64, mu: f64, wd: f64) {
        let ps: Vec<&Tensor> = self.params.iter().map(|(_, p)| p).collect();
        let grads = Tensor::run_backward(&[loss], &ps, false, false);
        self.step(grads, lr, mu, wd);
    }
    /// buf ← μ·buf + (g + λ·p); p ← p − lr·buf.
    fn step(&mut self, grads: Vec<Tensor>, lr: f64, mu: f64, wd: f64) {
        let _g = tch::no_grad_guard();
        for ((k, p), g) in self.params.iter_mut().zip(grads) {
            if !g.defined() {
                continue;
            }
            let d = if wd != 0.0 { g + &*p * wd } else { g };
            let buf = self.momentum.get_mut(k).expect("a buffer per parameter");
            let _ = buf.g_mul_scalar_(mu).g_add_(&d);
            let _ = p.g_add_(&(&*buf * (-lr)));
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "libtorch panicked".into())
}

/// Runs `f`, turning a libtorch panic (tch's non-`f_` calls panic on C++ exceptions, out of
/// memory included) into a [`Stop`].
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Stop> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(|p| classify(panic_message(p)))
}

fn classify(msg: String) -> Stop {
    let l = msg.to_lowercase();
    if l.contains("out of memory")
        || l.contains("can't allocate memory")
        || l.contains("cudaerrormemoryallocation")
    {
        Stop::OutOfMemory(msg)
    } else {
        Stop::Crashed(msg)
    }
}

extern "C" {
    /// `at::autocast::set_autocast_dtype(c10::DeviceType, c10::ScalarType)` from libtorch_cpu
    /// (tch only offers autocast with the default float16).
    #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
    fn at_autocast_set_dtype(device: i8, dtype: i8);
}

/// Makes CUDA autocast use bfloat16 (c10::DeviceType::CUDA = 1, c10::ScalarType::BFloat16 = 15).
fn autocast_bf16() {
    // SAFETY: a plain setter of libtorch's thread-local autocast state, called with valid
    // enum values.
    unsafe { at_autocast_set_dtype(1, 15) }
}

/// Builds the network for `arch` on `cfg.device` (seeded from the trial seed) and checks
/// its parameter count against arch.json's. On CUDA with `channels_last`, 4-D weights are
/// put in the channels-last layout.
pub fn build(arch: &Arch, cfg: &TrainConfig) -> Result<(nn::VarStore, Net), TrainError> {
    tch::manual_seed(derive_seed(cfg.seed, &["init"]) as i64 & i64::MAX);
    if cfg.bf16 && cfg.device.is_cuda() {
        autocast_bf16();
    }
    let vs = nn::VarStore::new(cfg.device);
    let net = Net::new(&vs.root(), arch);
    let built = count_params(&vs);
    if built != arch.counts.params {
        return Err(TrainError::ParamMismatch {
            built,
            recorded: arch.counts.params,
        });
    }
    if cfg.channels_last && cfg.device.is_cuda() {
        let _g = tch::no_grad_guard();
        for (_, mut v) in vs.variables() {
            if v.dim() == 4 {
                let cl = v.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
                v.set_data(&cl);
            }
        }
    }
    Ok((vs, net))
}

/// Checks that the dataset's images fit the architecture.
pub fn check_shape(arch: &Arch, ds: &Dataset) -> Result<(), TrainError> {
    let (c, h, w) = ds.image_shape();
    let i = arch.input;
    if (c, h, w) != (i.channels, i.height, i.width) || ds.classes > i.classes {
        return Err(TrainError::Shape(format!(
            "the dataset `{}` has {c}×{h}×{w} images and {} classes, but arch.json's input is {}×{}×{} with {} classes",
            ds.name, ds.classes, i.channels, i.height, i.width, i.classes
        )));
    }
    Ok(())
}

/// The settings of `cfg` that change results, as a checkpoint records them (the thread count
/// is libtorch's current one, which [`train`] has set from `cfg.threads`).
pub fn settings_of(cfg: &TrainConfig) -> Settings {
    Settings {
        threads: tch::get_num_threads(),
        device: device_name(cfg.device),
        lr: cfg.lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        batch_size: cfg.batch_size,
        label_smoothing: cfg.label_smoothing,
        crop_padding: cfg.crop_padding,
        flip: cfg.flip,
        cutout: cfg.cutout,
        train_subset: cfg.train_subset,
        validation: cfg.validation,
        split_seed: cfg.split_seed,
        bf16: cfg.bf16 && cfg.device.is_cuda(),
        channels_last: cfg.channels_last && cfg.device.is_cuda(),
    }
}

/// `cpu` or `cuda:N`.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        d => format!("{d:?}"),
    }
}

/// Loads the checkpoint in `dir` into the network's variables and the momentum buffers,
/// refusing one of another network or schedule. Returns the epochs done and their records.
fn restore(
    dir: &Path,
    arch: &Arch,
    cfg: &TrainConfig,
    params: u64,
    vs: &nn::VarStore,
    sgd: &mut Sgd,
) -> Result<(u32, Vec<EpochRecord>), TrainError> {
    let ck = checkpoint::load(dir)?;
    let tp = checkpoint::tensors_path(dir);
    let bad = |m: String| {
        TrainError::Checkpoint(checkpoint::CheckpointError::Io {
            path: tp.clone(),
            message: m,
        })
    };
    if ck.meta.params != params || ck.meta.arch_seed != arch.seed {
        return Err(bad(format!(
            "the checkpoint is of another network (arch seed {}, {} parameters; this one: {}, {})",
            ck.meta.arch_seed, ck.meta.params, arch.seed, params
        )));
    }
    if ck.meta.schedule_epochs != cfg.schedule_epochs {
        return Err(bad(format!(
            "the checkpoint's schedule horizon is {} epochs, this run's {}: continuing would not follow one schedule",
            ck.meta.schedule_epochs, cfg.schedule_epochs
        )));
    }
    let _g = tch::no_grad_guard();
    for (name, mut t) in vs.variables() {
        let src = ck
            .model
            .get(&name)
            .ok_or_else(|| bad(format!("variable `{name}` missing")))?;
        t.f_copy_(&src.to_device(cfg.device))?;
    }
    for (name, buf) in sgd.momentum.iter_mut() {
        let src = ck
            .momentum
            .get(name)
            .ok_or_else(|| bad(format!("momentum buffer `{name}` missing")))?;
        buf.f_copy_(&src.to_device(cfg.device))?;
    }
    let start = ck.meta.epochs_done;
    let mut epochs = ck.meta.epochs;
    epochs.truncate(start as usize);
    Ok((start, epochs))
}

fn progress_bar(cfg: &TrainConfig, start: u32, steps: usize) -> indicatif::ProgressBar {
    if !cfg.progress {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(((cfg.epochs.saturating_sub(start)) as u64) * steps as u64);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} steps, eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b
}

/// Why to stop before the next step, if any: a signal, the study's time limit, the job's
/// deadline.
fn should_stop(
    cfg: &TrainConfig,
    stop: &StopFlag,
    begun: Instant,
    epoch: u32,
    step: usize,
    steps: usize,
) -> Option<Stop> {
    let at = || format!("during epoch {} at step {step}/{steps}", epoch + 1);
    if stop.is_set() {
        return Some(Stop::Killed(format!(
            "stopped by a signal (SIGTERM/SIGINT) {}",
            at()
        )));
    }
    if let Some(limit) = cfg.time_limit {
        if begun.elapsed().as_secs_f64() > limit {
            return Some(Stop::TimeLimit(format!(
                "time limit of {limit} s reached {}",
                at()
            )));
        }
    }
    if let Some(d) = cfg.deadline {
        if Instant::now() >= d {
            return Some(Stop::Deadline(format!(
                "the job's deadline was reached {} (retryable: the next run continues the checkpoint)",
                at()
            )));
        }
    }
    None
}

/// The training part of one epoch: (loss sum, correct, images seen, last lr), or why it
/// stopped.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    net: &Net,
    prep: &Prepared,
    sgd: &mut Sgd,
    cfg: &TrainConfig,
    epoch: u32,
    steps: usize,
    bs: usize,
    stop: &StopFlag,
    begun: Instant,
    bar: &indicatif::ProgressBar,
) -> Result<(f64, i64, usize, f64), Stop> {
    let n = prep.train.len();
    tch::manual_seed(derive_seed(cfg.seed, &["epoch", &epoch.to_string()]) as i64 & i64::MAX);
    let order = SplitMix::new(derive_seed(cfg.seed, &["order", &epoch.to_string()])).permutation(n);
    let order = Tensor::from_slice(&order).to_device(cfg.device);
    let mut loss_sum = 0.0;
    let mut correct = 0i64;
    let mut seen = 0usize;
    let mut lr = cfg.lr;
    for step in 0..steps {
        if let Some(s) = should_stop(cfg, stop, begun, epoch, step, steps) {
            return Err(s);
        }
        lr = cosine_lr(
            cfg.lr,
            epoch as f64 + step as f64 / steps as f64,
            cfg.schedule_epochs,
        );
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let idx = order.narrow(0, (step * bs) as i64, bs as i64);
            let x = prep.train.images.index_select(0, &idx);
            let y = prep.train.labels.index_select(0, &idx);
            let x = prepare_input(&augment(prep, &x, cfg), cfg);
            let logits = forward(net, &x, true, cfg);
            let loss = logits.cross_entropy_loss::<Tensor>(
                &y,
                None,
                tch::Reduction::Mean,
                -100,
                cfg.label_smoothing,
            );
            let lv = loss.double_value(&[]);
            if !lv.is_finite() {
                return Err(lv);
            }
            sgd.backward_step(&loss, lr, cfg.momentum, cfg.weight_decay);
            let c = logits
                .argmax(1, false)
                .eq_tensor(&y)
                .sum(Kind::Int64)
                .int64_value(&[]);
            Ok((lv, c))
        }));
        match r {
            Ok(Ok((lv, c))) => {
                loss_sum += lv;
                correct += c;
                seen += bs;
            }
            Ok(Err(lv)) => {
                return Err(Stop::Diverged(format!(
                    "training loss is {lv} at epoch {} step {step}/{steps} (lr {lr:.5})",
                    epoch + 1
                )))
            }
            Err(panic) => return Err(classify(panic_message(panic))),
        }
        bar.inc(1);
        if step % 10 == 0 {
            bar.set_message(format!(
                "loss {:.3} lr {:.4}",
                loss_sum / (step + 1) as f64,
                lr
            ));
        }
    }
    Ok((loss_sum, correct, seen, lr))
}

fn save_checkpoint(
    dir: &Path,
    arch: &Arch,
    params: u64,
    cfg: &TrainConfig,
    epochs: &[EpochRecord],
    vs: &nn::VarStore,
    sgd: &Sgd,
) -> Result<(), TrainError> {
    let meta = CheckpointMeta {
        schema: checkpoint::CHECKPOINT_SCHEMA.into(),
        epochs_done: epochs.len() as u32,
        arch_seed: arch.seed,
        params,
        seed: cfg.seed,
        schedule_epochs: cfg.schedule_epochs,
        epochs: epochs.to_vec(),
        settings: Some(settings_of(cfg)),
    };
    let model: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    checkpoint::save(dir, &meta, &model, &sgd.momentum)?;
    Ok(())
}

/// Trains `arch` on `ds` to `cfg.epochs`, continuing from the checkpoint in `resume_from`
/// when given, writing a checkpoint into `out` after every epoch (when `out` is given), then
/// calling `on_epoch` with every finished epoch's records (to write `epochs.parquet` as it
/// grows; its error stops training with [`TrainError::Output`], as a failed checkpoint write
/// does with [`checkpoint::CheckpointError::Write`]).
pub fn train(
    arch: &Arch,
    ds: &Dataset,
    cfg: &TrainConfig,
    resume_from: Option<&Path>,
    out: Option<&Path>,
    stop: &StopFlag,
    on_epoch: &mut dyn FnMut(&[EpochRecord]) -> Result<(), String>,
) -> Result<Outcome, TrainError> {
    if let Some(t) = cfg.threads {
        tch::set_num_threads(t);
    }
    check_shape(arch, ds)?;
    let (vs, net) = build(arch, cfg)?;
    let params = count_params(&vs);
    let prep = Prepared::new(ds, cfg)?;
    let mut sgd = Sgd::new(&vs);
    let (start, mut epochs) = match resume_from {
        Some(dir) => restore(dir, arch, cfg, params, &vs, &mut sgd)?,
        None => (0, Vec::new()),
    };
    let n = prep.train.len();
    let bs = cfg.batch_size.min(n);
    // Drop the last partial batch (BatchNorm needs more than one image per channel).
    let steps = (n / bs).max(1);
    let begun = Instant::now();
    let mut images_trained = 0usize;
    let mut train_time = 0.0;
    let mut stop_reason: Option<Stop> = None;
    let bar = progress_bar(cfg, start, steps);
    for epoch in start..cfg.epochs {
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let t0 = Instant::now();
        let (loss_sum, correct, seen, lr) = match train_epoch(
            &net, &prep, &mut sgd, cfg, epoch, steps, bs, stop, begun, &bar,
        ) {
            Ok(v) => v,
            Err(s) => {
                stop_reason = Some(s);
                break;
            }
        };
        let tsec = t0.elapsed().as_secs_f64();
        train_time += tsec;
        images_trained += seen;
        let t1 = Instant::now();
        let (val_loss, val_acc) =
            match guarded(|| evaluate(&net, &prep, &prep.val, cfg.eval_batch, cfg)) {
                Ok(v) => v,
                Err(s) => {
                    stop_reason = Some(s);
                    break;
                }
            };
        let rec = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / steps as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy: val_acc,
            lr,
            train_seconds: tsec,
            eval_seconds: t1.elapsed().as_secs_f64(),
            images_per_second: seen as f64 / tsec.max(1e-9),
        };
        let line = format!(
            "epoch {:>3}: train loss {:.4} acc {:.4} | val loss {:.4} acc {:.4} | lr {:.5} | {:.0} img/s",
            rec.epoch, rec.train_loss, rec.train_accuracy, rec.val_loss, rec.val_accuracy, rec.lr, rec.images_per_second
        );
        if cfg.progress {
            bar.println(line);
        } else if cfg.log_epochs {
            eprintln!("{line}");
        }
        epochs.push(rec);
        // The checkpoint first: epochs.parquet never shows an epoch the checkpoint lacks.
        if let Some(dir) = out {
            save_checkpoint(dir, arch, params, cfg, &epochs, &vs, &sgd)?;
        }
        on_epoch(&epochs).map_err(TrainError::Output)?;
    }
    bar.finish_and_clear();
    // No test images (`--test-subset 0`, `search.test_images: 0`): no test evaluation.
    let (test_loss, test_accuracy) = if stop_reason.is_none() && !prep.test.is_empty() {
        match guarded(|| evaluate(&net, &prep, &prep.test, cfg.eval_batch, cfg)) {
            Ok((l, a)) => (Some(l), Some(a)),
            Err(s) => {
                stop_reason = Some(s);
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    // The latency measurement is not part of the run's seconds.
    let seconds = begun.elapsed().as_secs_f64();
    let latency = (stop_reason.is_none() && cfg.measure_latency).then(|| {
        let measured =
            guarded(|| crate::latency::measure(arch, &vs, &net, &LatencyOptions::default()));
        let l = match measured {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) => Err(e.to_string()),
            Err(s) => Err(format!("{s:?}")),
        };
        match &l {
            Ok(l) => eprintln!(
                "nago-train: latency (CPU, {} thread): {:.3} ms at batch 1, {:.3} ms at batch 32",
                l.threads, l.batch1.median_ms, l.batch32.median_ms
            ),
            Err(e) => eprintln!("nago-train: note: latency not measured: {e}"),
        }
        l
    });
    Ok(Outcome {
        epochs,
        start_epoch: start,
        stop: stop_reason,
        test_accuracy,
        test_loss,
        seconds,
        images_per_second: (train_time > 0.0).then(|| images_trained as f64 / train_time),
        params,
        sizes: (n, prep.val.len(), prep.test.len()),
        input_stats: Some(prep.input_stats()),
        latency,
    })
}

/// The directory's checkpoint, if any.
pub fn checkpoint_in(dir: &Path) -> Option<PathBuf> {
    checkpoint::exists(dir).then(|| dir.to_path_buf())
}

/// Images per second of the plain training step (uint8 batch from memory → normalise →
/// forward → cross-entropy → backward → SGD with momentum 0.9 and weight decay 3e-4; loss
/// and accuracy read back every step) on `images`/`labels`, after `warmup` steps: the
/// measurement `make bench-train` compares with PyTorch eager doing the same.
pub fn bench_steps(
    arch: &Arch,
    images: &Tensor,
    labels: &Tensor,
    batch: usize,
    warmup: usize,
    steps: usize,
    cfg: &TrainConfig,
) -> Result<f64, TrainError> {
    let device = cfg.device;
    let (vs, net) = build(arch, cfg)?;
    let mut sgd = Sgd::new(&vs);
    let n = (batch * (warmup + steps)) as i64;
    let perm = Tensor::randperm(n, (Kind::Int64, device));
    let images = images.to_device(device);
    let labels = labels.to_device(device);
    let mut t0 = Instant::now();
    for s in 0..warmup + steps {
        if s == warmup {
            t0 = Instant::now();
        }
        let idx = perm.narrow(0, (s * batch) as i64, batch as i64);
        let x = (images.index_select(0, &idx).to_kind(Kind::Float) / 255.0 - 0.286) / 0.353;
        let x = prepare_input(&x, cfg);
        let y = labels.index_select(0, &idx);
        let logits = forward(&net, &x, true, cfg);
        let loss = logits.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, 0.0);
        let _ = loss.double_value(&[]);
        sgd.backward_step(&loss, 0.025, 0.9, 3e-4);
        let _ = logits
            .argmax(1, false)
            .eq_tensor(&y)
            .sum(Kind::Int64)
            .int64_value(&[]);
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    Ok((batch * steps) as f64 / t0.elapsed().as_secs_f64())
}
