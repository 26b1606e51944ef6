"""Prints the bench-bo table from the `hv ...` and `latency ...` lines on stdin; the last line
is `bo: beats best Optuna sampler on <k>/5 problems at 60 evals; propose <t> s at 500 obs`."""
import statistics
import sys
from collections import defaultdict

hv = defaultdict(list)
lat = {}
for line in sys.stdin:
    f = line.split()
    if f and f[0] == "hv":
        hv[(f[1], f[2])].append([float(v) for v in f[4:7]])
    elif f and f[0] == "latency":
        lat[int(f[1])] = (float(f[2]), float(f[3]), float(f[4]) if len(f) > 4 else float("nan"))

problems = ["BraninCurrin", "ZDT1", "ZDT2", "ZDT3", "DTLZ2"]
methods = ["bo", "random", "nsga2", "tpe", "gp"]
print(f"{'problem':<13}{'method':<8}{'seeds':>6}  {'HV@20':>18}  {'HV@40':>18}  {'HV@60':>18}")
wins = 0
for p in problems:
    best_other = None
    for m in methods:
        runs = hv.get((p, m))
        if not runs:
            continue
        cells = []
        for k in range(3):
            v = [r[k] for r in runs]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):9.4f} ± {sd:6.4f}")
        print(f"{p:<13}{m:<8}{len(runs):>6}  " + "  ".join(cells))
        if m in ("nsga2", "tpe", "gp"):
            mean60 = statistics.mean(r[2] for r in runs)
            best_other = mean60 if best_other is None else max(best_other, mean60)
    bo = hv.get((p, "bo"))
    if bo and best_other is not None and statistics.mean(r[2] for r in bo) > best_other:
        wins += 1
print()
print("propose latency (batch of 4, surrogate already fitted; wall s / process CPU s), fit wall s:")
for n in sorted(lat):
    w, fit_s, cpu = lat[n]
    print(f"  {n:>5} obs: propose {w:.3f} s wall, {cpu:.3f} s CPU; fit {fit_s:.2f} s")
t500 = lat.get(500, (float("nan"),))[0]
print(f"bo: beats best Optuna sampler on {wins}/5 problems at 60 evals; propose {t500:.2f} s at 500 obs")
