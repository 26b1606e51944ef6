//! The optimiser's defaults, in one place, shared by every caller (the study's
//! `nago-update`/`nago-propose`, `nago-ask`, the benchmark) so they propose the same points
//! for the same history.
//!
//! - [`initial_design_size`]: how many evaluations come from the Sobol design before the
//!   model takes over.
//! - [`derive_seed`]: the seed derivation (identical to `nago_store::derive_seed`), and the
//!   labels: the surrogate's fit seed is `derive_seed(seed, &["surrogate"])`, round r's
//!   proposal seed `derive_seed(seed, &["propose", &r.to_string()])`, the Sobol design's
//!   scrambling `derive_seed(seed, &["sobol"])`.
//! - [`fit_options`] / [`propose_options`]: the options with those seeds.
//! - warm starts: [`WARM_ITER`], [`FULL_FIT_EVERY`], [`WARM_DROP`], [`MAX_FIT_POINTS`].
//! - the objectives' GP prior mean: [`PRIOR_MEAN`] (a linear trend + 2 sd, pessimistic).

use crate::engine::{FitOptions, ProposeOptions};

/// L-BFGS iterations of a warm-started fit (from the previous fit's hyperparameters).
pub const WARM_ITER: usize = 12;
/// A full multi-start fit at least every this many fits (the warm chain's length).
pub const FULL_FIT_EVERY: usize = 8;
/// A full multi-start fit when the warm fit's log likelihood per point is below the previous
/// fit's by more than this (the data no longer suit the old hyperparameters).
pub const WARM_DROP: f64 = 0.05;
/// Beyond this many observations the hyperparameters are fitted on a strided subset of at
/// most this size (every 2nd, 4th, … point; see [`crate::gp::fit_subset`]); the model still
/// conditions on every observation.
pub const MAX_FIT_POINTS: usize = 600;
/// Below this many observations every fit is a full multi-start fit (it is cheap there, and
/// a warm chain can stay in a poor local optimum, e.g. a low-noise reading of noisy data).
pub const WARM_MIN_POINTS: usize = 150;
/// The noise prior for evaluations known to be noisy (nago-ask's `problem.noisy`):
/// N(ln 0.05, 1.5²) on the standardised log noise variance, instead of N(ln 1e-3, 2²).
pub const NOISY_NOISE_PRIOR: (f64, f64) = (-2.995_732_273_553_991, 1.5);
/// The objectives' GP prior mean, in standard deviations of the observed values above their
/// mean (objectives are minimised, so above is pessimistic; [`crate::gp::GpFitOptions::prior_mean`]).
/// Far from the data the posterior mean reverts to it. With the data mean (0) an unexplored
/// corner of the cube predicts the average observation with the prior's full variance, and
/// EHVI, whose incumbent front is rarely far below the average when the evaluations are noisy
/// or the model is uncertain, prefers such corners to the neighbourhood of the best points:
/// on DTLZ2 with 10 % noise (Pareto set at the centre of x1..x5) 40 % of the proposals'
/// x1..x5 lay within 0.01 of a face (8 % with this mean; 10 seeds) and nago fell behind
/// random search (hypervolume 0.084 against 0.137; 0.241 with it). A constant mean at the
/// pessimistic end of the data (De Ath, Fieldsend & Everson, "What do you mean? The role of
/// the mean function in Bayesian optimisation", GECCO 2020) removes that pull; the
/// hyperparameters are fitted with it. The offset is added to a linear trend in x (a ridge
/// regression, [`crate::gp::GpFitOptions::trend`]), not to the data mean: a constant
/// pessimistic mean also hid the faces where the objective does fall (ZDT's Pareto set lies
/// on the face x2..x6 = 0, and with noise nago crept towards it: ZDT1-n10 112.6 against 118.4
/// with the data mean); the trend extrapolates that fall, and an interior optimum (DTLZ2) has
/// a flat trend, so the corners stay pessimistic there (10 seeds: ZDT1-n10 118.4, DTLZ2-n10
/// 0.260).
pub const PRIOR_MEAN: f64 = 2.0;
/// [`PRIOR_MEAN`] for evaluations known to be noisy ([`crate::engine::FitOptions::noisy`],
/// nago-ask's `problem.noisy`): 1 sd above the trend instead of 2. With the noisy EHVI
/// ([`crate::nehvi`]) the pull to unexplored corners that the offset counters is weaker, and
/// the larger offset kept the model pessimistic about the faces where ZDT's Pareto set lies.
/// 10 seeds (bench_bo, same runs): offset 2 / 1 / 0: ZDT1-n5 120.37 / 120.56 / 120.51,
/// ZDT1-n10 120.29 / 120.36 / 119.77, ZDT3-n5 125.07 / 125.28 / 126.92, ZDT3-n10 122.48 /
/// 124.40 / 126.50, DTLZ2-n5 0.307 / 0.271 / 0.230, DTLZ2-n10 0.266 / 0.253 / 0.165: 0 loses
/// DTLZ2 (the corners again), 1 is ahead of BoTorch's qLogNEHVI on 5 of the 6.
pub const NOISY_PRIOR_MEAN: f64 = 1.0;
/// Standardised noise variance above which the incumbent front comes from the model
/// (posterior mean at the observed points) rather than from the noisy observations, in
/// [`crate::engine::FrontSource::Auto`]: noise sd above 10 % of the objective's sd.
pub const NOISY_FRONT_NOISE: f64 = 1e-2;

/// Evaluations from the space-filling design before the model takes over: 2(d + 1), at
/// least 4, at most a fifth of the budget (but at least 4), never more than the budget.
/// For 6 inputs and 60 evaluations: 12; for 2 inputs: 6.
pub fn initial_design_size(dims: usize, budget: usize) -> usize {
    let cap = (budget / 5).max(4);
    (2 * (dims + 1)).clamp(4, cap.max(4)).min(budget.max(1))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed derived from a base seed and labels (FNV-1a of each label, mixed by splitmix64);
/// the same function as `nago_store::derive_seed`.
pub fn derive_seed(base: u64, labels: &[&str]) -> u64 {
    let mut h = mix(base ^ 0x9e37_79b9_7f4a_7c15);
    for l in labels {
        let mut f: u64 = 0xcbf2_9ce4_8422_2325;
        for b in l.as_bytes() {
            f ^= *b as u64;
            f = f.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = mix(h ^ f ^ (l.len() as u64).rotate_left(32));
    }
    h
}

/// The fit options for a study or run seeded `seed`: defaults, seed
/// `derive_seed(seed, &["surrogate"])`, no warm start (set `warm_start` to the previous
/// surrogate).
pub fn fit_options<'a>(seed: u64) -> FitOptions<'a> {
    let mut fo = FitOptions::default();
    fo.gp.seed = derive_seed(seed, &["surrogate"]);
    fo
}

/// The proposal options of round `round` (0, 1, … ; nago-ask's `ask_index`) of a study or
/// run seeded `seed`: defaults, seed `derive_seed(seed, &["propose", round])`.
pub fn propose_options(seed: u64, round: u64) -> ProposeOptions {
    let mut po = ProposeOptions::default();
    po.optimize.seed = derive_seed(seed, &["propose", &round.to_string()]);
    po
}

/// The Sobol design's scrambling seed for a study or run seeded `seed`.
pub fn sobol_seed(seed: u64) -> u64 {
    derive_seed(seed, &["sobol"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_design_rule() {
        assert_eq!(initial_design_size(6, 60), 12);
        assert_eq!(initial_design_size(2, 60), 6);
        assert_eq!(initial_design_size(1, 60), 4);
        assert_eq!(initial_design_size(30, 1000), 62);
        assert_eq!(initial_design_size(6, 3), 3);
    }
}
