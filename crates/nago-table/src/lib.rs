//! The study's tables: `trials.parquet` (one row per evaluation, trial × budget) and
//! `pareto.parquet` (the current non-dominated set); and a trial's `epochs.parquet` (typed
//! rows, [`epochs`]).
//!
//! The tables are held as simple typed columns ([`Table`]) so `nago-update` can read the old
//! file back, merge new and changed rows by key and rewrite it without ever dropping a row.
//! Files carry their schema tag in the Parquet key-value metadata (`nago.schema`) and are
//! written with Snappy compression, readable by pandas, polars, pyarrow and DuckDB. Writing
//! is deterministic: same table, same bytes (no timestamps).

use arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod epochs;
pub use epochs::{read_epochs, write_epochs, EpochRow, EPOCHS_SCHEMA};

/// Schema tag of `trials.parquet`.
pub const TRIALS_SCHEMA: &str = "nago.trials/1";
/// Schema tag of `pareto.parquet`.
pub const PARETO_SCHEMA: &str = "nago.pareto/1";
/// Schema tag of `final.parquet` (the final round, one row per generator).
pub const FINAL_SCHEMA: &str = "nago.final/1";
/// The key-value metadata key holding the schema tag.
pub const SCHEMA_KEY: &str = "nago.schema";

/// Errors reading or writing a table, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// I/O or Parquet/Arrow failure.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn err(path: &Path, e: impl std::fmt::Display) -> TableError {
    TableError::File {
        path: path.into(),
        message: e.to_string(),
    }
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// UTF-8 text.
    Str,
    /// 64-bit signed integer.
    I64,
    /// 64-bit float.
    F64,
    /// Boolean.
    Bool,
}

/// One value (every column is nullable).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Str(Option<String>),
    /// Integer.
    I64(Option<i64>),
    /// Float.
    F64(Option<f64>),
    /// Boolean.
    Bool(Option<bool>),
}

impl Cell {
    /// The cell's type.
    pub fn col_type(&self) -> ColType {
        match self {
            Cell::Str(_) => ColType::Str,
            Cell::I64(_) => ColType::I64,
            Cell::F64(_) => ColType::F64,
            Cell::Bool(_) => ColType::Bool,
        }
    }
    /// A null of the given type.
    pub fn null(t: ColType) -> Cell {
        match t {
            ColType::Str => Cell::Str(None),
            ColType::I64 => Cell::I64(None),
            ColType::F64 => Cell::F64(None),
            ColType::Bool => Cell::Bool(None),
        }
    }
    /// The text, if a non-null string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Str(Some(s)) => Some(s),
            _ => None,
        }
    }
    /// The value as a float, if numeric and not null.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::F64(v) => *v,
            Cell::I64(v) => v.map(|x| x as f64),
            _ => None,
        }
    }
}

/// A table: named, typed columns and rows of cells in column order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column names and types.
    pub columns: Vec<(String, ColType)>,
    /// Rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// The index of a column.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(n, _)| n == name)
    }
}

/// Writer properties of every table: Snappy, `schema_tag` under [`SCHEMA_KEY`].
fn tagged_props(schema_tag: &str) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            SCHEMA_KEY.to_string(),
            schema_tag.to_string(),
        )]))
        .build()
}

/// The schema tag ([`SCHEMA_KEY`]) of a Parquet file's metadata, if any.
fn schema_tag_of(m: &parquet::file::metadata::ParquetMetaData) -> Option<String> {
    m.file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == SCHEMA_KEY))
        .and_then(|k| k.value.clone())
}

/// Writes `bytes` to `path` atomically: `<name>.tmp.<pid>` in the same directory, fsynced,
/// renamed over `path`, the directory fsynced; on failure the temporary file is removed.
fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), TableError> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| err(path, "not a file path"))?;
    let tmp = dir.join(format!(
        "{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok::<(), std::io::Error>(())
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(path, e)
    })
}

/// Serialises a table to Parquet bytes with `schema_tag` in the key-value metadata.
pub fn to_parquet(table: &Table, schema_tag: &str) -> Result<Vec<u8>, TableError> {
    let p = Path::new("<memory>");
    let fields: Vec<Field> = table
        .columns
        .iter()
        .map(|(n, t)| {
            let dt = match t {
                ColType::Str => DataType::Utf8,
                ColType::I64 => DataType::Int64,
                ColType::F64 => DataType::Float64,
                ColType::Bool => DataType::Boolean,
            };
            Field::new(n, dt, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(table.columns.len());
    for (c, (name, t)) in table.columns.iter().enumerate() {
        let cells = table.rows.iter().map(|r| &r[c]);
        let bad = || err(p, format!("column `{name}`: a cell of the wrong type"));
        let a: ArrayRef = match t {
            ColType::Str => Arc::new(
                cells
                    .map(|v| match v {
                        Cell::Str(s) => Ok(s.clone()),
                        _ => Err(bad()),
                    })
                    .collect::<Result<StringArray, _>>()?,
            ),
            ColType::I64 => Arc::new(
                cells
                    .map(|v| match v {
                        Cell::I64(s) => Ok(*s),
                        _ => Err(bad()),
                    })
                    .collect::<Result<Int64Array, _>>()?,
            ),
            ColType::F64 => Arc::new(
                cells
                    .map(|v| match v {
                        Cell::F64(s) => Ok(*s),
                        _ => Err(bad()),
                    })
                    .collect::<Result<Float64Array, _>>()?,
            ),
            ColType::Bool => Arc::new(
                cells
                    .map(|v| match v {
                        Cell::Bool(s) => Ok(*s),
                        _ => Err(bad()),
                    })
                    .collect::<Result<BooleanArray, _>>()?,
            ),
        };
        arrays.push(a);
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| err(p, e))?;
    let props = tagged_props(schema_tag);
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(|e| err(p, e))?;
    w.write(&batch).map_err(|e| err(p, e))?;
    w.close().map_err(|e| err(p, e))?;
    Ok(buf)
}

/// Reads a table written by [`to_parquet`], checking its schema tag.
pub fn read_parquet(path: &Path, schema_tag: &str) -> Result<Table, TableError> {
    let f = std::fs::File::open(path).map_err(|e| err(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| err(path, e))?;
    let tag = schema_tag_of(b.metadata());
    if tag.as_deref() != Some(schema_tag) {
        return Err(err(
            path,
            format!("metadata `{SCHEMA_KEY}`: expected `{schema_tag}`, found {tag:?}"),
        ));
    }
    let schema = b.schema().clone();
    let mut columns = Vec::new();
    for f in schema.fields() {
        let t = match f.data_type() {
            DataType::Utf8 => ColType::Str,
            DataType::Int64 => ColType::I64,
            DataType::Float64 => ColType::F64,
            DataType::Boolean => ColType::Bool,
            other => {
                return Err(err(
                    path,
                    format!("column `{}`: unsupported type {other}", f.name()),
                ))
            }
        };
        columns.push((f.name().clone(), t));
    }
    let mut rows = Vec::new();
    for batch in b.build().map_err(|e| err(path, e))? {
        let batch = batch.map_err(|e| err(path, e))?;
        for r in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(columns.len());
            for (c, (_, t)) in columns.iter().enumerate() {
                let a = batch.column(c);
                let null = a.is_null(r);
                let a = a.as_any();
                row.push(match t {
                    ColType::Str => Cell::Str((!null).then(|| {
                        a.downcast_ref::<StringArray>()
                            .unwrap()
                            .value(r)
                            .to_string()
                    })),
                    ColType::I64 => {
                        Cell::I64((!null).then(|| a.downcast_ref::<Int64Array>().unwrap().value(r)))
                    }
                    ColType::F64 => Cell::F64(
                        (!null).then(|| a.downcast_ref::<Float64Array>().unwrap().value(r)),
                    ),
                    ColType::Bool => Cell::Bool(
                        (!null).then(|| a.downcast_ref::<BooleanArray>().unwrap().value(r)),
                    ),
                });
            }
            rows.push(row);
        }
    }
    Ok(Table { columns, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            columns: vec![
                ("trial".into(), ColType::Str),
                ("round".into(), ColType::I64),
                ("val_error".into(), ColType::F64),
                ("feasible".into(), ColType::Bool),
            ],
            rows: vec![
                vec![
                    Cell::Str(Some("00000".into())),
                    Cell::I64(Some(0)),
                    Cell::F64(Some(0.25)),
                    Cell::Bool(Some(true)),
                ],
                vec![
                    Cell::Str(Some("00001".into())),
                    Cell::I64(None),
                    Cell::F64(None),
                    Cell::Bool(Some(false)),
                ],
            ],
        }
    }

    #[test]
    fn round_trip_deterministic_and_tagged() {
        let d = tempfile::tempdir().unwrap();
        let t = sample();
        let bytes = to_parquet(&t, TRIALS_SCHEMA).unwrap();
        assert_eq!(bytes, to_parquet(&t, TRIALS_SCHEMA).unwrap());
        let p = d.path().join("t.parquet");
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(read_parquet(&p, TRIALS_SCHEMA).unwrap(), t);
        let e = read_parquet(&p, PARETO_SCHEMA).unwrap_err().to_string();
        assert!(e.contains("t.parquet") && e.contains("nago.schema"), "{e}");
        std::fs::write(&p, b"not parquet").unwrap();
        assert!(read_parquet(&p, TRIALS_SCHEMA)
            .unwrap_err()
            .to_string()
            .contains("t.parquet"));
        let mut bad = sample();
        bad.rows[0][1] = Cell::F64(Some(1.0));
        assert!(to_parquet(&bad, TRIALS_SCHEMA).is_err());
    }
}
