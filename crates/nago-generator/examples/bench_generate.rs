//! `make bench-generate`: architectures sampled (and counted) per second on one core, for
//! generators drawn uniformly from the paper's default space. No file writing.
//!
//! Prints a small table and, as its last line, `generate: <N> archs/s`.

use nago_arch::InputShape;
use nago_space::Space;
use std::time::Instant;

// The same allocator as the nago binaries: sampling builds many small vectors.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let space = Space::default();
    let input = InputShape {
        channels: 1,
        height: 28,
        width: 28,
        classes: 10,
    };
    // A fixed set of generators spread over the space (a deterministic low-discrepancy walk).
    let d = space.n_dims();
    let gens: Vec<_> = (0..256)
        .map(|i| {
            let u: Vec<f64> = (0..d)
                .map(|j| ((i as f64 + 0.5) * (0.618_033_988_75 + 0.1 * j as f64)).fract())
                .collect();
            space.decode(&u).expect("in the cube")
        })
        .collect();
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    // Warm-up.
    let mut sink = 0u64;
    for (i, g) in gens.iter().enumerate().take(64) {
        sink ^= nago_generator::sample(g, i as u64, input)
            .unwrap()
            .counts
            .params;
    }
    let start = Instant::now();
    let mut n = 0u64;
    let mut ops = 0usize;
    while start.elapsed().as_secs_f64() < secs {
        for g in &gens {
            let a = nago_generator::sample(g, n, input).unwrap();
            sink ^= a.counts.params;
            ops += a.n_ops();
            n += 1;
        }
    }
    let dt = start.elapsed().as_secs_f64();
    let rate = n as f64 / dt;
    println!("| what | value |");
    println!("|---|---|");
    println!("| architectures sampled | {n} |");
    println!("| seconds | {dt:.2} |");
    println!(
        "| mean operations per architecture | {:.1} |",
        ops as f64 / n as f64
    );
    println!("| µs per architecture | {:.1} |", 1e6 / rate);
    eprintln!("(checksum {sink})");
    println!("generate: {rate:.0} archs/s");
}
