//! Promotions: asynchronous successive halving over the study's epoch budgets.

use super::{Context, Draft, Strategy};
use crate::objectives::Objectives;
use anyhow::Result;
use nago_bo::mf;
use nago_space::FinalSelect;
use nago_store::Origin;

/// Promotes the best evaluations of each rung to the next budget (highest rung first), by
/// non-dominated sorting and crowding distance — or, in a study whose final round takes the
/// best generators (`final.select: "best"`), by the first objective alone, as BOHB does; a
/// promotion keeps its parent's generator and seed (the same architecture) and continues
/// its checkpoint.
///
/// Only evaluations that can improve the front are promoted: feasible ones that learned
/// ([`Objectives::learned`]: a chance-level network is never promoted, although as the
/// smallest network it may be non-dominated) and that dominate the hypervolume reference
/// point (so they contribute hypervolume).
pub struct Promotions;

impl Strategy for Promotions {
    fn propose(&self, ctx: &Context, n: usize) -> Result<Vec<Draft>> {
        let b = &ctx.study.budgets;
        let obj = Objectives::new(ctx.study);
        let rungs = mf::rungs(b.min, b.max, b.eta);
        let promoted: Vec<String> = ctx
            .trials
            .records
            .iter()
            .filter_map(|t| t.proposal.parent.clone())
            .collect();
        let reference = crate::update::reference_point(&obj, ctx.surrogate, ctx.trials);
        let inside = |y: &[f64]| {
            y.iter()
                .zip(&reference)
                .all(|(v, r)| !r.is_finite() || v < r)
        };
        let first_only = ctx.study.final_round.select == FinalSelect::Best;
        let mut out = Vec::new();
        for i in (0..rungs.len().saturating_sub(1)).rev() {
            let entries: Vec<mf::RungEntry> = ctx
                .trials
                .records
                .iter()
                // Rejected trials were never trained: not members of a rung.
                .filter(|t| t.proposal.origin != Origin::Final && !t.rejected())
                .filter_map(|t| {
                    let r = t.final_result()?;
                    (r.budget == rungs[i]).then(|| {
                        let e = obj.evaluate(r);
                        let useful =
                            e.feasible && obj.learned(r) && e.y.as_deref().is_some_and(inside);
                        mf::RungEntry {
                            id: t.id().to_string(),
                            // Non-dominated sorting on one objective is sorting by it.
                            y: if first_only {
                                e.y.map(|y| y[..1].to_vec())
                            } else {
                                e.y
                            },
                            feasible: useful,
                        }
                    })
                })
                .collect();
            for id in mf::promotable(&entries, &promoted, b.eta) {
                if out.len() >= n {
                    return Ok(out);
                }
                // Ranking puts the useless last, but a rung with few useful entries would
                // still fill its quota with them.
                if !entries.iter().any(|e| e.id == id && e.feasible) {
                    continue;
                }
                let t = ctx.trials.get(&id).expect("a rung entry is a trial");
                out.push(Draft {
                    generator: t.proposal.generator,
                    budget: rungs[i + 1],
                    seed: Some(t.proposal.seed),
                    parent: Some(id),
                    origin: Origin::Promotion,
                    source: None,
                });
            }
        }
        Ok(out)
    }
}
