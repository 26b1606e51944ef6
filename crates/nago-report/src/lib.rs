//! The study report, the best-trials table and model export.
//!
//! * [`html::write_report`] reads a study directory (study.json and every trial's
//!   proposal.json, result.json, arch.json, arch.dot and epochs.parquet) and writes one
//!   self-contained HTML page, `report/index.html`, whose figures are inline SVG: the Pareto
//!   front, hypervolume against evaluations and wall time, parallel coordinates of the
//!   generator hyperparameters, learning curves and pictures of the front's architectures.
//! * [`best`] is the Pareto set as a table with the paths of each trial's arch.json and weights.
//! * [`export`] copies a trial's weights (safetensors) and arch.json into a directory that the
//!   Python module `nago_export` (in `python/`) loads into PyTorch without nago;
//!   [`onnx`] adds `model.onnx` through PyTorch's exporter.

pub mod archpic;
pub mod best;
pub mod data;
pub mod epochs;
pub mod export;
pub mod figures;
pub mod html;
pub mod onnx;
pub mod svg;

pub use data::StudyData;
pub use html::{write_report, ReportOptions, ReportSummary};
