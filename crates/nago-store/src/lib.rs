//! The study directory and the files the stages exchange.
//!
//! ```text
//! runs/<name>/
//!   study.json                      the study definition
//!   rounds/<round>/proposals.json   what nago-propose decided for that round
//!   trials/<trial>/proposal.json    generator, budget, seed, parent
//!   trials/<trial>/arch.json, arch.dot               nago-generate
//!   trials/<trial>/result.json, epochs.parquet, ...  nago-train
//!   trials.parquet, surrogate.json, pareto.parquet   nago-update
//! ```
//!
//! Every file is written by [`atomic_write`] (a temporary name, fsync, rename), so a crash
//! leaves either the old file or the new one, never half of one. Study-level files have one
//! writer at a time, enforced by [`StudyLock`].

mod error;
mod fsio;
mod layout;
mod proposal;
mod result;
mod seed;
mod trial;

pub use error::StoreError;
pub use fsio::{
    atomic_write, atomic_write_json, file_digest, read_json, read_text, remove_stale_temp_files,
    sha256_hex, StudyLock,
};
pub use layout::StudyDir;
pub use proposal::{
    Origin, Proposal, RoundProposals, Seen, SeenResult, PROPOSAL_SCHEMA, ROUND_SCHEMA,
};
pub use result::{
    result_digest, TrialResult, TrialStatus, MAX_ATTEMPTS, RESULT_SCHEMA, WALL_CLOCK_FIELDS,
};
pub use seed::derive_seed;
pub use trial::{TrialDir, TrialState};
