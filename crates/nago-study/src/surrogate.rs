//! `surrogate.json`: the fitted models, the reference point and the front's budget.

use anyhow::{bail, Result};
use nago_bo::engine::{Surrogate, WarmStart};
use nago_store::StudyDir;
use serde::{Deserialize, Serialize};

/// Schema tag of `surrogate.json`.
pub const SURROGATE_SCHEMA: &str = "nago.surrogate/1";

/// `surrogate.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SurrogateFile {
    /// [`SURROGATE_SCHEMA`].
    pub schema: String,
    /// The objective metrics, in order.
    pub objectives: Vec<String>,
    /// The hypervolume reference point, in model units (minimised; log where asked); NaN
    /// (written as null) for an objective without data yet.
    #[serde(with = "nan_as_null")]
    pub reference: Vec<f64>,
    /// The budget (epochs) the model was fitted on.
    pub budget: Option<f64>,
    /// Evaluations with objective values at that budget.
    pub n_observations: usize,
    /// The fitted models (absent while no evaluation has succeeded).
    pub model: Option<Surrogate>,
    /// Every result file the fitting nago-update read, with its SHA-256 (older files lack
    /// it): what `nago-rerun --proposal` rebuilds to refit the same model.
    #[serde(default)]
    pub fitted_on: Vec<nago_store::SeenResult>,
    /// The input of this fit's warm start: the previous fit's hyperparameters
    /// ([`Surrogate::warm_start`]); null for a cold fit (the first one, or a file written
    /// before fits were warm-started). With it, `nago-rerun` refits exactly this model.
    #[serde(default)]
    pub warm_started_from: Option<WarmStart>,
    /// SHA-256 of the observations the model was fitted on (points, values, feasibility):
    /// an update that finds the same observations again starts where this fit started, so
    /// rerunning nago-update (after a kill, or by hand) writes the same model.
    #[serde(default)]
    pub observations_digest: Option<String>,
    /// The model's estimate of every feasible evaluation at the model budget: the posterior
    /// mean of each objective at its generator (model units), in the order of the fit. The
    /// observed values are single noisy draws (another seed of the same generator differs by
    /// up to a point of accuracy); these are what the model believes after shrinking each
    /// towards its neighbours, the front that noisy EHVI improves on.
    #[serde(default)]
    pub model_front: Vec<ModelValue>,
    /// The hypervolume (model units, against `reference`) of `model_front`: the
    /// noise-consistent counterpart of the hypervolume of the observed values (pareto.parquet,
    /// trials.parquet's `hypervolume`), which lucky observations inflate.
    #[serde(default)]
    pub model_hypervolume: Option<f64>,
}

/// One evaluation's values as the model estimates them ([`SurrogateFile::model_front`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelValue {
    /// The trial.
    pub trial: String,
    /// Posterior mean of each objective (model units).
    pub values: Vec<f64>,
}

/// Where `nago-update` takes its fit's warm start from.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum WarmInput {
    /// From the study's `surrogate.json`: its model's hyperparameters, or, when it was fitted
    /// on the same observations, the warm start that fit began from (so the same inputs give
    /// the same model). The default.
    #[default]
    Previous,
    /// Exactly this one (`None`: a cold fit), as `nago-update --warm-start FILE` gives it;
    /// what `nago-rerun` passes to refit a recorded surrogate.
    Given(Option<WarmStart>),
}

impl WarmInput {
    /// Reads `--warm-start FILE`: a JSON [`WarmStart`] (a `surrogate.json`'s
    /// `warm_started_from`) or `null` for a cold fit.
    pub fn from_file(path: &std::path::Path) -> Result<WarmInput> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read the warm start: {e}", path.display()))?;
        let w: Option<WarmStart> = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a warm start ({e}); expected a JSON object with dims, warm_fits and \
                 objectives (each {{theta, log_likelihood_per_point}}), as in surrogate.json's \
                 warm_started_from, or null for a cold fit",
                path.display()
            )
        })?;
        Ok(WarmInput::Given(w))
    }

    /// The warm start for a fit on observations with digest `digest`, given the study's
    /// previous `surrogate.json`.
    pub fn resolve(&self, prev: Option<&SurrogateFile>, digest: &str) -> Option<WarmStart> {
        match self {
            WarmInput::Given(w) => w.clone(),
            WarmInput::Previous => {
                let p = prev?;
                if p.observations_digest.as_deref() == Some(digest) {
                    p.warm_started_from.clone()
                } else {
                    p.model.as_ref().map(Surrogate::warm_start)
                }
            }
        }
    }
}

impl SurrogateFile {
    /// Reads the study's `surrogate.json`: `None` when there is none yet. A file that exists
    /// but cannot be read (empty, truncated, another schema) is an error: it holds the
    /// study's reference point, which must never be re-derived behind the user's back.
    pub fn read(sd: &StudyDir) -> Result<Option<SurrogateFile>> {
        Ok(Self::read_with_digest(sd)?.map(|(f, _)| f))
    }

    /// [`SurrogateFile::read`], with the SHA-256 of the bytes it parsed (what a proposal
    /// records it saw: one read gives both, so they cannot disagree).
    pub fn read_with_digest(sd: &StudyDir) -> Result<Option<(SurrogateFile, String)>> {
        let path = sd.surrogate_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => bail!("{}: {e}", path.display()),
        };
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|text| {
                nago_space::json::parse::<SurrogateFile>(text, Some(SURROGATE_SCHEMA))
                    .map_err(|e| anyhow::anyhow!("{e}"))
            });
        match parsed {
            Ok(s) => Ok(Some((s, nago_store::sha256_hex(&bytes)))),
            Err(e) => bail!(
                "{}: {e}\n(surrogate.json records the study's hypervolume reference point; \
                 restore it, or move it away to derive a new reference point from the trial \
                 table — the hypervolume column is then recomputed)",
                path.display()
            ),
        }
    }

    /// Writes it atomically.
    pub fn write(&self, sd: &StudyDir) -> Result<()> {
        nago_store::atomic_write_json(&sd.surrogate_path(), self)?;
        Ok(())
    }
}

/// `Vec<f64>` with NaN written as JSON null (JSON has no NaN) and read back as NaN.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|x| x.is_finite().then_some(*x))
            .collect::<Vec<Option<f64>>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|x| x.unwrap_or(f64::NAN))
            .collect())
    }
}
