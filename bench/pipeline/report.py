"""Where a search's wall time went, from its logs/stages.tsv and trial results.

Usage: report.py RUN_DIR [RUN_DIR ...]   (one line per run; the label is the directory name)

utilisation = training core-seconds / (cores x wall), wall from the first proposal's start to
the last training's end, training core-seconds = sum over training runs of result.json's
train_seconds x threads, cores = workers x threads per worker. The other columns split the
workers' time (slots x wall, slots = the most trainings that ran at once): propose, update, generate, process start (a training stage's
wall time minus its train_seconds: process start, data loading, checkpoint reads), idle.
"""

import json
import os
import sys


def one(run):
    rows = []
    with open(os.path.join(run, "logs", "stages.tsv")) as f:
        for line in f:
            w, stage, trial, t0, t1, code = line.rstrip("\n").split("\t")
            rows.append((w, stage, trial, float(t0), float(t1)))
    proposes = [r for r in rows if r[1] == "propose"]
    trains = [r for r in rows if r[1] == "train"]
    start = min(r[3] for r in proposes)
    end = max(r[4] for r in trains)
    wall = end - start
    train_cs = 0.0
    threads = 1
    startup = 0.0
    seen = set()
    for r in trains:
        res = os.path.join(run, "trials", r[2], "result.json")
        try:
            j = json.load(open(res))
        except (OSError, ValueError):
            continue
        # A trial trained in several runs (a retry) has the last run's seconds in result.json:
        # count each result once.
        if r[2] not in seen:
            seen.add(r[2])
            threads = j.get("threads", 1) or 1
            train_cs += (j.get("train_seconds") or 0.0) * threads
            startup += max(0.0, (r[4] - r[3]) - (j.get("train_seconds") or 0.0))
    # Training slots: the most trainings that ran at once (rounds mode logs every stage as
    # `driver`, so worker labels do not count them).
    events = sorted([(r[3], 1) for r in trains] + [(r[4], -1) for r in trains])
    now = workers = 0
    for _, step in events:
        now += step
        workers = max(workers, now)
    workers = workers or 1
    cores = workers * threads
    busy = {s: sum(r[4] - r[3] for r in rows if r[1] == s) for s in ("propose", "update", "generate")}
    denom = workers * wall
    share = {k: 100 * v / denom for k, v in busy.items()}
    share["start"] = 100 * startup / denom
    util = 100 * train_cs / (cores * wall)
    idle = max(0.0, 100 - util - sum(share.values()))
    return (os.path.basename(run.rstrip("/")), workers, threads, wall / 60, util,
            share["propose"], share["update"], share["generate"], share["start"], idle)


def main():
    print(f"{'run':<24}{'workers':>8}{'threads':>8}{'wall min':>10}{'util %':>8}"
          f"{'propose %':>10}{'update %':>9}{'generate %':>11}{'start %':>8}{'idle %':>8}")
    for run in sys.argv[1:]:
        r = one(run)
        print(f"{r[0]:<24}{r[1]:>8}{r[2]:>8}{r[3]:>10.1f}{r[4]:>8.1f}"
              f"{r[5]:>10.1f}{r[6]:>9.1f}{r[7]:>11.1f}{r[8]:>8.1f}{r[9]:>8.1f}")


if __name__ == "__main__":
    main()
