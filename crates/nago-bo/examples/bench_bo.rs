//! `make bench-bo`, the Rust half: nago-bo (the same `fit` + `propose` the stage binaries
//! and `nago-ask` call, with the same defaults) and random search on standard 2-objective
//! problems, their noisy variants (Gaussian noise of 5 % and 10 % of each objective's range;
//! hypervolume on the noiseless values) and shifted variants whose Pareto set lies inside
//! the cube, 60 evaluations in batches of 4, over seeds; then one round's latency (warm fit
//! + propose of 4) at 50/200/500/1000 observations.
//!
//! Output lines (parsed by bench/bo/report.py):
//!   hv <problem> <method> <seed> <hv@20> <hv@40> <hv@60>
//!   latency <n_obs> <propose wall s> <fit wall s> <propose CPU s> <fit CPU s>
//!           <cold fit wall s> <cold fit CPU s> <warm|full>
//!
//! CPU seconds (user + system of this process, from /proc/self/stat at 10 ms resolution)
//! are printed because the wall clock on a shared machine includes other people's load.
//!
//! Usage: bench_bo [seeds] [--latency-only | --hv-only] [--cold] [--problems=A,B]
//!        [--latency=50,200] [--latency-noisy] [--first-seed=K]
//! (`--first-seed=K`: seeds K, K+1, … instead of 0, 1, …)
//! (`--cold`: also runs nago with a cold full fit every round, as `bo_cold`.)
//! (`--latency-noisy`: the latency of ZDT1 with 5 % noise, fitted as noisy: the noisy EHVI.)

use nago_bo::defaults::{fit_options, initial_design_size, propose_options, sobol_seed};
use nago_bo::engine::{fit, propose, Observation};
use nago_bo::pareto::hypervolume;
use nago_bo::MixedCube;
use std::f64::consts::PI;
use std::time::Instant;

struct Problem {
    name: &'static str,
    dims: usize,
    reference: [f64; 2],
    f: fn(&[f64]) -> [f64; 2],
    /// Observation noise: std of the Gaussian added to each objective (0 = noiseless).
    noise: [f64; 2],
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

/// The interior optimum of the shifted variants: c_i = 0.2 + 0.6·frac(i·0.618034).
fn shift(i: usize) -> f64 {
    0.2 + 0.6 * ((i as f64 * 0.618_034) % 1.0)
}
/// ZDT1 with its Pareto set inside the cube: g = 1 + 9·mean|x_i − c_i|.
fn zdt1_shifted(x: &[f64]) -> [f64; 2] {
    let g = 1.0
        + 9.0
            * x[1..]
                .iter()
                .enumerate()
                .map(|(i, v)| (v - shift(i + 1)).abs())
                .sum::<f64>()
            / (x.len() - 1) as f64;
    [x[0], g * (1.0 - (x[0] / g).sqrt())]
}
/// DTLZ2 with its Pareto set off the centre: g = Σ(x_i − c_i)².
fn dtlz2_shifted(x: &[f64]) -> [f64; 2] {
    let g: f64 = x[1..]
        .iter()
        .enumerate()
        .map(|(i, v)| (v - shift(i + 1)).powi(2))
        .sum();
    [
        (1.0 + g) * (x[0] * PI / 2.0).cos(),
        (1.0 + g) * (x[0] * PI / 2.0).sin(),
    ]
}

/// Each objective's range over the cube (6 inputs), which sizes the noise: ZDT1 (1, 10),
/// ZDT3 (1, 10.77), DTLZ2 (2.25, 2.25).
const ZDT1_RANGE: [f64; 2] = [1.0, 10.0];
const ZDT3_RANGE: [f64; 2] = [1.0, 10.77];
const DTLZ2_RANGE: [f64; 2] = [2.25, 2.25];

const fn noisy(r: [f64; 2], pct: f64) -> [f64; 2] {
    [r[0] * pct / 100.0, r[1] * pct / 100.0]
}

macro_rules! problem {
    ($name:expr, $d:expr, $r:expr, $f:expr) => {
        problem!($name, $d, $r, $f, [0.0, 0.0])
    };
    ($name:expr, $d:expr, $r:expr, $f:expr, $noise:expr) => {
        Problem {
            name: $name,
            dims: $d,
            reference: $r,
            f: $f,
            noise: $noise,
        }
    };
}

const PROBLEMS: [Problem; 13] = [
    problem!("BraninCurrin", 2, [18.0, 6.0], branin_currin),
    problem!("ZDT1", 6, [11.0, 11.0], zdt1),
    problem!("ZDT2", 6, [11.0, 11.0], zdt2),
    problem!("ZDT3", 6, [11.0, 11.0], zdt3),
    problem!("DTLZ2", 6, [1.1, 1.1], dtlz2),
    problem!("ZDT1s", 6, [11.0, 11.0], zdt1_shifted),
    problem!("DTLZ2s", 6, [1.1, 1.1], dtlz2_shifted),
    problem!("ZDT1-n5", 6, [11.0, 11.0], zdt1, noisy(ZDT1_RANGE, 5.0)),
    problem!("ZDT1-n10", 6, [11.0, 11.0], zdt1, noisy(ZDT1_RANGE, 10.0)),
    problem!("ZDT3-n5", 6, [11.0, 11.0], zdt3, noisy(ZDT3_RANGE, 5.0)),
    problem!("ZDT3-n10", 6, [11.0, 11.0], zdt3, noisy(ZDT3_RANGE, 10.0)),
    problem!("DTLZ2-n5", 6, [1.1, 1.1], dtlz2, noisy(DTLZ2_RANGE, 5.0)),
    problem!("DTLZ2-n10", 6, [1.1, 1.1], dtlz2, noisy(DTLZ2_RANGE, 10.0)),
];

const EVALS: usize = 60;
const BATCH: usize = 4;

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

/// Evaluates `p` at `x`: (observed, noiseless). The noise stream is seeded per run.
fn evaluate(p: &Problem, x: &[f64], noise: &mut u64) -> (Vec<f64>, Vec<f64>) {
    let clean = (p.f)(x).to_vec();
    let obs = clean
        .iter()
        .zip(&p.noise)
        .map(|(v, s)| {
            if *s == 0.0 {
                return *v;
            }
            let u1 = uniform(noise).max(1e-300);
            let u2 = uniform(noise);
            v + s * (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
        })
        .collect();
    (obs, clean)
}

/// One nago run, as `nago-ask` does it (same seeds, design rule and defaults): Sobol until
/// the initial design size, then fit (warm-started from the previous round's surrogate unless
/// `cold`) + propose. Returns the noiseless values of the evaluated points.
fn run_bo(p: &Problem, seed: u64, cold: bool) -> Vec<Vec<f64>> {
    let cube = MixedCube::reals(p.dims);
    let need = initial_design_size(p.dims, EVALS);
    let mut noise = seed ^ 0x006e_6f69_7365;
    let mut xs: Vec<Vec<f64>> = Vec::new();
    let mut ys: Vec<Vec<f64>> = Vec::new();
    let mut clean: Vec<Vec<f64>> = Vec::new();
    let mut prev: Option<nago_bo::Surrogate> = None;
    let mut round = 0u64;
    while xs.len() < EVALS {
        let q = BATCH.min(EVALS - xs.len());
        let new = if xs.len() < need {
            nago_bo::design::sobol(xs.len(), q, p.dims, sobol_seed(seed)).unwrap()
        } else {
            let obs: Vec<Observation> = xs
                .iter()
                .zip(&ys)
                .map(|(x, y)| Observation {
                    x: x.clone(),
                    y: Some(y.clone()),
                    feasible: true,
                })
                .collect();
            let mut fo = fit_options(seed);
            let warm = prev.as_ref().map(nago_bo::Surrogate::warm_start);
            if !cold {
                fo.warm_start = warm.as_ref();
            }
            if p.noise[0] > 0.0 {
                fo = fo.noisy();
            }
            let sur = fit(&obs, 2, &p.reference, fo).unwrap();
            if std::env::var_os("BENCH_TRACE").is_some() {
                eprintln!(
                    "n {} noise {:?} ls0 {:?} front {:?} warm {}",
                    xs.len(),
                    sur.objectives
                        .iter()
                        .map(|g| g.noise_var)
                        .collect::<Vec<_>>(),
                    sur.objectives
                        .iter()
                        .map(|g| g.lengthscales[0])
                        .collect::<Vec<_>>(),
                    sur.front_source,
                    sur.warm_fits
                );
            }
            let new = propose(&sur, &cube, &[], &[], q, propose_options(seed, round)).unwrap();
            prev = Some(sur);
            new
        };
        for x in new {
            let (y, c) = evaluate(p, &x, &mut noise);
            if std::env::var_os("BENCH_TRACE").is_some() {
                eprintln!("  x {x:.3?} y {y:.3?} clean {c:.3?}");
            }
            ys.push(y);
            clean.push(c);
            xs.push(x);
        }
        round += 1;
    }
    clean
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
    let hv_only = args.iter().any(|a| a == "--hv-only");
    let cold = args.iter().any(|a| a == "--cold");
    let first_seed: u64 = args
        .iter()
        .find_map(|a| a.strip_prefix("--first-seed="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let only: Option<Vec<&str>> = args
        .iter()
        .find_map(|a| a.strip_prefix("--problems="))
        .map(|v| v.split(',').collect());
    if !latency_only {
        for p in PROBLEMS
            .iter()
            .filter(|p| only.as_ref().is_none_or(|o| o.contains(&p.name)))
        {
            for seed in first_seed..first_seed + seeds {
                let mut runs = vec![("bo", run_bo(p, seed, false))];
                if cold {
                    runs.push(("bo_cold", run_bo(p, seed, true)));
                }
                runs.push(("random", run_random(p, seed)));
                for (method, ys) in runs {
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
    if hv_only {
        return;
    }
    // Latency: one optimiser round of a study at n observations of ZDT1 (6-D, random
    // points): the fit warm-started from the previous round's surrogate (n − 4 observations),
    // then the proposal of a batch of 4 from the surrogate as loaded from surrogate.json.
    // The cold fit (full multi-start) is timed too.
    // `--latency-noisy`: ZDT1 with 5 % noise, fitted as noisy (the noisy EHVI's proposal).
    let noisy = args.iter().any(|a| a == "--latency-noisy");
    let p = if noisy {
        PROBLEMS
            .iter()
            .find(|p| p.name == "ZDT1-n5")
            .expect("ZDT1-n5")
    } else {
        &PROBLEMS[1]
    };
    let ns: Vec<usize> = args
        .iter()
        .find_map(|a| a.strip_prefix("--latency="))
        .map(|v| v.split(',').filter_map(|t| t.parse().ok()).collect())
        .unwrap_or(vec![50, 200, 500, 1000]);
    for n in ns {
        let mut s = 12345u64;
        let mut noise = 54321u64;
        let obs: Vec<Observation> = (0..n)
            .map(|_| {
                let x: Vec<f64> = (0..p.dims).map(|_| uniform(&mut s)).collect();
                let y = evaluate(p, &x, &mut noise).0;
                Observation {
                    x,
                    y: Some(y),
                    feasible: true,
                }
            })
            .collect();
        let noisy_fit = |fo: nago_bo::FitOptions<'static>| if noisy { fo.noisy() } else { fo };
        let fo = noisy_fit(fit_options(7));
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let prev = fit(&obs[..n - BATCH], 2, &p.reference, fo).unwrap();
        let (cold_wall, cold_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
        let mut wo = noisy_fit(fit_options(7));
        let warm = prev.warm_start();
        wo.warm_start = Some(&warm);
        let (c0, t0) = (cpu_seconds(), Instant::now());
        let sur = fit(&obs, 2, &p.reference, wo).unwrap();
        let (fit_wall, fit_cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
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
            propose_options(7, 1),
        )
        .unwrap();
        assert_eq!(got.len(), BATCH);
        let wall = t1.elapsed().as_secs_f64();
        println!(
            "{} {n} {wall:.4} {fit_wall:.4} {:.2} {fit_cpu:.2} {cold_wall:.3} {cold_cpu:.2} {}",
            if noisy { "latency-noisy" } else { "latency" },
            cpu_seconds() - c1,
            if sur.warm_fits > 0 { "warm" } else { "full" }
        );
    }
}

/// A copy without the factorisation, as after loading surrogate.json.
fn serde_json_like(s: &nago_bo::Surrogate) -> nago_bo::Surrogate {
    let mut c = s.clone();
    for g in c.objectives.iter_mut() {
        // Refactorised from the stored fields, as after deserialising.
        g.prepare().unwrap();
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
