"""make bench-recipe: how faithful and how fast the cheap evaluations are, per training recipe.

The panel (bench/recipe/panel.json) is 8 generators of the quick preset's space, each sampled
once. For every recipe this trains each panel network with nago-train (the study's dataset,
split and training section, the recipe's changes on top) and reports, over the panel:

* validation accuracy after 1, 2 and 4 epochs (4 = the preset's budgets.max, which is also its
  final round's budget) and test accuracy after 4;
* images/s (the trainer's own figure, 1 thread per run, `--jobs` runs at once);
* Spearman's rank correlation between the 1- (2-) epoch and the 4-epoch validation accuracy
  across the panel: how faithfully a low rung ranks the networks.

Recipes whose schedule is `study` follow one cosine over budgets.max (what the pipeline does
now: a 1-epoch run ends at a learning rate that has not annealed), so their 1/2-epoch figures
come from the 4-epoch run's curve. Recipes whose schedule is `budget` anneal inside every
budget (cosine horizon = the budget): each budget is its own run.

A `speed` table: images/s at batch 64, 128 and 256 on a 5,120-image epoch (one network's
three runs one after the other, so they see the same load; each run's train.log records the
load average at its start).

Every run is kept under the cache (bench/recipe/cache/runs/<network>/<settings>/); a finished
run is read back, an interrupted one continues from its checkpoint, so the bench resumes and
extends run by run. Delete the cache after changing the trainer.

Usage: recipe_bench.py [--study S] [--cache DIR] [--jobs N] [--recipes a,b] [--bin DIR]
"""

import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import sys
import time

import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (schedule, settings). Settings are nago-train flags.
RECIPES = {
    "current": ("study", {}),
    "anneal": ("budget", {}),
    "anneal-b256": ("budget", {"batch-size": 256, "lr": 0.2}),
    "anneal-ls": ("budget", {"label-smoothing": 0.1}),
}
BUDGETS = (1, 2, 4)
SPEED_BATCHES = (64, 128, 256)
SPEED_IMAGES = 5120


def speed_flags(bs):
    return {"batch-size": bs, "epochs": 1, "schedule-epochs": 1, "train-subset": SPEED_IMAGES}


def run_dir(cache, net, flags):
    key = "-".join(f"{k}{v}" for k, v in sorted(flags.items()))
    return os.path.join(cache, "runs", net, key)


def train(bins, study, arch, out, flags):
    """One nago-train run (skipped by nago-train itself when result.json is ok)."""
    os.makedirs(out, exist_ok=True)
    cmd = [
        os.path.join(bins, "nago-train"), "--arch", arch, "--study", study, "--out", out,
        "--cpu", "--threads", "1", "--no-latency", "--no-progress",
    ]
    for k, v in sorted(flags.items()):
        cmd += [f"--{k}", str(v)]
    with open(os.path.join(out, "train.log"), "a") as log:
        # The machine's load when the run started: images/s depend on it.
        print(f"recipe_bench: load average {os.getloadavg()[0]:.2f} at start", file=log, flush=True)
        code = subprocess.call(cmd, stdout=log, stderr=log)
    return result(out) if code in (0, 2) else {"status": f"exit {code}", "dir": out}


def result(out):
    try:
        with open(os.path.join(out, "result.json")) as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None
    try:
        curve = pq.read_table(os.path.join(out, "epochs.parquet")).to_pydict()
        r["curve"] = dict(zip(curve["epoch"], curve["val_accuracy"]))
    except (OSError, KeyError, ValueError):
        r["curve"] = {}
    return r


def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    r = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0
        i = j + 1
    return r


def spearman(a, b):
    """Spearman's rho (average ranks for ties); None below 3 pairs."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < 3:
        return None
    ra, rb = ranks([p[0] for p in pairs]), ranks([p[1] for p in pairs])
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb) if va > 0 and vb > 0 else None


def fmt(x, pct=True):
    if x is None:
        return "–"
    return f"{100 * x:.2f}" if pct else f"{x:.2f}"


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def jobs_for(recipe, net):
    """(budget, flags) pairs of the runs a recipe needs for one network."""
    schedule, settings = RECIPES[recipe]
    out = []
    for b in BUDGETS:
        if schedule == "study" and b != max(BUDGETS):
            continue
        flags = dict(settings, epochs=b)
        flags["schedule-epochs"] = max(BUDGETS) if schedule == "study" else b
        out.append((b, flags))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default="pipelines/presets/quick.json")
    ap.add_argument("--panel", default=os.path.join(HERE, "panel.json"))
    ap.add_argument("--cache", default=os.path.join(HERE, "cache"))
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--no-speed", action="store_true", help="skip the batch-size speed table")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: print the table of what the cache holds")
    a = ap.parse_args()
    recipes = [r for r in a.recipes.split(",") if r]
    for r in recipes:
        if r not in RECIPES:
            sys.exit(f"recipe_bench: unknown recipe {r!r} (known: {', '.join(RECIPES)})")
    with open(a.study) as f:
        study = json.load(f)
    if study.get("budgets", {}).get("max") != max(BUDGETS):
        sys.exit(f"recipe_bench: {a.study}: budgets.max must be {max(BUDGETS)} (the panel's final budget)")
    with open(a.panel) as f:
        panel = json.load(f)["generators"]
    study_path = os.path.abspath(a.study)

    archs = {}
    for net, gen in panel.items():
        d = os.path.join(a.cache, "archs", net)
        os.makedirs(d, exist_ok=True)
        gfile = os.path.join(d, "generator.json")
        with open(gfile, "w") as f:
            json.dump({"schema": "nago.generator/1", "generator": gen}, f)
        subprocess.run(
            [os.path.join(a.bin, "nago-generate"), "--proposal", gfile, "--seed", "0",
             "--study", study_path, "--out", d],
            check=True, stdout=subprocess.DEVNULL)
        archs[net] = os.path.join(d, "arch.json")

    # Network by network (every recipe of one network before the next network), so that an
    # interrupted bench has whole rows to compare.
    work = []
    for net in panel:
        for r in recipes:
            for b, flags in jobs_for(r, net):
                work.append((r, b, net, flags))
    if not a.no_speed:
        # One network's batch sizes one after the other, so they see the same machine load.
        for net in panel:
            for bs in SPEED_BATCHES:
                work.append(("speed", bs, net, speed_flags(bs)))
    seen, todo = set(), []
    for w in work:
        d = run_dir(a.cache, w[2], w[3])
        if d not in seen:
            seen.add(d)
            todo.append((w, d))
    pending = [(w, d) for w, d in todo if (result(d) or {}).get("status") != "ok"]
    if a.report_only:
        pending = []
    print(f"recipe_bench: {len(todo)} runs, {len(pending)} to train ({a.jobs} at a time, 1 thread each); "
          f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    t0 = time.time()
    with cf.ThreadPoolExecutor(a.jobs) as pool:
        futs = {pool.submit(train, a.bin, study_path, archs[w[2]], d, w[3]): (w, d) for w, d in pending}
        for i, fut in enumerate(cf.as_completed(futs), 1):
            (kind, b, net, _), d = futs[fut]
            r = fut.result() or {}
            print(f"  [{i}/{len(pending)}] {time.time() - t0:7.0f} s  {kind} {net} {b}: "
                  f"{r.get('status')} val {r.get('val_accuracy')}", file=sys.stderr, flush=True)

    res = {d: result(d) for _, d in todo}
    params = {}
    for net in panel:
        with open(archs[net]) as f:
            params[net] = json.load(f)["counts"]["params"]

    lines = []
    say = lines.append
    say(f"Panel: {len(panel)} generators of {a.study}'s space, one architecture each (seed 0); "
        f"{study['training'].get('train_subset', 'all')} training images per epoch, "
        f"validation {study['dataset'].get('validation')} images; 1 thread per run, {a.jobs} runs at once.")
    say("")
    if not a.no_speed:
        say(f"Images/s by batch size (1 epoch of {SPEED_IMAGES} images):")
        say("")
        say("| network | params | " + " | ".join(f"batch {b}" for b in SPEED_BATCHES) + " |")
        say("|---|---|" + "---|" * len(SPEED_BATCHES))
        for net in panel:
            cells = []
            for bs in SPEED_BATCHES:
                r = res[run_dir(a.cache, net, speed_flags(bs))]
                cells.append(f"{r['images_per_second']:.0f}" if r and r.get("status") == "ok" else "–")
            say(f"| {net} | {params[net]:,} | " + " | ".join(cells) + " |")
        say("")

    def acc(r, net, b):
        """Validation accuracy after b epochs under recipe r (None when not run or failed)."""
        for bb, flags in jobs_for(r, net):
            x = res[run_dir(a.cache, net, flags)]
            if x is None or x.get("status") != "ok":
                continue
            if bb == b:
                return x.get("val_accuracy")
            if RECIPES[r][0] == "study" and b in x["curve"]:
                return x["curve"][b]
        return None

    def final(r, net, key):
        flags = jobs_for(r, net)[-1][1]
        x = res[run_dir(a.cache, net, flags)]
        return x.get(key) if x and x.get("status") == "ok" else None

    # Means and correlations over the same networks for every recipe: those with every
    # budget of every recipe shown (an interrupted bench compares whole rows only).
    complete = [n for n in panel if all(acc(r, n, b) is not None for r in recipes for b in BUDGETS)]
    say(f"Per recipe, over the {len(complete)} of {len(panel)} panel networks that every recipe has "
        "finished (accuracies in %, means; rho = Spearman between the low budget's and the "
        "4-epoch validation accuracy):")
    say("")
    say("| recipe | schedule | settings | val@1 | val@2 | val@4 | test@4 | rho(1,4) | rho(2,4) | images/s | 4-epoch runs done |")
    say("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in recipes:
        sched, settings = RECIPES[r]
        a1 = [acc(r, n, 1) for n in complete]
        a2 = [acc(r, n, 2) for n in complete]
        a4 = [acc(r, n, 4) for n in complete]
        t4 = [final(r, n, "test_accuracy") for n in complete]
        ips = [final(r, n, "images_per_second") for n in complete]
        done = sum(acc(r, n, 4) is not None for n in panel)
        sset = ", ".join(f"{k} {v}" for k, v in settings.items()) or "preset"
        rho1, rho2 = spearman(a1, a4), spearman(a2, a4)
        say(f"| {r} | {'cosine over budgets.max' if sched == 'study' else 'cosine per budget'} | {sset} | "
            f"{fmt(mean(a1))} | {fmt(mean(a2))} | {fmt(mean(a4))} | {fmt(mean(t4))} | "
            f"{fmt(rho1, False)} | {fmt(rho2, False)} | {fmt(mean(ips), False)} | {done}/{len(panel)} |")
    say("")
    say("Validation accuracy (%) per network after 1 / 2 / 4 epochs:")
    say("")
    say("| network | params | " + " | ".join(recipes) + " |")
    say("|---|---|" + "---|" * len(recipes))
    for n in panel:
        cells = [" / ".join(fmt(acc(r, n, b)) for b in BUDGETS) for r in recipes]
        say(f"| {n} | {params[n]:,} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.cache, "report.md"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
