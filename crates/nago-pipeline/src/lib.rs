//! The local pipeline: the full NAGO search on one machine.
//!
//! Rounds of `nago-propose` → (`nago-generate` → `nago-train`) for each trial, several at
//! once → `nago-update`, until `nago-propose` creates no new round (the study's evaluation
//! budget is spent). Every stage runs as a child process with the same flags a person would
//! type (`--run DIR --index I --round R`), so any step can be rerun by hand.
//!
//! Restarting after an interruption (Ctrl-C, `kill -9`, a reboot) continues where it stopped:
//! a trial with a final `result.json` is never trained again, an interrupted one resumes from
//! its checkpoint (the trainer's job), `update` is idempotent and `propose` never proposes a
//! round twice.

mod driver;
pub mod rerun;
mod status;

pub use driver::{init_study, run_search, SearchOptions};
pub use status::{trial_state, TrialState};
