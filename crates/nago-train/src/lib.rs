//! `nago-train`: trains any generated NAGO architecture with libtorch.
//!
//! * [`net`]: the network built from `arch.json`, layer for layer as `nago_arch` specifies
//!   (its trainable parameter count equals `arch.counts.params`, checked at build time);
//! * [`data`]: datasets in memory as uint8 tensors (IDX, CIFAR-10/100 binary, Hugging
//!   Face-style Parquet image tables);
//! * [`train`]: SGD with momentum written as tensor arithmetic, a cosine schedule over the
//!   study's horizon, augmentation on batched tensors, exact resume from [`checkpoint`]s;
//! * [`job`]: one trial end to end (inputs, idempotency, promotions, recorded settings,
//!   `result.json`, `epochs.parquet` through `nago_table`, failures as results, exit codes);
//! * [`latency`]: the trained network's CPU inference latency (batch 1 and 32, one thread).
//!
//! This is the only crate of the workspace that links libtorch.

pub mod checkpoint;
pub mod data;
pub mod job;
pub mod latency;
pub mod net;
pub mod rng;
pub mod train;

pub use tch;

/// Version of libtorch this crate was built against (from the wheel's `torch/version.py`).
pub const TORCH_VERSION: &str = env!("NAGO_TORCH_VERSION");
/// Version of the `tch` crate.
pub const TCH_VERSION: &str = "0.24";
