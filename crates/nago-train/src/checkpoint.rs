//! Checkpoints: the network's variables (weights and BN running statistics), the SGD momentum
//! buffers and the epochs trained so far, so that a later call continues exactly.
//!
//! Two files: `checkpoint.safetensors` (tensors `model/<name>` and `momentum/<name>`) and
//! `checkpoint.json` (epochs done, the per-epoch records, which architecture). Both are
//! written under temporary names and renamed, the JSON last, so a crash never leaves a
//! checkpoint that a later call would trust half-written.

use crate::train::EpochRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// Schema tag of `checkpoint.json`.
pub const CHECKPOINT_SCHEMA: &str = "nago.checkpoint/1";

/// `checkpoint.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Must be [`CHECKPOINT_SCHEMA`].
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
    /// Reading or writing failed.
    #[error("{path}: {message}")]
    Io {
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
/// `checkpoint.json` in `dir`.
pub fn meta_path(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

/// Writes a checkpoint into `dir`.
pub fn save(
    dir: &Path,
    meta: &CheckpointMeta,
    model: &BTreeMap<String, Tensor>,
    momentum: &BTreeMap<String, Tensor>,
) -> Result<(), CheckpointError> {
    let tp = tensors_path(dir);
    let tmp = dir.join(format!("checkpoint.safetensors.tmp.{}", std::process::id()));
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (k, v) in model {
        named.push((format!("model/{k}"), v.to_device(Device::Cpu)));
    }
    for (k, v) in momentum {
        named.push((format!("momentum/{k}"), v.to_device(Device::Cpu)));
    }
    Tensor::write_safetensors(&named, &tmp).map_err(|e| err(&tmp, e))?;
    std::fs::rename(&tmp, &tp).map_err(|e| err(&tp, e))?;
    nago_store::atomic_write_json(&meta_path(dir), meta).map_err(|e| err(&meta_path(dir), e))?;
    Ok(())
}

/// Whether `dir` holds a checkpoint.
pub fn exists(dir: &Path) -> bool {
    meta_path(dir).is_file() && tensors_path(dir).is_file()
}

/// Reads the checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let mp = meta_path(dir);
    let text = std::fs::read_to_string(&mp).map_err(|e| err(&mp, e))?;
    let meta: CheckpointMeta =
        serde_json::from_str(&text).map_err(|e| err(&mp, format!("not a checkpoint: {e}")))?;
    if meta.schema != CHECKPOINT_SCHEMA {
        return Err(err(
            &mp,
            format!("schema `{}`, expected `{CHECKPOINT_SCHEMA}`", meta.schema),
        ));
    }
    let tp = tensors_path(dir);
    let named = Tensor::read_safetensors(&tp).map_err(|e| err(&tp, e))?;
    let mut model = BTreeMap::new();
    let mut momentum = BTreeMap::new();
    for (k, v) in named {
        if let Some(n) = k.strip_prefix("model/") {
            model.insert(n.to_string(), v);
        } else if let Some(n) = k.strip_prefix("momentum/") {
            momentum.insert(n.to_string(), v);
        }
    }
    Ok(Checkpoint {
        meta,
        model,
        momentum,
    })
}
