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

The cache is large and stays on the machine; what the table needs of a finished run (the
final round's generators, wall time, training images, load, date, commit) is also written to
one small JSON file per run under --results (bench/search/results/<preset>-<digest>-<method>-
<seed>.json, and <preset>-<digest>-baseline-<name>-<seed>.json per baseline training),
which is committed: a fresh checkout (another session, CI, a colleague) prints the same table
and trains only what is missing. A summary stands for its run: delete it to run again.

Usage: search_bench.py [--preset quick] [--seeds 0,1,2] [--methods nago,random]
                       [--baselines plain-cnn,resnet20] [--cache DIR] [--results DIR] [--bin DIR]
"""

import argparse
import concurrent.futures as cf
import datetime
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
SUMMARY_SCHEMA = "nago.bench-search-run/1"


def load(path):
    with open(path) as f:
        return json.load(f)


def save_atomic(path, doc):
    """Writes doc as JSON through a temporary file and a rename: a killed bench leaves the old
    file or the new one, never half of one."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def summary_path(a, *key):
    return os.path.join(a.results, "-".join([a.name, *map(str, key)]) + ".json")


def read_summary(path):
    """A committed run summary, or None when there is none. A file that is there but cannot be
    read is an error naming it (never silently rerun over: it may be someone's only record)."""
    if not os.path.isfile(path):
        return None
    try:
        doc = load(path)
        if doc.get("schema") != SUMMARY_SCHEMA:
            raise ValueError(f"schema {doc.get('schema')!r}, expected {SUMMARY_SCHEMA!r}")
        return doc
    except (OSError, ValueError) as e:
        sys.exit(f"search_bench: {path}: unreadable run summary ({e}); fix or delete it")


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
        load_at_start = os.getloadavg()[0]
        t0 = time.time()
        with open(run + ".log", "a") as log:
            code = subprocess.call(cmd, stdout=log, stderr=log)
        parts.append({"seconds": time.time() - t0, "code": code, "load_at_start": load_at_start})
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


def final_generators(run):
    """The final round's generators as [mean test accuracy, mean params] (final.parquet)."""
    rows = pq.read_table(os.path.join(run, "final.parquet")).to_pylist()
    return [[r["test_accuracy_mean"], r["params_mean"]] for r in rows
            if r.get("test_accuracy_mean") is not None and r.get("params_mean")]


def score(gens, a):
    """(front hypervolume, best accuracy per parameter cap) of the final round's generators."""
    hv = hypervolume_2d([(1 - acc, math.log10(p)) for acc, p in gens],
                        (a.ref_error, math.log10(a.ref_params)))
    best = {c: max((acc for acc, p in gens if p <= c), default=None) for c in CAPS}
    return hv, best


def search_result(a, method, seed, study):
    """One (method, seed) of the table: from its committed summary, or by running (or
    resuming) the study and then writing the summary."""
    path = summary_path(a, method, seed)
    doc = read_summary(path)
    if doc is None:
        r = run_study(a, method, seed, study)
        if r is None:
            return None
        run, wall = r
        walls = load(os.path.join(a.cache, f"{a.name}-{method}-{seed}.walls.json"))
        doc = {"schema": SUMMARY_SCHEMA, "preset": a.name, "method": method, "seed": seed,
               "final_generators": final_generators(run), "wall_seconds": wall,
               "parts": walls, "train_images": list(trained_images(run)),
               "commit": git_commit(),
               "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        save_atomic(path, doc)
    hv, best = score(doc["final_generators"], a)
    return {"hv": hv, "best": best, "wall": doc["wall_seconds"], "images": doc["train_images"],
            "gens": doc["final_generators"], "commit": doc.get("commit"), "written": doc.get("written")}


def baseline_arch(a, name):
    """The baseline's arch.json, written once (before the trainings that share it start)."""
    d = os.path.join(a.cache, "baselines", f"{a.name}-{name}")
    arch = os.path.join(d, "arch", "arch.json")
    if not os.path.isfile(arch):
        subprocess.run([os.path.join(a.bin, "nago-generate"), "--baseline", name, "--study",
                        a.preset_file, "--out", os.path.join(d, "arch")], check=True,
                       stdout=subprocess.DEVNULL)
    return d, arch


def baseline_result(a, study, name, seed):
    """One baseline training: from its committed summary, or trained and then summarised."""
    path = summary_path(a, "baseline", name, seed)
    doc = read_summary(path)
    if doc is None:
        r = train_baseline(a, study, name, seed)
        if r is None:
            return None
        doc = {"schema": SUMMARY_SCHEMA, "preset": a.name, "method": f"baseline-{name}",
               "seed": seed, "test_accuracy": r["test_accuracy"], "params": r["params"],
               "train_seconds": r["train_seconds"], "commit": git_commit(),
               "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        save_atomic(path, doc)
    return doc


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
    ap.add_argument("--results", default=os.path.join(HERE, "results"),
                    help="committed per-run summaries (read before running, written after)")
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
            r = search_result(a, m, seed, study)
            if r is not None:
                results[(m, seed)] = r
    base = {}
    names = [b for b in a.baselines.split(",") if b]
    for b in names:
        if any(read_summary(summary_path(a, "baseline", b, s)) is None for s in seeds):
            baseline_arch(a, b)
    with cf.ThreadPoolExecutor(a.parallel) as pool:
        futs = {(b, s): pool.submit(baseline_result, a, study, b, s) for b in names for s in seeds}
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
        say(f"- {m} seed {s}: {gens} (commit {r['commit']}, {r['written']})")


if __name__ == "__main__":
    main()
