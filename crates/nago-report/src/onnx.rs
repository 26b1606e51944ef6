//! ONNX export of a found model, through PyTorch's exporter.
//!
//! Why Python: the network's semantics outside the trainer already live in one place,
//! `python/nago_export` (tested against the trainer's logits to 1e-4), and
//! `torch.onnx.export(dynamo=True)` is the exporter the PyTorch team maintains for every
//! opset. Writing the graph from Rust would be a third implementation of every operation and
//! merge to keep in step. The module's two files are embedded in this binary, so the export
//! needs only a Python with `torch`, `onnx` and `onnxscript` (and `onnxruntime` for the check
//! that the ONNX logits equal PyTorch's), not a nago checkout.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `python/nago_export/__init__.py`: the network in PyTorch.
const PY_INIT: &str = include_str!("../../../python/nago_export/__init__.py");
/// `python/nago_export/to_onnx.py`: the export and its checks.
const PY_TO_ONNX: &str = include_str!("../../../python/nago_export/to_onnx.py");

/// The file name of the ONNX model in an export directory.
pub const ONNX_FILE: &str = "model.onnx";

/// How to run the export.
#[derive(Debug, Clone)]
pub struct OnnxOptions {
    /// The Python interpreter (with torch, onnx, onnxscript).
    pub python: OsString,
    /// ONNX opset, ≥ 17.
    pub opset: u32,
    /// Check the model with onnxruntime against PyTorch (when onnxruntime is installed).
    pub verify: bool,
}

/// Fails, before anything is written, when `python` cannot run the exporter; the message
/// says what to install.
pub fn check_python(opts: &OnnxOptions) -> Result<()> {
    let py = Path::new(&opts.python).display().to_string();
    let out = Command::new(&opts.python)
        .args(["-c", "import torch, onnx, onnxscript"])
        .output()
        .with_context(|| {
            format!(
                "ONNX export runs PyTorch's exporter, but `{py}` cannot be started: name a Python \
                 that has torch, onnx and onnxscript with --python or NAGO_PYTHON"
            )
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("").trim();
        bail!(
            "ONNX export runs PyTorch's exporter, but `{py}` cannot import it ({last}): install \
             it with `{py} -m pip install torch onnx onnxscript onnxruntime`, or name another \
             Python with --python or NAGO_PYTHON"
        );
    }
    Ok(())
}

/// Writes `dir`/model.onnx from the export directory `dir` (arch.json, weights.safetensors,
/// export.json) and returns the exporter's description of it (opset, nodes, the onnxruntime
/// check). The file appears whole or not at all (written under a temporary name, renamed).
pub fn write_onnx(dir: &Path, opts: &OnnxOptions) -> Result<serde_json::Value> {
    if opts.opset < 17 {
        bail!("--opset {}: expected 17 or more", opts.opset);
    }
    let module_root = ModuleDir::create()?;
    let mut cmd = Command::new(&opts.python);
    cmd.args(["-m", "nago_export.to_onnx"])
        .arg(dir)
        .args(["--opset", &opts.opset.to_string()]);
    if !opts.verify {
        cmd.arg("--no-verify");
    }
    let mut path = OsString::from(module_root.0.as_os_str());
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    let out = cmd
        .env("PYTHONPATH", path)
        .output()
        .with_context(|| format!("running {}", Path::new(&opts.python).display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(12).collect();
        bail!(
            "the ONNX export of {} failed (no {ONNX_FILE} written):\n{}",
            dir.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(line)
        .with_context(|| format!("the exporter's report is not JSON: {line:?}"))
}

/// A temporary directory holding the embedded `nago_export` package, removed on drop.
struct ModuleDir(PathBuf);

impl ModuleDir {
    fn create() -> Result<ModuleDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "nago-onnx-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let pkg = root.join("nago_export");
        std::fs::create_dir_all(&pkg)
            .with_context(|| format!("{}: cannot create", pkg.display()))?;
        let dir = ModuleDir(root);
        for (name, text) in [("__init__.py", PY_INIT), ("to_onnx.py", PY_TO_ONNX)] {
            std::fs::write(pkg.join(name), text)
                .with_context(|| format!("{}: cannot write", pkg.join(name).display()))?;
        }
        Ok(dir)
    }
}

impl Drop for ModuleDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
