//! Exit codes of the stage binaries, so that scripts (the Slurm pipeline, a person's own
//! loop) act on the status alone and parse no message text.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (for `nago-propose`: a round was proposed) |
//! | 1 | bad input or a failure that needs a person (the message names the file and field) |
//! | 2 | `nago-train` only: the training run failed and its result.json says how |
//! | 3 | a retryable I/O failure (disk full, a file system error): nothing half-written, run it again |
//! | 4 | another `nago-propose`/`nago-update` holds the study lock: wait and run it again |
//! | 5 | `nago-propose`: nothing to propose now, trials still need work (pending, running or to retry) |
//! | 6 | `nago-propose`: the study is done (its budget is proposed and every trial has a final result) |
//!
//! clap's own usage errors exit with 2 before anything runs.

/// Success.
pub const OK: u8 = 0;
/// Bad input or an error a person must fix.
pub const ERROR: u8 = 1;
/// nago-train: the run failed (result.json has the status).
pub const TRAINING_FAILED: u8 = 2;
/// A retryable I/O failure.
pub const IO_RETRY: u8 = 3;
/// The study lock is held by another process.
pub const LOCKED: u8 = 4;
/// nago-propose: nothing to propose until trials finish.
pub const PENDING: u8 = 5;
/// nago-propose: the study is done.
pub const DONE: u8 = 6;

/// The exit code for an error: [`LOCKED`] for the study lock, [`IO_RETRY`] for an I/O error
/// of the file system (not a missing file), else [`ERROR`].
pub fn for_error(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(se) = cause.downcast_ref::<nago_store::StoreError>() {
            match se {
                nago_store::StoreError::Locked { .. } => return LOCKED,
                nago_store::StoreError::Io { source, .. } if is_retryable_io(source) => {
                    return IO_RETRY
                }
                _ => {}
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if is_retryable_io(io) {
                return IO_RETRY;
            }
        }
    }
    ERROR
}

/// Whether an I/O error is a condition of the machine (full disk, quota, I/O error,
/// interrupted) rather than of the input (missing file, permission, bad data).
pub fn is_retryable_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        StorageFull | QuotaExceeded | Interrupted | WouldBlock | TimedOut | ResourceBusy
    ) || matches!(e.raw_os_error(), Some(5) | Some(28) | Some(122))
}
