//! Sampling concrete architectures from a NAGO generator.
//!
//! [`sample`] turns a [`nago_space::Generator`] and a seed into a complete
//! [`nago_arch::Arch`]: the top-level graph of cells, each cell's own graph of op-graphs, each
//! op-graph's own graph of operations (every graph drawn independently from its level's
//! model), oriented from lower to higher node index as in RandWire, split into three stages,
//! widened to the generator's parameter budget. Same generator, seed and input shape, same
//! architecture, on every platform ([`rng`] explains how).

pub mod baselines;
pub mod graphs;
pub mod rng;
mod sample;
mod summary;

pub use baselines::{baseline, Baseline};
pub use sample::{sample, sample_with, stages, GenerateError, SampleOptions};
pub use summary::{summarize, Summary, SummaryRow};
