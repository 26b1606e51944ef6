//! The mixed unit cube: which coordinates are reals, integers, one-hot groups or simplices,
//! and how any point is snapped to a valid, canonical one.
//!
//! The optimiser moves freely in `[0,1]^d` and snaps every candidate before it is scored, so
//! it never scores a point that cannot be built, and two points that decode to the same
//! configuration score the same. Callers with their own encoding (nago's `Space`, whose
//! canonical point is `encode(decode(u))`) implement [`Snap`] themselves.

use serde::{Deserialize, Serialize};

/// How one coordinate is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Dim {
    /// A real in [0, 1].
    Real,
    /// An integer with `levels` values; level i is the cell [i/levels, (i+1)/levels).
    Int {
        /// Number of integer values.
        levels: u32,
    },
    /// One coordinate of a one-hot group (decoded by argmax).
    OneHot {
        /// First coordinate of the group.
        start: usize,
        /// Coordinates in the group.
        size: usize,
    },
    /// One coordinate of a simplex group (decoded by normalising).
    Simplex {
        /// First coordinate of the group.
        start: usize,
        /// Coordinates in the group.
        size: usize,
    },
}

/// Anything that maps a point of the cube to its canonical valid point.
pub trait Snap {
    /// The number of coordinates.
    fn dims(&self) -> usize;
    /// Snaps `u` in place (clamping to the cube first).
    fn snap(&self, u: &mut [f64]);
}

/// A mixed cube described by its [`Dim`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixedCube {
    /// The coordinates.
    pub dims: Vec<Dim>,
}

impl MixedCube {
    /// A cube of `d` reals.
    pub fn reals(d: usize) -> Self {
        MixedCube {
            dims: vec![Dim::Real; d],
        }
    }
}

impl Snap for MixedCube {
    fn dims(&self) -> usize {
        self.dims.len()
    }
    fn snap(&self, u: &mut [f64]) {
        for v in u.iter_mut() {
            *v = if v.is_nan() { 0.5 } else { v.clamp(0.0, 1.0) };
        }
        let mut i = 0;
        while i < self.dims.len() {
            match self.dims[i] {
                Dim::Real => i += 1,
                Dim::Int { levels } => {
                    let l = levels.max(1) as f64;
                    let level = (u[i] * l).floor().min(l - 1.0);
                    u[i] = (level + 0.5) / l;
                    i += 1;
                }
                Dim::OneHot { start, size } => {
                    let g = &mut u[start..start + size];
                    let mut best = 0;
                    for k in 1..size {
                        if g[k] > g[best] {
                            best = k;
                        }
                    }
                    for (k, v) in g.iter_mut().enumerate() {
                        *v = if k == best { 1.0 } else { 0.0 };
                    }
                    i = start + size;
                }
                Dim::Simplex { start, size } => {
                    let g = &mut u[start..start + size];
                    let s: f64 = g.iter().sum();
                    for v in g.iter_mut() {
                        *v = if s > 0.0 { *v / s } else { 1.0 / size as f64 };
                    }
                    i = start + size;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapping() {
        let c = MixedCube {
            dims: vec![
                Dim::Real,
                Dim::Int { levels: 4 },
                Dim::OneHot { start: 2, size: 3 },
                Dim::OneHot { start: 2, size: 3 },
                Dim::OneHot { start: 2, size: 3 },
                Dim::Simplex { start: 5, size: 2 },
                Dim::Simplex { start: 5, size: 2 },
            ],
        };
        let mut u = vec![1.3, 0.99, 0.2, 0.7, 0.1, 0.3, 0.1];
        c.snap(&mut u);
        let want = [1.0, 0.875, 0.0, 1.0, 0.0, 0.75, 0.25];
        assert!(
            u.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{u:?}"
        );
        let mut z = vec![f64::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        c.snap(&mut z);
        assert_eq!(z, vec![0.5, 0.125, 1.0, 0.0, 0.0, 0.5, 0.5]);
        let before = u.clone();
        c.snap(&mut u);
        assert!(
            u.iter().zip(&before).all(|(a, b)| (a - b).abs() < 1e-12),
            "snapping is idempotent"
        );
    }
}
