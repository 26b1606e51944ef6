//! The initial design: scrambled Sobol points on dimensions whose leading bits are not
//! locked together early ([`nago_bo::design::initial_design`]), continuing the study's
//! sequence.

use super::{Context, Draft, Strategy};
use crate::propose::model::SpaceSnap;
use anyhow::Result;
use nago_bo::Snap;
use nago_store::Origin;

/// The next points of the study's scrambled Sobol sequence (snapped to the space), at the
/// lowest budget. It fills whatever the other strategies leave of a round.
pub struct InitialDesign;

impl Strategy for InitialDesign {
    fn propose(&self, ctx: &Context, n: usize) -> Result<Vec<Draft>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let space = &ctx.study.space;
        let snap = SpaceSnap(space);
        let done = ctx
            .trials
            .records
            .iter()
            .filter(|t| t.proposal.origin == Origin::Initial)
            .count()
            + ctx.initial_taken;
        let pts = nago_bo::design::initial_design(
            done,
            n,
            space.n_dims(),
            nago_bo::defaults::sobol_seed(ctx.study.seed),
        )?;
        pts.into_iter()
            .map(|mut p| {
                snap.snap(&mut p);
                Ok(Draft {
                    generator: space.decode(&p)?,
                    budget: ctx.study.budgets.min,
                    seed: None,
                    parent: None,
                    origin: Origin::Initial,
                    source: None,
                })
            })
            .collect()
    }
}
