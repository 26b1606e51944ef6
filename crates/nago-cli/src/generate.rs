//! `nago-generate`: proposal (or generator) + seed → `arch.json` and `arch.dot`.

use anyhow::{anyhow, bail, Context, Result};
use nago_arch::{Arch, ArchError, InputShape};
use nago_generator::{sample, summarize};
use nago_space::{Generator, Study};
use nago_store::{atomic_write, read_text, Proposal, StudyDir};
use std::path::{Path, PathBuf};

/// A generator and the seed to sample it with, read from a file.
#[derive(Debug, Clone)]
pub struct Source {
    /// The generator.
    pub generator: Generator,
    /// The seed the file gives (proposals have one; generator documents do not).
    pub seed: Option<u64>,
}

/// Reads a `proposal.json`, a generator document (`nago.generator/1`) or a bare generator
/// object.
pub fn read_source(path: &Path) -> Result<Source> {
    let text = read_text(path)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let is_proposal = value
        .get("schema")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.starts_with("nago.proposal/"));
    if is_proposal || value.get("trial").is_some() {
        let p = Proposal::from_json(&text).with_context(|| format!("{}", path.display()))?;
        Ok(Source {
            generator: p.generator,
            seed: Some(p.seed),
        })
    } else {
        let g = Generator::from_json(&text).with_context(|| format!("{}", path.display()))?;
        Ok(Source {
            generator: g,
            seed: None,
        })
    }
}

/// Parses `CxHxW` (e.g. `1x28x28`).
pub fn parse_shape(s: &str) -> Result<(u32, u32, u32)> {
    let parts: Vec<&str> = s.split('x').collect();
    if parts.len() != 3 {
        bail!("--shape {s}: expected CxHxW, e.g. 1x28x28");
    }
    let n: Vec<u32> = parts
        .iter()
        .map(|p| p.parse::<u32>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow!("--shape {s}: expected three positive integers CxHxW"))?;
    Ok((n[0], n[1], n[2]))
}

/// The input shape of a study's dataset (`path`: the study file, for the error).
pub fn study_shape(study: &Study, path: &Path) -> Result<InputShape> {
    nago_study::screen::input_shape(study).with_context(|| format!("{}", path.display()))
}

/// What happened to an output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// arch.json and arch.dot were written.
    Written,
    /// A valid arch.json for the same generator and seed was already there.
    Exists,
}

/// Samples the architecture and writes `<out>/arch.json` and `<out>/arch.dot` atomically.
///
/// A valid `arch.json` for the same generator, seed and input is left alone (the stage is
/// idempotent); one for anything else is an error unless `force`. A corrupt one is replaced.
pub fn generate_into(
    g: &Generator,
    seed: u64,
    input: InputShape,
    out: &Path,
    force: bool,
) -> Result<(Arch, Outcome)> {
    let arch = sample(g, seed, input)
        .map_err(|e| anyhow::Error::new(e).context("cannot sample this generator"))?;
    write_arch(arch, out, force)
}

/// Writes `arch` as `<out>/arch.json` and `<out>/arch.dot` atomically, with
/// [`generate_into`]'s rules for an existing file.
pub fn write_arch(arch: Arch, out: &Path, force: bool) -> Result<(Arch, Outcome)> {
    let json_path = out.join("arch.json");
    let dot_path = out.join("arch.dot");
    if !force {
        if let Ok(text) = std::fs::read_to_string(&json_path) {
            match Arch::from_json(&text) {
                Ok(existing) if existing == arch => {
                    if !dot_path.exists() {
                        atomic_write(&dot_path, arch.to_dot().as_bytes())?;
                    }
                    return Ok((arch, Outcome::Exists));
                }
                Ok(_) => bail!(
                    "{}: already holds a different architecture (another generator, seed, baseline or input shape); pass --force to replace it",
                    json_path.display()
                ),
                // Sampled by an older nago: replaced only with --force (it may have been trained).
                Err(e @ ArchError::Outdated { .. }) => bail!("{}: {e}", json_path.display()),
                Err(_) => {} // corrupt or half-written: regenerate
            }
        }
    }
    // The picture first: arch.json is the artifact later stages trust, so it lands last.
    atomic_write(&dot_path, arch.to_dot().as_bytes())?;
    atomic_write(&json_path, arch.to_json().as_bytes())?;
    Ok((arch, Outcome::Written))
}

/// Where the study + index form finds everything.
pub struct TrialTask {
    /// The trial's directory.
    pub dir: PathBuf,
    /// Its proposal.
    pub proposal: Proposal,
    /// The study's input shape.
    pub input: InputShape,
}

/// Resolves `--run DIR --index N [--round R]` to a trial.
pub fn trial_task(run: &Path, index: usize, round: Option<u32>) -> Result<TrialTask> {
    let sd = StudyDir::new(run);
    let study = sd.study()?;
    let input = study_shape(&study, &sd.study_path())?;
    let trial = sd.trial_for_index(round, index)?;
    let proposal = sd.proposal(&trial)?;
    Ok(TrialTask {
        dir: sd.trial_dir(&trial),
        proposal,
        input,
    })
}

/// A one-line description of an architecture.
pub fn describe(a: &Arch) -> String {
    format!(
        "{} params, {:.1} M MACs, {} cells, {} op-graphs, {} operations, width x{}",
        a.counts.params,
        a.counts.macs as f64 / 1e6,
        a.cells.len(),
        a.n_opgraphs(),
        a.n_ops(),
        a.width_multiplier
    )
}

/// The `--samples K --summary` table.
pub fn summary_table(g: &Generator, seed: u64, k: usize, input: InputShape) -> Result<String> {
    let s =
        summarize(g, seed, k, input).map_err(|e| anyhow!("cannot sample this generator: {e}"))?;
    let mut out = format!(
        "{} architectures (seeds {}..={}) for input {}x{}x{}, {} classes\n",
        s.samples,
        seed,
        seed.wrapping_add(k as u64 - 1),
        input.channels,
        input.height,
        input.width,
        input.classes
    );
    out.push_str(&format!(
        "{:<22} {:>14} {:>14} {:>14}\n",
        "", "min", "median", "max"
    ));
    for (name, r) in &s.rows {
        out.push_str(&format!(
            "{:<22} {:>14} {:>14} {:>14}\n",
            name,
            fmt_num(r.min),
            fmt_num(r.median),
            fmt_num(r.max)
        ));
    }
    Ok(out)
}

fn fmt_num(x: f64) -> String {
    if (x.fract() == 0.0 || x.abs() >= 1000.0) && x.abs() < 1e15 {
        let s = format!("{}", x.round() as i64);
        // thousands separators for readability
        let mut out = String::new();
        for (i, c) in s.chars().rev().enumerate() {
            if i > 0 && i % 3 == 0 && c != '-' {
                out.push(',');
            }
            out.push(c);
        }
        out.chars().rev().collect()
    } else {
        format!("{x:.2}")
    }
}
