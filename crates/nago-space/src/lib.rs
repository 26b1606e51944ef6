//! The NAGO search space.
//!
//! A *generator* ([`Generator`]) is one point of the hierarchical random-graph space of
//! Ru et al. (NeurIPS 2020): a graph model and its parameters for each of the three levels
//! (cells, op-graphs, operations), plus the stage, channel, merge and operation
//! distributions and a parameter budget. A [`Space`] says which of those hyperparameters
//! are searched and over which ranges; it maps generators to and from the unit cube that
//! the optimiser works in. A [`Study`] is the whole study definition (`study.json`).
//!
//! This crate has no randomness and no I/O beyond parsing: the generator crate samples
//! architectures, the store crate reads and writes files.

mod error;
mod generator;
pub mod json;
mod space;
mod study;

pub use error::SpaceError;
pub use generator::{
    Generator, GraphModel, LevelSpec, MergeKind, MergeWeights, Op, OpWeights, GENERATOR_SCHEMA,
};
pub use space::{Dim, DimKind, Domain, FlatValue, Param, SimplexSpec, Space, PARAM_NAMES};
pub use study::{
    Budgets, Constraint, DatasetKind, DatasetSpec, FinalSelect, FinalSpec, FinalWidth, Goal,
    Objective, RungSeeds, ScheduleHorizon, SearchSpec, Study, TrainingSpec, KNOWN_METRICS,
    PRE_TRAINING_METRICS, STUDY_SCHEMA,
};
