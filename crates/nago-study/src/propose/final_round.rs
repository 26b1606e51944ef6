//! The final round: more architectures of the chosen generators at the full budget.

use super::{Context, Draft, Strategy};
use crate::objectives::Objectives;
use crate::trials::TrialRecord;
use crate::update::model_budget;
use anyhow::{bail, Context as _, Result};
use nago_bo::pareto::pareto_indices;
use nago_store::{derive_seed, Origin};

/// `samples` architectures (different seeds) of each chosen generator at `budgets.max`: the
/// generators of `trials`, or, when empty, of the feasible Pareto set at the model budget.
pub struct FinalRound {
    /// Trials whose generators to take (empty: the Pareto set).
    pub trials: Vec<String>,
    /// Architectures per generator.
    pub samples: u32,
}

impl FinalRound {
    fn chosen<'a>(&self, ctx: &'a Context) -> Result<Vec<&'a TrialRecord>> {
        if !self.trials.is_empty() {
            return self
                .trials
                .iter()
                .map(|id| {
                    ctx.trials.get(id).with_context(|| {
                        format!(
                            "--trials: no readable trial `{id}` in {}",
                            ctx.sd.root().join("trials").display()
                        )
                    })
                })
                .collect();
        }
        let obj = Objectives::new(ctx.study);
        let budget = model_budget(ctx.study, ctx.trials);
        let cand: Vec<(&TrialRecord, Vec<f64>)> = ctx
            .trials
            .records
            .iter()
            .filter_map(|t| {
                let r = t.final_result()?;
                let e = obj.evaluate(r);
                (e.feasible && Some(r.budget) == budget).then_some((t, e.y?))
            })
            .collect();
        let ys: Vec<Vec<f64>> = cand.iter().map(|c| c.1.clone()).collect();
        Ok(pareto_indices(&ys).into_iter().map(|i| cand[i].0).collect())
    }
}

impl Strategy for FinalRound {
    fn propose(&self, ctx: &Context, _n: usize) -> Result<Vec<Draft>> {
        let chosen = self.chosen(ctx)?;
        if chosen.is_empty() {
            bail!(
                "{}: no feasible evaluated generator to take to the final round (run \
                 nago-update, or name trials with --trials)",
                ctx.sd.trials_table().display()
            );
        }
        let mut out = Vec::new();
        for t in chosen {
            for s in 0..self.samples {
                out.push(Draft {
                    generator: t.proposal.generator,
                    budget: ctx.study.budgets.max,
                    seed: Some(derive_seed(
                        ctx.study.seed,
                        &["final", t.id(), &s.to_string()],
                    )),
                    parent: None,
                    origin: Origin::Final,
                });
            }
        }
        Ok(out)
    }
}
