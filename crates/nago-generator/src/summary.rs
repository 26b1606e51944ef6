//! What a generator produces: the spread of sizes over many samples.

use crate::{sample, GenerateError};
use nago_arch::InputShape;
use nago_space::Generator;

/// min / median / max of one quantity over the samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryRow {
    /// Smallest value.
    pub min: f64,
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

impl SummaryRow {
    fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        SummaryRow {
            min: v[0],
            median,
            max: v[n - 1],
        }
    }
}

/// The distribution of sizes over `k` architectures of one generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Number of architectures sampled.
    pub samples: usize,
    /// (name, unit, row): parameters, MACs, activation memory, cells, op-graphs, operations.
    pub rows: Vec<(&'static str, SummaryRow)>,
}

/// Samples `k` architectures with seeds `seed, seed+1, …` and summarises them.
pub fn summarize(
    g: &Generator,
    seed: u64,
    k: usize,
    input: InputShape,
) -> Result<Summary, GenerateError> {
    let k = k.max(1);
    let mut cols: Vec<Vec<f64>> = (0..7).map(|_| Vec::with_capacity(k)).collect();
    for i in 0..k {
        let a = sample(g, seed.wrapping_add(i as u64), input)?;
        let vals = [
            a.counts.params as f64,
            a.counts.macs as f64,
            a.counts.activation_bytes as f64 / 1e6,
            a.cells.len() as f64,
            a.n_opgraphs() as f64,
            a.n_ops() as f64,
            a.width_multiplier as f64,
        ];
        for (c, v) in cols.iter_mut().zip(vals) {
            c.push(v);
        }
    }
    let names = [
        "params",
        "MACs",
        "activations (MB/img)",
        "cells",
        "op-graphs",
        "operations",
        "width multiplier",
    ];
    Ok(Summary {
        samples: k,
        rows: names
            .iter()
            .zip(cols)
            .map(|(n, c)| (*n, SummaryRow::of(c)))
            .collect(),
    })
}
