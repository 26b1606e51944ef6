//! `proposal.json` (one trial's input) and `proposals.json` (one round's trials).

use nago_space::Generator;
use serde::{Deserialize, Serialize};

/// Schema tag of `proposal.json`.
pub const PROPOSAL_SCHEMA: &str = "nago.proposal/1";
/// Schema tag of `rounds/<round>/proposals.json`.
pub const ROUND_SCHEMA: &str = "nago.round/1";

/// What one trial evaluates: a generator, sampled with `seed`, trained for `budget` epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Must be [`PROPOSAL_SCHEMA`].
    pub schema: String,
    /// The trial's id (its directory name under `trials/`).
    pub trial: String,
    /// The round that proposed it.
    pub round: u32,
    /// The generator hyperparameters.
    pub generator: Generator,
    /// Training budget in epochs.
    pub budget: f64,
    /// Seed for sampling the architecture and for training.
    pub seed: u64,
    /// For a promotion: the trial whose checkpoint this one continues (same generator and
    /// seed, hence the same architecture).
    #[serde(default)]
    pub parent: Option<String>,
    /// Why it was proposed.
    #[serde(default)]
    pub origin: Origin,
    /// For a final trial: the search trial whose generator it samples (its generator may
    /// differ in `param_limit` alone, under `final.param_limit` or `search.param_limit`
    /// `"largest"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Why a trial was proposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The space-filling initial design (scrambled Sobol).
    Initial,
    /// The model's acquisition (EHVI).
    Model,
    /// A promotion of an evaluated trial to the next budget (continues its checkpoint).
    Promotion,
    /// The final protocol: another architecture of a chosen generator at the full budget.
    Final,
    /// Written by a person.
    #[default]
    Manual,
}

impl Origin {
    /// Its name in `proposal.json` and the trial table.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Initial => "initial",
            Origin::Model => "model",
            Origin::Promotion => "promotion",
            Origin::Final => "final",
            Origin::Manual => "manual",
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Proposal {
    /// Parses and validates `proposal.json` text.
    pub fn from_json(text: &str) -> Result<Self, nago_space::SpaceError> {
        let p: Proposal = nago_space::json::parse(text, Some(PROPOSAL_SCHEMA))?;
        p.generator.validate().map_err(|e| match e {
            nago_space::SpaceError::OutOfRange {
                field,
                value,
                expected,
            } => nago_space::SpaceError::OutOfRange {
                field: format!("generator.{field}"),
                value,
                expected,
            },
            nago_space::SpaceError::Invalid { field, message } => nago_space::SpaceError::Invalid {
                field: format!("generator.{field}"),
                message,
            },
            nago_space::SpaceError::NotFinite { field, value } => {
                nago_space::SpaceError::NotFinite {
                    field: format!("generator.{field}"),
                    value,
                }
            }
            other => other,
        })?;
        nago_space::json::finite("budget", p.budget)?;
        if p.budget <= 0.0 {
            return Err(nago_space::SpaceError::Invalid {
                field: "budget".into(),
                message: format!("expected a positive number of epochs, found {}", p.budget),
            });
        }
        Ok(p)
    }
}

/// The trials one round of `nago-propose` created, in array-index order: task i of the
/// round's job array evaluates `trials[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundProposals {
    /// Must be [`ROUND_SCHEMA`].
    pub schema: String,
    /// The round number.
    pub round: u32,
    /// Trial ids, in array-index order.
    pub trials: Vec<String>,
    /// What the proposal was made from (absent in rounds written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<Seen>,
}

/// Exactly what `nago-propose` saw when it proposed a round: with asynchronous workers the
/// study changes between proposals, so each records its inputs, and `nago-rerun --proposal`
/// rebuilds them from the stored files (checking every digest) and proposes again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// SHA-256 of `surrogate.json` as read (absent: there was none yet).
    pub surrogate: Option<String>,
    /// The result files that surrogate was fitted on (its `fitted_on`).
    #[serde(default)]
    pub fitted_on: Vec<SeenResult>,
    /// Every trial with a final `result.json`, with its digest (`nago_store::result_digest`:
    /// SHA-256 of the content without wall-clock fields), by id (a result to be retried
    /// counts as pending).
    pub results: Vec<SeenResult>,
    /// The trials without a final result (fantasised as pending points), by id.
    pub pending: Vec<String>,
    /// The warm start that surrogate's fit began from (its `warm_started_from`, as written;
    /// absent: a cold fit): `nago-rerun` refits from it, since surrogate.json itself is
    /// overwritten by later updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<serde_json::Value>,
}

/// One result file as a stage read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeenResult {
    /// The trial id.
    pub trial: String,
    /// [`crate::result_digest`] of its `result.json`, lowercase hex.
    pub digest: String,
}
