//! Hugging Face-style Parquet image tables: a column `image` (a struct with `bytes`, PNG or
//! JPEG, and `path`; or plain binary) and an integer column `label`.

use super::{DataError, Dataset, Split};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::{Path, PathBuf};

const LABEL_COLUMNS: [&str; 4] = ["label", "labels", "fine_label", "y"];
const IMAGE_COLUMNS: [&str; 3] = ["image", "img", "pixels"];

fn bytes_at(col: &ArrayRef, i: usize) -> Option<&[u8]> {
    match col.data_type() {
        DataType::Binary => {
            let a = col.as_binary::<i32>();
            (!a.is_null(i)).then(|| a.value(i))
        }
        DataType::LargeBinary => {
            let a = col.as_binary::<i64>();
            (!a.is_null(i)).then(|| a.value(i))
        }
        DataType::BinaryView => {
            let a = col.as_binary_view();
            (!a.is_null(i)).then(|| a.value(i))
        }
        _ => None,
    }
}

fn label_at(col: &ArrayRef, i: usize) -> Option<i64> {
    if col.is_null(i) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Int8 => col.as_primitive::<Int8Type>().value(i) as i64,
        DataType::Int16 => col.as_primitive::<Int16Type>().value(i) as i64,
        DataType::Int32 => col.as_primitive::<Int32Type>().value(i) as i64,
        DataType::Int64 => col.as_primitive::<Int64Type>().value(i),
        DataType::UInt8 => col.as_primitive::<UInt8Type>().value(i) as i64,
        DataType::UInt16 => col.as_primitive::<UInt16Type>().value(i) as i64,
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(i) as i64,
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(i) as i64,
        _ => return None,
    })
}

/// Pixels in N·C·H·W order, labels, and the (c, h, w) shape of one table.
type Table = (Vec<u8>, Vec<i64>, (usize, usize, usize));

/// Reads one Parquet image table.
fn read_table(path: &Path) -> Result<Table, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(1024).build())
        .map_err(|e| DataError::format(path, format!("not a readable Parquet file: {e}")))?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut shape: Option<(usize, usize, usize)> = None;
    let mut row = 0usize;
    for batch in reader {
        let batch =
            batch.map_err(|e| DataError::format(path, format!("reading a record batch: {e}")))?;
        let schema = batch.schema();
        let img_col = IMAGE_COLUMNS
            .iter()
            .find_map(|n| schema.index_of(n).ok())
            .ok_or_else(|| {
                DataError::format(
                    path,
                    format!("no image column (expected one of {IMAGE_COLUMNS:?})"),
                )
            })?;
        let lab_col = LABEL_COLUMNS
            .iter()
            .find_map(|n| schema.index_of(n).ok())
            .ok_or_else(|| {
                DataError::format(
                    path,
                    format!("no label column (expected one of {LABEL_COLUMNS:?})"),
                )
            })?;
        let img = batch.column(img_col).clone();
        let bytes_col: ArrayRef = match img.data_type() {
            DataType::Struct(_) => img
                .as_struct()
                .column_by_name("bytes")
                .cloned()
                .ok_or_else(|| DataError::format(path, "image struct has no `bytes` field"))?,
            _ => img,
        };
        let lab = batch.column(lab_col);
        for i in 0..batch.num_rows() {
            let b = bytes_at(&bytes_col, i).ok_or_else(|| {
                DataError::format(
                    path,
                    format!("row {}: image bytes missing or not binary", row + i),
                )
            })?;
            let l = label_at(lab, i).ok_or_else(|| {
                DataError::format(
                    path,
                    format!("row {}: label missing or not an integer", row + i),
                )
            })?;
            let im = image::load_from_memory(b).map_err(|e| {
                DataError::format(
                    path,
                    format!("row {}: cannot decode the image: {e}", row + i),
                )
            })?;
            let (w, h) = (im.width() as usize, im.height() as usize);
            let c = if im.color().has_color() { 3 } else { 1 };
            let s = *shape.get_or_insert((c, h, w));
            if s != (c, h, w) {
                return Err(DataError::format(
                    path,
                    format!(
                        "row {}: image is {c}×{h}×{w} but earlier ones are {}×{}×{} (all images must share one size)",
                        row + i, s.0, s.1, s.2
                    ),
                ));
            }
            if c == 1 {
                pixels.extend_from_slice(im.to_luma8().as_raw());
            } else {
                let rgb = im.to_rgb8();
                let raw = rgb.as_raw();
                for ch in 0..3 {
                    pixels.extend(raw.iter().skip(ch).step_by(3));
                }
            }
            labels.push(l);
        }
        row += batch.num_rows();
    }
    let shape = shape.ok_or_else(|| DataError::format(path, "the table has no rows"))?;
    Ok((pixels, labels, shape))
}

/// Reads several tables of one split into one [`Split`].
fn read_split(files: &[PathBuf]) -> Result<(Split, i64), DataError> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut shape = None;
    for f in files {
        let (p, l, s) = read_table(f)?;
        if *shape.get_or_insert(s) != s {
            return Err(DataError::format(
                f,
                "image size differs from the split's other files",
            ));
        }
        pixels.extend(p);
        labels.extend(l);
    }
    let (c, h, w) = shape.expect("at least one file");
    let max = labels.iter().copied().max().unwrap_or(0);
    Ok((Split::from_raw(&pixels, &labels, c, h, w), max))
}

/// Reads a single table file as both splits' source is not allowed; this reads one file as a
/// split (for tests and tools).
pub fn read_parquet_file(path: &Path) -> Result<Split, DataError> {
    Ok(read_split(&[path.to_path_buf()])?.0)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads a Hugging Face dataset directory: every `train*.parquet` file (recursively) is the
/// training set, every `test*.parquet` the test set.
pub fn read_parquet_dir(dir: &Path) -> Result<Dataset, DataError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    let pick = |prefix: &str| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .cloned()
            .collect()
    };
    let (tr, te) = (pick("train"), pick("test"));
    if tr.is_empty() || te.is_empty() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
            message: "expected train*.parquet and test*.parquet files under this directory".into(),
        });
    }
    let (train, m1) = read_split(&tr)?;
    let (test, m2) = read_split(&te)?;
    Ok(Dataset {
        name: "parquet".into(),
        train,
        test,
        classes: (m1.max(m2) + 1) as u32,
    })
}
