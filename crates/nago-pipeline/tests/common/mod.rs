//! Helpers the pipeline's integration tests share (each test file uses some of them).
#![allow(dead_code)]

use arrow_array::{Array, Float64Array, Int32Array, Int64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

/// The repository root (the tests run the binaries from there, where data/ is).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A small deterministic generator for kill moments (seeded, never the clock).
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Columns that hold wall-clock measurements: they differ between any two runs.
pub const TIMING: [&str; 7] = [
    "train_seconds",
    "eval_seconds",
    "images_per_second",
    "train_seconds_mean",
    "latency_ms",
    "latency_ms_b32",
    "latency_ms_mean",
];

/// Every column of a Parquet file but the timing ones, as text cells (exact values).
pub fn parquet_cells(path: &Path) -> Vec<(String, Vec<String>)> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let schema = b.schema().clone();
    let mut cols: Vec<(String, Vec<String>)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), Vec::new()))
        .collect();
    for batch in b.build().unwrap() {
        let batch = batch.unwrap();
        for (c, col) in cols.iter_mut().enumerate() {
            let a = batch.column(c);
            for r in 0..batch.num_rows() {
                let cell = if a.is_null(r) {
                    "null".to_string()
                } else if let Some(x) = a.as_any().downcast_ref::<Float64Array>() {
                    format!("{:?}", x.value(r))
                } else if let Some(x) = a.as_any().downcast_ref::<Int64Array>() {
                    x.value(r).to_string()
                } else if let Some(x) = a.as_any().downcast_ref::<Int32Array>() {
                    x.value(r).to_string()
                } else {
                    format!("{:?}", a.slice(r, 1))
                };
                col.1.push(cell);
            }
        }
    }
    cols.retain(|(n, _)| !TIMING.contains(&n.as_str()));
    cols
}

/// The differences between two runs of one trial ([`nago_pipeline::rerun::compare_ignoring`]
/// with `ignore`), or for a trial rejected before training (no arch.json, no epochs), between
/// its result.json bytes.
pub fn trial_diffs(a: &Path, b: &Path, ignore: &[&str]) -> Vec<String> {
    let ra = std::fs::read_to_string(a.join("result.json")).unwrap_or_default();
    if ra.contains("\"status\": \"rejected\"") || ra.contains("\"status\":\"rejected\"") {
        let rb = std::fs::read_to_string(b.join("result.json")).unwrap_or_default();
        return if ra == rb {
            Vec::new()
        } else {
            vec!["result.json of a rejected trial".to_string()]
        };
    }
    nago_pipeline::rerun::compare_ignoring(a, b, ignore)
        .unwrap()
        .into_iter()
        .map(|d| format!("{d:?}"))
        .collect()
}

/// Runs `nago-rerun --run RUN ARGS…` from the repository root and asserts that it reports
/// the stage reproduced (`identical`), showing its output otherwise.
pub fn assert_rerun_identical(run: &Path, args: &[&str]) {
    let out = std::process::Command::new(PathBuf::from(env!("CARGO_BIN_EXE_nago-rerun")))
        .arg("--run")
        .arg(run)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("identical"),
        "nago-rerun {args:?}:\n{text}"
    );
}
