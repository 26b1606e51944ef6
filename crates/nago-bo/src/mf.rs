//! Multi-fidelity: successive-halving rungs over epoch budgets and multi-objective
//! promotions.
//!
//! The rungs are `max, max/η, max/η², …` down to the smallest one ≥ `min`. New
//! configurations start at the lowest rung; at each rung, a configuration is promotable
//! when it ranks in the top ⌊n/η⌋ of the n results at that rung (asynchronous successive
//! halving, as in BOHB's and ASHA's promotions, which suits rounds of array jobs that never
//! wait for a full bracket). Ranking is multi-objective: feasible before infeasible before
//! failed, then non-domination rank, then crowding distance (larger first), then trial id.

use crate::pareto::{crowding_distance, non_dominated_sort};

/// The rung budgets, ascending. Budgets are rounded to whole epochs when `min ≥ 1`.
pub fn rungs(min: f64, max: f64, eta: f64) -> Vec<f64> {
    let mut r = vec![max];
    if eta > 1.0 && min > 0.0 {
        let mut b = max / eta;
        while b >= min * (1.0 - 1e-9) && r.len() < 32 {
            r.push(b);
            b /= eta;
        }
    }
    if min >= 1.0 {
        for b in r.iter_mut() {
            *b = b.round();
        }
        r.dedup();
    }
    r.reverse();
    r
}

/// One result at a rung.
#[derive(Debug, Clone, PartialEq)]
pub struct RungEntry {
    /// The trial (or configuration) id.
    pub id: String,
    /// Objective values (minimised); `None` when the evaluation failed.
    pub y: Option<Vec<f64>>,
    /// Met every constraint.
    pub feasible: bool,
}

/// The entries in promotion order (best first), by the ranking described in the module docs.
pub fn rank(entries: &[RungEntry]) -> Vec<usize> {
    let class = |e: &RungEntry| match (&e.y, e.feasible) {
        (Some(_), true) => 0,
        (Some(_), false) => 1,
        (None, _) => 2,
    };
    let mut key: Vec<(usize, usize, f64)> = vec![(2, 0, 0.0); entries.len()];
    for c in 0..2 {
        let idx: Vec<usize> = (0..entries.len())
            .filter(|&i| class(&entries[i]) == c)
            .collect();
        let ys: Vec<Vec<f64>> = idx.iter().map(|&i| entries[i].y.clone().unwrap()).collect();
        let ranks = non_dominated_sort(&ys);
        let max_rank = ranks.iter().copied().max().unwrap_or(0);
        for r in 0..=max_rank {
            let members: Vec<usize> = (0..idx.len()).filter(|&k| ranks[k] == r).collect();
            let sub: Vec<Vec<f64>> = members.iter().map(|&k| ys[k].clone()).collect();
            let cd = crowding_distance(&sub);
            for (m, &k) in members.iter().enumerate() {
                key[idx[k]] = (c, r, cd[m]);
            }
        }
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        key[a]
            .0
            .cmp(&key[b].0)
            .then(key[a].1.cmp(&key[b].1))
            .then(key[b].2.total_cmp(&key[a].2))
            .then(entries[a].id.cmp(&entries[b].id))
    });
    order
}

/// Ids promotable from a rung: the top ⌊n/η⌋ with results (failed ones never), minus those
/// already promoted, best first.
pub fn promotable(entries: &[RungEntry], already: &[String], eta: f64) -> Vec<String> {
    let k = (entries.len() as f64 / eta).floor() as usize;
    rank(entries)
        .into_iter()
        .take(k)
        .filter(|&i| entries[i].y.is_some())
        .map(|i| entries[i].id.clone())
        .filter(|id| !already.contains(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rung_budgets() {
        assert_eq!(rungs(30.0, 120.0, 2.0), vec![30.0, 60.0, 120.0]);
        assert_eq!(rungs(1.0, 27.0, 3.0), vec![1.0, 3.0, 9.0, 27.0]);
        assert_eq!(rungs(10.0, 10.0, 2.0), vec![10.0]);
        assert_eq!(rungs(5.0, 12.0, 2.0), vec![6.0, 12.0]);
    }

    #[test]
    fn promotion_by_non_dominated_sorting() {
        let e = |id: &str, y: Option<[f64; 2]>, f: bool| RungEntry {
            id: id.into(),
            y: y.map(|v| v.to_vec()),
            feasible: f,
        };
        let entries = vec![
            e("a", Some([0.1, 0.9]), true),
            e("b", Some([0.9, 0.1]), true),
            e("c", Some([0.5, 0.5]), true),
            e("d", Some([0.6, 0.6]), true),  // dominated by c
            e("e", Some([0.0, 0.0]), false), // best values but infeasible
            e("f", None, false),             // failed
        ];
        let order: Vec<&str> = rank(&entries)
            .into_iter()
            .map(|i| entries[i].id.as_str())
            .collect();
        // Front a, b, c: boundary points first (infinite crowding), then c; then d; then e, f.
        assert_eq!(order, vec!["a", "b", "c", "d", "e", "f"]);
        assert_eq!(promotable(&entries, &[], 2.0), vec!["a", "b", "c"]);
        assert_eq!(promotable(&entries, &["a".into()], 2.0), vec!["b", "c"]);
        assert!(promotable(&entries[..1], &[], 2.0).is_empty());
    }
}
