//! Proposals from the model: EHVI on the saved surrogate, batched by kriging believer.

use super::{Context, Draft, Strategy};
use anyhow::{Context as _, Result};
use nago_bo::engine;
use nago_bo::Snap;
use nago_space::{DimKind, Space};
use nago_store::Origin;

/// The study's space as a snapping cube: the canonical point is `encode(decode(u))`.
pub struct SpaceSnap<'a>(pub &'a Space);

impl Snap for SpaceSnap<'_> {
    fn dims(&self) -> usize {
        self.0.n_dims()
    }
    fn snap(&self, u: &mut [f64]) {
        for v in u.iter_mut() {
            *v = if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) };
        }
        if let Ok(g) = self.0.decode(u) {
            if let Ok(c) = self.0.encode(&g) {
                u.copy_from_slice(&c);
            }
        }
    }
}

/// The one-hot groups of a space, `(start, size)`.
pub fn one_hot_groups(space: &Space) -> Vec<(usize, usize)> {
    let mut g: Vec<(usize, usize)> = space
        .dims()
        .iter()
        .filter_map(|d| match d.kind {
            DimKind::OneHot { start, size } => Some((start, size)),
            _ => None,
        })
        .collect();
    g.dedup();
    g
}

/// New generators by expected hypervolume improvement on `surrogate.json` (fitted by
/// nago-update; never refitted here), once it holds `search.initial_design` observations;
/// nothing before that. Trials without a final result, and generators rejected earlier in
/// the same call, are pending points.
pub struct ModelProposals;

impl Strategy for ModelProposals {
    fn propose(&self, ctx: &Context, n: usize) -> Result<Vec<Draft>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let need = (ctx.study.search.initial_design as usize).max(1);
        let Some(mut model) = ctx
            .surrogate
            .filter(|s| s.n_observations >= need)
            .and_then(|s| s.model.clone())
        else {
            return Ok(Vec::new());
        };
        let path = ctx.sd.surrogate_path();
        model
            .prepare()
            .with_context(|| path.display().to_string())?;
        let space = &ctx.study.space;
        let pend: Vec<Vec<f64>> = ctx
            .pending
            .iter()
            .map(|t| &t.proposal.generator)
            .chain(&ctx.rejected)
            .filter_map(|g| space.encode(&ctx.study.search_point(g)).ok())
            .collect();
        let po = nago_bo::defaults::propose_options(ctx.study.seed, ctx.round as u64);
        let snap = SpaceSnap(space);
        let got = engine::propose(&model, &snap, &one_hot_groups(space), &pend, n, po)
            .with_context(|| format!("proposing from {}", path.display()))?;
        got.into_iter()
            .map(|x| {
                Ok(Draft {
                    generator: space.decode(&x)?,
                    budget: ctx.study.budgets.min,
                    seed: None,
                    parent: None,
                    origin: Origin::Model,
                    source: None,
                })
            })
            .collect()
    }
}
