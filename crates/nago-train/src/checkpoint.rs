//! Checkpoints: the network's variables (weights and BN running statistics), the SGD momentum
//! buffers, the epochs trained so far and the settings they were trained with, so that a
//! later call continues exactly.
//!
//! **One file, one rename.** `checkpoint.safetensors` holds the tensors `model/<name>`,
//! `momentum/<name>` and `meta/json` (a uint8 tensor: the UTF-8 JSON of [`CheckpointMeta`]).
//! It is written under `checkpoint.safetensors.tmp.<pid>`, fsynced and renamed, so a crash at
//! any moment leaves either the previous checkpoint or the new one, never weights of one
//! epoch with the metadata of another. Readers of the weights (`nago-report export`, the
//! Python loader) take the `model/` tensors and ignore the rest.
//!
//! Checkpoints of earlier trainers (`nago.checkpoint/1`: the tensors without `meta/json`, the
//! metadata in `checkpoint.json` beside them) are still read; a new checkpoint replaces them
//! and removes the old `checkpoint.json`.

use crate::train::EpochRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Schema tag of the metadata embedded in `checkpoint.safetensors`.
pub const CHECKPOINT_SCHEMA: &str = "nago.checkpoint/2";
/// Schema tag of the legacy `checkpoint.json` (read only).
pub const LEGACY_CHECKPOINT_SCHEMA: &str = "nago.checkpoint/1";
/// Name of the tensor holding the metadata JSON.
pub const META_TENSOR: &str = "meta/json";

/// The settings a checkpoint was trained with: everything besides the data, the network and
/// the seeds that changes the numbers (recorded on the first run, reused when continuing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// libtorch's intra-op thread count (CPU results depend on it).
    pub threads: i32,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Peak learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Images per step (as configured; capped at the training set size when training).
    pub batch_size: usize,
    /// Label smoothing ε.
    pub label_smoothing: f64,
    /// Random-crop padding in pixels.
    pub crop_padding: i64,
    /// Horizontal flips.
    pub flip: bool,
    /// Cutout size in pixels.
    pub cutout: i64,
    /// Training subset (None: all).
    pub train_subset: Option<usize>,
    /// Validation images.
    pub validation: usize,
    /// Seed of the validation split.
    pub split_seed: u64,
    /// bf16 autocast (CUDA).
    pub bf16: bool,
    /// Channels-last (CUDA).
    pub channels_last: bool,
}

/// The checkpoint's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// [`CHECKPOINT_SCHEMA`] (or [`LEGACY_CHECKPOINT_SCHEMA`] for an old `checkpoint.json`).
    pub schema: String,
    /// Epochs completed.
    pub epochs_done: u32,
    /// Architecture seed and parameter count (to refuse a checkpoint of another network).
    pub arch_seed: u64,
    /// Trainable parameters of the network.
    pub params: u64,
    /// Training seed.
    pub seed: u64,
    /// The cosine schedule's horizon in epochs.
    pub schedule_epochs: f64,
    /// Per-epoch records so far.
    pub epochs: Vec<EpochRecord>,
    /// The settings trained with (absent in legacy checkpoints).
    #[serde(default)]
    pub settings: Option<Settings>,
}

/// What a checkpoint holds.
#[derive(Debug)]
pub struct Checkpoint {
    /// The metadata.
    pub meta: CheckpointMeta,
    /// Network variables by name.
    pub model: BTreeMap<String, Tensor>,
    /// Momentum buffers by variable name.
    pub momentum: BTreeMap<String, Tensor>,
}

/// Errors reading or writing a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Reading failed or the file is not a valid checkpoint.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// Writing failed (disk full, I/O error): the previous checkpoint is untouched.
    #[error("{path}: writing the checkpoint failed: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
}

fn err(path: &Path, message: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// `checkpoint.safetensors` in `dir`.
pub fn tensors_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.safetensors")
}
/// The legacy `checkpoint.json` in `dir` (read only for old checkpoints, removed on save).
pub fn legacy_meta_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

/// Writes a checkpoint into `dir` as one file with one rename (see the module docs).
pub fn save(
    dir: &Path,
    meta: &CheckpointMeta,
    model: &BTreeMap<String, Tensor>,
    momentum: &BTreeMap<String, Tensor>,
) -> Result<(), CheckpointError> {
    let tp = tensors_path(dir);
    let tmp = dir.join(format!("checkpoint.safetensors.tmp.{}", std::process::id()));
    let werr = |m: String| CheckpointError::Write {
        path: tp.clone(),
        message: m,
    };
    let json = serde_json::to_vec(meta).map_err(|e| werr(e.to_string()))?;
    let mut named: Vec<(String, Tensor)> = Vec::new();
    named.push((
        META_TENSOR.into(),
        Tensor::from_slice(&json).to_kind(Kind::Uint8),
    ));
    for (k, v) in model {
        named.push((format!("model/{k}"), v.to_device(Device::Cpu)));
    }
    for (k, v) in momentum {
        named.push((format!("momentum/{k}"), v.to_device(Device::Cpu)));
    }
    let r = (|| -> Result<(), String> {
        Tensor::write_safetensors(&named, &tmp).map_err(|e| e.to_string())?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &tp).map_err(|e| e.to_string())?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(m) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(m));
    }
    // An old-format metadata file would only mislead a reader now.
    let _ = std::fs::remove_file(legacy_meta_path(dir));
    Ok(())
}

/// Whether `dir` holds a checkpoint file.
pub fn exists(dir: &Path) -> bool {
    tensors_path(dir).is_file()
}

/// The metadata of the checkpoint in `dir`, read from the safetensors header and the
/// `meta/json` bytes alone (no tensors loaded); a legacy checkpoint's from `checkpoint.json`.
pub fn load_meta(dir: &Path) -> Result<CheckpointMeta, CheckpointError> {
    let tp = tensors_path(dir);
    let bytes = std::fs::read(&tp).map_err(|e| err(&tp, e))?;
    match embedded_meta(&bytes).map_err(|m| err(&tp, m))? {
        Some(json) => parse_meta(&tp, json, CHECKPOINT_SCHEMA),
        None => legacy_meta(dir),
    }
}

fn parse_meta(path: &Path, json: &[u8], schema: &str) -> Result<CheckpointMeta, CheckpointError> {
    let meta: CheckpointMeta = serde_json::from_slice(json)
        .map_err(|e| err(path, format!("not a checkpoint's metadata: {e}")))?;
    if meta.schema != schema {
        return Err(err(
            path,
            format!("schema `{}`, expected `{schema}`", meta.schema),
        ));
    }
    Ok(meta)
}

fn legacy_meta(dir: &Path) -> Result<CheckpointMeta, CheckpointError> {
    let mp = legacy_meta_path(dir);
    let text = std::fs::read(&mp).map_err(|e| {
        err(
            &mp,
            format!("checkpoint.safetensors has no `{META_TENSOR}` and there is no legacy metadata: {e}"),
        )
    })?;
    parse_meta(&mp, &text, LEGACY_CHECKPOINT_SCHEMA)
}

/// The bytes of the `meta/json` tensor of a safetensors file, if it has one.
fn embedded_meta(bytes: &[u8]) -> Result<Option<&[u8]>, String> {
    let bad = || "not a safetensors file (truncated header)".to_string();
    let n = u64::from_le_bytes(bytes.get(..8).ok_or_else(bad)?.try_into().unwrap()) as usize;
    let header = bytes
        .get(8..8usize.checked_add(n).ok_or_else(bad)?)
        .ok_or_else(bad)?;
    let h: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("not a safetensors header: {e}"))?;
    let Some(t) = h.get(META_TENSOR) else {
        return Ok(None);
    };
    let off = t
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .and_then(|o| Some((o[0].as_u64()? as usize, o[1].as_u64()? as usize)))
        .ok_or_else(|| format!("`{META_TENSOR}`: no data_offsets"))?;
    let body = &bytes[8 + n..];
    body.get(off.0..off.1)
        .map(Some)
        .ok_or_else(|| format!("`{META_TENSOR}`: data beyond the end of the file (truncated)"))
}

/// Reads the checkpoint in `dir`: the metadata from the same file as the tensors.
pub fn load(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let tp = tensors_path(dir);
    let named = Tensor::read_safetensors(&tp).map_err(|e| err(&tp, e))?;
    let mut model = BTreeMap::new();
    let mut momentum = BTreeMap::new();
    let mut meta = None;
    for (k, v) in named {
        if k == META_TENSOR {
            let json: Vec<u8> = Vec::<u8>::try_from(&v.to_kind(Kind::Uint8).flatten(0, -1))
                .map_err(|e| err(&tp, e))?;
            meta = Some(parse_meta(&tp, &json, CHECKPOINT_SCHEMA)?);
        } else if let Some(n) = k.strip_prefix("model/") {
            model.insert(n.to_string(), v);
        } else if let Some(n) = k.strip_prefix("momentum/") {
            momentum.insert(n.to_string(), v);
        }
    }
    let meta = match meta {
        Some(m) => m,
        None => legacy_meta(dir)?,
    };
    Ok(Checkpoint {
        meta,
        model,
        momentum,
    })
}
