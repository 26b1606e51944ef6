//! What the stage binaries do, as library functions: each binary parses its flags and calls
//! one of these, so the same code path serves a person at the shell, an array task, the
//! pipeline driver and the tests.

pub mod generate;

// Sampling and table building make many small allocations; mimalloc is markedly faster at
// them than glibc's allocator (measured by `make bench-generate`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

/// Ends a stage binary: prints an error chain as `<binary>: error: <what>: <why>` (one line
/// per cause, no backtrace) and maps it to its documented exit code
/// ([`nago_study::exit::for_error`]), or returns success.
pub fn finish(binary: &str, result: anyhow::Result<()>) -> ExitCode {
    finish_with(binary, result.map(|()| nago_study::exit::OK))
}

/// Like [`finish`], with the exit code of a successful run chosen by the caller.
pub fn finish_with(binary: &str, result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            print_error(binary, &e);
            ExitCode::from(nago_study::exit::for_error(&e))
        }
    }
}

/// Prints an error chain as `<binary>: error: <what>` and `  caused by: <why>` lines.
pub fn print_error(binary: &str, e: &anyhow::Error) {
    eprintln!("{binary}: error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
