//! The initial design: Owen-scrambled Sobol points (Burley 2020, via `sobol_burley`).
//!
//! A scrambled Sobol sequence fills the cube more evenly than random points (every prefix of
//! 2^k points puts exactly one point in each of the 2^k equal slices of each axis) while the
//! scrambling seed makes different studies use different, still well-spread, points.

use crate::BoError;

/// The largest dimension supported (that of `sobol_burley`).
pub const MAX_DIMS: usize = sobol_burley::NUM_DIMENSIONS as usize;

/// Points `start..start + n` of the scrambled Sobol sequence in `[0,1)^d` for `seed`.
/// Taking points in order continues the same sequence, so an interrupted design resumes.
pub fn sobol(start: usize, n: usize, d: usize, seed: u64) -> Result<Vec<Vec<f64>>, BoError> {
    check_dims(d)?;
    sobol_on(start, n, &(0..d as u32).collect::<Vec<_>>(), seed)
}

fn check_dims(d: usize) -> Result<(), BoError> {
    if d > MAX_DIMS {
        return Err(BoError::Invalid(format!(
            "Sobol design supports at most {MAX_DIMS} dimensions, got {d}"
        )));
    }
    Ok(())
}

/// Points `start..start + n` of the scrambled Sobol sequence for `seed`, on the Sobol
/// dimensions `dims` (each below [`MAX_DIMS`]) in that order.
fn sobol_on(start: usize, n: usize, dims: &[u32], seed: u64) -> Result<Vec<Vec<f64>>, BoError> {
    if start + n > 1 << 16 {
        return Err(BoError::Invalid(format!(
            "Sobol design supports at most 65536 points, asked for {}",
            start + n
        )));
    }
    let s = (seed ^ (seed >> 32)) as u32;
    Ok((start..start + n)
        .map(|i| {
            dims.iter()
                .map(|&j| sobol_burley::sample(i as u32, j, s) as f64)
                .collect()
        })
        .collect())
}

/// Whether Sobol dimensions `a` and `b` share their leading bit (up to complement: the
/// scrambling flips it by a constant per dimension) over the first 16 points: then a
/// hyperparameter of two levels on one decides the other's for a short design. (Every
/// dimension's first direction number is 1, so over the first 16 points a leading bit is the
/// index's lowest bit XOR a linear function of its next three (a digital net; the scramble
/// only complements it): 8 patterns, so at most 8 dimensions can be pairwise unlocked.)
fn locked(a: u32, b: u32) -> bool {
    const EARLY: u32 = 16;
    let same = (0..EARLY)
        .filter(|&i| {
            (sobol_burley::sample(i, a, 0) >= 0.5) == (sobol_burley::sample(i, b, 0) >= 0.5)
        })
        .count();
    same == 0 || same == EARLY as usize
}

/// The Sobol dimensions an initial design of `d` coordinates uses: the first ones, skipping
/// any that is [`locked`] to one taken before it (plain Sobol's dimensions 0 and 5, 1 and 6,
/// and 52 more pairs among the first 32 are); past the most that can be unlocked, the rest
/// in order.
fn unlocked_dims(d: usize) -> Result<Vec<u32>, BoError> {
    check_dims(d)?;
    let mut dims: Vec<u32> = Vec::with_capacity(d);
    for k in 0..sobol_burley::NUM_DIMENSIONS {
        if dims.len() == d {
            break;
        }
        if dims.iter().all(|&j| !locked(j, k)) {
            dims.push(k);
        }
    }
    for k in 0..sobol_burley::NUM_DIMENSIONS {
        if dims.len() == d {
            break;
        }
        if !dims.contains(&k) {
            dims.push(k);
        }
    }
    Ok(dims)
}

/// Points `start..start + n` of the initial design in `[0,1)^d` for `seed`: [`sobol`] on
/// the Sobol dimensions whose leading bits are not locked together early. Every axis keeps
/// the stratification; every pair of coordinates of a design of up to 8 (the most that can
/// be unlocked) puts points in all four quarters of its square within the first 16 points. In
/// plain Sobol, coordinates 0 and 5 share their leading bit over the first 16 points, whatever
/// the seed: two 2-level integer hyperparameters there (the quick space's top.n and
/// bottom.n) took only two of their four combinations in a 22-evaluation search.
pub fn initial_design(
    start: usize,
    n: usize,
    d: usize,
    seed: u64,
) -> Result<Vec<Vec<f64>>, BoError> {
    sobol_on(start, n, &unlocked_dims(d)?, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_axis_is_stratified() {
        // 2^k points: exactly one in each slice [i/2^k, (i+1)/2^k) of every axis.
        for seed in [0u64, 7, 123456789] {
            let pts = sobol(0, 64, 8, seed).unwrap();
            for j in 0..8 {
                let mut seen = [false; 64];
                for p in &pts {
                    assert!((0.0..1.0).contains(&p[j]));
                    let cell = (p[j] * 64.0) as usize;
                    assert!(!seen[cell], "two points in slice {cell} of axis {j}");
                    seen[cell] = true;
                }
            }
        }
    }

    #[test]
    fn first_two_axes_form_a_net() {
        // Dimensions 0 and 1 of Sobol are a (0,2)-sequence: 16 points put one point in each
        // 4×4, 2×8 and 8×2 elementary box.
        let pts = sobol(0, 16, 2, 42).unwrap();
        for (a, b) in [(4usize, 4usize), (2, 8), (8, 2), (16, 1), (1, 16)] {
            let mut count = vec![0; a * b];
            for p in &pts {
                count[(p[0] * a as f64) as usize * b + (p[1] * b as f64) as usize] += 1;
            }
            assert!(count.iter().all(|&c| c == 1), "{a}x{b}: {count:?}");
        }
    }

    /// Every pair of coordinates of the initial design, each cut at 1/2, has points in all
    /// four quarters among the first 16 points, for any seed; plain Sobol's coordinates 0
    /// and 5 leave two quarters empty.
    #[test]
    fn initial_design_balances_every_pair_early() {
        let quarters = |pts: &[Vec<f64>], a: usize, b: usize| {
            let mut c = [0; 4];
            for p in pts {
                c[2 * usize::from(p[a] >= 0.5) + usize::from(p[b] >= 0.5)] += 1;
            }
            c
        };
        for seed in 0..20u64 {
            let plain = sobol(0, 16, 8, seed).unwrap();
            assert!(
                quarters(&plain, 0, 5).contains(&0),
                "{:?}",
                quarters(&plain, 0, 5)
            );
            for d in [2usize, 5, 8] {
                let pts = initial_design(0, 16, d, seed).unwrap();
                for a in 0..d {
                    for b in a + 1..d {
                        let c = quarters(&pts, a, b);
                        assert!(!c.contains(&0), "seed {seed}, coordinates {a}, {b}: {c:?}");
                    }
                }
                for j in 0..d {
                    let mut seen = [false; 16];
                    for p in &pts {
                        let cell = (p[j] * 16.0) as usize;
                        assert!(!seen[cell], "seed {seed}: slice {cell} of axis {j} twice");
                        seen[cell] = true;
                    }
                }
                assert_eq!(pts[4..], initial_design(4, 12, d, seed).unwrap()[..]);
            }
        }
        // Past the dimensions that can be unlocked, the rest follow in order.
        let dims = unlocked_dims(16).unwrap();
        let free = (1..16)
            .take_while(|&m| (0..m).all(|a| (a + 1..m).all(|b| !locked(dims[a], dims[b]))))
            .last()
            .unwrap();
        assert_eq!(free, 8, "{dims:?}");
        let mut sorted = dims.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 16);
        // The first coordinates are Sobol's first dimensions: a design of two is unchanged.
        assert_eq!(
            initial_design(0, 9, 2, 3).unwrap(),
            sobol(0, 9, 2, 3).unwrap()
        );
    }

    #[test]
    fn deterministic_seeded_and_resumable() {
        let a = sobol(0, 10, 3, 5).unwrap();
        assert_eq!(a, sobol(0, 10, 3, 5).unwrap());
        assert_ne!(a, sobol(0, 10, 3, 6).unwrap());
        assert_eq!(a[4..], sobol(4, 6, 3, 5).unwrap()[..]);
        assert!(sobol(0, 1, MAX_DIMS + 1, 0).is_err());
    }
}
