//! Paths inside a study directory.

use crate::fsio::is_not_found;
use crate::{read_json, Proposal, RoundProposals, StoreError, TrialDir, ROUND_SCHEMA};
use nago_space::Study;
use std::fs;
use std::path::{Path, PathBuf};

/// A study directory (`runs/<name>/`).
#[derive(Debug, Clone)]
pub struct StudyDir {
    root: PathBuf,
}

impl StudyDir {
    /// A study rooted at `root` (not checked).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StudyDir { root: root.into() }
    }
    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `study.json`.
    pub fn study_path(&self) -> PathBuf {
        self.root.join("study.json")
    }
    /// Reads and validates `study.json`.
    pub fn study(&self) -> Result<Study, StoreError> {
        let path = self.study_path();
        if !self.root.is_dir() {
            return Err(StoreError::Other {
                path: self.root.clone(),
                message: "no such study directory (create a study with nago-search --preset, or give the right --run)".into(),
            });
        }
        let text = crate::read_text(&path)?;
        Study::from_json(&text).map_err(|source| StoreError::Invalid { path, source })
    }
    /// `rounds/<round>/` (zero-padded to 4 digits so directory listings sort).
    pub fn round_dir(&self, round: u32) -> PathBuf {
        self.root.join("rounds").join(format!("{round:04}"))
    }
    /// `rounds/<round>/proposals.json`.
    pub fn proposals_path(&self, round: u32) -> PathBuf {
        self.round_dir(round).join("proposals.json")
    }
    /// Reads one round's proposals.
    pub fn proposals(&self, round: u32) -> Result<RoundProposals, StoreError> {
        read_json(&self.proposals_path(round), Some(ROUND_SCHEMA))
    }
    /// The rounds that have a `proposals.json`, ascending.
    pub fn rounds(&self) -> Result<Vec<u32>, StoreError> {
        let dir = self.root.join("rounds");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut rounds: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .filter(|r| self.proposals_path(*r).is_file())
            .collect();
        rounds.sort_unstable();
        Ok(rounds)
    }
    /// The latest round with proposals, if any.
    pub fn latest_round(&self) -> Result<Option<u32>, StoreError> {
        Ok(self.rounds()?.last().copied())
    }
    /// `trials/<trial>/`.
    pub fn trial_dir(&self, trial: &str) -> PathBuf {
        self.root.join("trials").join(trial)
    }
    /// Trial `trial`'s directory with its typed paths.
    pub fn trial(&self, trial: &str) -> TrialDir {
        TrialDir::new(&self.root.join("trials"), trial)
    }
    /// Reads and validates `trials/<trial>/proposal.json`.
    pub fn proposal(&self, trial: &str) -> Result<Proposal, StoreError> {
        self.trial(trial).proposal()
    }
    /// The id the next new trial gets: one more than the largest numeric name under
    /// `trials/`, whatever the entry holds (a directory whose proposal cannot be read still
    /// owns its id, so an id is never given twice).
    pub fn next_trial_id(&self) -> Result<String, StoreError> {
        let dir = self.root.join("trials");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(format!("{:05}", 0)),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let next = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                // `00012` and leftovers such as `00012.tmp.77` both hold id 12.
                let digits: String = name.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse::<u64>().ok()
            })
            .max()
            .map_or(0, |v| v + 1);
        Ok(format!("{next:05}"))
    }
    /// Trial directories that a `nago-propose` which died before publishing its round left
    /// behind: a `proposal.json` naming a round whose `proposals.json` does not list the
    /// trial, and no stage output. Returns their ids (the caller, holding the study lock,
    /// removes them with [`StudyDir::roll_back`]).
    pub fn unpublished_trials(&self) -> Result<Vec<String>, StoreError> {
        let mut listed = std::collections::BTreeSet::new();
        for r in self.rounds()? {
            if let Ok(p) = self.proposals(r) {
                listed.extend(p.trials);
            }
        }
        Ok(self
            .trial_ids()?
            .into_iter()
            .filter(|id| !listed.contains(id))
            .filter(|id| {
                let t = self.trial(id);
                !t.has_outputs()
                    && !t.is_locked()
                    && t.proposal()
                        .is_ok_and(|p| !self.proposals_path(p.round).is_file())
            })
            .collect())
    }
    /// Removes an unpublished trial directory (see [`StudyDir::unpublished_trials`]).
    pub fn roll_back(&self, trial: &str) -> Result<(), StoreError> {
        let d = self.trial_dir(trial);
        fs::remove_dir_all(&d).map_err(|e| StoreError::io(&d, e))
    }
    /// The trial that task `index` of `round` (the latest round when `None`) evaluates.
    pub fn trial_for_index(&self, round: Option<u32>, index: usize) -> Result<String, StoreError> {
        let round = match round {
            Some(r) => r,
            None => self.latest_round()?.ok_or_else(|| StoreError::Other {
                path: self.root.join("rounds"),
                message: "no round has been proposed yet (run nago-propose first)".into(),
            })?,
        };
        let p = self.proposals(round).map_err(|e| {
            if is_not_found(&e) {
                StoreError::Other {
                    path: self.proposals_path(round),
                    message: format!("round {round} has not been proposed"),
                }
            } else {
                e
            }
        })?;
        p.trials
            .get(index)
            .cloned()
            .ok_or_else(|| StoreError::Other {
                path: self.proposals_path(round),
                message: format!(
                    "index {index} is out of range: round {round} has {} trials (indices 0..{})",
                    p.trials.len(),
                    p.trials.len().saturating_sub(1)
                ),
            })
    }
    /// The ids of every trial directory, sorted.
    pub fn trial_ids(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("trials");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(&dir, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }
    /// `trials.parquet`.
    pub fn trials_table(&self) -> PathBuf {
        self.root.join("trials.parquet")
    }
    /// `surrogate.json`.
    pub fn surrogate_path(&self) -> PathBuf {
        self.root.join("surrogate.json")
    }
    /// `pareto.parquet`.
    pub fn pareto_table(&self) -> PathBuf {
        self.root.join("pareto.parquet")
    }
    /// `final.parquet`: the final round's results, one row per generator.
    pub fn final_table(&self) -> PathBuf {
        self.root.join("final.parquet")
    }
}
