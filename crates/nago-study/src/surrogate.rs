//! `surrogate.json`: the fitted models, the reference point and the front's budget.

use anyhow::{bail, Result};
use nago_bo::engine::Surrogate;
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
}

impl SurrogateFile {
    /// Reads the study's `surrogate.json`: `None` when there is none yet. A file that exists
    /// but cannot be read (empty, truncated, another schema) is an error: it holds the
    /// study's reference point, which must never be re-derived behind the user's back.
    pub fn read(sd: &StudyDir) -> Result<Option<SurrogateFile>> {
        let path = sd.surrogate_path();
        if !path.exists() {
            return Ok(None);
        }
        match nago_store::read_json::<SurrogateFile>(&path, Some(SURROGATE_SCHEMA)) {
            Ok(s) => Ok(Some(s)),
            Err(e) => bail!(
                "{e}\n(surrogate.json records the study's hypervolume reference point; restore \
                 it, or move it away to derive a new reference point from the trial table — \
                 the hypervolume column is then recomputed)"
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
