//! Multi-objective, multi-fidelity Bayesian optimisation on the unit cube, for nago.
//!
//! The pieces are separate and composable (in the spirit of BoTorch), so the stage binaries,
//! the benchmark and the tests all drive the same code:
//!
//! - [`design`]: the space-filling initial design (Owen-scrambled Sobol).
//! - [`gp`]: one Gaussian process per objective (Matérn-5/2, ARD, fitted noise), fitted by
//!   maximising the log marginal likelihood (plus weak priors) from several seeded starts.
//! - [`noise`]: heteroscedastic noise from replicated points (per-point noise scales).
//! - [`pareto`]: non-dominated sorting, crowding distance, exact hypervolume in 1–3 D.
//! - [`acq`]: expected improvement (1 objective), exact expected hypervolume improvement
//!   (2 objectives), quasi-Monte-Carlo EHVI (3 objectives), times the probability of
//!   feasibility.
//! - [`space`]: the mixed unit cube (reals, integers, one-hot groups, simplices) and snapping.
//! - [`optimize`]: maximising an acquisition over the mixed cube (many quasi-random starts,
//!   then evolutionary refinement that snaps every candidate).
//! - [`engine`]: fitting a [`engine::Surrogate`] to observations and proposing a batch of q
//!   points by kriging believer, pending points included.
//! - [`mf`]: successive-halving rungs and multi-objective promotions (BOHB/ASHA style).
//!
//! Nothing here does I/O: the binaries read and write the study directory.

pub mod acq;
pub mod ask;
pub mod defaults;
pub mod design;
pub mod engine;
pub mod gp;
mod lbfgs;
pub mod mf;
pub mod nehvi;
pub mod noise;
pub mod optimize;
pub mod pareto;
pub mod space;

pub use engine::{
    fit, propose, FitOptions, FrontSource, Observation, ProposeOptions, Surrogate, WarmStart,
};
pub use gp::Gp;
pub use space::{Dim, MixedCube, Snap};

/// Errors of the optimiser.
#[derive(Debug, thiserror::Error)]
pub enum BoError {
    /// The inputs are inconsistent (dimensions, sizes, values).
    #[error("{0}")]
    Invalid(String),
    /// A linear-algebra failure that jitter could not fix.
    #[error("the kernel matrix is not positive definite: {0}")]
    NotPositiveDefinite(String),
}
