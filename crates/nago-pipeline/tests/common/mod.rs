//! Helpers the pipeline's integration tests share (each test file uses some of them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root (the tests run the binaries from there, where data/ is).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A small deterministic generator for kill moments (seeded, never the clock).
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}
