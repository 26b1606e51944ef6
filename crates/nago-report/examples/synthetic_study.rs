//! Writes a synthetic study directory for testing the report without training anything:
//! real proposals and architectures (sampled by nago-generator), invented results.
//!
//! `cargo run --release -p nago-report --example synthetic_study -- DIR [TRIALS]`
//!
//! Results: `params` from arch.json; `val_error` a smooth function of the generator and the
//! size plus noise, lower at the larger budget; two failed trials, one pending; per-epoch
//! curves in epochs.parquet (the trainer's columns); file times spaced 90 s apart so the
//! wall-time figure has an axis.

use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch};
use nago_arch::InputShape;
use nago_space::{Generator, GraphModel};
use nago_store::{
    Origin, Proposal, TrialDir, TrialResult, TrialStatus, PROPOSAL_SCHEMA, RESULT_SCHEMA,
};
use parquet::arrow::ArrowWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A tiny deterministic stream (SplitMix64).
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn int(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next() * (hi - lo + 1) as f64) as u32
    }
}

const STUDY: &str = r#"{
  "schema": "nago.study/1",
  "name": "synthetic",
  "seed": 7,
  "space": {
    "top.n": {"int": [3, 6]},
    "top.k": {"int": [2, 4]},
    "top.p": {"real": [0.1, 0.9]},
    "mid.n": {"int": [1, 3]},
    "mid.p": {"real": [0.1, 0.9]},
    "bottom.n": {"int": [3, 5]},
    "bottom.k": {"int": [2, 4]},
    "bottom.p": {"real": [0.1, 0.9]},
    "param_limit": {"log": [5000, 100000]}
  },
  "dataset": {"name": "fashion-mnist", "validation": 2000},
  "objectives": [
    {"metric": "val_error", "goal": "min"},
    {"metric": "params", "goal": "min", "log": true}
  ],
  "budgets": {"min": 2, "max": 4, "eta": 2},
  "search": {"batch_size": 4, "max_evaluations": 24, "initial_design": 8, "final_samples": 2},
  "training": {"lr": 0.05, "batch_size": 128, "train_subset": 4000}
}
"#;

fn write_epochs(path: &Path, curve: &[(f64, f64, f64, f64)]) {
    let f = |k: usize| -> ArrayRef {
        Arc::new(Float64Array::from(
            curve
                .iter()
                .map(|c| [c.0, c.1, c.2, c.3][k])
                .collect::<Vec<_>>(),
        ))
    };
    let batch = RecordBatch::try_from_iter(vec![
        (
            "epoch",
            Arc::new(Int32Array::from(
                (1..=curve.len() as i32).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("train_loss", f(0)),
        ("train_accuracy", f(1)),
        ("val_loss", f(2)),
        ("val_accuracy", f(3)),
    ])
    .unwrap();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    std::fs::write(path, buf).unwrap();
}

fn set_time(path: &Path, t: SystemTime) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(t).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(args.get(1).expect("usage: synthetic_study DIR [TRIALS]"));
    let n: usize = args.get(2).map_or(24, |s| s.parse().unwrap());
    write_study(&root, n);
    println!("{}: {} trials", root.display(), n);
}

/// Writes a synthetic study of `n` trials (4 per round; the last one pending) into `root`.
pub fn write_study(root: &Path, n: usize) {
    std::fs::create_dir_all(root.join("trials")).unwrap();
    std::fs::write(root.join("study.json"), STUDY).unwrap();
    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    };
    let t0 = SystemTime::now() - Duration::from_secs(3600 * 4);
    let mut rng = Mix(42);
    let mut rounds: Vec<Vec<String>> = Vec::new();
    for i in 0..n {
        let round = (i / 4) as u32;
        let mut g = Generator::default();
        g.top.model = GraphModel::Ws;
        g.top.n = rng.int(3, 6);
        g.top.k = rng.int(2, 4);
        g.top.p = 0.1 + 0.8 * rng.next();
        g.mid.n = rng.int(1, 3);
        g.mid.p = 0.1 + 0.8 * rng.next();
        g.bottom.n = rng.int(3, 5);
        g.bottom.k = rng.int(2, 4);
        g.bottom.p = 0.1 + 0.8 * rng.next();
        g.param_limit = 5000.0 * 20f64.powf(rng.next());
        let budget = if i % 3 == 2 { 4.0 } else { 2.0 };
        let id = format!("r{round:03}-t{i:03}");
        let dir = TrialDir::new(&root.join("trials"), &id);
        std::fs::create_dir_all(dir.path()).unwrap();
        let seed = 1000 + i as u64;
        let p = Proposal {
            schema: PROPOSAL_SCHEMA.into(),
            trial: id.clone(),
            round,
            generator: g,
            budget,
            seed,
            parent: None,
            origin: if round == 0 {
                Origin::Initial
            } else {
                Origin::Model
            },
            source: None,
        };
        let ppath = dir.proposal_path();
        std::fs::write(&ppath, serde_json::to_string_pretty(&p).unwrap()).unwrap();
        set_time(&ppath, t0 + Duration::from_secs(90 * i as u64));
        let arch = nago_generator::sample(&g, seed, input).unwrap();
        std::fs::write(dir.arch_path(), arch.to_json()).unwrap();
        std::fs::write(dir.dot_path(), arch.to_dot()).unwrap();
        rounds.resize(round as usize + 1, Vec::new());
        rounds[round as usize].push(id.clone());
        if i + 1 == n {
            continue; // pending: no result yet
        }
        let params = arch.counts.params;
        let failed = i == 5 || i == 13;
        let size_term = 0.5 / (params as f64 / 1000.0).sqrt();
        let shape_term = 0.02 * (g.top.p - 0.5).abs() + 0.01 * (g.bottom.n as f64 - 4.0).abs();
        let err = (0.08 + size_term + shape_term + 0.015 * rng.next())
            * if budget > 2.0 { 0.9 } else { 1.0 };
        let epochs = budget as usize;
        let curve: Vec<(f64, f64, f64, f64)> = (1..=epochs)
            .map(|e| {
                let f = (epochs as f64 / e as f64).powf(0.7);
                let ve = (err * f).min(0.9);
                (ve * 2.5, 1.0 - ve * 0.95, ve * 2.6, 1.0 - ve)
            })
            .collect();
        let mut r = TrialResult {
            schema: RESULT_SCHEMA.into(),
            trial: id.clone(),
            status: if failed {
                if i == 5 {
                    TrialStatus::Diverged
                } else {
                    TrialStatus::OutOfMemory
                }
            } else {
                TrialStatus::Ok
            },
            budget,
            epochs_done: Some(if failed { 1.0 } else { budget }),
            val_accuracy: None,
            val_error: None,
            test_accuracy: None,
            params: Some(params),
            macs: Some(arch.counts.macs),
            memory_mb: Some(arch.counts.param_bytes as f64 / 1e6),
            train_seconds: Some(60.0 + 30.0 * budget),
            error: if failed {
                Some("synthetic failure".into())
            } else {
                None
            },
            retryable: false,
            attempts: 0,
            extra: Default::default(),
        };
        if !failed {
            r.val_error = Some(err);
            r.val_accuracy = Some(1.0 - err);
            r.test_accuracy = Some(1.0 - err - 0.005);
            write_epochs(&dir.epochs_path(), &curve);
        }
        let rpath = dir.result_path();
        std::fs::write(&rpath, serde_json::to_string_pretty(&r).unwrap()).unwrap();
        set_time(&rpath, t0 + Duration::from_secs(90 * i as u64 + 300));
    }
    for (r, ids) in rounds.iter().enumerate() {
        let d = root.join("rounds").join(format!("{r:04}"));
        std::fs::create_dir_all(&d).unwrap();
        let doc = serde_json::json!({"schema": "nago.round/1", "round": r, "trials": ids});
        std::fs::write(d.join("proposals.json"), doc.to_string()).unwrap();
    }
}
