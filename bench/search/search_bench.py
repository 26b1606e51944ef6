"""make bench-search: does the search turn compute into better networks than random search and
than hand-made networks? (issue 11, step 5)

For every (method, seed) this runs one whole study with nago-search (the preset, `--parallel`
asynchronous workers, the study seed set to the bench's seed), final round included:

* `nago`: the preset as it is (Sobol initial design, then GP/EHVI proposals);
* `random`: the same preset with `search.initial_design` raised above `max_evaluations`, so
  every generator comes from the study's scrambled Sobol sequence (quasi-random search) with the
  same budgets, promotion rule and final round, hence about the same training images (the
  table reports them).

The hand-made baselines (`nago-generate --baseline`) are trained by nago-train with the study's
final protocol (the `final` section's epochs and training settings), one run per seed.

Reported per method, mean ± std over seeds: hypervolume of the final round's front in the
plane (test error, log10 parameters), reference point (`--ref-error`, log10(`--ref-params`)),
from final.parquet's per-generator means; the best final mean test accuracy at <= 25k, <= 100k
and <= 400k parameters (a generator counts at its mean parameter count); wall minutes (the
sum of this bench's nago-search calls on the run, so a resumed run counts its parts); and the
training images of the search and of the final round (result.json's train_images times the
epochs each run trained).

Every study lives under the cache (bench/search/cache/<preset>-<digest>-<method>-<seed>/, the
digest the first 8 hex digits of the preset file's SHA-256, so a changed preset never reuses
the runs of its earlier version): a finished one is only read again, an interrupted one
resumes (nago-search continues it), so the bench extends run by run (`--seeds 0,1,2` now,
`--seeds 3,4` later).

Usage: search_bench.py [--preset quick] [--seeds 0,1,2] [--methods nago,random]
                       [--baselines plain-cnn,resnet20] [--cache DIR] [--bin DIR]
"""

import argparse
import concurrent.futures as cf
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time

import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
# The 2-D hypervolume of the optimiser's bench (bench/bo/problems.py), one implementation.
sys.path.insert(0, os.path.join(HERE, "..", "bo"))
from problems import hv2 as hypervolume_2d  # noqa: E402
CAPS = (25_000, 100_000, 400_000)


def load(path):
    with open(path) as f:
        return json.load(f)


def preset_path(preset):
    p = os.path.join("pipelines", "presets", preset + ".json")
    return p if os.path.isfile(p) else preset


def method_sets(method, study):
    if method == "nago":
        return []
    if method == "random":
        return [f"search.initial_design={study['search']['max_evaluations'] + 1}"]
    sys.exit(f"search_bench: unknown method {method!r} (known: nago, random)")


def run_study(a, method, seed, study):
    run = os.path.join(a.cache, f"{a.name}-{method}-{seed}")
    cmd = [os.path.join(a.bin, "nago-search"), "--preset", a.preset_file, "--run", run,
           "--parallel", str(a.parallel), "--set", f"seed={seed}"]
    for s in method_sets(method, study):
        cmd += ["--set", s]
    os.makedirs(a.cache, exist_ok=True)
    walls = os.path.join(a.cache, f"{a.name}-{method}-{seed}.walls.json")
    parts = load(walls) if os.path.isfile(walls) else []
    done = os.path.isfile(os.path.join(run, "final.parquet")) and parts and parts[-1].get("code") == 0
    if not done:
        print(f"search_bench: {method} seed {seed}: nago-search --run {run} (load average "
              f"{os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
        t0 = time.time()
        with open(run + ".log", "a") as log:
            code = subprocess.call(cmd, stdout=log, stderr=log)
        parts.append({"seconds": time.time() - t0, "code": code, "load_at_start": os.getloadavg()[0]})
        with open(walls + ".tmp", "w") as f:
            json.dump(parts, f)
        os.replace(walls + ".tmp", walls)
        if code != 0:
            print(f"search_bench: {method} seed {seed} failed (exit {code}); see {run}.log",
                  file=sys.stderr)
            return None
    return run, sum(p["seconds"] for p in parts)


def trained_images(run):
    """(search, final) training images: train_images x epochs trained, per run of a trial."""
    search = final = 0
    tdir = os.path.join(run, "trials")
    for t in sorted(os.listdir(tdir)):
        try:
            r = load(os.path.join(tdir, t, "result.json"))
            p = load(os.path.join(tdir, t, "proposal.json"))
        except (OSError, ValueError):
            continue
        n = (r.get("train_images") or 0) * ((r.get("epochs_done") or 0) - (r.get("start_epoch") or 0))
        if p.get("origin") == "final":
            final += n
        else:
            search += n
    return search, final


def summarise(run, a):
    rows = pq.read_table(os.path.join(run, "final.parquet")).to_pylist()
    gens = [(r["test_accuracy_mean"], r["params_mean"]) for r in rows
            if r.get("test_accuracy_mean") is not None and r.get("params_mean")]
    hv = hypervolume_2d([(1 - acc, math.log10(p)) for acc, p in gens],
                        (a.ref_error, math.log10(a.ref_params)))
    best = {c: max((acc for acc, p in gens if p <= c), default=None) for c in CAPS}
    return hv, best, gens


def baseline_arch(a, name):
    """The baseline's arch.json, written once (before the trainings that share it start)."""
    d = os.path.join(a.cache, "baselines", f"{a.name}-{name}")
    arch = os.path.join(d, "arch", "arch.json")
    if not os.path.isfile(arch):
        subprocess.run([os.path.join(a.bin, "nago-generate"), "--baseline", name, "--study",
                        a.preset_file, "--out", os.path.join(d, "arch")], check=True,
                       stdout=subprocess.DEVNULL)
    return d, arch


def train_baseline(a, study, name, seed):
    d, arch = baseline_arch(a, name)
    out = os.path.join(d, f"seed-{seed}")
    os.makedirs(out, exist_ok=True)
    final = study.get("final", {})
    epochs = final.get("epochs", study["budgets"]["max"])
    # A final-round proposal: nago-train then uses the study's final training settings and
    # anneals over the final epochs, as the search's final round does.
    prop = os.path.join(out, "proposal.json")
    with open(prop, "w") as f:
        json.dump({"schema": "nago.proposal/1", "trial": f"{name}-{seed}", "round": 0,
                   "generator": load(arch)["generator"], "budget": float(epochs),
                   # The architecture is fixed (its own seed, which nago-train checks against
                   # the proposal's); the bench's seed is the training seed (--seed).
                   "seed": load(arch)["seed"],
                   "parent": None, "origin": "final"}, f)
    with open(os.path.join(out, "train.log"), "a") as log:
        print(f"search_bench: load average {os.getloadavg()[0]:.2f} at start", file=log, flush=True)
        code = subprocess.call([os.path.join(a.bin, "nago-train"), "--arch", arch, "--proposal", prop,
                                "--study", a.preset_file, "--out", out, "--seed", str(seed), "--cpu", "--threads", "1",
                                "--no-progress"], stdout=log, stderr=log)
    try:
        r = load(os.path.join(out, "result.json"))
    except (OSError, ValueError):
        return None
    return r if code == 0 and r.get("status") == "ok" else None


def pm(xs, fmt):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.mean(xs))} ± {fmt(statistics.stdev(xs))}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--methods", default="nago,random")
    ap.add_argument("--baselines", default="plain-cnn,resnet20")
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"))
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--ref-error", type=float, default=0.25)
    ap.add_argument("--ref-params", type=float, default=1e6)
    a = ap.parse_args()
    a.preset_file = preset_path(a.preset)
    with open(a.preset_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:8]
    a.name = f"{os.path.splitext(os.path.basename(a.preset_file))[0]}-{digest}"
    study = load(a.preset_file)
    seeds = [int(s) for s in a.seeds.split(",") if s]
    methods = [m for m in a.methods.split(",") if m]
    for m in methods:
        method_sets(m, study)

    results = {}
    for seed in seeds:
        for m in methods:
            r = run_study(a, m, seed, study)
            if r is not None:
                run, wall = r
                hv, best, gens = summarise(run, a)
                results[(m, seed)] = {"hv": hv, "best": best, "wall": wall,
                                      "images": trained_images(run), "gens": gens}
    base = {}
    names = [b for b in a.baselines.split(",") if b]
    for b in names:
        baseline_arch(a, b)
    with cf.ThreadPoolExecutor(a.parallel) as pool:
        futs = {(b, s): pool.submit(train_baseline, a, study, b, s) for b in names for s in seeds}
        for k, f in futs.items():
            base[k] = f.result()

    say = print
    say(f"Preset {a.preset_file}, seeds {seeds}, {a.parallel} workers; hypervolume of the final "
        f"round's front in (test error, log10 params), reference ({a.ref_error}, "
        f"log10 {a.ref_params:g}); accuracies in %.")
    say("")
    say("| method | seeds | front HV | best ≤25k | best ≤100k | best ≤400k | wall min | search images (M) | final images (M) |")
    say("|---|---|---|---|---|---|---|---|---|")
    pct = lambda x: f"{100 * x:.2f}"
    for m in methods:
        rs = [results[(m, s)] for s in seeds if (m, s) in results]
        say(f"| {m} | {len(rs)}/{len(seeds)} | {pm([r['hv'] for r in rs], lambda x: f'{x:.4f}')} | "
            + " | ".join(pm([r['best'][c] for r in rs], pct) for c in CAPS)
            + f" | {pm([r['wall'] / 60 for r in rs], lambda x: f'{x:.1f}')}"
            + f" | {pm([r['images'][0] / 1e6 for r in rs], lambda x: f'{x:.2f}')}"
            + f" | {pm([r['images'][1] / 1e6 for r in rs], lambda x: f'{x:.2f}')} |")
    say("")
    say("Hand-made baselines, the study's final protocol, one run per seed (test accuracy %):")
    say("")
    say("| network | params | runs | test accuracy | train s |")
    say("|---|---|---|---|---|")
    for b in names:
        rs = [base[(b, s)] for s in seeds if base.get((b, s))]
        params = rs[0]["params"] if rs else None
        say(f"| {b} | {params:,} | {len(rs)}/{len(seeds)} | {pm([r['test_accuracy'] for r in rs], pct)} | "
            f"{pm([r['train_seconds'] for r in rs], lambda x: f'{x:.0f}')} |" if rs else f"| {b} | – | 0/{len(seeds)} | – | – |")
    say("")
    say("Per run (method, seed): the final round's generators as (mean test accuracy %, mean params):")
    for (m, s), r in sorted(results.items()):
        gens = ", ".join(f"({100 * acc:.2f}, {p / 1e3:.1f}k)" for acc, p in sorted(r["gens"], key=lambda g: g[1]))
        say(f"- {m} seed {s}: {gens}")


if __name__ == "__main__":
    main()
