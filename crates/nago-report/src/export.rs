//! Export of a found model: its weights (safetensors) and arch.json, copied side by side into
//! a directory that the Python module `nago_export` loads into PyTorch without nago.

use crate::data::{find_weights, StudyData, EXPORTED_WEIGHTS};
use anyhow::{bail, Context, Result};
use nago_arch::Arch;
use nago_store::TrialDir;
use safetensors::tensor::{TensorView, View};
pub use safetensors::Dtype;
use safetensors::SafeTensors;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Schema tag of `export.json`.
pub const EXPORT_SCHEMA: &str = "nago.export/1";

/// One tensor of a safetensors file, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Its element type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its bytes (little-endian, C order).
    pub data: Vec<u8>,
}

impl Tensor {
    /// A tensor, checked: `data` must hold exactly the shape's values of `dtype`.
    pub fn new(dtype: Dtype, shape: Vec<usize>, data: Vec<u8>) -> Result<Tensor> {
        TensorView::new(dtype, shape.clone(), &data)
            .map_err(|e| anyhow::anyhow!("tensor of {dtype:?} {shape:?}: {e}"))?;
        Ok(Tensor { dtype, shape, data })
    }
    /// The number of values.
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

impl View for &Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A safetensors file in memory: its tensors by name and its `__metadata__` map.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeightsFile {
    /// Tensors by name.
    pub tensors: BTreeMap<String, Tensor>,
    /// The `__metadata__` map (empty when the file has none).
    pub metadata: BTreeMap<String, String>,
}

impl WeightsFile {
    /// The bytes of one tensor.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.tensors.get(name).map(|t| t.data.as_slice())
    }

    /// Parses safetensors bytes (the `safetensors` crate checks the header, every tensor's
    /// byte range, dtype and shape).
    pub fn parse(bytes: &[u8]) -> Result<WeightsFile> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        let tensors = st
            .iter()
            .map(|(name, v)| {
                (
                    name.to_string(),
                    Tensor {
                        dtype: v.dtype(),
                        shape: v.shape().to_vec(),
                        data: v.data().to_vec(),
                    },
                )
            })
            .collect();
        let metadata = header
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(WeightsFile { tensors, metadata })
    }

    /// Serialises the tensors and the metadata (the `safetensors` crate's layout: the header
    /// padded with spaces to a multiple of 8 bytes, tensors ordered by dtype alignment, then
    /// by name).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let meta: Option<HashMap<String, String>> = (!self.metadata.is_empty()).then(|| {
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        safetensors::serialize(self.tensors.iter(), meta).map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Reads and checks a safetensors file.
pub fn read_safetensors(path: &Path) -> Result<WeightsFile> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    WeightsFile::parse(&bytes)
        .with_context(|| format!("{}: not a valid safetensors file", path.display()))
}

/// The network's tensors from a weights file: the trainer's `checkpoint.safetensors` holds
/// `model/<name>` (weights and BN statistics), `momentum/<name>` (optimiser state) and may
/// hold `meta/json` (the checkpoint's metadata, uint8); only the `model/` tensors are kept,
/// the prefix removed. A file without `model/` tensors (an exported `weights.safetensors`)
/// is taken as it is, less any `meta/` tensor.
pub fn model_tensors(st: &WeightsFile) -> BTreeMap<String, Tensor> {
    let has_model = st.tensors.keys().any(|k| k.starts_with("model/"));
    st.tensors
        .iter()
        .filter_map(|(k, t)| {
            let name = if has_model {
                k.strip_prefix("model/")?
            } else if k.starts_with("meta/") {
                return None;
            } else {
                k.as_str()
            };
            Some((name.to_string(), t.clone()))
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
    /// `model.onnx`, when exported too: the exporter's description (opset, input and
    /// output names, nodes, the onnxruntime check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onnx: Option<serde_json::Value>,
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
    export(run, trial, out, weights, false)
}

/// [`export_trial`]; with `need_input_stats`, a trial whose result.json lacks the input
/// statistics is refused before anything is written (the ONNX model includes the
/// normalisation).
fn export(
    run: &Path,
    trial: &str,
    out: &Path,
    weights: Option<&Path>,
    need_input_stats: bool,
) -> Result<ExportManifest> {
    let d = StudyData::load(run)?;
    let t = d
        .trials
        .iter()
        .find(|t| t.id == trial)
        .with_context(|| format!("{}: no trial {trial}", run.join("trials").display()))?;
    let (input_mean, input_std) = (extra_vec(t, "input_mean"), extra_vec(t, "input_std"));
    if need_input_stats && (input_mean.is_none() || input_std.is_none()) {
        bail!(
            "{}: no input_mean/input_std (written by an older nago-train, or not trained), so \
             the ONNX model cannot include the input normalisation: retrain the trial, or \
             export the weights alone (--format safetensors)",
            t.dir.path().join("result.json").display()
        );
    }
    let arch_path = t.dir.arch_path();
    let arch_text = std::fs::read_to_string(&arch_path)
        .with_context(|| format!("{}: cannot read", arch_path.display()))?;
    let arch = Arch::from_json(&arch_text).with_context(|| format!("{}", arch_path.display()))?;
    let wpath: PathBuf = match weights {
        Some(w) => w.to_path_buf(),
        None => find_weights(&t.dir).with_context(|| {
            format!(
                "{}: no weights ({EXPORTED_WEIGHTS} or the trainer's checkpoint) — has the trial been trained?",
                t.dir.path().display()
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
        .map(|(_, t)| t.numel())
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
    // Temporary files of an export that was killed (its weights, a model.onnx in progress).
    nago_store::remove_stale_temp_files(out);
    let meta: BTreeMap<String, String> = [
        ("format".to_string(), "pt".to_string()),
        ("nago.study".to_string(), d.study.name.clone()),
        ("nago.trial".to_string(), trial.to_string()),
    ]
    .into_iter()
    .collect();
    let file = WeightsFile {
        tensors,
        metadata: meta,
    };
    let bytes = file.to_bytes()?;
    let tensors = file.tensors;
    nago_store::atomic_write(&out.join(EXPORTED_WEIGHTS), &bytes)?;
    // The export directory names its arch.json as a trial directory does.
    let arch_out = TrialDir::at(out).arch_path();
    nago_store::atomic_write(&arch_out, arch_text.as_bytes())?;
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
        input_mean,
        input_std,
        onnx: None,
    };
    // A model.onnx of an earlier export into this directory is not of these weights.
    let stale = out.join(crate::onnx::ONNX_FILE);
    if stale.exists() {
        std::fs::remove_file(&stale)
            .with_context(|| format!("{}: cannot remove the earlier export's", stale.display()))?;
    }
    write_manifest(out, &manifest)?;
    Ok(manifest)
}

fn write_manifest(out: &Path, manifest: &ExportManifest) -> Result<()> {
    let mut json = serde_json::to_string_pretty(manifest)?;
    json.push('\n');
    nago_store::atomic_write(&out.join("export.json"), json.as_bytes())?;
    Ok(())
}

/// [`export_trial`], then `model.onnx` beside the weights ([`crate::onnx`]), recorded in
/// export.json. The Python environment is checked first, so a missing exporter writes
/// nothing.
pub fn export_trial_onnx(
    run: &Path,
    trial: &str,
    out: &Path,
    weights: Option<&Path>,
    opts: &crate::onnx::OnnxOptions,
) -> Result<ExportManifest> {
    crate::onnx::check_python(opts)?;
    let mut manifest = export(run, trial, out, weights, true)?;
    manifest.onnx = Some(crate::onnx::write_onnx(out, opts)?);
    write_manifest(out, &manifest)?;
    Ok(manifest)
}
