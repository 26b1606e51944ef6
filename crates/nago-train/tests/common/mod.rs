//! Helpers shared by the trainer's tests.
#![allow(dead_code)]

use nago_arch::{Arch, InputShape};
use nago_space::{Generator, GraphModel, LevelSpec, MergeWeights, OpWeights};
use nago_train::rng::SplitMix;
use std::io::Write;
use std::path::Path;

/// A random generator with every merge kind and every operation possible, small widths.
pub fn random_generator(r: &mut SplitMix) -> Generator {
    let models = [GraphModel::Ws, GraphModel::Er, GraphModel::Ba];
    let mut level = |max_n: u64| {
        let model = models[r.below(3) as usize];
        let n = 1 + r.below(max_n) as u32;
        // Only settings that can be connected (WS needs a ring: N ≥ 3, K ≥ 2 after clipping).
        let n = match model {
            GraphModel::Er => n,
            GraphModel::Ws => n.max(3),
            GraphModel::Ba => n.max(2),
        };
        let k = 1 + r.below(4) as u32;
        let k = if model == GraphModel::Ws { k.max(2) } else { k };
        let p = 0.1 + 0.8 * (r.below(1000) as f64 / 1000.0);
        let mut w = || 0.05 + (r.below(1000) as f64) / 1000.0;
        LevelSpec {
            model,
            n,
            k,
            p,
            merge: MergeWeights {
                sum: w(),
                attention: w(),
                concat: w(),
            },
        }
    };
    let top = level(5);
    let mid = level(3);
    let bottom = level(5);
    let mut w = || 0.05 + (r.below(1000) as f64) / 1000.0;
    Generator {
        top,
        mid,
        bottom,
        stage_ratios: [1.0 / 3.0; 3],
        channel_ratios: [1.0, 2.0, 4.0],
        ops: OpWeights {
            conv3x3: w(),
            conv5x5: w(),
            conv1x1: w(),
            conv3x1: w(),
            conv1x3: w(),
            avgpool3x3: w(),
            avgpool5x5: w(),
        },
        param_limit: 2_000.0 + r.below(20_000) as f64,
        // Narrow and paper-wide heads alike.
        head_channels: [16, 64, 1280][r.below(3) as usize],
        head_dropout: [0.0, 0.2, 0.5][r.below(3) as usize],
    }
}

/// A small Fashion-MNIST-shaped architecture (a fixed generator with every merge kind).
pub fn small_arch(seed: u64, input: InputShape) -> Arch {
    let mut g = Generator::default();
    g.top.n = 4;
    g.top.k = 2;
    g.mid.n = 1;
    g.bottom.n = 3;
    g.bottom.k = 2;
    g.param_limit = 3_000.0;
    nago_generator::sample(&g, seed, input).expect("samples")
}

pub fn fmnist_shape() -> InputShape {
    InputShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    }
}

/// The embedded Fashion-MNIST, if `make data/fashion-mnist` has fetched it.
pub fn fmnist_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist")
}

/// Writes an IDX file of unsigned bytes.
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8], gz: bool) {
    let mut bytes = vec![0u8, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    let mut f = std::fs::File::create(path).unwrap();
    if gz {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&bytes).unwrap();
        f.write_all(&e.finish().unwrap()).unwrap();
    } else {
        f.write_all(&bytes).unwrap();
    }
}

/// A tiny synthetic IDX dataset: class k images are bright in horizontal band k (learnable).
pub fn write_synthetic_idx(dir: &Path, n_train: usize, n_test: usize, classes: u8) {
    std::fs::create_dir_all(dir).unwrap();
    let mut r = SplitMix::new(5);
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let mut img = Vec::new();
        let mut lab = Vec::new();
        for _ in 0..n {
            let c = r.below(classes as u64) as u8;
            lab.push(c);
            for y in 0..28u32 {
                for _x in 0..28u32 {
                    let band = (y * classes as u32 / 28) as u8 == c;
                    let noise = r.below(60) as u8;
                    img.push(if band { 180 + noise } else { noise });
                }
            }
        }
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            &[n as u32, 28, 28],
            &img,
            true,
        );
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            &[n as u32],
            &lab,
            false,
        );
    }
}
