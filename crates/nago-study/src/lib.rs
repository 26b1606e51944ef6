//! The study: every rule about a study directory that is not a file format.
//!
//! `nago-store` owns the files (typed paths, atomic writes, the trial lock, the one
//! [`TrialState`](nago_store::TrialState) rule); this crate owns what a study *means*:
//!
//! - [`trials`][]: every trial as a typed [`TrialRecord`] (proposal, result, state), read once;
//! - [`objectives`][]: model units (minimised, log where asked), feasibility and the
//!   hypervolume reference point — the one place that converts metrics to objectives;
//! - [`table`][]: the trial table's columns and rows (`trials.parquet`, `pareto.parquet`);
//! - [`surrogate`][]: `surrogate.json`;
//! - [`update`][]: what `nago-update` does;
//! - [`propose`][]: what `nago-propose` does, composed of separate strategies (promotion,
//!   model, initial design, final round) behind one interface;
//! - [`screen`][]: the constraints known before training, checked when a trial is proposed;
//! - [`final_table`][]: the final round's results per generator (`final.parquet`);
//! - [`exit`][]: the exit codes every stage binary documents.
//!
//! The binaries parse flags, call one function here and print its summary.

pub mod exit;
pub mod final_table;
pub mod objectives;
pub mod propose;
pub mod screen;
pub mod surrogate;
pub mod table;
pub mod trials;
pub mod update;

pub use objectives::{Evaluation, Objectives};
pub use propose::{left_to_do, propose, ProposeArgs, ProposeOutcome};
pub use surrogate::{SurrogateFile, WarmInput};
pub use trials::{TrialRecord, Trials};
pub use update::{update, UpdateSummary};
