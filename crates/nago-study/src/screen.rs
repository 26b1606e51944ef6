//! What is known about a trial before it is trained, and the rules that keep a trial that
//! cannot work from being trained.
//!
//! `nago-propose` samples each new trial's architecture (the same one `nago-generate` will
//! write: same generator, seed and input) and checks it here. A violation makes the trial
//! `rejected`: its `result.json` is written at once with the known metrics and the reason,
//! it is never trained, it does not use an evaluation of the study's budget, and the
//! surrogate learns it as infeasible.

use anyhow::{Context, Result};
use nago_arch::{Arch, InputShape};
use nago_space::{Generator, Study, PRE_TRAINING_METRICS};

/// The metrics of an architecture that need no training.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownMetrics {
    /// Trainable parameters.
    pub params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Parameter memory, MB.
    pub memory_mb: f64,
    /// Activation memory per image, MB.
    pub activation_mb: f64,
    /// Channels of the narrowest operation.
    pub min_channels: u32,
}

impl KnownMetrics {
    /// Of a sampled architecture.
    pub fn of(a: &Arch) -> Self {
        KnownMetrics {
            params: a.counts.params,
            macs: a.counts.macs,
            memory_mb: a.counts.param_bytes as f64 / 1e6,
            activation_mb: a.counts.activation_bytes as f64 / 1e6,
            min_channels: a.min_channels(),
        }
    }

    /// `(name, value)` for every metric (the names of [`PRE_TRAINING_METRICS`]).
    pub fn pairs(&self) -> Vec<(&'static str, f64)> {
        PRE_TRAINING_METRICS
            .iter()
            .map(|&m| (m, self.get(m).expect("every pre-training metric")))
            .collect()
    }

    /// The metric `name`, if it is known before training.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "params" => self.params as f64,
            "macs" => self.macs as f64,
            "memory_mb" => self.memory_mb,
            "activation_mb" => self.activation_mb,
            "min_channels" => self.min_channels as f64,
            _ => return None,
        })
    }
}

/// The verdict on one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Screen {
    /// What the architecture has before training.
    pub known: KnownMetrics,
    /// Why it must not be trained (empty: train it).
    pub violations: Vec<String>,
    /// A metric is above a constraint's `max`: the network is too wide at this width
    /// multiplier (every pre-training metric grows with it).
    pub too_wide: bool,
    /// A metric is below a constraint's `min`, or the narrowest operation below
    /// `search.min_channels`: the network is too narrow.
    pub too_narrow: bool,
}

impl Screen {
    /// Whether the trial may be trained.
    pub fn passes(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The study's input shape.
pub fn input_shape(study: &Study) -> Result<InputShape> {
    let (channels, height, width, classes) =
        study.dataset.shape().context("study.json: dataset")?;
    Ok(InputShape {
        channels,
        height,
        width,
        classes,
    })
}

/// Samples the architecture of `(generator, seed)` and checks it against the study's
/// constraints on [`PRE_TRAINING_METRICS`] and `search.min_channels`. A generator that
/// cannot be sampled is an error (nago-generate would fail the same way).
pub fn screen(study: &Study, generator: &Generator, seed: u64) -> Result<Screen> {
    let arch = nago_generator::sample(generator, seed, input_shape(study)?)
        .map_err(|e| anyhow::Error::new(e).context("cannot sample this generator"))?;
    let known = KnownMetrics::of(&arch);
    let mut violations = Vec::new();
    let (mut too_wide, mut too_narrow) = (false, false);
    for (i, c) in study.constraints.iter().enumerate() {
        let Some(v) = known.get(&c.metric) else {
            continue;
        };
        if !c.allows(Some(v)) {
            too_wide |= c.max.is_some_and(|m| v > m);
            too_narrow |= c.min.is_some_and(|m| v < m);
            let limit = match (c.min, c.max) {
                (Some(lo), Some(hi)) => format!("in [{lo}, {hi}]"),
                (Some(lo), None) => format!("≥ {lo}"),
                (None, Some(hi)) => format!("≤ {hi}"),
                (None, None) => unreachable!("a validated constraint has a limit"),
            };
            violations.push(format!(
                "{} is {v}, constraints[{i}] asks {limit}",
                c.metric
            ));
        }
    }
    let min = study.search.min_channels;
    if min > 0 && known.min_channels < min {
        too_narrow = true;
        violations.push(format!(
            "its narrowest operation has {} channels, fewer than search.min_channels = {min} \
             (networks that narrow stay at chance level)",
            known.min_channels
        ));
    }
    Ok(Screen {
        known,
        violations,
        too_wide,
        too_narrow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study(extra: &str) -> Study {
        Study::from_json(&format!(
            r#"{{"schema": "nago.study/1", "name": "t", "seed": 1,
                "dataset": {{"name": "fashion-mnist"}},
                "objectives": [{{"metric": "val_error", "goal": "min"}}],
                "budgets": {{"min": 1, "max": 2}} {extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn limits_on_known_metrics_reject_and_name_the_rule() {
        let s = study("");
        let g = Generator::default();
        let ok = screen(&s, &g, 3).unwrap();
        assert!(ok.passes(), "{:?}", ok.violations);
        let p = ok.known.params as f64;
        let tight = study(&format!(
            r#", "constraints": [{{"metric": "params", "max": {}}}, {{"metric": "val_error", "max": 0.0}}]"#,
            p - 1.0
        ));
        let bad = screen(&tight, &g, 3).unwrap();
        assert_eq!(bad.violations.len(), 1, "{:?}", bad.violations);
        assert!(
            bad.violations[0].contains("params") && bad.violations[0].contains("constraints[0]")
        );
        let wide = study(&format!(
            r#", "search": {{"min_channels": {}}}"#,
            ok.known.min_channels + 1
        ));
        let narrow = screen(&wide, &g, 3).unwrap();
        assert!(
            narrow.violations[0].contains("min_channels"),
            "{:?}",
            narrow.violations
        );
        // Same generator and seed, same verdict (proposals are reproducible).
        assert_eq!(screen(&tight, &g, 3).unwrap(), bad);
    }
}
