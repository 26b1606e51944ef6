"""The bench-bo problems, shared by every Python harness; the same definitions as
crates/nago-bo/examples/bench_bo.rs (names, inputs, reference points, noise).

Noisy variants add Gaussian noise with std 5 % / 10 % of each objective's range over the
cube to the observation; hypervolume is always computed on the noiseless values of the
evaluated points. Shifted variants ("s") move the Pareto set inside the cube.
"""
import math
import os


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


def shift(i):
    return 0.2 + 0.6 * ((i * 0.618034) % 1.0)


def zdt1_shifted(x):
    g = 1 + 9 * sum(abs(v - shift(i + 1)) for i, v in enumerate(x[1:])) / (len(x) - 1)
    return [x[0], g * (1 - math.sqrt(x[0] / g))]


def dtlz2_shifted(x):
    g = sum((v - shift(i + 1)) ** 2 for i, v in enumerate(x[1:]))
    return [(1 + g) * math.cos(x[0] * math.pi / 2), (1 + g) * math.sin(x[0] * math.pi / 2)]


ZDT1_RANGE = (1.0, 10.0)
ZDT3_RANGE = (1.0, 10.77)
DTLZ2_RANGE = (2.25, 2.25)


def noisy(r, pct):
    return (r[0] * pct / 100, r[1] * pct / 100)


# (name, inputs, reference point, function, noise std per objective)
PROBLEMS = [
    ("BraninCurrin", 2, (18.0, 6.0), branin_currin, (0.0, 0.0)),
    ("ZDT1", 6, (11.0, 11.0), zdt1, (0.0, 0.0)),
    ("ZDT2", 6, (11.0, 11.0), zdt2, (0.0, 0.0)),
    ("ZDT3", 6, (11.0, 11.0), zdt3, (0.0, 0.0)),
    ("DTLZ2", 6, (1.1, 1.1), dtlz2, (0.0, 0.0)),
    ("ZDT1s", 6, (11.0, 11.0), zdt1_shifted, (0.0, 0.0)),
    ("DTLZ2s", 6, (1.1, 1.1), dtlz2_shifted, (0.0, 0.0)),
    ("ZDT1-n5", 6, (11.0, 11.0), zdt1, noisy(ZDT1_RANGE, 5)),
    ("ZDT1-n10", 6, (11.0, 11.0), zdt1, noisy(ZDT1_RANGE, 10)),
    ("ZDT3-n5", 6, (11.0, 11.0), zdt3, noisy(ZDT3_RANGE, 5)),
    ("ZDT3-n10", 6, (11.0, 11.0), zdt3, noisy(ZDT3_RANGE, 10)),
    ("DTLZ2-n5", 6, (1.1, 1.1), dtlz2, noisy(DTLZ2_RANGE, 5)),
    ("DTLZ2-n10", 6, (1.1, 1.1), dtlz2, noisy(DTLZ2_RANGE, 10)),
]
NAMES = [p[0] for p in PROBLEMS]
EVALS = 60
BATCH = 4


def by_name(name):
    for p in PROBLEMS:
        if p[0] == name:
            return p
    raise SystemExit(f"unknown problem {name}")


class Evaluator:
    """Evaluates a problem for one run: observed (noisy) and noiseless values."""

    def __init__(self, problem, seed):
        self.f = problem[3]
        self.noise = problem[4]
        import numpy as np  # only the harnesses need numpy, not report.py

        self.rng = np.random.default_rng([seed, 0x6E6F697365])
        self.clean = []

    def __call__(self, x):
        y = self.f(list(x))
        self.clean.append(y)
        return [v + (s * self.rng.standard_normal() if s > 0 else 0.0) for v, s in zip(y, self.noise)]


def hv2(points, ref):
    pts = sorted((p for p in points if p[0] < ref[0] and p[1] < ref[1]))
    hv, level = 0.0, ref[1]
    for x, y in pts:
        if y < level:
            hv += (ref[0] - x) * (level - y)
            level = y
    return hv


def hv_line(problem, method, seed, clean):
    h = [hv2(clean[:n], problem[2]) for n in (20, 40, 60)]
    return f"hv {problem[0]} {method} {seed} {h[0]:.6f} {h[1]:.6f} {h[2]:.6f}"


def cached(cache_dir, method, problem, seed, run):
    """The hv line of (method, problem, seed), from cache_dir/method/problem/seed.txt when it
    exists, else computed by run() and stored (so the bench resumes and extends)."""
    path = os.path.join(cache_dir, method, problem[0], f"{seed}.txt")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    line = run()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(line + "\n")
    os.replace(path + ".tmp", path)
    return line


def parse_args(argv, default_methods):
    """SEEDS [METHOD ...] [--problems=A,B] [--cache=DIR]"""
    seeds, methods, names, cache = 10, [], NAMES, os.environ.get("BO_CACHE", "bench/bo/cache")
    for a in argv:
        if a.startswith("--problems="):
            names = [n for n in a.split("=", 1)[1].split(",") if n]
        elif a.startswith("--cache="):
            cache = a.split("=", 1)[1]
        elif a.isdigit():
            seeds = int(a)
        else:
            methods.append(a)
    return seeds, methods or default_methods, [by_name(n) for n in names], cache

