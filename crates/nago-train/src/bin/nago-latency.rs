//! `nago-latency`: a trained network's CPU inference latency on this machine. See `--help`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use nago_store::{StudyDir, TrialResult};
use nago_train::latency::{self, LatencyOptions};
use std::path::PathBuf;

/// Measure a trained network's CPU inference latency on this machine.
///
///   nago-latency --run runs/quick --trial q-r3-t1    (a trial of a study)
///   nago-latency --dir DIR                           (a trial or a `nago-report export` directory)
///
/// The protocol is the one nago-train follows after training (`latency_ms`, `latency_ms_b32`
/// in result.json): float32, evaluation mode, one libtorch thread, batch 1 and batch 32,
/// warm-up runs, then the median of timed forward passes. Latency belongs to a machine: run
/// this on the machine you deploy to (it needs libtorch there, as nago-train does) to get
/// that machine's figure; the figure recorded during the search is the search machine's,
/// taken while other trials may have been training. Prints a table, or JSON with --json;
/// writes nothing. Exit 1 on bad input (the file and the field are named).
#[derive(Parser, Debug)]
#[command(
    name = "nago-latency",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
struct Cli {
    /// A study directory; with --trial.
    #[arg(long, value_name = "DIR", requires = "trial", conflicts_with = "dir")]
    run: Option<PathBuf>,
    /// A trial id of the study.
    #[arg(long, requires = "run")]
    trial: Option<String>,
    /// A trial directory or an export directory (arch.json and the weights).
    #[arg(long, value_name = "DIR", required_unless_present = "run")]
    dir: Option<PathBuf>,
    /// Intra-op threads while measuring (the recorded figures use the default).
    #[arg(long, default_value_t = LatencyOptions::default().threads,
          value_parser = clap::value_parser!(i32).range(1..))]
    threads: i32,
    /// Timed forward passes at least, per batch size (default: nago-train's).
    #[arg(long, default_value_t = LatencyOptions::default().min_runs as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    min_runs: u64,
    /// Timed seconds at least, per batch size (default: nago-train's; more runs for a
    /// steadier median).
    #[arg(long, default_value_t = LatencyOptions::default().min_seconds)]
    min_seconds: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("nago-latency: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> Result<()> {
    if !(cli.min_seconds.is_finite() && (0.0..=600.0).contains(&cli.min_seconds)) {
        bail!("--min-seconds {}: expected 0 to 600", cli.min_seconds);
    }
    let dir = match (&cli.dir, &cli.run, &cli.trial) {
        (Some(d), _, _) => d.clone(),
        (None, Some(run), Some(t)) => {
            let sd = StudyDir::new(run);
            let d = sd.trial_dir(t);
            if !d.is_dir() {
                bail!("{}: no trial `{t}` in this study", d.display());
            }
            d
        }
        _ => unreachable!("clap requires --dir or --run with --trial"),
    };
    let (arch, vs, net) = latency::load_trained(&dir)?;
    let defaults = LatencyOptions::default();
    let opts = LatencyOptions {
        threads: cli.threads,
        min_runs: cli.min_runs as usize,
        min_seconds: cli.min_seconds,
        max_seconds: cli.min_seconds.max(defaults.max_seconds),
        ..defaults
    };
    let l = latency::measure(&arch, &vs, &net, &opts).context("measuring")?;
    let recorded: Option<TrialResult> = std::fs::read_to_string(dir.join("result.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if cli.json {
        let mut v = serde_json::to_value(&l)?;
        v["dir"] = dir.display().to_string().into();
        v["params"] = arch.counts.params.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let i = &arch.input;
    println!(
        "{}: {} parameters, input {}x{}x{}",
        dir.display(),
        arch.counts.params,
        i.channels,
        i.height,
        i.width
    );
    let load = l
        .load_average
        .map_or_else(String::new, |a| format!(", load average {a:.2}"));
    println!("on {} ({} thread{load})", l.machine, l.threads);
    println!(
        "{:>6} {:>11} {:>9} {:>9} {:>5}",
        "batch", "median ms", "min ms", "max ms", "runs"
    );
    for b in [&l.batch1, &l.batch32] {
        println!(
            "{:>6} {:>11.3} {:>9.3} {:>9.3} {:>5}",
            b.batch, b.median_ms, b.min_ms, b.max_ms, b.runs
        );
    }
    if let Some(r) = recorded {
        if let (Some(a), Some(b)) = (r.metric("latency_ms"), r.metric("latency_ms_b32")) {
            let on = r
                .extra
                .get("latency_machine")
                .and_then(|m| m.as_str())
                .unwrap_or("an unrecorded machine");
            println!("recorded after training: {a:.3} ms (batch 1), {b:.3} ms (batch 32) on {on}");
        }
    }
    Ok(())
}
