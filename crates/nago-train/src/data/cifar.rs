//! CIFAR-10 / CIFAR-100 binary versions: records of label byte(s) then 3072 bytes
//! (R, G, B planes of 32×32).

use super::{DataError, Dataset, Split};
use std::path::{Path, PathBuf};

const IMG: usize = 3 * 32 * 32;

fn read_records(files: &[PathBuf], fine: bool) -> Result<Split, DataError> {
    let label_bytes = if fine { 2 } else { 1 };
    let rec = label_bytes + IMG;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| DataError::io(f, e))?;
        if bytes.is_empty() || bytes.len() % rec != 0 {
            return Err(DataError::format(
                f,
                format!(
                    "{} bytes is not a whole number of {rec}-byte records ({} label byte(s) + 3072 pixels)",
                    bytes.len(),
                    label_bytes
                ),
            ));
        }
        for r in bytes.chunks_exact(rec) {
            labels.push(r[label_bytes - 1] as i64);
            pixels.extend_from_slice(&r[label_bytes..]);
        }
    }
    Ok(Split::from_raw(&pixels, &labels, 3, 32, 32))
}

fn locate(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>, DataError> {
    // The archives extract into a subdirectory; accept either level.
    let roots = [
        dir.to_path_buf(),
        dir.join("cifar-10-batches-bin"),
        dir.join("cifar-100-binary"),
    ];
    for root in &roots {
        let files: Vec<PathBuf> = names.iter().map(|n| root.join(n)).collect();
        if files.iter().all(|f| f.is_file()) {
            return Ok(files);
        }
    }
    Err(DataError::Missing {
        path: dir.to_path_buf(),
        message: format!("expected the CIFAR binary files {names:?} here"),
    })
}

/// Reads CIFAR-10 (`data_batch_{1..5}.bin`, `test_batch.bin`) or CIFAR-100 (`train.bin`,
/// `test.bin`, fine labels) from `dir`.
pub fn read_cifar(dir: &Path, hundred: bool) -> Result<Dataset, DataError> {
    let (train_names, test_names, classes): (Vec<&str>, Vec<&str>, u32) = if hundred {
        (vec!["train.bin"], vec!["test.bin"], 100)
    } else {
        (
            vec![
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            vec!["test_batch.bin"],
            10,
        )
    };
    let train = read_records(&locate(dir, &train_names)?, hundred)?;
    let test = read_records(&locate(dir, &test_names)?, hundred)?;
    Ok(Dataset {
        name: if hundred { "cifar100" } else { "cifar10" }.into(),
        train,
        test,
        classes,
    })
}
