//! Bayesian optimisation for nago.
