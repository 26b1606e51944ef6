//! `nago-ask REQUEST.json RESPONSE.json`: nago's optimiser for any black box.
//!
//! Reads a `mo-bench/1` request (problem, seed, q, budget, ask_index, optional state_dir,
//! history), writes `{"X": [[x_1 … x_d], …]}` (q rows in the unit cube) atomically, exits 0.
//! A bad request exits 2 with a message naming the field. The optimiser is nago-bo's (the
//! same engine, defaults, seeds and initial-design rule as nago-propose; see
//! `nago_bo::ask`). With `state_dir`, ask k keeps its surrogate as
//! `state_dir/surrogate-<k>.json` and ask k+1 warm-starts its fit from it: identical
//! requests with the same state give identical bytes.

use anyhow::{Context, Result};
use clap::Parser;
use nago_bo::ask::{ask, parse_request};
use nago_bo::Surrogate;
use std::path::{Path, PathBuf};

/// Proposes the next batch of points for a black-box multi-objective problem.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The request (JSON, protocol "mo-bench/1").
    request: PathBuf,
    /// Where to write the response {"X": [...]}.
    response: PathBuf,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

fn state_file(dir: &Path, ask_index: u64) -> PathBuf {
    dir.join(format!("surrogate-{ask_index}.json"))
}

fn run(args: &Args) -> Result<i32> {
    let text = std::fs::read_to_string(&args.request)
        .with_context(|| format!("reading {}", args.request.display()))?;
    let req = match parse_request(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nago-ask: bad request {}: {e}", args.request.display());
            return Ok(2);
        }
    };
    let state = req.state_dir.as_ref().map(PathBuf::from);
    if let Some(d) = &state {
        if d.exists() && !d.is_dir() {
            eprintln!(
                "nago-ask: bad request: state_dir: {} is not a directory",
                d.display()
            );
            return Ok(2);
        }
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    // The previous ask's surrogate (a cache: unreadable or unrelated ones are ignored).
    let warm: Option<Surrogate> = match (&state, req.ask_index.checked_sub(1)) {
        (Some(d), Some(prev)) => std::fs::read_to_string(state_file(d, prev))
            .ok()
            .and_then(|t| serde_json::from_str::<Surrogate>(&t).ok()),
        _ => None,
    };
    let answer = match ask(&req, warm.as_ref()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nago-ask: bad request {}: {e}", args.request.display());
            return Ok(2);
        }
    };
    if let (Some(d), Some(s)) = (&state, &answer.surrogate) {
        let bytes = serde_json::to_vec(s).context("serialising the surrogate")?;
        write_atomic(&state_file(d, req.ask_index), &bytes)?;
    }
    write_atomic(&args.response, answer.response.to_json().as_bytes())?;
    Ok(0)
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("nago-ask: {e:#}");
            std::process::exit(1);
        }
    }
}
