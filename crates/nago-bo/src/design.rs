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
    if d > MAX_DIMS {
        return Err(BoError::Invalid(format!(
            "Sobol design supports at most {MAX_DIMS} dimensions, got {d}"
        )));
    }
    if start + n > 1 << 16 {
        return Err(BoError::Invalid(format!(
            "Sobol design supports at most 65536 points, asked for {}",
            start + n
        )));
    }
    let s = (seed ^ (seed >> 32)) as u32;
    Ok((start..start + n)
        .map(|i| {
            (0..d)
                .map(|j| sobol_burley::sample(i as u32, j as u32, s) as f64)
                .collect()
        })
        .collect())
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

    #[test]
    fn deterministic_seeded_and_resumable() {
        let a = sobol(0, 10, 3, 5).unwrap();
        assert_eq!(a, sobol(0, 10, 3, 5).unwrap());
        assert_ne!(a, sobol(0, 10, 3, 6).unwrap());
        assert_eq!(a[4..], sobol(4, 6, 3, 5).unwrap()[..]);
        assert!(sobol(0, 1, MAX_DIMS + 1, 0).is_err());
    }
}
