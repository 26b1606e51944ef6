//! Datasets held in memory as tensors: IDX (MNIST-style), CIFAR-10/100 binary, Hugging
//! Face-style Parquet image tables and image folders (decoded once, then cached). Channels, image size and class count come from the data.

mod cifar;
mod folder;
mod idx;
mod parquet_images;

pub use cifar::read_cifar;
pub use folder::{read_folder, FolderOptions, IMAGE_EXTENSIONS};
pub use idx::{read_idx, read_idx_dir, IdxArray};
pub use parquet_images::{read_parquet_dir, read_parquet_file};

use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// What can go wrong reading a dataset: always names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The dataset's files are not where they should be.
    #[error("{path}: {message}")]
    Missing {
        /// The file or directory looked for.
        path: PathBuf,
        /// What was expected there.
        message: String,
    },
    /// A file's content is not what its format requires.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl DataError {
    pub(crate) fn format(path: &Path, message: impl Into<String>) -> Self {
        DataError::Format {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Images and labels of one split, in memory: `images` is uint8 `[N, C, H, W]`, `labels`
/// int64 `[N]`.
#[derive(Debug)]
pub struct Split {
    /// uint8 `[N, C, H, W]`.
    pub images: Tensor,
    /// int64 `[N]`.
    pub labels: Tensor,
}

impl Split {
    /// Builds a split from raw bytes in N·C·H·W order and labels.
    pub fn from_raw(pixels: &[u8], labels: &[i64], c: usize, h: usize, w: usize) -> Self {
        let n = labels.len();
        assert_eq!(pixels.len(), n * c * h * w);
        Split {
            images: Tensor::from_slice(pixels).view([n as i64, c as i64, h as i64, w as i64]),
            labels: Tensor::from_slice(labels),
        }
    }
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }
    /// Whether it holds no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The images and labels at `idx` (int64 indices).
    pub fn select(&self, idx: &Tensor) -> Split {
        Split {
            images: self.images.index_select(0, idx),
            labels: self.labels.index_select(0, idx),
        }
    }
}

/// A dataset: a training set and a test set with the same image shape.
#[derive(Debug)]
pub struct Dataset {
    /// A short name (`fashion-mnist`, `cifar10`, ...).
    pub name: String,
    /// The training set (the validation split is held out of it later).
    pub train: Split,
    /// The test set: only reported, never used to choose anything.
    pub test: Split,
    /// Classes (1 + the largest label, or the format's).
    pub classes: u32,
}

impl Dataset {
    /// (channels, height, width).
    pub fn image_shape(&self) -> (u32, u32, u32) {
        let s = self.train.images.size();
        (s[1] as u32, s[2] as u32, s[3] as u32)
    }

    /// Checks that both splits have the same image shape and labels in range.
    pub fn check(&self, path: &Path) -> Result<(), DataError> {
        let a = self.train.images.size();
        let b = self.test.images.size();
        if a[1..] != b[1..] {
            return Err(DataError::format(
                path,
                format!(
                    "training images are {:?} but test images {:?}",
                    &a[1..],
                    &b[1..]
                ),
            ));
        }
        for (name, s) in [("training", &self.train), ("test", &self.test)] {
            if s.is_empty() {
                return Err(DataError::format(path, format!("the {name} set is empty")));
            }
            let max = s.labels.max().int64_value(&[]);
            let min = s.labels.min().int64_value(&[]);
            if min < 0 || max >= self.classes as i64 {
                return Err(DataError::format(
                    path,
                    format!(
                        "{name} labels range over {min}..={max}, expected 0..{}",
                        self.classes
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Loads a dataset by name from `path`: `fashion-mnist`/`mnist`/`idx` (a directory of IDX
    /// files, gzipped or not), `cifar10`, `cifar100` (the binary versions), `parquet` (a
    /// directory with `train*.parquet` and `test*.parquet` files, searched recursively).
    pub fn load(name: &str, path: &Path) -> Result<Dataset, DataError> {
        Self::load_with(name, path, &FolderOptions::default())
    }

    /// [`Dataset::load`], also reading `folder` (an image folder, see [`read_folder`]) with
    /// `folder` options.
    pub fn load_with(
        name: &str,
        path: &Path,
        folder: &FolderOptions,
    ) -> Result<Dataset, DataError> {
        if !path.exists() {
            return Err(DataError::Missing {
                path: path.to_path_buf(),
                message: format!(
                    "dataset `{name}` not found here{}",
                    if name == "fashion-mnist" {
                        " (run `make data/fashion-mnist`)"
                    } else {
                        ""
                    }
                ),
            });
        }
        let ds = match name {
            "fashion-mnist" | "mnist" | "idx" => read_idx_dir(path, name)?,
            "cifar10" => read_cifar(path, false)?,
            "cifar100" => read_cifar(path, true)?,
            "parquet" => read_parquet_dir(path)?,
            "folder" => read_folder(path, folder)?,
            other => {
                return Err(DataError::Missing {
                    path: path.to_path_buf(),
                    message: format!(
                        "unknown dataset kind `{other}` (expected fashion-mnist, mnist, idx, cifar10, cifar100, parquet or folder)"
                    ),
                })
            }
        };
        ds.check(path)?;
        Ok(ds)
    }
}

/// Per-channel mean and standard deviation of uint8 images in [0, 1] units.
pub fn channel_stats(images: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let x = images.to_kind(Kind::Float) / 255.0;
    let mean = x.mean_dim(&[0i64, 2, 3][..], false, Kind::Float);
    let std = x.std_dim(&[0i64, 2, 3][..], true, false);
    let m: Vec<f64> = Vec::<f64>::try_from(mean.to_kind(Kind::Double)).unwrap_or_default();
    let s: Vec<f64> = Vec::<f64>::try_from(std.to_kind(Kind::Double)).unwrap_or_default();
    (m, s.into_iter().map(|v| v.max(1e-3)).collect())
}
