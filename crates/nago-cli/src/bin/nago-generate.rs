//! nago-generate: sample one architecture from a generator.
use anyhow::{bail, Context, Result};
use clap::Parser;
use nago_arch::InputShape;
use nago_cli::generate::{
    describe, generate_into, parse_shape, read_source, study_shape, summary_table, trial_task,
    write_arch, Outcome,
};
use std::path::PathBuf;

/// Sample a concrete architecture from a NAGO generator and write arch.json (the complete
/// network description the trainer builds) and arch.dot (a Graphviz picture, one cluster
/// per cell).
///
/// By hand:   nago-generate --proposal gen.json --seed 7 --out DIR
/// Array task: nago-generate --run runs/x --index $SLURM_ARRAY_TASK_ID
/// Explore:   nago-generate --proposal gen.json --samples 100 --summary
/// Hand-made:  nago-generate --baseline plain-cnn --study study.json --out DIR
///            (plain-cnn: a VGG-style CNN under 100k parameters; resnet20: a ResNet-20-like
///            network of about 0.3M; the references `make bench-search` trains beside the
///            search's networks)
#[derive(Parser, Debug)]
#[command(version, about, long_about, verbatim_doc_comment)]
struct Args {
    /// A proposal.json, a generator document ({"schema": "nago.generator/1", "generator": …})
    /// or a bare generator object.
    #[arg(long, value_name = "FILE", conflicts_with = "run")]
    proposal: Option<PathBuf>,
    /// Study directory (study + index form): generate the trial at --index of the round.
    #[arg(long, value_name = "DIR", requires = "index")]
    run: Option<PathBuf>,
    /// Position of the trial in the round's proposals (e.g. $SLURM_ARRAY_TASK_ID).
    #[arg(long, value_name = "N", env = "SLURM_ARRAY_TASK_ID")]
    index: Option<usize>,
    /// Round (default: the latest round).
    #[arg(long, value_name = "R", requires = "run")]
    round: Option<u32>,
    /// Sampling seed (overrides a proposal's seed; required for a generator file).
    #[arg(long)]
    seed: Option<u64>,
    /// Take the input shape from this study.json's dataset.
    #[arg(long, value_name = "FILE", conflicts_with = "shape")]
    study: Option<PathBuf>,
    /// Input shape CxHxW (default 1x28x28, Fashion-MNIST).
    #[arg(long, value_name = "CxHxW")]
    shape: Option<String>,
    /// Number of classes (default 10).
    #[arg(long, value_name = "N")]
    classes: Option<u32>,
    /// Output directory for arch.json and arch.dot.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace an existing arch.json even if it holds another architecture.
    #[arg(long)]
    force: bool,
    /// Sample this many architectures (seeds SEED, SEED+1, …) and write nothing.
    #[arg(long, value_name = "K", requires = "summary")]
    samples: Option<usize>,
    /// Print the distribution (min / median / max) of sizes over --samples architectures.
    #[arg(long)]
    summary: bool,
    /// Write a hand-made reference network instead of sampling: plain-cnn or resnet20.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["proposal", "run", "summary", "seed"])]
    baseline: Option<String>,
}

fn main() -> std::process::ExitCode {
    nago_cli::finish("nago-generate", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    if let Some(run) = &args.run {
        let index = args.index.context("--run needs --index")?;
        let t = trial_task(run, index, args.round)?;
        let seed = args.seed.unwrap_or(t.proposal.seed);
        match generate_into(&t.proposal.generator, seed, t.input, &t.dir, args.force) {
            Ok((arch, outcome)) => report(&t.dir, &arch, outcome),
            Err(e) => {
                record_failure(&t.dir, t.proposal.budget, &e);
                return Err(e);
            }
        }
        return Ok(());
    }
    if let Some(name) = &args.baseline {
        let b = nago_generator::Baseline::from_name(name).with_context(|| {
            let names: Vec<&str> = nago_generator::Baseline::ALL
                .iter()
                .map(|b| b.name())
                .collect();
            format!("--baseline {name}: expected one of {}", names.join(", "))
        })?;
        let out = args.out.as_ref().context("--baseline needs --out DIR")?;
        let arch = nago_generator::baseline(b, input_shape(&args)?)?;
        let (arch, outcome) = write_arch(arch, out, args.force)?;
        report(out, &arch, outcome);
        return Ok(());
    }
    let Some(path) = &args.proposal else {
        bail!("give a generator with --proposal FILE, a study with --run DIR --index N, or --baseline NAME (see --help)");
    };
    let src = read_source(path)?;
    let seed = match (args.seed, src.seed) {
        (Some(s), _) | (None, Some(s)) => s,
        (None, None) if args.summary => 0,
        (None, None) => bail!(
            "{}: a generator file has no seed; pass --seed",
            path.display()
        ),
    };
    let input = input_shape(&args)?;
    if args.summary {
        let k = args.samples.unwrap_or(100);
        if k == 0 {
            bail!("--samples must be at least 1");
        }
        print!("{}", summary_table(&src.generator, seed, k, input)?);
        return Ok(());
    }
    let Some(out) = &args.out else {
        bail!("--out DIR is required (or --summary to only look)");
    };
    let (arch, outcome) = generate_into(&src.generator, seed, input, out, args.force)?;
    report(out, &arch, outcome);
    Ok(())
}

/// The input shape from --study, else --shape and --classes (default Fashion-MNIST's).
fn input_shape(args: &Args) -> Result<InputShape> {
    if let Some(study_path) = &args.study {
        let text = nago_store::read_text(study_path)?;
        let study = nago_space::Study::from_json(&text)
            .with_context(|| format!("{}", study_path.display()))?;
        return study_shape(&study, study_path);
    }
    let (channels, height, width) = match &args.shape {
        Some(s) => parse_shape(s)?,
        None => (1, 28, 28),
    };
    let classes = args.classes.unwrap_or(10);
    if classes == 0 {
        bail!("--classes must be positive");
    }
    Ok(InputShape {
        channels,
        height,
        width,
        classes,
    })
}

/// A trial whose generator cannot be sampled gets a final `crashed` result (nothing later
/// would change it); a retryable I/O failure (disk full) a retryable one, when there is room
/// to write it. Other errors (an arch.json of another architecture) are the user's to fix and
/// record nothing.
fn record_failure(dir: &std::path::Path, budget: f64, e: &anyhow::Error) {
    let sampling = e
        .chain()
        .any(|c| c.downcast_ref::<nago_generator::GenerateError>().is_some());
    let retryable = nago_study::exit::for_error(e) == nago_study::exit::IO_RETRY;
    if !sampling && !retryable {
        return;
    }
    let t = nago_store::TrialDir::at(dir);
    let msg = format!("nago-generate failed: {e:#}");
    match t.record_failure(budget, nago_store::TrialStatus::Crashed, msg, retryable) {
        Ok(r) => eprintln!(
            "nago-generate: recorded {} ({})",
            t.result_path().display(),
            if r.is_final() {
                "final"
            } else {
                "will be retried"
            }
        ),
        Err(w) => eprintln!("nago-generate: could not record the failure either: {w}"),
    }
}

fn report(dir: &std::path::Path, arch: &nago_arch::Arch, outcome: Outcome) {
    let verb = match outcome {
        Outcome::Written => "wrote",
        Outcome::Exists => "kept existing",
    };
    eprintln!(
        "{verb} {}: {}",
        dir.join("arch.json").display(),
        describe(arch)
    );
}
