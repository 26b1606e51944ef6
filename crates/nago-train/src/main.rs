//! `nago-train`: trains one architecture (arch.json) on a dataset, writes result.json,
//! epochs.parquet and a checkpoint. See `nago-train --help`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use nago_store::StudyDir;
use nago_train::job::{self, DeviceChoice, JobError, JobSpec, TrainingOverrides, EXIT_BAD_INPUT};
use nago_train::train::StopFlag;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Train a generated NAGO architecture with libtorch (CUDA when present, else CPU).
///
/// Two forms:
///   nago-train --arch arch.json [--proposal proposal.json] [--study study.json] --out DIR
///   nago-train --run runs/x --index N [--round R]      (a trial of a study, by array index)
///
/// Writes DIR/result.json, DIR/epochs.parquet and DIR/checkpoint.safetensors (weights,
/// momentum and metadata in one file). Exit status:
///   0  trained, or already done (result.json is `ok` for this budget)
///   1  bad input: a file, a flag, a setting, a split that does not fit the dataset, a
///      device that is not there (nothing written)
///   2  training failed, recorded in result.json with the partial curve: retryable
///      (`retryable: true`: killed by a signal, the --deadline, a libtorch error) or final
///      (diverged, out of memory, the --time-limit); also a skipped final failure
///   3  an output could not be written (disk full, I/O error): nothing recorded, the
///      previous files intact; run again
/// A trial whose result.json is final for this budget is left alone unless --force.
/// Continuing a checkpoint reuses the settings it recorded (threads, device, lr, batch
/// size, ...), with a note when this call asked for others.
#[derive(Parser, Debug)]
#[command(name = "nago-train", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// A study directory: train the trial that task --index of the round evaluates.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["arch", "out"])]
    run: Option<PathBuf>,
    /// Index of the trial in the round's proposals (e.g. $SLURM_ARRAY_TASK_ID); with --run.
    #[arg(long, requires = "run", conflicts_with = "trial")]
    index: Option<usize>,
    /// The round (default: the latest); with --run and --index.
    #[arg(long, requires = "index")]
    round: Option<u32>,
    /// A trial id of the study (instead of --index); with --run.
    #[arg(long, requires = "run")]
    trial: Option<String>,
    /// The architecture to train (arch.json from nago-generate).
    #[arg(long, value_name = "FILE", required_unless_present = "run")]
    arch: Option<PathBuf>,
    /// proposal.json: budget, seed and parent (for promotions).
    #[arg(long, value_name = "FILE")]
    proposal: Option<PathBuf>,
    /// study.json: dataset, training settings, schedule horizon (budgets.max), split seed.
    #[arg(long, value_name = "FILE")]
    study: Option<PathBuf>,
    /// Output directory (created).
    #[arg(long, value_name = "DIR", required_unless_present = "run")]
    out: Option<PathBuf>,
    /// Directory of the trial whose checkpoint to continue (default: the proposal's parent
    /// beside the output directory).
    #[arg(long, value_name = "DIR")]
    resume_from: Option<PathBuf>,
    /// Dataset kind: fashion-mnist, mnist, idx, cifar10, cifar100, parquet, folder (default: the
    /// study's, else fashion-mnist).
    #[arg(long)]
    dataset: Option<String>,
    /// Dataset location (default: the study's dataset.path, else <data-root>/<dataset>).
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Where the known datasets live.
    #[arg(long, value_name = "DIR", env = "NAGO_DATA", default_value = "data")]
    data_root: PathBuf,
    /// Train to this many epochs, ≥ 1 (default: the proposal's budget).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Option<u32>,
    /// Trial seed (default: the proposal's, else the architecture's).
    #[arg(long)]
    seed: Option<u64>,
    /// Horizon of the cosine schedule in epochs (default: the study's budgets.max, else the
    /// budget). Runs that continue each other must share it. > 0.
    #[arg(long, value_parser = positive)]
    schedule_epochs: Option<f64>,
    /// Peak learning rate, > 0.
    #[arg(long, value_parser = positive)]
    lr: Option<f64>,
    /// SGD momentum, in [0, 1).
    #[arg(long, value_parser = unit_interval)]
    momentum: Option<f64>,
    /// Weight decay, ≥ 0.
    #[arg(long, value_parser = non_negative)]
    weight_decay: Option<f64>,
    /// Images per step, ≥ 1.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: Option<u32>,
    /// Label smoothing ε, in [0, 1).
    #[arg(long, value_parser = unit_interval)]
    label_smoothing: Option<f64>,
    /// Random-crop padding in pixels (0: no crop).
    #[arg(long)]
    crop_padding: Option<u32>,
    /// Random horizontal flips: true or false.
    #[arg(long)]
    flip: Option<bool>,
    /// Cutout square size in pixels (0: none).
    #[arg(long)]
    cutout: Option<u32>,
    /// Train on only this many images of the training split (a cheap low fidelity); 1 to
    /// what the validation split leaves.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    train_subset: Option<u32>,
    /// Images held out of the training set for validation; 1 to the training images − 1.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    validation: Option<u32>,
    /// Report test accuracy on only the first N test images (quick checks; 0: no test
    /// evaluation; default: the study's `search.test_images` for a search trial, else all).
    #[arg(long)]
    test_subset: Option<u32>,
    /// CPU threads for libtorch, ≥ 1 (default: libtorch's choice). A continued checkpoint's
    /// recorded count wins (CPU results depend on it).
    #[arg(long, env = "NAGO_TRAIN_THREADS", value_parser = clap::value_parser!(i32).range(1..))]
    threads: Option<i32>,
    /// Where to train: auto (CUDA when available, else the CPU), cpu, cuda or cuda:N.
    /// cuda without a GPU is an error.
    #[arg(long, default_value = "auto", value_parser = parse_device, conflicts_with = "cpu")]
    device: DeviceChoice,
    /// Same as --device cpu.
    #[arg(long)]
    cpu: bool,
    /// bf16 autocast (CUDA only).
    #[arg(long)]
    bf16: bool,
    /// Channels-last input layout (CUDA only).
    #[arg(long)]
    channels_last: bool,
    /// The study's own time limit for this run: stop with status time_limit (final, not
    /// retried) after this many seconds (> 0) of training.
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    time_limit: Option<f64>,
    /// The job's remaining time (a scheduler's limit): stop with status time_limit and
    /// retryable: true this many seconds (> 0) after the start, so the next task continues
    /// the last checkpoint. Leave a margin for the final evaluation and writes.
    #[arg(long, value_name = "SECONDS", value_parser = positive)]
    deadline: Option<f64>,
    /// No progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Retrain even if a final result for this budget exists (and ignore the trial's own
    /// checkpoint).
    #[arg(long)]
    force: bool,
    /// Do not measure the trained network's CPU inference latency (by default batch 1 and
    /// 32, one thread, median after warm-up: `latency_ms`, `latency_ms_b32` in result.json;
    /// about a second per trial). A study with latency_ms as an objective or constraint
    /// needs it.
    #[arg(long)]
    no_latency: bool,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}`: expected a finite number > 0")),
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}`: expected a finite number ≥ 0")),
    }
}

fn unit_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}`: expected a number in [0, 1)")),
    }
}

fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse()
}

fn main() {
    // Flag errors exit 1 (bad input) like every other input error; --help and --version 0.
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { EXIT_BAD_INPUT } else { 0 });
        }
    };
    match real_main(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("nago-train: error: {e:#}");
            let code = e
                .downcast_ref::<JobError>()
                .map_or(EXIT_BAD_INPUT, JobError::exit_code);
            std::process::exit(code);
        }
    }
}

fn real_main(cli: Cli) -> Result<i32> {
    let (arch, proposal, study, out, parent_dir) = if let Some(run) = &cli.run {
        let sd = StudyDir::new(run);
        let trial = match (&cli.trial, cli.index) {
            (Some(t), _) => t.clone(),
            (None, Some(i)) => sd.trial_for_index(cli.round, i)?,
            (None, None) => bail!("--run needs --index N (or --trial ID)"),
        };
        let dir = sd.trial_dir(&trial);
        let p = sd.proposal(&trial)?;
        let parent = p.parent.as_ref().map(|par| sd.trial_dir(par));
        (
            dir.join("arch.json"),
            Some(dir.join("proposal.json")),
            Some(sd.study_path()),
            dir,
            cli.resume_from.clone().or(parent),
        )
    } else {
        (
            cli.arch.clone().context("--arch is required")?,
            cli.proposal.clone(),
            cli.study.clone(),
            cli.out.clone().context("--out is required")?,
            cli.resume_from.clone(),
        )
    };
    let spec = JobSpec {
        arch,
        study,
        proposal,
        out,
        parent_dir,
        dataset: cli.dataset.clone(),
        data_path: cli.data.clone(),
        data_root: cli.data_root.clone(),
        epochs: cli.epochs,
        seed: cli.seed,
        schedule_epochs: cli.schedule_epochs,
        overrides: TrainingOverrides {
            lr: cli.lr,
            momentum: cli.momentum,
            weight_decay: cli.weight_decay,
            batch_size: cli.batch_size,
            label_smoothing: cli.label_smoothing,
            crop_padding: cli.crop_padding,
            flip: cli.flip,
            cutout: cli.cutout,
            train_subset: cli.train_subset,
            validation: cli.validation,
            test_subset: cli.test_subset,
        },
        threads: cli.threads,
        device: if cli.cpu {
            DeviceChoice::Cpu
        } else {
            cli.device
        },
        bf16: cli.bf16,
        channels_last: cli.channels_last,
        time_limit: cli.time_limit,
        deadline: cli.deadline,
        progress: !cli.no_progress && std::io::stderr().is_terminal(),
        log_epochs: true,
        force: cli.force,
        measure_latency: !cli.no_latency,
    };
    let stop = StopFlag::default();
    stop.register_signals()
        .context("installing the SIGTERM handler")?;
    let report = job::run(&spec, &stop)?;
    let r = &report.result;
    if report.skipped {
        if r.status == nago_store::TrialStatus::Ok {
            eprintln!(
                "nago-train: {}: already trained to {} epochs (result.json is valid; --force retrains)",
                spec.out.display(),
                r.budget
            );
        } else {
            eprintln!(
                "nago-train: {}: already has a final result for {} epochs ({:?}, not retried; --force retrains)",
                spec.out.display(),
                r.budget,
                r.status
            );
        }
    } else {
        eprintln!(
            "nago-train: {}: {:?} after {} epochs, val acc {}, test acc {}, {} params, {:.1} s{}",
            r.trial,
            r.status,
            r.epochs_done.unwrap_or(0.0),
            r.val_accuracy.map_or("-".into(), |v| format!("{v:.4}")),
            r.test_accuracy.map_or("-".into(), |v| format!("{v:.4}")),
            r.params.unwrap_or(0),
            r.train_seconds.unwrap_or(0.0),
            r.error.as_ref().map_or(String::new(), |e| format!(": {e}"))
        );
    }
    Ok(report.exit_code())
}
