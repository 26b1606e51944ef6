//! `nago-report`: the study report, the best trials, and model export.

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use nago_report::{best, export, write_report, ReportOptions, StudyData};
use std::path::PathBuf;

/// See a study's results: an offline HTML report, the Pareto set as a table, and export of a
/// found model (weights + arch.json) for use without nago.
#[derive(Parser, Debug)]
#[command(name = "nago-report", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write the report page (default <RUN>/report/index.html): Pareto front, hypervolume
    /// against evaluations and wall time, parallel coordinates, learning curves and pictures
    /// of the front's architectures, all inline SVG (viewable offline).
    Html {
        /// The study directory.
        #[arg(long)]
        run: PathBuf,
        /// Where to write the page.
        #[arg(long)]
        out: Option<PathBuf>,
        /// How many Pareto-optimal trials get learning curves and pictures.
        #[arg(long, default_value_t = 6)]
        max_best: usize,
        /// Draw architectures without Graphviz even when `dot` is installed.
        #[arg(long)]
        no_graphviz: bool,
    },
    /// Print the current Pareto set: objectives, budget, the searched generator
    /// hyperparameters and the paths of each trial's arch.json and weights.
    Best {
        /// The study directory.
        #[arg(long)]
        run: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Which front: every evaluation across budgets (the trained networks you have), or
        /// pareto.parquet's, at the one budget the optimiser compares.
        #[arg(long, value_enum, default_value = "all-budgets")]
        front: best::Front,
    },
    /// Export a trial's model: copies arch.json and its weights (safetensors) into OUT with an
    /// export.json manifest; load it in PyTorch with `python/nago_export`. With --format
    /// onnx also model.onnx, for ONNX runtimes (made by PyTorch's exporter: needs a Python
    /// with torch, onnx and onnxscript).
    Export {
        /// The study directory.
        #[arg(long)]
        run: PathBuf,
        /// The trial id (see `nago-report best`).
        #[arg(long)]
        trial: String,
        /// The directory to write.
        #[arg(long)]
        out: PathBuf,
        /// The weights file (default: the trial's weights.safetensors, else the trainer's
        /// checkpoint.safetensors).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// safetensors: the weights and arch.json (for `python/nago_export`); onnx: those
        /// and model.onnx (input `images`, float32 [N, C, H, W] pixel values 0..255, the
        /// training normalisation inside; output `logits`), made by PyTorch's exporter.
        #[arg(long, value_enum, default_value_t = ExportFormat::Safetensors)]
        format: ExportFormat,
        /// The Python that runs the ONNX exporter (needs torch, onnx and onnxscript;
        /// onnxruntime for the check against PyTorch).
        #[arg(long, env = "NAGO_PYTHON", default_value = "python3")]
        python: std::ffi::OsString,
        /// ONNX opset (≥ 17).
        #[arg(long, default_value_t = 18, value_parser = clap::value_parser!(u32).range(17..))]
        opset: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExportFormat {
    /// weights.safetensors + arch.json + export.json.
    Safetensors,
    /// The same and model.onnx.
    Onnx,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Aligned text.
    Table,
    /// CSV with a header row.
    Csv,
    /// JSON, one object per trial.
    Json,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nago-report: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Html {
            run,
            out,
            max_best,
            no_graphviz,
        } => {
            let s = write_report(
                &run,
                &ReportOptions {
                    out,
                    max_best,
                    graphviz: !no_graphviz,
                },
            )?;
            for w in &s.warnings {
                eprintln!("nago-report: warning: {w}");
            }
            println!(
                "{}: {} figures ({} architecture pictures by Graphviz, {} drawn without it)",
                s.path.display(),
                s.figures.len(),
                s.graphviz_pictures,
                s.own_pictures
            );
        }
        Cmd::Best { run, format, front } => {
            let d = StudyData::load(&run)?;
            // Nothing left out silently: every unreadable trial file, named, on stderr.
            for w in &d.warnings {
                eprintln!("nago-report: warning: {w}");
            }
            match format {
                Format::Table => print!("{}", best::text_table(&d, front)),
                Format::Csv => print!("{}", best::csv_table(&d, front)),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&best::best_rows(&d, front))?
                ),
            }
        }
        Cmd::Export {
            run,
            trial,
            out,
            weights,
            format,
            python,
            opset,
        } => {
            let m = if format == ExportFormat::Onnx {
                let opts = nago_report::onnx::OnnxOptions {
                    python,
                    opset,
                    verify: true,
                };
                export::export_trial_onnx(&run, &trial, &out, weights.as_deref(), &opts)?
            } else {
                export::export_trial(&run, &trial, &out, weights.as_deref())?
            };
            println!(
                "{}: arch.json, weights.safetensors ({} tensors, {} parameters) and export.json",
                out.display(),
                m.tensors,
                m.params_in_weights
            );
            if let Some(o) = &m.onnx {
                let check = match o["verified"]["max_abs_diff"].as_f64() {
                    Some(d) => format!("onnxruntime matches PyTorch within {d:.1e}"),
                    None => "not run with onnxruntime (not installed)".into(),
                };
                println!(
                    "{}: opset {}, {} nodes; input `images` [N, C, H, W] pixel values 0..255; {check}",
                    out.join(nago_report::onnx::ONNX_FILE).display(),
                    o["opset"],
                    o["nodes"]
                );
            }
        }
    }
    Ok(())
}
