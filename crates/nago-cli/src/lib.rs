//! What the stage binaries do, as library functions: each binary parses its flags and calls
//! one of these, so the same code path serves a person at the shell, an array task, the
//! pipeline driver and the tests.

pub mod bo;
pub mod generate;

// Sampling and table building make many small allocations; mimalloc is markedly faster at
// them than glibc's allocator (measured by `make bench-generate`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

/// Ends a stage binary: prints an error chain as `<binary>: error: <what>: <why>` (one line
/// per cause, no backtrace) and maps it to exit code 1, or returns success.
pub fn finish(binary: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
