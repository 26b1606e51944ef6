//! Reading a trial's `epochs.parquet` (the trainer's per-epoch log) into curves: through
//! [`nago_table::read_epochs`] (the file nago-train writes, tagged `nago.epochs/1`, or untagged
//! from older trainers), falling back to any numeric columns for other per-epoch tables.

use anyhow::{Context, Result};
use arrow_array::{
    Array, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch, UInt32Array,
    UInt64Array,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::BTreeMap;
use std::path::Path;

/// One trial's learning curve.
#[derive(Debug, Clone)]
pub struct Curve {
    /// The trial id.
    pub trial: String,
    /// The plotted column (a validation metric).
    pub metric: String,
    /// (epoch, value) of the validation metric.
    pub points: Vec<(f64, f64)>,
    /// (epoch, value) of the matching training metric, where recorded.
    pub train: Option<Vec<(f64, f64)>>,
}

fn as_f64(a: &dyn Array) -> Option<Vec<f64>> {
    let any = a.as_any();
    let get = |i: usize| !a.is_null(i);
    let n = a.len();
    if let Some(x) = any.downcast_ref::<Float64Array>() {
        return Some(
            (0..n)
                .map(|i| if get(i) { x.value(i) } else { f64::NAN })
                .collect(),
        );
    }
    if let Some(x) = any.downcast_ref::<Float32Array>() {
        return Some(
            (0..n)
                .map(|i| if get(i) { x.value(i) as f64 } else { f64::NAN })
                .collect(),
        );
    }
    if let Some(x) = any.downcast_ref::<Int64Array>() {
        return Some(
            (0..n)
                .map(|i| if get(i) { x.value(i) as f64 } else { f64::NAN })
                .collect(),
        );
    }
    if let Some(x) = any.downcast_ref::<Int32Array>() {
        return Some(
            (0..n)
                .map(|i| if get(i) { x.value(i) as f64 } else { f64::NAN })
                .collect(),
        );
    }
    if let Some(x) = any.downcast_ref::<UInt32Array>() {
        return Some(
            (0..n)
                .map(|i| if get(i) { x.value(i) as f64 } else { f64::NAN })
                .collect(),
        );
    }
    if let Some(x) = any.downcast_ref::<UInt64Array>() {
        return Some(
            (0..n)
                .map(|i| if get(i) { x.value(i) as f64 } else { f64::NAN })
                .collect(),
        );
    }
    None
}

/// Every numeric column of a Parquet file, as f64 (nulls as NaN).
pub fn read_numeric_columns(path: &Path) -> Result<BTreeMap<String, Vec<f64>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?
        .build()?;
    let mut cols: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for batch in reader {
        let batch: RecordBatch =
            batch.with_context(|| format!("{}: unreadable", path.display()))?;
        let schema = batch.schema();
        for (k, f) in schema.fields().iter().enumerate() {
            if let Some(v) = as_f64(batch.column(k).as_ref()) {
                cols.entry(f.name().clone()).or_default().extend(v);
            }
        }
    }
    Ok(cols)
}

/// Whether the file's Parquet metadata carries the `nago.epochs/1` schema tag.
fn has_epochs_tag(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(b) = ParquetRecordBatchReaderBuilder::try_new(f) else {
        return false;
    };
    b.metadata()
        .file_metadata()
        .key_value_metadata()
        .is_some_and(|kv| {
            kv.iter().any(|k| {
                k.key == nago_table::SCHEMA_KEY
                    && k.value.as_deref() == Some(nago_table::EPOCHS_SCHEMA)
            })
        })
}

/// The validation metric to plot, in order of preference, with its training counterpart.
const METRICS: [(&str, &str); 6] = [
    ("val_accuracy", "train_accuracy"),
    ("val_acc", "train_acc"),
    ("val_error", "train_error"),
    ("val_loss", "train_loss"),
    ("accuracy", "train_accuracy"),
    ("loss", "train_loss"),
];

/// Reads one trial's curve from its `epochs.parquet`: the `epoch` column (or the row number
/// plus one) against the first validation metric found among `val_accuracy`, `val_acc`,
/// `val_error`, `val_loss`.
pub fn read_curve(trial: &str, path: &Path) -> Result<Curve> {
    match nago_table::read_epochs(path) {
        Ok(rows) => {
            let pts = |f: fn(&nago_table::EpochRow) -> f64| -> Vec<(f64, f64)> {
                rows.iter()
                    .map(|r| (r.epoch as f64, f(r)))
                    .filter(|(_, y)| y.is_finite())
                    .collect()
            };
            let train = pts(|r| r.train_accuracy);
            return Ok(Curve {
                trial: trial.to_string(),
                metric: "val_accuracy".into(),
                points: pts(|r| r.val_accuracy),
                train: (!train.is_empty()).then_some(train),
            });
        }
        // A file that says it is nago-train's but does not read as one: an error.
        Err(e) if has_epochs_tag(path) => return Err(anyhow::anyhow!("{e}")),
        Err(_) => {}
    }
    let cols = read_numeric_columns(path)?;
    let (metric, train) = METRICS
        .iter()
        .find(|(m, _)| cols.contains_key(*m))
        .with_context(|| {
            format!(
                "{}: no validation metric column (looked for {}); columns: {}",
                path.display(),
                METRICS.map(|m| m.0).join(", "),
                cols.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })?;
    let vals = &cols[*metric];
    let epochs: Vec<f64> = match cols.get("epoch") {
        Some(e) => e.clone(),
        None => (1..=vals.len()).map(|i| i as f64).collect(),
    };
    let pair = |v: &Vec<f64>| -> Vec<(f64, f64)> {
        epochs
            .iter()
            .zip(v)
            .filter(|(e, y)| e.is_finite() && y.is_finite())
            .map(|(e, y)| (*e, *y))
            .collect()
    };
    Ok(Curve {
        trial: trial.to_string(),
        metric: metric.to_string(),
        points: pair(vals),
        train: cols.get(*train).map(pair).filter(|p| !p.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_trainers_file_through_nago_table() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("epochs.parquet");
        let row = |e: u32, v: f64| nago_table::EpochRow {
            epoch: e,
            train_loss: 1.0,
            train_accuracy: v + 0.05,
            val_loss: 1.1,
            val_accuracy: v,
            lr: 0.1,
            train_seconds: 1.0,
            eval_seconds: 0.1,
            images_per_second: 10.0,
        };
        nago_table::write_epochs(&p, &[row(1, 0.5), row(2, 0.7)]).unwrap();
        let c = read_curve("t", &p).unwrap();
        assert_eq!(c.metric, "val_accuracy");
        assert_eq!(c.points, vec![(1.0, 0.5), (2.0, 0.7)]);
        assert_eq!(c.train.unwrap(), vec![(1.0, 0.55), (2.0, 0.75)]);
    }
}
