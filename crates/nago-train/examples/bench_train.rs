//! `make bench-train`, the nago-train side.
//!
//! `bench_train write DIR`: samples the three benchmark architectures (small, medium, large
//! generators on Fashion-MNIST's shape) into DIR/arch{0,1,2}.json.
//! `bench_train run ARCH DATA_DIR BATCH WARMUP STEPS THREADS`: images/s of the training step.

use nago_arch::{Arch, InputShape};
use nago_space::{Generator, GraphModel, LevelSpec, MergeWeights};
use nago_train::data::read_idx;
use nago_train::train::bench_steps;
use std::path::Path;
use tch::{Device, Tensor};

fn level(model: GraphModel, n: u32, k: u32, p: f64) -> LevelSpec {
    LevelSpec {
        model,
        n,
        k,
        p,
        merge: MergeWeights::default(),
    }
}

fn generators() -> Vec<(&'static str, Generator)> {
    use GraphModel::{Er, Ws};
    let mk = |top, mid, bottom, limit| Generator {
        top,
        mid,
        bottom,
        param_limit: limit,
        ..Generator::default()
    };
    vec![
        (
            "WS(5,4,.5)/ER(2,.6)/WS(4,2,.5) limit 50k",
            mk(
                level(Ws, 5, 4, 0.5),
                level(Er, 2, 2, 0.6),
                level(Ws, 4, 2, 0.5),
                50e3,
            ),
        ),
        (
            "WS(8,5,.6)/ER(1,.7)/WS(5,4,.2) limit 300k",
            mk(
                level(Ws, 8, 5, 0.6),
                level(Er, 1, 2, 0.7),
                level(Ws, 5, 4, 0.2),
                300e3,
            ),
        ),
        (
            "WS(10,4,.5)/ER(4,.5)/WS(6,4,.5) limit 1M",
            mk(
                level(Ws, 10, 4, 0.5),
                level(Er, 4, 2, 0.5),
                level(Ws, 6, 4, 0.5),
                1e6,
            ),
        ),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let dir = Path::new(&args[2]);
            std::fs::create_dir_all(dir).unwrap();
            let shape = InputShape {
                channels: 1,
                height: 28,
                width: 28,
                classes: 10,
            };
            for (i, (name, g)) in generators().into_iter().enumerate() {
                let a = nago_generator::sample(&g, 1, shape).expect("samples");
                std::fs::write(dir.join(format!("arch{i}.json")), a.to_json()).unwrap();
                println!(
                    "arch{i}: {name}: {} params, {:.1} M MACs, {} operations",
                    a.counts.params,
                    a.counts.macs as f64 / 1e6,
                    a.n_ops()
                );
            }
        }
        Some("run") => {
            let arch = Arch::from_json(&std::fs::read_to_string(&args[2]).unwrap()).unwrap();
            let data = Path::new(&args[3]);
            let p = |i: usize| args[i].parse::<usize>().unwrap();
            let (batch, warmup, steps, threads) = (p(4), p(5), p(6), p(7));
            tch::set_num_threads(threads as i32);
            let n = batch * (warmup + steps);
            let im = read_idx(&data.join("train-images-idx3-ubyte.gz")).unwrap();
            let lb = read_idx(&data.join("train-labels-idx1-ubyte.gz")).unwrap();
            let images = Tensor::from_slice(&im.data[..n * 784]).view([n as i64, 1, 28, 28]);
            let labels: Vec<i64> = lb.data[..n].iter().map(|&l| l as i64).collect();
            let labels = Tensor::from_slice(&labels);
            // Optional 9th/10th arguments: `cuda` and `bf16`/`bf16-cl`/`fp32-cl` (GPU check).
            let device = match args.get(8).map(String::as_str) {
                Some("cuda") => Device::Cuda(0),
                _ => Device::Cpu,
            };
            let mode = args.get(9).map(String::as_str).unwrap_or("fp32");
            let cfg = nago_train::train::TrainConfig {
                device,
                bf16: mode.starts_with("bf16"),
                channels_last: mode.ends_with("-cl"),
                ..Default::default()
            };
            let ips = bench_steps(&arch, &images, &labels, batch, warmup, steps, &cfg).unwrap();
            println!("nago-train: {ips:.1} img/s params {}", arch.counts.params);
        }
        _ => {
            eprintln!("usage: bench_train write DIR | bench_train run ARCH DATA BATCH WARMUP STEPS THREADS");
            std::process::exit(2);
        }
    }
}
