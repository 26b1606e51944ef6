//! Pareto dominance, non-dominated sorting, crowding distance and exact hypervolume.
//!
//! Everything is for minimisation (callers negate maximised objectives). Hypervolume is exact
//! for 1, 2 and 3 objectives: a sweep in 2-D (O(n log n)) and slabs of 2-D sweeps in 3-D
//! (O(n² log n), ample for the fronts of a NAS study).

use crate::BoError;

/// Whether `a` dominates `b`: no worse in every objective and better in one.
pub fn dominates(a: &[f64], b: &[f64]) -> bool {
    let mut better = false;
    for (x, y) in a.iter().zip(b) {
        if x > y {
            return false;
        }
        if x < y {
            better = true;
        }
    }
    better
}

/// The non-domination rank of every point (0 = the Pareto front). Duplicates share a rank.
pub fn non_dominated_sort(ys: &[Vec<f64>]) -> Vec<usize> {
    let n = ys.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominates_list: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if i != j && dominates(&ys[i], &ys[j]) {
                dominates_list[i].push(j);
                dominated_by[j] += 1;
            }
        }
    }
    let mut rank = vec![usize::MAX; n];
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    let mut r = 0;
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            rank[i] = r;
            for &j in &dominates_list[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        current = next;
        r += 1;
    }
    rank
}

/// Indices of the non-dominated points (ascending). Duplicated points are all kept.
pub fn pareto_indices(ys: &[Vec<f64>]) -> Vec<usize> {
    (0..ys.len())
        .filter(|&i| !(0..ys.len()).any(|j| j != i && dominates(&ys[j], &ys[i])))
        .collect()
}

/// NSGA-II crowding distance of each point within its set (boundary points: infinity).
pub fn crowding_distance(ys: &[Vec<f64>]) -> Vec<f64> {
    let n = ys.len();
    let mut d = vec![0.0; n];
    if n == 0 {
        return d;
    }
    let m = ys[0].len();
    #[allow(clippy::needless_range_loop)]
    for k in 0..m {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&a, &b| ys[a][k].total_cmp(&ys[b][k]).then(a.cmp(&b)));
        let lo = ys[idx[0]][k];
        let hi = ys[idx[n - 1]][k];
        d[idx[0]] = f64::INFINITY;
        d[idx[n - 1]] = f64::INFINITY;
        if hi > lo {
            for w in 1..n.saturating_sub(1) {
                d[idx[w]] += (ys[idx[w + 1]][k] - ys[idx[w - 1]][k]) / (hi - lo);
            }
        }
    }
    d
}

/// The exact hypervolume dominated by `ys` and bounded by `reference` (points not strictly
/// better than the reference in every objective contribute nothing). 1–3 objectives.
pub fn hypervolume(ys: &[Vec<f64>], reference: &[f64]) -> Result<f64, BoError> {
    let m = reference.len();
    if ys.iter().any(|y| y.len() != m) {
        return Err(BoError::Invalid(format!(
            "hypervolume: points and reference ({m} objectives) differ in length"
        )));
    }
    let pts: Vec<&Vec<f64>> = ys
        .iter()
        .filter(|y| y.iter().zip(reference).all(|(a, r)| a < r))
        .collect();
    Ok(match m {
        1 => pts.iter().map(|y| reference[0] - y[0]).fold(0.0, f64::max),
        2 => hv2(
            pts.iter().map(|y| (y[0], y[1])).collect(),
            reference[0],
            reference[1],
        ),
        3 => {
            let mut p: Vec<[f64; 3]> = pts.iter().map(|y| [y[0], y[1], y[2]]).collect();
            p.sort_by(|a, b| a[2].total_cmp(&b[2]));
            let mut hv = 0.0;
            for i in 0..p.len() {
                let z_next = if i + 1 < p.len() {
                    p[i + 1][2]
                } else {
                    reference[2]
                };
                if z_next > p[i][2] {
                    let slice = p[..=i].iter().map(|q| (q[0], q[1])).collect();
                    hv += hv2(slice, reference[0], reference[1]) * (z_next - p[i][2]);
                }
            }
            hv
        }
        _ => {
            return Err(BoError::Invalid(format!(
                "exact hypervolume is implemented for 1–3 objectives, not {m}"
            )))
        }
    })
}

/// 2-D hypervolume of points already inside the reference box.
fn hv2(mut p: Vec<(f64, f64)>, r0: f64, r1: f64) -> f64 {
    p.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut hv = 0.0;
    let mut level = r1;
    for (x, y) in p {
        if y < level {
            hv += (r0 - x) * (level - y);
            level = y;
        }
    }
    hv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fronts() {
        let r = [1.0, 1.0];
        assert_eq!(hypervolume(&[], &r).unwrap(), 0.0);
        assert!((hypervolume(&[vec![0.5, 0.5]], &r).unwrap() - 0.25).abs() < 1e-15);
        // Staircase (0,.5),(.5,0): 0.5 + 0.5 − 0.25 = 0.75.
        let f = vec![vec![0.0, 0.5], vec![0.5, 0.0]];
        assert!((hypervolume(&f, &r).unwrap() - 0.75).abs() < 1e-15);
        // Dominated, duplicated and outside points change nothing.
        let mut g = f.clone();
        g.push(vec![0.6, 0.6]);
        g.push(vec![0.0, 0.5]);
        g.push(vec![-1.0, 1.0]);
        g.push(vec![2.0, -5.0]);
        assert!((hypervolume(&g, &r).unwrap() - 0.75).abs() < 1e-15);
        // Linear front of n points on x+y=1 in [0,1]²: 1/2 − 1/(2n) ... check n=4 by hand:
        // points (0,1)(1/3,2/3)(2/3,1/3)(1,0) with ref (1,1): 1/3·1/3 + 1/3·2/3 = 1/3.
        let lin: Vec<Vec<f64>> = (0..4)
            .map(|i| vec![i as f64 / 3.0, 1.0 - i as f64 / 3.0])
            .collect();
        assert!((hypervolume(&lin, &r).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // 1-D.
        assert_eq!(hypervolume(&[vec![0.25], vec![0.5]], &[1.0]).unwrap(), 0.75);
    }

    #[test]
    fn three_d() {
        let r = [1.0, 1.0, 1.0];
        assert!((hypervolume(&[vec![0.0, 0.0, 0.0]], &r).unwrap() - 1.0).abs() < 1e-15);
        // Three unit-axis boxes: each point 0 in one axis, .5 in the others → union by
        // inclusion–exclusion: 3·(1·.5·.5) − 3·(.5·.5·.5) + .5³ = .75 − .375 + .125 = .5.
        let f = vec![
            vec![0.0, 0.5, 0.5],
            vec![0.5, 0.0, 0.5],
            vec![0.5, 0.5, 0.0],
        ];
        assert!((hypervolume(&f, &r).unwrap() - 0.5).abs() < 1e-12);
        // Agrees with Monte Carlo-free brute force on a grid for a random front.
        let pts = crate::design::sobol(0, 12, 3, 3).unwrap();
        let hv = hypervolume(&pts, &r).unwrap();
        let g = 60;
        let mut count = 0;
        for a in 0..g {
            for b in 0..g {
                for c in 0..g {
                    let z = [
                        (a as f64 + 0.5) / g as f64,
                        (b as f64 + 0.5) / g as f64,
                        (c as f64 + 0.5) / g as f64,
                    ];
                    if pts.iter().any(|p| (0..3).all(|k| p[k] <= z[k])) {
                        count += 1;
                    }
                }
            }
        }
        let approx = count as f64 / (g * g * g) as f64;
        assert!((hv - approx).abs() < 0.02, "{hv} vs {approx}");
        assert!(hypervolume(&[vec![0.0; 4]], &[1.0; 4]).is_err());
    }

    #[test]
    fn sorting_ties_duplicates_one_point() {
        assert_eq!(non_dominated_sort(&[vec![1.0, 1.0]]), vec![0]);
        let ys = vec![
            vec![1.0, 2.0],
            vec![1.0, 2.0], // duplicate: same rank
            vec![2.0, 1.0],
            vec![2.0, 2.0], // dominated by both
            vec![1.0, 3.0], // tie in the first objective, worse in the second
            vec![3.0, 3.0],
        ];
        assert_eq!(non_dominated_sort(&ys), vec![0, 0, 0, 1, 1, 2]);
        assert_eq!(pareto_indices(&ys), vec![0, 1, 2]);
        assert!(!dominates(&ys[0], &ys[1]));
        let cd = crowding_distance(&ys[..3]);
        assert!(cd.iter().filter(|v| v.is_infinite()).count() >= 2);
    }
}
