//! The final round: more architectures of the chosen generators, trained as the study's
//! `final` section says.

use super::{Context, Draft, Strategy};
use crate::objectives::Objectives;
use crate::trials::TrialRecord;
use crate::update::model_budget;
use anyhow::{bail, Context as _, Result};
use nago_bo::pareto::{hypervolume, pareto_indices};
use nago_space::{FinalSelect, FinalWidth, Generator, Study};
use nago_store::{derive_seed, Origin};

/// `samples` architectures (different seeds) of each chosen generator at the final epochs
/// (`final.epochs`, default `budgets.max`): the generators of `trials`, or, when empty,
/// `final.max_generators` of the feasible evaluations at the model budget that learned —
/// by `final.select`, the Pareto set cut by greedy hypervolume contribution, or the best on
/// the first objective. Each sample is screened like any new architecture; a rejected seed
/// is replaced by the next one.
pub struct FinalRound {
    /// Trials whose generators to take (empty: the Pareto set).
    pub trials: Vec<String>,
    /// Architectures per generator.
    pub samples: u32,
}

impl FinalRound {
    /// The trials whose generators the final round takes.
    pub fn chosen<'a>(&self, ctx: &'a Context) -> Result<Vec<&'a TrialRecord>> {
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
        let best = ctx.study.final_round.select == FinalSelect::Best;
        let budget = model_budget(ctx.study, ctx.trials);
        // Candidates: one evaluation per generator, feasible and learned. `contribution`
        // compares them at the model budget (where the front lives); `best` takes each
        // generator at the largest budget it reached, as BOHB's incumbent is the best at the
        // highest budget: a network trained longer is judged by its longer training.
        let mut cand: Vec<(&TrialRecord, Vec<f64>, f64)> = Vec::new();
        for t in &ctx.trials.records {
            let Some(r) = t.final_result() else { continue };
            let e = obj.evaluate(r);
            let Some(y) = e.y else { continue };
            if !e.feasible
                || !obj.learned(r)
                || t.proposal.origin == Origin::Final
                || (!best && Some(r.budget) != budget)
            {
                continue;
            }
            // One candidate per search point: under `search.param_limit: "largest"` two seeds
            // of one generator were trained at different widths. Under `best` it is the point's
            // best evaluation at the largest budget the point reached.
            let point = ctx.study.search_point(&t.proposal.generator);
            match cand
                .iter_mut()
                .find(|c| ctx.study.search_point(&c.0.proposal.generator) == point)
            {
                Some(c) if best && best_order((r.budget, y[0]), (c.2, c.1[0])).is_lt() => {
                    *c = (t, y, r.budget)
                }
                Some(_) => {}
                None => cand.push((t, y, r.budget)),
            }
        }
        let k = ctx.study.final_round.max_generators as usize;
        if best {
            let mut keys: Vec<(f64, f64)> = cand.iter().map(|c| (c.2, c.1[0])).collect();
            if ctx.study.final_round.pool_rungs {
                let chains: Vec<Vec<(f64, f64)>> = cand
                    .iter()
                    .map(|c| rung_chain(ctx, &obj, c.0, (c.2, c.1[0])))
                    .collect();
                let pooled = pooled_values(&chains);
                let top = top_budget(&chains);
                for ((c, chain), v) in cand.iter().zip(&chains).zip(&pooled) {
                    if c.2 == top {
                        let rungs: Vec<String> =
                            chain.iter().map(|(b, y)| format!("{y:.4}@{b}")).collect();
                        eprintln!(
                            "nago-propose: final.pool_rungs: trial {}: {} {} -> {v:.4}",
                            c.0.id(),
                            obj.names()[0],
                            rungs.join(" "),
                        );
                    }
                }
                for (key, v) in keys.iter_mut().zip(pooled) {
                    key.1 = v;
                }
            }
            return Ok(best_first(&keys, k)
                .into_iter()
                .map(|i| cand[i].0)
                .collect());
        }
        let ys: Vec<Vec<f64>> = cand.iter().map(|c| c.1.clone()).collect();
        let front: Vec<usize> = pareto_indices(&ys);
        if front.len() <= k {
            return Ok(front.into_iter().map(|i| cand[i].0).collect());
        }
        let recorded = ctx
            .surrogate
            .filter(|s| s.objectives == obj.names())
            .map(|s| s.reference.as_slice());
        let reference = obj.reference(recorded, &ys);
        Ok(greedy_by_contribution(&ys, &front, &reference, k)
            .into_iter()
            .map(|i| cand[i].0)
            .collect())
    }
}

/// `(budget, first objective)` of trial `t` (whose own is `own`) and of each promotion
/// ancestor with a result, largest budget first. The walk stops at an ancestor that is not
/// the same network (another generator or seed) at a lower budget: a hand-written
/// `parent` may point anywhere, even in a cycle.
fn rung_chain(
    ctx: &Context,
    obj: &Objectives,
    t: &TrialRecord,
    own: (f64, f64),
) -> Vec<(f64, f64)> {
    let mut chain = vec![own];
    let mut below = t.proposal.budget;
    let mut parent = t.proposal.parent.as_deref();
    while let Some(id) = parent {
        let Some(p) = ctx.trials.get(id) else { break };
        let same =
            p.proposal.generator == t.proposal.generator && p.proposal.seed == t.proposal.seed;
        if !same || p.proposal.budget >= below {
            break;
        }
        below = p.proposal.budget;
        if let Some(r) = p.final_result() {
            if let Some(y) = obj.evaluate(r).y {
                chain.push((r.budget, y[0]));
            }
        }
        parent = p.proposal.parent.as_deref();
    }
    chain
}

/// Each chain's value at the largest budget `B` of all chains, estimated from every rung
/// (`final.pool_rungs`): a value at budget `b` is shifted by the mean of `v_B - v_b` over the
/// chains that reached `B` and hold a value at `b`, and the shifted values are averaged.
/// When every chain holds the same rungs (a search's promotions climb one rung at a time
/// from `budgets.min`) the shifts are common and the ranking is that of the plain mean over
/// the rungs; the shift matters for a chain that lacks one. Under the `"budget"` horizon
/// each rung is a training of its own — the same network with its own schedule, and under
/// `training.rung_seeds: "own"` its own initial weights and data order too — so the rungs
/// share the architecture's and the validation images' part of the noise and average out
/// the rest (more of it with their own seeds). Chains that stopped below `B` keep
/// their own (first) value: they are ranked after those at `B`.
pub fn pooled_values(chains: &[Vec<(f64, f64)>]) -> Vec<f64> {
    let top = top_budget(chains);
    let at_top: Vec<&Vec<(f64, f64)>> = chains
        .iter()
        .filter(|c| c.first().is_some_and(|p| p.0 == top))
        .collect();
    let gap = |b: f64| -> f64 {
        let gaps: Vec<f64> = at_top
            .iter()
            .filter_map(|c| c.iter().find(|p| p.0 == b).map(|p| c[0].1 - p.1))
            .collect();
        gaps.iter().sum::<f64>() / gaps.len() as f64
    };
    chains
        .iter()
        .map(|c| match c.first() {
            Some(&(b, _)) if b == top => {
                c.iter().map(|&(b, v)| v + gap(b)).sum::<f64>() / c.len() as f64
            }
            Some(&(_, v)) => v,
            None => f64::NAN,
        })
        .collect()
}

/// The largest budget any chain's own (first) value was measured at.
fn top_budget(chains: &[Vec<(f64, f64)>]) -> f64 {
    chains
        .iter()
        .filter_map(|c| c.first().map(|p| p.0))
        .fold(f64::NEG_INFINITY, f64::max)
}

/// `(budget, value)` pairs best first: the larger budget, then the lower value.
fn best_order(a: (f64, f64), b: (f64, f64)) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.1.total_cmp(&b.1))
}

/// The indices of the `k` best `(budget, value)` pairs: larger budget first, then lower
/// value (ties: the earlier pair).
pub fn best_first(keys: &[(f64, f64)], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| best_order(keys[a], keys[b]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// `k` of the points `idx` chosen greedily, each adding the most hypervolume to those
/// chosen before it (ties: the earlier point). Returns them in the order of `idx`.
pub fn greedy_by_contribution(
    ys: &[Vec<f64>],
    idx: &[usize],
    reference: &[f64],
    k: usize,
) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::new();
    while chosen.len() < k.min(idx.len()) {
        let mut best: Option<(usize, f64)> = None;
        for &i in idx.iter().filter(|i| !chosen.contains(i)) {
            let pts: Vec<Vec<f64>> = chosen
                .iter()
                .chain(std::iter::once(&i))
                .map(|&j| ys[j].clone())
                .collect();
            let hv = hypervolume(&pts, reference).unwrap_or(0.0);
            if best.is_none_or(|(_, b)| hv > b) {
                best = Some((i, hv));
            }
        }
        chosen.push(best.expect("a point is left").0);
    }
    idx.iter().copied().filter(|i| chosen.contains(i)).collect()
}

impl Strategy for FinalRound {
    fn propose(&self, ctx: &Context, _n: usize) -> Result<Vec<Draft>> {
        let chosen = self.chosen(ctx)?;
        if chosen.is_empty() {
            bail!(
                "{}: no feasible evaluated generator that learned to take to the final round \
                 (run nago-update, or name trials with --trials)",
                ctx.sd.trials_table().display()
            );
        }
        let study = ctx.study;
        let mut out = Vec::new();
        for t in chosen {
            // A search trial trained at its own seed's largest width starts from the space's
            // width again: the final samples are other graphs, with their own edge.
            let g = study.search_point(&t.proposal.generator);
            // Search trials trained at their largest width make a final round at its own.
            let (width, field) = match study.search.param_limit {
                FinalWidth::Largest => (FinalWidth::Largest, "search.param_limit"),
                FinalWidth::Searched => (study.final_round.param_limit, "final.param_limit"),
            };
            let mut seeds: Vec<u64> = Vec::new();
            // A generator whose samples are mostly rejected still gets `samples` tries per
            // sample before the round goes on without the rest.
            let tries: Vec<u64> = (0..self.samples.saturating_mul(10))
                .map(|s| derive_seed(study.seed, &["final", t.id(), &s.to_string()]))
                .collect();
            for &seed in &tries {
                if seeds.len() == self.samples as usize {
                    break;
                }
                let screen = crate::screen::screen(study, &g, seed)
                    .with_context(|| format!("final samples of trial {}", t.id()))?;
                if screen.passes() {
                    seeds.push(seed);
                }
            }
            // At the largest width the space's own width is only a start: a generator that the
            // search trained narrower (too wide there) may have few samples or none that pass
            // at it. The round is then filled with the tries for which one width passes
            // together with the seeds already taken (the samples share the width found below).
            if width == FinalWidth::Largest {
                for &seed in &tries {
                    if seeds.len() == self.samples as usize {
                        break;
                    }
                    if seeds.contains(&seed) {
                        continue;
                    }
                    let with: Vec<u64> = seeds.iter().copied().chain([seed]).collect();
                    if largest_param_limit(study, &g, &with, field)
                        .with_context(|| format!("final samples of trial {}", t.id()))?
                        .is_some()
                    {
                        seeds.push(seed);
                    }
                }
            }
            if seeds.len() < self.samples as usize {
                eprintln!(
                    "nago-propose: warning: generator of trial {} gave only {} of {} \
                     architectures that pass the constraints in {} seeds",
                    t.id(),
                    seeds.len(),
                    self.samples,
                    self.samples * 10
                );
            }
            let generator = match width {
                FinalWidth::Largest if !seeds.is_empty() => Generator {
                    param_limit: largest_param_limit(study, &g, &seeds, field)
                        .with_context(|| format!("final samples of trial {}", t.id()))?
                        .expect("every seed was taken with a width that passes"),
                    ..g
                },
                _ => g,
            };
            out.extend(seeds.into_iter().map(|seed| Draft {
                generator,
                budget: study.final_epochs(),
                seed: Some(seed),
                parent: None,
                origin: Origin::Final,
                source: Some(t.id().to_string()),
            }));
        }
        if out.is_empty() {
            // An empty round would be proposed again and again.
            bail!(
                "final round: no architecture of the chosen generator(s) meets the study's \
                 constraints in {} seeds each; loosen the constraints or search.min_channels",
                self.samples.saturating_mul(10)
            );
        }
        Ok(out)
    }
}

/// How the architectures of one generator at one width fare against the screen.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fit {
    Passes,
    TooWide,
    TooNarrow,
    /// Too wide for one constraint and too narrow for another: no width helps.
    Neither,
}

/// The largest `param_limit` (within 1) at which the architectures of `g` sampled with every
/// one of `seeds` pass the screen (the study's constraints known before training), or `None`
/// when no limit does. The graphs do not depend on the limit, only the width multiplier does,
/// and every screened metric grows with it, so the passing limits are an interval: from
/// `g.param_limit`, halving (too wide there) or doubling (too narrow) finds a passing limit
/// (or, when a step jumps from one side to the other, bisection between the two), then
/// doubling and bisection find the interval's upper edge. A generator that passes at its own
/// limit gets exactly the steps (and the value) of a search that starts there.
/// `field` names the study's setting that asked for it, for the error.
pub fn largest_param_limit(
    study: &Study,
    g: &Generator,
    seeds: &[u64],
    field: &str,
) -> Result<Option<f64>> {
    let fit = |limit: f64| -> Result<Fit> {
        let h = Generator {
            param_limit: limit,
            ..*g
        };
        let (mut wide, mut narrow, mut stuck) = (false, false, false);
        for &seed in seeds {
            let s = crate::screen::screen(study, &h, seed)?;
            wide |= s.too_wide;
            narrow |= s.too_narrow;
            // A violation that is neither (a metric that is not finite) no width mends.
            stuck |= !s.passes() && !s.too_wide && !s.too_narrow;
        }
        Ok(match (wide, narrow) {
            _ if stuck => Fit::Neither,
            (false, false) => Fit::Passes,
            (true, false) => Fit::TooWide,
            (false, true) => Fit::TooNarrow,
            (true, true) => Fit::Neither,
        })
    };
    if seeds.is_empty() {
        return Ok(Some(g.param_limit));
    }
    let unbounded = |lo: f64| {
        anyhow::anyhow!(
            "{field} \"largest\": the networks meet the constraints at every width up to \
             param_limit {lo:e}; give a constraint with a `max` on params, macs, memory_mb \
             or activation_mb"
        )
    };
    // A passing limit `lo` and, when known, a larger failing (too wide) one `hi`.
    let (mut lo, mut hi) = match fit(g.param_limit)? {
        Fit::Passes => (g.param_limit, None),
        Fit::Neither => return Ok(None),
        first => {
            let step = if first == Fit::TooWide { 0.5 } else { 2.0 };
            let mut from = g.param_limit;
            let mut steps = 0;
            loop {
                let next = from * step;
                steps += 1;
                if steps > 60 || next < 1.0 {
                    if first == Fit::TooNarrow {
                        return Err(unbounded(from));
                    }
                    return Ok(None);
                }
                match fit(next)? {
                    Fit::Passes if first == Fit::TooWide => break (next, Some(from)),
                    Fit::Passes => break (next, None),
                    f if f == first => from = next,
                    Fit::Neither => return Ok(None),
                    // Stepped over the interval (if any): it lies between the two.
                    _ => {
                        let (mut narrow, mut wide) = if first == Fit::TooWide {
                            (next, from)
                        } else {
                            (from, next)
                        };
                        let found = loop {
                            if wide - narrow <= 1.0 {
                                return Ok(None);
                            }
                            let mid = 0.5 * (narrow + wide);
                            match fit(mid)? {
                                Fit::Passes => break mid,
                                Fit::TooWide => wide = mid,
                                Fit::TooNarrow => narrow = mid,
                                Fit::Neither => return Ok(None),
                            }
                        };
                        break (found, Some(wide));
                    }
                }
            }
        }
    };
    let mut hi = match hi.take() {
        Some(h) => h,
        None => {
            let mut h = 2.0 * lo;
            let mut doublings = 0;
            while fit(h)? == Fit::Passes {
                lo = h;
                h *= 2.0;
                doublings += 1;
                if doublings == 60 {
                    return Err(unbounded(lo));
                }
            }
            h
        }
    };
    while hi - lo > 1.0 {
        let mid = 0.5 * (lo + hi);
        if fit(mid)? == Fit::Passes {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Some(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widened generator's samples pass the constraints and one step wider does not;
    /// which constraint binds depends on the graph (parameters for a shallow one, activation
    /// memory for a deep one), and the graphs are those of the searched width.
    #[test]
    fn largest_width_is_the_edge_of_the_constraints() {
        let study = Study::from_json(
            r#"{"schema": "nago.study/1", "name": "t", "seed": 3,
                "dataset": {"name": "fashion-mnist"},
                "objectives": [{"metric": "val_error", "goal": "min"}],
                "constraints": [{"metric": "params", "max": 100000},
                                {"metric": "activation_mb", "max": 1.0}],
                "budgets": {"min": 1, "max": 4, "eta": 2},
                "final": {"param_limit": "largest"}}"#,
        )
        .unwrap();
        let gen = |top: &str, bottom: &str, limit: f64| {
            Generator::from_json(&format!(
                r#"{{"top": {top}, "mid": {{"model": "er", "n": 1, "k": 2, "p": 0.4}},
                    "bottom": {bottom}, "param_limit": {limit}, "head_channels": 128}}"#
            ))
            .unwrap()
        };
        let shallow = gen(
            r#"{"model": "ws", "n": 3, "k": 2, "p": 0.4}"#,
            r#"{"model": "ws", "n": 3, "k": 2, "p": 0.4}"#,
            20_000.0,
        );
        let deep = gen(
            r#"{"model": "ws", "n": 6, "k": 4, "p": 0.58}"#,
            r#"{"model": "ws", "n": 4, "k": 4, "p": 0.58}"#,
            20_000.0,
        );
        let seeds = [11, 12, 13];
        let arch = |g: &Generator, limit: f64, seed: u64| {
            let h = Generator {
                param_limit: limit,
                ..*g
            };
            nago_generator::sample(&h, seed, crate::screen::input_shape(&study).unwrap()).unwrap()
        };
        let passes_all = |g: &Generator, limit: f64| {
            seeds.iter().all(|&s| {
                let h = Generator {
                    param_limit: limit,
                    ..*g
                };
                crate::screen::screen(&study, &h, s).unwrap().passes()
            })
        };
        let mut binding = Vec::new();
        for g in [&shallow, &deep] {
            assert!(passes_all(g, g.param_limit));
            let l = largest_param_limit(&study, g, &seeds, "final.param_limit")
                .unwrap()
                .unwrap();
            assert!(l > 1.5 * g.param_limit, "{l}");
            assert!(passes_all(g, l) && !passes_all(g, l + 1.0), "{l}");
            // One sample is at its edge: one more width step breaks a constraint.
            let over: Vec<String> = seeds
                .iter()
                .flat_map(|&s| {
                    let h = Generator {
                        param_limit: l + 1.0,
                        ..*g
                    };
                    crate::screen::screen(&study, &h, s).unwrap().violations
                })
                .collect();
            binding.push(over.join("; "));
            // The same graphs: only the channels changed.
            for &s in &seeds {
                let (a, b) = (arch(g, g.param_limit, s), arch(g, l, s));
                assert_eq!(a.cells.len(), b.cells.len());
                assert!(b.counts.params > a.counts.params);
            }
        }
        assert!(binding[0].contains("params is"), "{binding:?}");
        assert!(binding[1].contains("activation_mb is"), "{binding:?}");
        // Nothing to widen: the limit stays.
        assert_eq!(
            largest_param_limit(&study, &shallow, &[], "final.param_limit").unwrap(),
            Some(20_000.0)
        );
    }

    /// The largest passing width does not depend on where the search starts: from a width
    /// far too wide, from one too narrow (for `search.min_channels`), from one inside, and
    /// from one whose halving steps jump over a narrow passing interval (a parameter range
    /// of 5%), it finds the same edge (within the bisection's 1) — and `None` when no width
    /// passes.
    #[test]
    fn largest_width_is_found_from_any_starting_width() {
        let study = |constraints: &str| {
            Study::from_json(&format!(
                r#"{{"schema": "nago.study/1", "name": "t", "seed": 3,
                    "dataset": {{"name": "fashion-mnist"}},
                    "objectives": [{{"metric": "val_error", "goal": "min"}}],
                    "constraints": {constraints},
                    "budgets": {{"min": 1, "max": 4, "eta": 2}},
                    "search": {{"min_channels": 4}}}}"#
            ))
            .unwrap()
        };
        let g = |limit: f64| {
            Generator::from_json(&format!(
                r#"{{"top": {{"model": "ws", "n": 4, "k": 2, "p": 0.4}},
                    "mid": {{"model": "er", "n": 1, "k": 2, "p": 0.4}},
                    "bottom": {{"model": "ws", "n": 3, "k": 2, "p": 0.4}},
                    "param_limit": {limit}, "head_channels": 128}}"#
            ))
            .unwrap()
        };
        let seeds = [5, 6];
        let fits = |st: &Study, limit: f64| {
            seeds
                .iter()
                .all(|&s| crate::screen::screen(st, &g(limit), s).unwrap().passes())
        };
        let wide = study(
            r#"[{"metric": "params", "max": 100000}, {"metric": "activation_mb", "max": 1.0}]"#,
        );
        let from_inside = largest_param_limit(&wide, &g(20_000.0), &seeds, "f")
            .unwrap()
            .unwrap();
        assert!(fits(&wide, from_inside) && !fits(&wide, from_inside + 1.0));
        for start in [4e6, 3e5, 10.0, 1.0] {
            let st = g(start);
            assert!(!fits(&wide, start), "{start} should not pass");
            let l = largest_param_limit(&wide, &st, &seeds, "f")
                .unwrap()
                .unwrap();
            assert!(
                (l - from_inside).abs() <= 2.0,
                "from {start}: {l} against {from_inside}"
            );
            assert!(fits(&wide, l) && !fits(&wide, l + 1.0), "from {start}: {l}");
        }
        // A passing interval narrower than a halving step (params in [80k, 100k]), and a start
        // above it whose first halving lands below it: bisection between the two finds it.
        let narrow = study(r#"[{"metric": "params", "min": 80000, "max": 100000}]"#);
        let scan: Vec<f64> = (0..400).map(|i| 20_000.0 * 1.01f64.powi(i)).collect();
        let inside: Vec<f64> = scan.iter().copied().filter(|&l| fits(&narrow, l)).collect();
        let (a, b) = (inside[0], *inside.last().unwrap());
        assert!(b < 2.0 * a, "[{a}, {b}]");
        let start = 0.5 * (b + 2.0 * a);
        assert!(start > b && start / 2.0 < a);
        let l = largest_param_limit(&narrow, &g(start), &seeds, "f")
            .unwrap()
            .unwrap();
        assert!(fits(&narrow, l) && !fits(&narrow, l + 1.0), "{l}");
        assert!(l >= b - 1e-9 && l < b * 1.01, "{l} against the scan's {b}");
        // The same from below: a start under it whose doubling lands above it.
        let l2 = largest_param_limit(&narrow, &g(0.5 * (a + b / 2.0)), &seeds, "f")
            .unwrap()
            .unwrap();
        assert!((l - l2).abs() <= 2.0, "{l} against {l2}");
        // No width: the head alone is over the limit, and narrowing breaks min_channels.
        let none = study(r#"[{"metric": "params", "max": 1000}]"#);
        for start in [4e6, 20_000.0, 1.0] {
            assert_eq!(
                largest_param_limit(&none, &g(start), &seeds, "f").unwrap(),
                None
            );
        }
    }

    /// Pooling the rungs: a candidate that led both lower rungs and trailed at the top by
    /// less than its lead there is judged the better one; a chain that stopped early keeps
    /// its own value and ranks after the top budget's; equal chains shifted by a constant
    /// keep their order and their top values.
    #[test]
    fn pooled_values_judge_a_candidate_by_all_its_rungs() {
        // The rungs of a measured search (quick preset, random search, seed 0): b led the
        // top rung alone by 1.3 points; a led at 1 and 2 epochs by 3 and 1.5.
        let a = vec![(4.0, 0.153), (2.0, 0.189), (1.0, 0.2345)];
        let b = vec![(4.0, 0.140), (2.0, 0.204), (1.0, 0.2665)];
        let c = vec![(4.0, 0.1515), (2.0, 0.1895), (1.0, 0.276)];
        let d = vec![(4.0, 0.1565), (2.0, 0.202), (1.0, 0.2735)];
        let early = vec![(2.0, 0.10), (1.0, 0.2)];
        let v = pooled_values(&[a, b, c, d, early]);
        let keys: Vec<(f64, f64)> = [4.0, 4.0, 4.0, 4.0, 2.0]
            .into_iter()
            .zip(v.clone())
            .collect();
        assert_eq!(best_first(&keys, 5), vec![0, 1, 2, 3, 4], "{v:?}");
        assert_eq!(v[4], 0.10);
        // The gaps are rung means, so the pooled values average to the top rung's mean.
        let mean_top = (0.153 + 0.140 + 0.1515 + 0.1565) / 4.0;
        assert!((v[..4].iter().sum::<f64>() / 4.0 - mean_top).abs() < 1e-12);
        // Without noise (every chain the same curve, shifted), pooling changes nothing.
        let curve = |s: f64| vec![(4.0, 0.14 + s), (2.0, 0.19 + s), (1.0, 0.25 + s)];
        let v = pooled_values(&[curve(0.01), curve(0.0), curve(0.02)]);
        for (got, want) in v.iter().zip([0.15, 0.14, 0.16]) {
            assert!((got - want).abs() < 1e-12, "{got} {want}");
        }
        // A chain that lacks a rung: its other rungs are shifted by the gaps the chains
        // holding them show, and it is the mean of what it has.
        let a = vec![(4.0, 0.14), (2.0, 0.19), (1.0, 0.25)];
        let b = vec![(4.0, 0.15), (2.0, 0.18), (1.0, 0.24)];
        let c = vec![(4.0, 0.13), (1.0, 0.30)];
        let v = pooled_values(&[a, b, c]);
        let gap1 = ((0.14 - 0.25) + (0.15 - 0.24) + (0.13 - 0.30)) / 3.0;
        let gap2 = ((0.14 - 0.19) + (0.15 - 0.18)) / 2.0;
        assert!((v[2] - (0.13 + 0.30 + gap1) / 2.0).abs() < 1e-12, "{v:?}");
        assert!(
            (v[0] - (0.14 + 0.19 + gap2 + 0.25 + gap1) / 3.0).abs() < 1e-12,
            "{v:?}"
        );
        // A candidate with no lower rung (e.g. named at the top budget by hand) is its own.
        assert_eq!(pooled_values(&[vec![(4.0, 0.2)]]), vec![0.2]);
    }

    #[test]
    fn greedy_contribution_keeps_the_spread() {
        // A front of five points; the two ends and the knee give most of the volume.
        let ys = vec![
            vec![0.0, 1.0],
            vec![0.1, 0.5],
            vec![0.2, 0.45],
            vec![0.5, 0.1],
            vec![1.0, 0.0],
        ];
        let all: Vec<usize> = (0..5).collect();
        let r = [1.1, 1.1];
        let two = greedy_by_contribution(&ys, &all, &r, 2);
        assert_eq!(two, vec![1, 3]);
        assert_eq!(greedy_by_contribution(&ys, &all, &r, 9), all);
        assert!(greedy_by_contribution(&ys, &all, &r, 0).is_empty());
    }

    #[test]
    fn best_takes_the_largest_budget_then_the_lowest_value() {
        // (budget, first objective)
        let keys = [
            (2.0, 0.20),
            (4.0, 0.16),
            (2.0, 0.10),
            (4.0, 0.15),
            (1.0, 0.05),
        ];
        assert_eq!(best_first(&keys, 1), vec![3]);
        assert_eq!(best_first(&keys, 3), vec![3, 1, 2]);
        assert_eq!(best_first(&keys, 9), vec![3, 1, 2, 0, 4]);
        assert!(best_first(&keys, 0).is_empty());
        assert_eq!(best_first(&[(1.0, 0.3), (1.0, 0.3)], 1), vec![0]);
    }
}
