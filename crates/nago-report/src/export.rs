//! Export of a found model: its weights (safetensors) and arch.json, copied side by side into
//! a directory that the Python module `nago_export` loads into PyTorch without nago.

use crate::data::{find_weights, StudyData};
use anyhow::{bail, Context, Result};
use nago_arch::Arch;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Schema tag of `export.json`.
pub const EXPORT_SCHEMA: &str = "nago.export/1";

/// One tensor of a safetensors file, from its header.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TensorInfo {
    /// `F32`, `F16`, `BF16`, `I64`, …
    pub dtype: String,
    /// The shape.
    pub shape: Vec<u64>,
    /// Byte range in the data section.
    pub data_offsets: [u64; 2],
}

/// A safetensors file in memory: its tensors' headers and the data section.
#[derive(Debug, Clone)]
pub struct SafeTensors {
    /// Tensor headers by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    /// The `__metadata__` map, if any.
    pub metadata: BTreeMap<String, String>,
    /// The data section (after the header).
    pub data: Vec<u8>,
}

impl SafeTensors {
    /// The bytes of one tensor.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        let t = self.tensors.get(name)?;
        Some(&self.data[t.data_offsets[0] as usize..t.data_offsets[1] as usize])
    }

    /// Serialises `tensors` (name → (dtype, shape, bytes)) with `metadata`, in name order,
    /// the header padded with spaces to a multiple of 8 bytes.
    pub fn write(
        tensors: &BTreeMap<String, (String, Vec<u64>, Vec<u8>)>,
        metadata: &BTreeMap<String, String>,
    ) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        if !metadata.is_empty() {
            header.insert(
                "__metadata__".into(),
                serde_json::to_value(metadata).expect("strings"),
            );
        }
        let mut off = 0u64;
        for (name, (dtype, shape, bytes)) in tensors {
            let end = off + bytes.len() as u64;
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, end]}),
            );
            off = end;
        }
        let mut h = serde_json::to_vec(&header).expect("JSON");
        while h.len() & 7 != 0 {
            h.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + h.len() + off as usize);
        out.extend_from_slice(&(h.len() as u64).to_le_bytes());
        out.extend_from_slice(&h);
        for (_, _, bytes) in tensors.values() {
            out.extend_from_slice(bytes);
        }
        out
    }
}

/// Reads and checks a safetensors file: the 8-byte little-endian header length, the JSON
/// header, and that every tensor's byte range lies in the file and matches its dtype and
/// shape.
pub fn read_safetensors(path: &Path) -> Result<SafeTensors> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if bytes.len() < 8 {
        bail!("{}: too short for a safetensors file", path.display());
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    if n > bytes.len() - 8 {
        bail!("{}: header length {n} exceeds the file", path.display());
    }
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).with_context(|| {
            format!(
                "{}: the safetensors header is not a JSON object",
                path.display()
            )
        })?;
    let data = bytes[8 + n..].to_vec();
    let data_len = data.len() as u64;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    for (name, v) in header {
        if name == "__metadata__" {
            metadata = serde_json::from_value(v).unwrap_or_default();
            continue;
        }
        let t: TensorInfo = serde_json::from_value(v)
            .with_context(|| format!("{}: tensor {name}: bad header entry", path.display()))?;
        let width = match t.dtype.as_str() {
            "F64" | "I64" | "U64" => 8,
            "F32" | "I32" | "U32" => 4,
            "F16" | "BF16" | "I16" | "U16" => 2,
            "I8" | "U8" | "BOOL" => 1,
            other => bail!("{}: tensor {name}: unknown dtype {other}", path.display()),
        };
        let numel: u64 = t.shape.iter().product();
        let [a, b] = t.data_offsets;
        if b < a || b > data_len || b - a != numel * width {
            bail!(
                "{}: tensor {name}: byte range {a}..{b} does not hold {numel} {} values within {data_len} data bytes",
                path.display(),
                t.dtype
            );
        }
        tensors.insert(name, t);
    }
    Ok(SafeTensors {
        tensors,
        metadata,
        data,
    })
}

/// The network's tensors from a weights file: the trainer's `checkpoint.safetensors` holds
/// `model/<name>` (weights and BN statistics) and `momentum/<name>` (optimiser state); only
/// the `model/` tensors are kept, the prefix removed. A file without `model/` tensors is
/// taken as it is.
pub fn model_tensors(st: &SafeTensors) -> BTreeMap<String, (String, Vec<u64>, Vec<u8>)> {
    let has_model = st.tensors.keys().any(|k| k.starts_with("model/"));
    st.tensors
        .iter()
        .filter_map(|(k, t)| {
            let name = if has_model {
                k.strip_prefix("model/")?
            } else {
                k.as_str()
            };
            Some((
                name.to_string(),
                (
                    t.dtype.clone(),
                    t.shape.clone(),
                    st.bytes(k).expect("checked").to_vec(),
                ),
            ))
        })
        .collect()
}

/// Whether a tensor name is a BatchNorm statistic (a buffer, not a trainable parameter).
pub fn is_buffer(name: &str) -> bool {
    name.ends_with("running_mean")
        || name.ends_with("running_var")
        || name.ends_with("num_batches_tracked")
}

fn extra_vec(t: &crate::data::Trial, key: &str) -> Option<Vec<f64>> {
    t.result
        .as_ref()?
        .extra
        .get(key)?
        .as_array()?
        .iter()
        .map(|v| v.as_f64())
        .collect()
}

/// What [`export_trial`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportManifest {
    /// [`EXPORT_SCHEMA`].
    pub schema: String,
    /// The study's name.
    pub study: String,
    /// The trial id.
    pub trial: String,
    /// Where the weights came from.
    pub source_weights: String,
    /// Objective values (result.json units).
    pub metrics: BTreeMap<String, f64>,
    /// Tensors in the weights file.
    pub tensors: usize,
    /// Trainable parameters in the weights file (BN statistics excluded).
    pub params_in_weights: u64,
    /// Trainable parameters by arch.json's count.
    pub params_in_arch: u64,
    /// Per-channel mean of the training images (pixel values scaled to [0, 1]) that the
    /// network's input is normalised with, `(x/255 − mean)/std`, when the trainer recorded it
    /// in result.json (`input_mean`).
    pub input_mean: Option<Vec<f64>>,
    /// The matching per-channel standard deviation (`input_std`).
    pub input_std: Option<Vec<f64>>,
}

/// Copies `trial`'s arch.json and weights (a safetensors file) into `out` as `arch.json`,
/// `weights.safetensors` and `export.json`, after checking that the weights file is valid
/// safetensors and that its trainable tensors hold exactly the parameters arch.json counts.
pub fn export_trial(
    run: &Path,
    trial: &str,
    out: &Path,
    weights: Option<&Path>,
) -> Result<ExportManifest> {
    let d = StudyData::load(run)?;
    let t = d
        .trials
        .iter()
        .find(|t| t.id == trial)
        .with_context(|| format!("{}: no trial {trial}", run.join("trials").display()))?;
    let arch_path = t.dir.join("arch.json");
    let arch_text = std::fs::read_to_string(&arch_path)
        .with_context(|| format!("{}: cannot read", arch_path.display()))?;
    let arch = Arch::from_json(&arch_text).with_context(|| format!("{}", arch_path.display()))?;
    let wpath: PathBuf = match weights {
        Some(w) => w.to_path_buf(),
        None => find_weights(&t.dir).with_context(|| {
            format!(
                "{}: no weights (weights.safetensors or checkpoint.safetensors) — has the trial been trained?",
                t.dir.display()
            )
        })?,
    };
    let st = read_safetensors(&wpath).with_context(|| {
        format!(
            "{}: the weights must be a safetensors file",
            wpath.display()
        )
    })?;
    let tensors = model_tensors(&st);
    let params: u64 = tensors
        .iter()
        .filter(|(n, _)| !is_buffer(n))
        .map(|(_, t)| t.1.iter().product::<u64>())
        .sum();
    if params != arch.counts.params {
        bail!(
            "{}: holds {params} trainable values but {} counts {} parameters",
            wpath.display(),
            arch_path.display(),
            arch.counts.params
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let meta: BTreeMap<String, String> = [
        ("format".to_string(), "pt".to_string()),
        ("nago.study".to_string(), d.study.name.clone()),
        ("nago.trial".to_string(), trial.to_string()),
    ]
    .into_iter()
    .collect();
    nago_store::atomic_write(
        &out.join("weights.safetensors"),
        &SafeTensors::write(&tensors, &meta),
    )?;
    nago_store::atomic_write(&out.join("arch.json"), arch_text.as_bytes())?;
    let manifest = ExportManifest {
        schema: EXPORT_SCHEMA.into(),
        study: d.study.name.clone(),
        trial: trial.into(),
        source_weights: wpath.display().to_string(),
        metrics: d
            .objectives
            .iter()
            .filter_map(|o| t.metric(&o.metric).map(|v| (o.metric.clone(), v)))
            .collect(),
        tensors: tensors.len(),
        params_in_weights: params,
        params_in_arch: arch.counts.params,
        input_mean: extra_vec(t, "input_mean"),
        input_std: extra_vec(t, "input_std"),
    };
    let mut json = serde_json::to_string_pretty(&manifest)?;
    json.push('\n');
    nago_store::atomic_write(&out.join("export.json"), json.as_bytes())?;
    Ok(manifest)
}
