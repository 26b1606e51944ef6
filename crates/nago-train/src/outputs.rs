//! `epochs.parquet`: one row per epoch. Columns (all non-null):
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

use crate::train::EpochRecord;
use arrow_array::{ArrayRef, Float64Array, Int32Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;

/// Writes `epochs.parquet` atomically (a temporary name, then rename).
pub fn write_epochs(path: &Path, rows: &[EpochRecord]) -> Result<(), String> {
    let f = |g: fn(&EpochRecord) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from(rows.iter().map(g).collect::<Vec<_>>()))
    };
    let batch = RecordBatch::try_from_iter(vec![
        (
            "epoch",
            Arc::new(Int32Array::from(
                rows.iter().map(|r| r.epoch as i32).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("train_loss", f(|r| r.train_loss)),
        ("train_accuracy", f(|r| r.train_accuracy)),
        ("val_loss", f(|r| r.val_loss)),
        ("val_accuracy", f(|r| r.val_accuracy)),
        ("lr", f(|r| r.lr)),
        ("train_seconds", f(|r| r.train_seconds)),
        ("eval_seconds", f(|r| r.eval_seconds)),
        ("images_per_second", f(|r| r.images_per_second)),
    ])
    .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = Vec::new();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    w.write(&batch)
        .and_then(|_| w.close().map(|_| ()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    nago_store::atomic_write(path, &buf).map_err(|e| e.to_string())
}
