//! The local pipeline: the full NAGO search on one machine.
//!
//! By default [`workers`]: N asynchronous workers, each proposing one trial for itself when it
//! is free, with no round barrier. In rounds mode (`--rounds`): passes of (`nago-generate` → `nago-train`) over every trial that needs work, several at
//! once → `nago-update` → `nago-propose`, until `nago-propose` says the study is done (exit
//! 6: its evaluation budget is proposed and every trial has a final result). Every stage runs as a child process with the same flags a person would
//! type (`--run DIR --index I --round R`), so any step can be rerun by hand.
//!
//! Restarting after an interruption (Ctrl-C, `kill -9`, a reboot) continues where it stopped:
//! a trial with a final `result.json` is never trained again, an interrupted one resumes from
//! its checkpoint (the trainer's job), `update` is idempotent and `propose` never proposes a
//! round twice.

mod driver;
pub mod rerun;
pub mod workers;

pub use driver::{init_study, run_search, Device, SearchOptions, SearchSummary};
