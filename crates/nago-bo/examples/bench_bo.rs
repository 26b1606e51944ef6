//! `make bench-bo`, the Rust half: nago-bo (the same `fit` + `propose` the stage binaries
//! call) and random search on standard 2-objective problems, 60 evaluations in batches of 4,
//! over seeds; then the propose latency at 50/200/500/1000 observations.
//!
//! Output lines (parsed by bench/bo/report.py):
//!   hv <problem> <method> <seed> <hv@20> <hv@40> <hv@60>
//!   latency <n_obs> <propose wall s (batch of 4)> <fit wall s> <propose CPU s>
//!
//! CPU seconds (user + system of this process, from /proc/self/stat at 10 ms resolution)
//! are printed because the wall clock on a shared machine includes other people's load.
//!
//! Usage: bench_bo [seeds] [--latency-only]

use nago_bo::engine::{fit, propose, FitOptions, Observation, ProposeOptions};
use nago_bo::pareto::hypervolume;
use nago_bo::MixedCube;
use std::f64::consts::PI;
use std::time::Instant;

struct Problem {
    name: &'static str,
    dims: usize,
    reference: [f64; 2],
    f: fn(&[f64]) -> [f64; 2],
}

fn branin_currin(x: &[f64]) -> [f64; 2] {
    let (x1, x2) = (15.0 * x[0] - 5.0, 15.0 * x[1]);
    let b = (x2 - 5.1 / (4.0 * PI * PI) * x1 * x1 + 5.0 / PI * x1 - 6.0).powi(2)
        + 10.0 * (1.0 - 1.0 / (8.0 * PI)) * x1.cos()
        + 10.0;
    let (u, v) = (x[0], x[1].max(1e-9));
    let c = (1.0 - (-1.0 / (2.0 * v)).exp())
        * (2300.0 * u.powi(3) + 1900.0 * u * u + 2092.0 * u + 60.0)
        / (100.0 * u.powi(3) + 500.0 * u * u + 4.0 * u + 20.0);
    [b, c]
}

fn zdt_g(x: &[f64]) -> f64 {
    1.0 + 9.0 * x[1..].iter().sum::<f64>() / (x.len() - 1) as f64
}
fn zdt1(x: &[f64]) -> [f64; 2] {
    let g = zdt_g(x);
    [x[0], g * (1.0 - (x[0] / g).sqrt())]
}
fn zdt2(x: &[f64]) -> [f64; 2] {
    let g = zdt_g(x);
    [x[0], g * (1.0 - (x[0] / g).powi(2))]
}
fn zdt3(x: &[f64]) -> [f64; 2] {
    let g = zdt_g(x);
    let r = x[0] / g;
    [x[0], g * (1.0 - r.sqrt() - r * (10.0 * PI * x[0]).sin())]
}
fn dtlz2(x: &[f64]) -> [f64; 2] {
    let g: f64 = x[1..].iter().map(|v| (v - 0.5).powi(2)).sum();
    [
        (1.0 + g) * (x[0] * PI / 2.0).cos(),
        (1.0 + g) * (x[0] * PI / 2.0).sin(),
    ]
}

const PROBLEMS: [Problem; 5] = [
    Problem {
        name: "BraninCurrin",
        dims: 2,
        reference: [18.0, 6.0],
        f: branin_currin,
    },
    Problem {
        name: "ZDT1",
        dims: 6,
        reference: [11.0, 11.0],
        f: zdt1,
    },
    Problem {
        name: "ZDT2",
        dims: 6,
        reference: [11.0, 11.0],
        f: zdt2,
    },
    Problem {
        name: "ZDT3",
        dims: 6,
        reference: [11.0, 11.0],
        f: zdt3,
    },
    Problem {
        name: "DTLZ2",
        dims: 6,
        reference: [1.1, 1.1],
        f: dtlz2,
    },
];

const EVALS: usize = 60;
const BATCH: usize = 4;
const INITIAL: usize = 12;

fn hv_at(ys: &[Vec<f64>], r: &[f64], n: usize) -> f64 {
    hypervolume(&ys[..n.min(ys.len())], r).unwrap()
}

fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn run_bo(p: &Problem, seed: u64) -> Vec<Vec<f64>> {
    let cube = MixedCube::reals(p.dims);
    let mut xs = nago_bo::design::sobol(0, INITIAL, p.dims, seed).unwrap();
    let mut ys: Vec<Vec<f64>> = xs.iter().map(|x| (p.f)(x).to_vec()).collect();
    while xs.len() < EVALS {
        let obs: Vec<Observation> = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| Observation {
                x: x.clone(),
                y: Some(y.clone()),
                feasible: true,
            })
            .collect();
        let mut fo = FitOptions::default();
        fo.gp.seed = seed;
        let sur = fit(&obs, 2, &p.reference, fo).unwrap();
        let mut po = ProposeOptions::default();
        po.optimize.seed = seed ^ (xs.len() as u64) << 32;
        let q = BATCH.min(EVALS - xs.len());
        let new = propose(&sur, &cube, &[], &[], q, po).unwrap();
        for x in new {
            ys.push((p.f)(&x).to_vec());
            xs.push(x);
        }
    }
    ys
}

fn run_random(p: &Problem, seed: u64) -> Vec<Vec<f64>> {
    let mut s = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0xabcdef;
    (0..EVALS)
        .map(|_| {
            let x: Vec<f64> = (0..p.dims).map(|_| uniform(&mut s)).collect();
            (p.f)(&x).to_vec()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let latency_only = args.iter().any(|a| a == "--latency-only");
    if !latency_only {
        for p in &PROBLEMS {
            for seed in 0..seeds {
                for (method, ys) in [("bo", run_bo(p, seed)), ("random", run_random(p, seed))] {
                    println!(
                        "hv {} {method} {seed} {:.6} {:.6} {:.6}",
                        p.name,
                        hv_at(&ys, &p.reference, 20),
                        hv_at(&ys, &p.reference, 40),
                        hv_at(&ys, &p.reference, 60)
                    );
                }
            }
        }
    }
    // Latency: the surrogate fitted on n random observations of ZDT1 (6-D), then one
    // proposal of a batch of 4 (what nago-propose does after loading surrogate.json).
    let p = &PROBLEMS[1];
    for n in [50usize, 200, 500, 1000] {
        let mut s = 12345u64;
        let obs: Vec<Observation> = (0..n)
            .map(|_| {
                let x: Vec<f64> = (0..p.dims).map(|_| uniform(&mut s)).collect();
                let y = (p.f)(&x).to_vec();
                Observation {
                    x,
                    y: Some(y),
                    feasible: true,
                }
            })
            .collect();
        let t0 = Instant::now();
        let mut fo = FitOptions::default();
        if n > 200 {
            // Fewer restarts on big data (what the latency run measures is propose).
            fo.gp.restarts = 1;
            fo.gp.max_iter = 30;
        }
        let sur = fit(&obs, 2, &p.reference, fo).unwrap();
        let fit_s = t0.elapsed().as_secs_f64();
        let text = serde_json_like(&sur);
        let c1 = cpu_seconds();
        let t1 = Instant::now();
        let mut sur2 = text;
        sur2.prepare().unwrap();
        let got = propose(
            &sur2,
            &MixedCube::reals(p.dims),
            &[],
            &[],
            BATCH,
            ProposeOptions::default(),
        )
        .unwrap();
        assert_eq!(got.len(), BATCH);
        let wall = t1.elapsed().as_secs_f64();
        println!("latency {n} {wall:.4} {fit_s:.3} {:.2}", cpu_seconds() - c1);
    }
}

/// A copy without the factorisation, as after loading surrogate.json.
fn serde_json_like(s: &nago_bo::Surrogate) -> nago_bo::Surrogate {
    let mut c = s.clone();
    for g in c.objectives.iter_mut() {
        *g = nago_bo::Gp::with_hyperparameters(
            g.x.clone(),
            &g.y.iter()
                .map(|v| v * g.y_std + g.y_mean)
                .collect::<Vec<_>>(),
            g.y_mean,
            g.y_std,
            g.lengthscales.clone(),
            g.signal_var,
            g.noise_var,
        )
        .unwrap();
    }
    c
}

/// User + system CPU seconds of this process (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / 100.0)
        })
        .unwrap_or(0.0)
}
