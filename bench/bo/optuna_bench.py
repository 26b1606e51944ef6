"""`make bench-bo`, the Python half: Optuna's multi-objective samplers (NSGA-II, TPE, GP) on
the same problems, reference points, budget (60 evaluations) and batches of 4 (ask 4, then
tell 4) as crates/nago-bo/examples/bench_bo.rs. Prints `hv <problem> <method> <seed> <hv@20>
<hv@40> <hv@60>` lines, the same format as the Rust half.

Usage: optuna_bench.py SEEDS [SAMPLER ...]
"""
import math
import sys

import optuna

optuna.logging.set_verbosity(optuna.logging.ERROR)


def branin_currin(x):
    x1, x2 = 15 * x[0] - 5, 15 * x[1]
    b = (x2 - 5.1 / (4 * math.pi**2) * x1 * x1 + 5 / math.pi * x1 - 6) ** 2 \
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10
    u, v = x[0], max(x[1], 1e-9)
    c = (1 - math.exp(-1 / (2 * v))) * (2300 * u**3 + 1900 * u * u + 2092 * u + 60) \
        / (100 * u**3 + 500 * u * u + 4 * u + 20)
    return [b, c]


def zdt_g(x):
    return 1 + 9 * sum(x[1:]) / (len(x) - 1)


def zdt1(x):
    g = zdt_g(x)
    return [x[0], g * (1 - math.sqrt(x[0] / g))]


def zdt2(x):
    g = zdt_g(x)
    return [x[0], g * (1 - (x[0] / g) ** 2)]


def zdt3(x):
    g = zdt_g(x)
    r = x[0] / g
    return [x[0], g * (1 - math.sqrt(r) - r * math.sin(10 * math.pi * x[0]))]


def dtlz2(x):
    g = sum((v - 0.5) ** 2 for v in x[1:])
    return [(1 + g) * math.cos(x[0] * math.pi / 2), (1 + g) * math.sin(x[0] * math.pi / 2)]


PROBLEMS = [
    ("BraninCurrin", 2, (18.0, 6.0), branin_currin),
    ("ZDT1", 6, (11.0, 11.0), zdt1),
    ("ZDT2", 6, (11.0, 11.0), zdt2),
    ("ZDT3", 6, (11.0, 11.0), zdt3),
    ("DTLZ2", 6, (1.1, 1.1), dtlz2),
]


def hv2(points, ref):
    pts = sorted((p for p in points if p[0] < ref[0] and p[1] < ref[1]))
    hv, level = 0.0, ref[1]
    for x, y in pts:
        if y < level:
            hv += (ref[0] - x) * (level - y)
            level = y
    return hv


def sampler(name, seed):
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise SystemExit(f"unknown sampler {name}")


def run(problem, name, seed):
    pname, d, ref, f = problem
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler(name, seed))
    ys = []
    while len(ys) < 60:
        trials = [study.ask() for _ in range(min(4, 60 - len(ys)))]
        for t in trials:
            x = [t.suggest_float(f"x{i}", 0.0, 1.0) for i in range(d)]
            y = f(x)
            study.tell(t, y)
            ys.append(y)
    return [hv2(ys[:n], ref) for n in (20, 40, 60)]


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    names = sys.argv[2:] or ["nsga2", "tpe", "gp"]
    for name in names:
        for p in PROBLEMS:
            for seed in range(seeds):
                h = run(p, name, seed)
                print(f"hv {p[0]} {name} {seed} {h[0]:.6f} {h[1]:.6f} {h[2]:.6f}", flush=True)


if __name__ == "__main__":
    main()
