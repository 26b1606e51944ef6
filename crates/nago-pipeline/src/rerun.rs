//! Re-executing a stored trial from its inputs and comparing with what it produced.

use anyhow::{bail, Context, Result};
use nago_store::{
    atomic_write_json, read_json, RoundProposals, StudyDir, TrialResult, RESULT_SCHEMA,
    ROUND_SCHEMA,
};
use std::fs;
use std::path::{Path, PathBuf};

/// `result.json` fields that may differ between a trial and its rerun: wall-clock timings
/// and the paths of the scratch study. Everything else (status, every metric and loss, the
/// settings, the data sizes, the seeds, the error text) must be equal.
pub const UNCOMPARED_FIELDS: [&str; nago_store::WALL_CLOCK_FIELDS.len()] =
    nago_store::WALL_CLOCK_FIELDS;

/// One difference between a stored trial and its rerun.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// What differs (`arch.json`, `status`, a metric name).
    pub what: String,
    /// The stored value.
    pub stored: String,
    /// The rerun's value.
    pub rerun: String,
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("{}", to.display()))?;
    for e in fs::read_dir(from).with_context(|| format!("{}", from.display()))? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            fs::copy(e.path(), &target).with_context(|| format!("{}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Builds a scratch study under `scratch` holding only `trial` (and, for a promotion, its
/// parent's stored directory, whose checkpoint the trainer continues from) as index 0 of its
/// round. Returns the scratch study.
pub fn prepare_scratch(sd: &StudyDir, trial: &str, scratch: &Path) -> Result<StudyDir> {
    let proposal = sd.proposal(trial)?;
    if scratch.exists() {
        bail!(
            "{}: already exists; give an empty directory",
            scratch.display()
        );
    }
    let out = StudyDir::new(scratch);
    fs::create_dir_all(out.trial_dir(trial))?;
    fs::copy(sd.study_path(), out.study_path())
        .with_context(|| format!("{}", sd.study_path().display()))?;
    let src = sd.trial_dir(trial).join("proposal.json");
    fs::copy(&src, out.trial_dir(trial).join("proposal.json"))
        .with_context(|| format!("{}", src.display()))?;
    if let Some(parent) = &proposal.parent {
        copy_dir(&sd.trial_dir(parent), &out.trial_dir(parent))?;
    }
    let round = RoundProposals {
        schema: ROUND_SCHEMA.into(),
        round: proposal.round,
        trials: vec![trial.to_string()],
        seen: None,
    };
    atomic_write_json(&out.proposals_path(proposal.round), &round)?;
    Ok(out)
}

fn show(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}…", &s[..s.floor_char_boundary(40)])
    } else {
        s
    }
}

/// Compares a stored trial with its rerun: arch.json byte for byte, every row of
/// epochs.parquet but its timings, and every field of result.json but [`UNCOMPARED_FIELDS`]
/// exactly (status, metrics, losses, settings).
pub fn compare(stored: &Path, rerun: &Path) -> Result<Vec<Difference>> {
    compare_ignoring(stored, rerun, &[])
}

/// [`compare`], also ignoring the result.json fields in `ignore` (e.g. `start_epoch`, which
/// says where a resumed run began).
pub fn compare_ignoring(stored: &Path, rerun: &Path, ignore: &[&str]) -> Result<Vec<Difference>> {
    let mut diffs = Vec::new();
    let a = fs::read(stored.join("arch.json"))
        .with_context(|| format!("{}", stored.join("arch.json").display()))?;
    let b = fs::read(rerun.join("arch.json"))
        .with_context(|| format!("{}", rerun.join("arch.json").display()))?;
    if a != b {
        diffs.push(Difference {
            what: "arch.json".into(),
            stored: format!("{} bytes", a.len()),
            rerun: format!("{} bytes", b.len()),
        });
    }
    let as_map = |dir: &Path| -> Result<serde_json::Map<String, serde_json::Value>> {
        let r: TrialResult = read_json(&dir.join("result.json"), Some(RESULT_SCHEMA))?;
        match serde_json::to_value(r)? {
            serde_json::Value::Object(m) => Ok(m),
            _ => bail!("{}: not an object", dir.join("result.json").display()),
        }
    };
    diffs.extend(compare_epochs(stored, rerun)?);
    let (ra, rb) = (as_map(stored)?, as_map(rerun)?);
    let keys: std::collections::BTreeSet<&String> = ra.keys().chain(rb.keys()).collect();
    let absent = serde_json::Value::String("absent".into());
    for k in keys {
        if UNCOMPARED_FIELDS.contains(&k.as_str()) || ignore.contains(&k.as_str()) {
            continue;
        }
        let (x, y) = (ra.get(k).unwrap_or(&absent), rb.get(k).unwrap_or(&absent));
        if x != y {
            diffs.push(Difference {
                what: format!("result.json {k}"),
                stored: show(x),
                rerun: show(y),
            });
        }
    }
    Ok(diffs)
}

/// Compares two trials' `epochs.parquet` row by row: every column but the wall-clock ones
/// (`train_seconds`, `eval_seconds`, `images_per_second`) exactly. A trial that stopped before
/// its first epoch has no file; both must agree on that too.
pub fn compare_epochs(stored: &Path, rerun: &Path) -> Result<Vec<Difference>> {
    let (pa, pb) = (stored.join("epochs.parquet"), rerun.join("epochs.parquet"));
    let read = |p: &Path| -> Result<Option<Vec<nago_table::EpochRow>>> {
        if !p.exists() {
            return Ok(None);
        }
        Ok(Some(nago_table::read_epochs(p)?))
    };
    let (a, b) = (read(&pa)?, read(&pb)?);
    let key = |r: &nago_table::EpochRow| {
        [
            r.train_loss,
            r.train_accuracy,
            r.val_loss,
            r.val_accuracy,
            r.lr,
        ]
        .map(f64::to_bits)
    };
    let mut diffs = Vec::new();
    match (a, b) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            if a.len() != b.len() {
                diffs.push(Difference {
                    what: "epochs.parquet rows".into(),
                    stored: a.len().to_string(),
                    rerun: b.len().to_string(),
                });
            }
            for (x, y) in a.iter().zip(&b) {
                if x.epoch != y.epoch || key(x) != key(y) {
                    diffs.push(Difference {
                        what: format!("epochs.parquet epoch {}", x.epoch),
                        stored: format!("loss {} val {}", x.train_loss, x.val_accuracy),
                        rerun: format!("loss {} val {}", y.train_loss, y.val_accuracy),
                    });
                }
            }
        }
        (a, b) => diffs.push(Difference {
            what: "epochs.parquet".into(),
            stored: if a.is_some() { "present" } else { "missing" }.into(),
            rerun: if b.is_some() { "present" } else { "missing" }.into(),
        }),
    }
    Ok(diffs)
}

/// Where a rerun goes by default: `<run>/reruns/<trial>-<n>` with the first free n.
pub fn default_scratch(sd: &StudyDir, trial: &str) -> PathBuf {
    let base = sd.root().join("reruns");
    (0..)
        .map(|n| base.join(format!("{trial}-{n}")))
        .find(|p| !p.exists())
        .expect("a free name")
}

/// A new scratch study at `scratch` (which must not exist) with `sd`'s study.json and, when
/// `surrogate`, its surrogate.json (for the recorded reference point).
fn new_scratch(sd: &StudyDir, scratch: &Path, surrogate: bool) -> Result<StudyDir> {
    if scratch.exists() {
        bail!(
            "{}: already exists; give an empty directory",
            scratch.display()
        );
    }
    let out = StudyDir::new(scratch);
    fs::create_dir_all(scratch)?;
    fs::copy(sd.study_path(), out.study_path())
        .with_context(|| format!("{}", sd.study_path().display()))?;
    if surrogate && sd.surrogate_path().is_file() {
        fs::copy(sd.surrogate_path(), out.surrogate_path())?;
    }
    Ok(out)
}

/// Builds a scratch study holding the state before round `round` was proposed: study.json,
/// the recorded reference point (surrogate.json, whose model `nago-update` refits), and
/// every earlier round with its trials' proposal.json and result.json. With `round` = None,
/// every round.
pub fn prepare_round_scratch(
    sd: &StudyDir,
    round: Option<u32>,
    scratch: &Path,
) -> Result<StudyDir> {
    let earlier = sd
        .rounds()?
        .into_iter()
        .filter(|r| round.is_none_or(|n| *r < n))
        .map(|r| Ok((r, sd.proposals(r)?)))
        .collect::<Result<Vec<(u32, RoundProposals)>>>()?;
    let ids = earlier
        .iter()
        .flat_map(|(_, p)| p.trials.iter().map(String::as_str));
    // No reference point before the first result with values (see `ProposalScratch::fit`).
    let out = new_scratch(sd, scratch, had_values(sd, ids)?)?;
    for (r, props) in earlier {
        fs::create_dir_all(out.round_dir(r))?;
        fs::copy(sd.proposals_path(r), out.proposals_path(r))?;
        for t in &props.trials {
            fs::create_dir_all(out.trial_dir(t))?;
            for f in ["proposal.json", "result.json"] {
                let src = sd.trial_dir(t).join(f);
                if src.is_file() {
                    fs::copy(&src, out.trial_dir(t).join(f))
                        .with_context(|| format!("{}", src.display()))?;
                }
            }
        }
    }
    Ok(out)
}

/// Compares files byte for byte; returns the relative paths that differ or are missing.
pub fn compare_files(stored: &Path, rerun: &Path, files: &[PathBuf]) -> Vec<Difference> {
    let mut diffs = Vec::new();
    for f in files {
        let (a, b) = (fs::read(stored.join(f)), fs::read(rerun.join(f)));
        match (a, b) {
            (Ok(a), Ok(b)) if a == b => {}
            (a, b) => diffs.push(Difference {
                what: f.display().to_string(),
                stored: a.map_or("missing".into(), |x| format!("{} bytes", x.len())),
                rerun: b.map_or("missing".into(), |x| format!("{} bytes", x.len())),
            }),
        }
    }
    diffs
}

/// Whether any of `trials` has a search result with objective values: whether the study had
/// a reference point (derived from such values, then recorded) when a surrogate fitted on
/// their results was written. The same rule as the update's ([`nago_study::update::search_values`]).
fn had_values<'a>(sd: &StudyDir, trials: impl IntoIterator<Item = &'a str>) -> Result<bool> {
    let study = sd.study()?;
    let obj = nago_study::Objectives::new(&study);
    let all = nago_study::Trials::load(sd)?;
    let ids: std::collections::BTreeSet<&str> = trials.into_iter().collect();
    let found = nago_study::update::search_values(&obj, &all).any(|(t, _)| ids.contains(t.id()));
    Ok(found)
}

/// Writes the warm start a recorded fit began from (`None`: a cold fit) into the scratch
/// study as `rerun-warm-start.json`, for `nago-update --warm-start`; returns its path.
pub fn write_warm_start(out: &StudyDir, warm: Option<&serde_json::Value>) -> Result<PathBuf> {
    let path = out.root().join("rerun-warm-start.json");
    atomic_write_json(&path, &warm.unwrap_or(&serde_json::Value::Null))?;
    Ok(path)
}

/// The warm start of the study's current surrogate.json (what its fit began from).
pub fn current_warm_start(sd: &StudyDir) -> Result<Option<serde_json::Value>> {
    Ok(nago_study::SurrogateFile::read(sd)?
        .and_then(|f| f.warm_started_from)
        .map(|w| serde_json::to_value(w).expect("a warm start serialises")))
}

/// The state a recorded proposal saw, rebuilt in a scratch study in two steps: [`Self::fit`]
/// holds study.json, every earlier round and its trials' proposals, the current reference
/// point, and exactly the results the surrogate was fitted on; [`Self::complete`] adds the
/// other results the proposal saw. Every result copied must still have the digest recorded
/// (a trial retried since then cannot give the proposal's inputs back).
pub struct ProposalScratch {
    /// The scratch study.
    pub out: StudyDir,
    /// What the round recorded.
    pub seen: nago_store::Seen,
    /// The round.
    pub round: u32,
}

impl ProposalScratch {
    /// Builds the first step for round `round` of `sd` under `scratch` (an absent
    /// directory).
    pub fn fit(sd: &StudyDir, round: u32, scratch: &Path) -> Result<ProposalScratch> {
        let stored = sd.proposals(round)?;
        let Some(seen) = stored.seen.clone() else {
            bail!(
                "{}: written before nago recorded what a proposal saw; rerun the round with \
                 --round {round} (rounds mode)",
                sd.proposals_path(round).display()
            );
        };
        // The reference point is fixed once recorded, so today's file gives the one the
        // proposal's surrogate was fitted with; its model is refitted. A surrogate fitted on
        // no result with objective values (none yet, or only failures) had no reference
        // point yet: it is derived from values, and results never lose theirs.
        let fitted = seen.fitted_on.iter().map(|r| r.trial.as_str());
        let out = new_scratch(sd, scratch, had_values(sd, fitted)?)?;
        for r in sd.rounds()?.into_iter().filter(|r| *r < round) {
            let props = sd.proposals(r)?;
            fs::create_dir_all(out.round_dir(r))?;
            fs::copy(sd.proposals_path(r), out.proposals_path(r))?;
            for t in &props.trials {
                fs::create_dir_all(out.trial_dir(t))?;
                let src = sd.trial_dir(t).join("proposal.json");
                fs::copy(&src, out.trial_dir(t).join("proposal.json"))
                    .with_context(|| format!("{}", src.display()))?;
            }
        }
        let s = ProposalScratch { out, seen, round };
        s.copy_results(sd, &s.seen.fitted_on)?;
        Ok(s)
    }

    fn copy_results(&self, sd: &StudyDir, which: &[nago_store::SeenResult]) -> Result<()> {
        for r in which {
            let src = sd.trial(&r.trial).result_path();
            let bytes = fs::read(&src).with_context(|| {
                format!(
                    "{}: the proposal of round {} saw this result, which is gone",
                    src.display(),
                    self.round
                )
            })?;
            if nago_store::result_digest(&String::from_utf8_lossy(&bytes)) != r.digest {
                bail!(
                    "{}: changed since round {} was proposed (the trial was retried or \
                     rerun), so that proposal's inputs are gone",
                    src.display(),
                    self.round
                );
            }
            fs::create_dir_all(self.out.trial_dir(&r.trial))?;
            fs::write(self.out.trial(&r.trial).result_path(), bytes)?;
        }
        Ok(())
    }

    /// The second step: every other result the proposal saw.
    pub fn complete(&self, sd: &StudyDir) -> Result<()> {
        let rest: Vec<nago_store::SeenResult> = self
            .seen
            .results
            .iter()
            .filter(|r| !self.seen.fitted_on.contains(r))
            .cloned()
            .collect();
        self.copy_results(sd, &rest)
    }
}
