//! CPU inference latency of a trained network: what a deployment cares about, where
//! parameters and MACs are only proxies.
//!
//! The protocol (the same after training and in `nago-latency` on a deployment machine):
//! float32 on the CPU, evaluation mode, no autograd, libtorch restricted to one thread
//! (intra-op) while measuring; for each batch size, warm-up runs first (allocator, kernel
//! selection, caches), then timed forward passes until at least [`LatencyOptions::min_runs`]
//! runs and [`LatencyOptions::min_seconds`] have passed (or [`LatencyOptions::max_seconds`]);
//! the figure is the median of those runs in milliseconds per batch. The median, not the mean,
//! because a run that the operating system interrupts is slow, never fast.
//!
//! A latency is a property of a network *and a machine*: the result records which machine
//! ([`machine_description`]) and its load average at the time, since another process on the
//! same cores (a second worker of the search) slows the measurement down.

use crate::net::Net;
use nago_arch::Arch;
use serde::Serialize;
use std::time::Instant;
use tch::{nn, nn::ModuleT, Device, Kind, Tensor};

/// How long and how often to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyOptions {
    /// Forward passes before timing starts (per batch size).
    pub warmup_runs: usize,
    /// Timed forward passes at least.
    pub min_runs: usize,
    /// Timed seconds at least (per batch size), unless `max_seconds` is reached first.
    pub min_seconds: f64,
    /// Stop timing after this many seconds (per batch size) once 3 runs are done: bounds the
    /// cost for a large network.
    pub max_seconds: f64,
    /// Intra-op threads while measuring (the protocol's 1).
    pub threads: i32,
}

impl Default for LatencyOptions {
    fn default() -> Self {
        LatencyOptions {
            warmup_runs: 2,
            min_runs: 7,
            min_seconds: 0.1,
            max_seconds: 5.0,
            threads: 1,
        }
    }
}

/// One batch size's measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchLatency {
    /// Images per forward pass.
    pub batch: usize,
    /// Median milliseconds per forward pass.
    pub median_ms: f64,
    /// The fastest and the slowest timed run, milliseconds.
    pub min_ms: f64,
    /// The slowest timed run, milliseconds.
    pub max_ms: f64,
    /// Timed runs.
    pub runs: usize,
}

/// The latency of one network on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Batch 1 (`latency_ms` in result.json).
    pub batch1: BatchLatency,
    /// Batch 32 (`latency_ms_b32`).
    pub batch32: BatchLatency,
    /// Intra-op threads used.
    pub threads: i32,
    /// Which machine: host name and CPU model.
    pub machine: String,
    /// The 1-minute load average when the measurement began (Linux), a warning sign when it
    /// exceeds the machine's cores.
    pub load_average: Option<f64>,
}

/// `"<host name>: <CPU model> (<n> logical CPUs)"`, from `/proc` where it exists.
pub fn machine_description() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{host}: {cpu} ({n} logical CPUs)")
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Measures `net` (built for `arch`, its variables in `vs`) on the CPU. A network on a GPU is
/// copied to the CPU first. libtorch's thread count is restored afterwards.
pub fn measure(
    arch: &Arch,
    vs: &nn::VarStore,
    net: &Net,
    opts: &LatencyOptions,
) -> Result<Latency, tch::TchError> {
    if vs.device() != Device::Cpu {
        let mut cpu = nn::VarStore::new(Device::Cpu);
        let cpu_net = Net::new(&cpu.root(), arch);
        cpu.copy(vs)?;
        return measure(arch, &cpu, &cpu_net, opts);
    }
    let before = tch::get_num_threads();
    tch::set_num_threads(opts.threads.max(1));
    let load = load_average();
    let run = |batch: usize| time_batch(arch, net, batch, opts);
    let measured = run(1).and_then(|b1| Ok((b1, run(32)?)));
    tch::set_num_threads(before);
    let (batch1, batch32) = measured?;
    Ok(Latency {
        batch1,
        batch32,
        threads: opts.threads.max(1),
        machine: machine_description(),
        load_average: load,
    })
}

/// A deterministic input (no random draw: the global generator is left alone).
fn input(arch: &Arch, batch: usize) -> Tensor {
    let i = &arch.input;
    let shape = [
        batch as i64,
        i.channels as i64,
        i.height as i64,
        i.width as i64,
    ];
    let n: i64 = shape.iter().product();
    Tensor::linspace(-2.0, 2.0, n, (Kind::Float, Device::Cpu)).view(shape)
}

fn time_batch(
    arch: &Arch,
    net: &Net,
    batch: usize,
    opts: &LatencyOptions,
) -> Result<BatchLatency, tch::TchError> {
    let x = input(arch, batch);
    let _g = tch::no_grad_guard();
    let forward = || -> Result<f64, tch::TchError> {
        let t = Instant::now();
        let y = net.forward_t(&x, false);
        // Reading one value makes sure the pass has finished (CPU ops are synchronous, but
        // this keeps the measurement honest should that change).
        let _ = y.f_double_value(&[0, 0])?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    for _ in 0..opts.warmup_runs {
        forward()?;
    }
    let begun = Instant::now();
    let mut times = Vec::new();
    loop {
        times.push(forward()?);
        let s = begun.elapsed().as_secs_f64();
        let enough = times.len() >= opts.min_runs.max(1) && s >= opts.min_seconds;
        if enough || (s >= opts.max_seconds && times.len() >= 3) || times.len() >= 2000 {
            break;
        }
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    };
    Ok(BatchLatency {
        batch,
        median_ms: median,
        min_ms: times[0],
        max_ms: times[n - 1],
        runs: n,
    })
}

/// The network of a trained trial directory (`arch.json` and the `model/` tensors of
/// `checkpoint.safetensors`) or of a `nago-report export` directory (`arch.json` and
/// `weights.safetensors`), built on the CPU with the trained values loaded. Errors name the
/// file and what is wrong with it.
pub fn load_trained(dir: &std::path::Path) -> anyhow::Result<(Arch, nn::VarStore, Net)> {
    use anyhow::{bail, Context};
    let arch_path = dir.join("arch.json");
    let text = std::fs::read_to_string(&arch_path)
        .with_context(|| format!("{}: cannot read", arch_path.display()))?;
    let arch =
        Arch::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", arch_path.display()))?;
    let (weights_path, named): (std::path::PathBuf, Vec<(String, Tensor)>) =
        if crate::checkpoint::exists(dir) {
            let ck = crate::checkpoint::load(dir)?;
            (
                crate::checkpoint::tensors_path(dir),
                ck.model.into_iter().collect(),
            )
        } else {
            let p = dir.join("weights.safetensors");
            if !p.exists() {
                bail!(
                    "{}: neither checkpoint.safetensors (a trained trial) nor weights.safetensors \
                     (a `nago-report export` directory)",
                    dir.display()
                );
            }
            let t = Tensor::read_safetensors(&p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let t = t
                .into_iter()
                .filter(|(k, _)| !k.starts_with("meta/") && !k.starts_with("momentum/"))
                .map(|(k, v)| {
                    (
                        k.strip_prefix("model/").map_or(k.clone(), str::to_string),
                        v,
                    )
                })
                .collect();
            (p, t)
        };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), &arch);
    let mut vars = vs.variables();
    let stored: std::collections::BTreeMap<String, Tensor> = named.into_iter().collect();
    let _g = tch::no_grad_guard();
    for (name, var) in vars.iter_mut() {
        let src = stored.get(name).with_context(|| {
            format!(
                "{}: no tensor `{name}`: the weights are not of {}'s network",
                weights_path.display(),
                arch_path.display()
            )
        })?;
        if src.size() != var.size() {
            bail!(
                "{}: tensor `{name}` has shape {:?}, {} needs {:?}",
                weights_path.display(),
                src.size(),
                arch_path.display(),
                var.size()
            );
        }
        var.f_copy_(src)?;
    }
    if stored.len() != vars.len() {
        let extra: Vec<&String> = stored.keys().filter(|k| !vars.contains_key(*k)).collect();
        bail!(
            "{}: {} tensors that {}'s network does not have, e.g. {:?}",
            weights_path.display(),
            extra.len(),
            arch_path.display(),
            extra.iter().take(3).collect::<Vec<_>>()
        );
    }
    drop(_g);
    Ok((arch, vs, net))
}
