"""Prints the bench-bo table from the `hv ...` and `latency ...` lines on stdin. Anchors:
Optuna's samplers (nsga2, tpe, gp) and BoTorch's qLogNEHVI (qlognehvi). nago wins a problem
when its mean HV@60 is at least every anchor's that ran on it. The last line is
`bo: best on <k>/<n> problems (noisy included); fit+propose <t> s at 500 obs`, <t> in CPU
seconds of the one core the latency runs on (the wall clock on a shared machine includes
other people's load; the table shows both)."""
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from problems import NAMES  # noqa: E402

hv = defaultdict(dict)
lat = {}
for line in sys.stdin:
    f = line.split()
    if f and f[0] == "hv":
        hv[(f[1], f[2])][f[3]] = [float(v) for v in f[4:7]]
    elif f and f[0] == "latency" and len(f) >= 8:
        lat[int(f[1])] = [float(v) for v in f[2:8]] + [f[8] if len(f) > 8 else "?"]

methods = ["bo", "bo_cold", "random", "nsga2", "tpe", "gp", "qlognehvi"]
anchors = ("nsga2", "tpe", "gp", "qlognehvi")
print(f"{'problem':<13}{'method':<10}{'seeds':>6}  {'HV@20':>18}  {'HV@40':>18}  {'HV@60':>18}")
wins, n = 0, 0
for p in NAMES:
    best_other = None
    for m in methods:
        runs = list(hv.get((p, m), {}).values())
        if not runs:
            continue
        cells = []
        for k in range(3):
            v = [r[k] for r in runs]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):9.4f} ± {sd:6.4f}")
        print(f"{p:<13}{m:<10}{len(runs):>6}  " + "  ".join(cells))
        if m in anchors:
            mean60 = statistics.mean(r[2] for r in runs)
            best_other = mean60 if best_other is None else max(best_other, mean60)
    bo = list(hv.get((p, "bo"), {}).values())
    if bo:
        n += 1
        if best_other is None or statistics.mean(r[2] for r in bo) >= best_other:
            wins += 1
print()
print("one round at n observations of ZDT1 (6-D): warm-started fit + propose of 4 (wall s / CPU s);")
print("the cold fit (4 starts x 80 iterations) for comparison:")
for k in sorted(lat):
    pw, fw, pc, fc, cw, cc, kind = lat[k]
    print(f"  {k:>5} obs: fit+propose {fw + pw:6.3f} s wall, {fc + pc:6.3f} s CPU"
          f"  (fit {fw:.3f}/{fc:.2f} {kind}, propose {pw:.3f}/{pc:.2f});  cold fit {cw:.2f}/{cc:.2f}")
t500 = lat[500][3] + lat[500][2] if 500 in lat else float("nan")
print(f"bo: best on {wins}/{n} problems (noisy included); fit+propose {t500:.2f} s at 500 obs")
