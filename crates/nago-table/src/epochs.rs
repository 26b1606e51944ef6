//! `epochs.parquet`: a trial's per-epoch log, written by `nago-train` after every epoch and
//! read by `nago-report` (learning curves) and by anyone with pandas, polars, pyarrow or
//! DuckDB. One row per epoch, those of a continued parent trial included. Columns (all
//! non-null, in this order):
//!
//! | column | type | unit / meaning |
//! |---|---|---|
//! | `epoch` | int32 | 1-based epoch number |
//! | `train_loss` | float64 | mean training loss over the epoch's steps (nats; label smoothing included) |
//! | `train_accuracy` | float64 | accuracy on the augmented training batches, in [0, 1] |
//! | `val_loss` | float64 | validation cross-entropy (nats, no smoothing) |
//! | `val_accuracy` | float64 | validation accuracy, in [0, 1] |
//! | `lr` | float64 | learning rate of the epoch's last step |
//! | `train_seconds` | float64 | wall-clock seconds training (evaluation excluded) |
//! | `eval_seconds` | float64 | wall-clock seconds evaluating on the validation split |
//! | `images_per_second` | float64 | training images per second |
//!
//! The file carries [`EPOCHS_SCHEMA`] in its key-value metadata under
//! [`SCHEMA_KEY`](crate::SCHEMA_KEY). Files written before the tag existed (same columns, no
//! tag) are read as well; a file with another tag is refused.

use crate::{err, schema_tag_of, tagged_props, TableError};
use arrow::array::{Array, ArrayRef, Float64Array, Int32Array};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// Schema tag of `epochs.parquet`.
pub const EPOCHS_SCHEMA: &str = "nago.epochs/1";

/// One row of `epochs.parquet` (see the module documentation for units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// Epoch number, 1-based (column `epoch`, int32).
    pub epoch: u32,
    /// Mean training loss over the epoch's steps, nats, with label smoothing as optimised.
    pub train_loss: f64,
    /// Training accuracy on the augmented batches, in [0, 1].
    pub train_accuracy: f64,
    /// Validation loss (cross-entropy, nats, no smoothing).
    pub val_loss: f64,
    /// Validation accuracy in [0, 1].
    pub val_accuracy: f64,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Seconds spent training (without evaluation).
    pub train_seconds: f64,
    /// Seconds spent evaluating on the validation split.
    pub eval_seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// Reads one float64 column of a row.
type Getter = fn(&EpochRow) -> f64;

/// The float64 columns after `epoch`, in file order, with their getters.
const FLOAT_COLUMNS: [(&str, Getter); 8] = [
    ("train_loss", |r| r.train_loss),
    ("train_accuracy", |r| r.train_accuracy),
    ("val_loss", |r| r.val_loss),
    ("val_accuracy", |r| r.val_accuracy),
    ("lr", |r| r.lr),
    ("train_seconds", |r| r.train_seconds),
    ("eval_seconds", |r| r.eval_seconds),
    ("images_per_second", |r| r.images_per_second),
];

/// Serialises rows to `epochs.parquet` bytes (Snappy, [`EPOCHS_SCHEMA`] tag). Deterministic.
pub fn epochs_to_parquet(rows: &[EpochRow]) -> Result<Vec<u8>, TableError> {
    let p = Path::new("<epochs.parquet>");
    let mut cols: Vec<(&str, ArrayRef)> = vec![(
        "epoch",
        Arc::new(Int32Array::from(
            rows.iter().map(|r| r.epoch as i32).collect::<Vec<_>>(),
        )) as ArrayRef,
    )];
    for (name, get) in FLOAT_COLUMNS {
        cols.push((
            name,
            Arc::new(Float64Array::from(rows.iter().map(get).collect::<Vec<_>>())) as ArrayRef,
        ));
    }
    let batch = RecordBatch::try_from_iter(cols).map_err(|e| err(p, e))?;
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(tagged_props(EPOCHS_SCHEMA)))
        .map_err(|e| err(p, e))?;
    w.write(&batch).map_err(|e| err(p, e))?;
    w.close().map_err(|e| err(p, e))?;
    Ok(buf)
}

/// Reads `epochs.parquet`: tagged [`EPOCHS_SCHEMA`], or untagged with the same columns (files
/// of trainers before the tag). Errors name the file and the column.
pub fn read_epochs(path: &Path) -> Result<Vec<EpochRow>, TableError> {
    let f = std::fs::File::open(path).map_err(|e| err(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| err(path, e))?;
    if let Some(tag) = schema_tag_of(b.metadata()) {
        if tag != EPOCHS_SCHEMA {
            return Err(err(
                path,
                format!(
                    "metadata `{}`: expected `{EPOCHS_SCHEMA}`, found `{tag}`",
                    crate::SCHEMA_KEY
                ),
            ));
        }
    }
    let mut rows = Vec::new();
    for batch in b.build().map_err(|e| err(path, e))? {
        let batch = batch.map_err(|e| err(path, e))?;
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| err(path, format!("no column `{name}`")))
        };
        let epoch = col("epoch")?;
        let epoch = epoch
            .as_any()
            .downcast_ref::<Int32Array>()
            .ok_or_else(|| err(path, "column `epoch`: expected int32"))?;
        let mut floats = Vec::new();
        for (name, _) in FLOAT_COLUMNS {
            let c = col(name)?;
            let a = c
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| err(path, format!("column `{name}`: expected float64")))?
                .clone();
            if a.null_count() > 0 {
                return Err(err(path, format!("column `{name}`: null values")));
            }
            floats.push(a);
        }
        for i in 0..batch.num_rows() {
            if epoch.is_null(i) || epoch.value(i) < 1 {
                return Err(err(path, format!("column `epoch`, row {i}: expected ≥ 1")));
            }
            let v = |k: usize| floats[k].value(i);
            rows.push(EpochRow {
                epoch: epoch.value(i) as u32,
                train_loss: v(0),
                train_accuracy: v(1),
                val_loss: v(2),
                val_accuracy: v(3),
                lr: v(4),
                train_seconds: v(5),
                eval_seconds: v(6),
                images_per_second: v(7),
            });
        }
    }
    Ok(rows)
}

/// Writes `epochs.parquet` to `path` atomically: a temporary `<name>.tmp.<pid>` in the same
/// directory, fsynced, then renamed (a crash or a full disk leaves the old file or none).
pub fn write_epochs(path: &Path, rows: &[EpochRow]) -> Result<(), TableError> {
    let bytes = epochs_to_parquet(rows)?;
    crate::atomic_write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(e: u32) -> EpochRow {
        EpochRow {
            epoch: e,
            train_loss: 2.0 / e as f64,
            train_accuracy: 0.1 * e as f64,
            val_loss: 1.5 / e as f64,
            val_accuracy: 0.09 * e as f64,
            lr: 0.05,
            train_seconds: 1.25,
            eval_seconds: 0.5,
            images_per_second: 1000.0,
        }
    }

    #[test]
    fn round_trip_tag_and_types() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("epochs.parquet");
        let rows = vec![row(1), row(2), row(3)];
        write_epochs(&p, &rows).unwrap();
        assert_eq!(read_epochs(&p).unwrap(), rows);
        assert_eq!(
            epochs_to_parquet(&rows).unwrap(),
            epochs_to_parquet(&rows).unwrap()
        );
        let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap()).unwrap();
        assert_eq!(schema_tag_of(b.metadata()).as_deref(), Some(EPOCHS_SCHEMA));
        let s = b.schema();
        let names: Vec<_> = s.fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names[0], "epoch");
        assert_eq!(s.field(0).data_type(), &arrow::datatypes::DataType::Int32);
        assert!(s.fields()[1..]
            .iter()
            .all(|f| f.data_type() == &arrow::datatypes::DataType::Float64));
        assert_eq!(names.len(), 9);
        // No stray temporary file.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn untagged_old_files_are_read_other_tags_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let rows = vec![row(1), row(2)];
        let write = |name: &str, props: Option<parquet::file::properties::WriterProperties>| {
            let mut cols: Vec<(&str, ArrayRef)> =
                vec![("epoch", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef)];
            for (n, g) in FLOAT_COLUMNS {
                cols.push((
                    n,
                    Arc::new(Float64Array::from(rows.iter().map(g).collect::<Vec<_>>())),
                ));
            }
            let batch = RecordBatch::try_from_iter(cols).unwrap();
            let mut buf = Vec::new();
            let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), props).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            let p = tmp.path().join(name);
            std::fs::write(&p, buf).unwrap();
            p
        };
        let old = write("old.parquet", None);
        assert_eq!(read_epochs(&old).unwrap(), rows);
        let other = write("other.parquet", Some(tagged_props(crate::TRIALS_SCHEMA)));
        let e = read_epochs(&other).unwrap_err().to_string();
        assert!(
            e.contains("other.parquet") && e.contains("nago.epochs/1"),
            "{e}"
        );
    }
}
