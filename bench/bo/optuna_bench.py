"""`make bench-bo`, Optuna's multi-objective samplers (NSGA-II, TPE, GP) on the problems of
problems.py: same reference points, budget (60 evaluations) and batches of 4 (ask 4, then
tell 4) as crates/nago-bo/examples/bench_bo.rs; the samplers see the observed (noisy)
values, the hypervolume is of the noiseless ones. Prints `hv <problem> <method> <seed>
<hv@20> <hv@40> <hv@60>` lines; results are cached per (method, problem, seed).

Usage: optuna_bench.py SEEDS [SAMPLER ...] [--problems=A,B] [--cache=DIR]
"""
import sys

import optuna

from problems import BATCH, EVALS, Evaluator, cached, hv_line, parse_args

optuna.logging.set_verbosity(optuna.logging.ERROR)


def sampler(name, seed):
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=20)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    raise SystemExit(f"unknown sampler {name}")


def run(problem, name, seed):
    d = problem[1]
    ev = Evaluator(problem, seed)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler(name, seed))
    while len(ev.clean) < EVALS:
        trials = [study.ask() for _ in range(min(BATCH, EVALS - len(ev.clean)))]
        for t in trials:
            x = [t.suggest_float(f"x{i}", 0.0, 1.0) for i in range(d)]
            study.tell(t, ev(x))
    return hv_line(problem, name, seed, ev.clean)


def main():
    seeds, names, problems, cache = parse_args(sys.argv[1:], ["nsga2", "tpe", "gp"])
    for name in names:
        for p in problems:
            for seed in range(seeds):
                print(cached(cache, name, p, seed, lambda: run(p, name, seed)), flush=True)


if __name__ == "__main__":
    main()
