"""`make bench-bo`, the BoTorch anchor: qLogNEHVI (noisy expected hypervolume improvement,
log version) on the problems of problems.py, 60 evaluations in batches of 4 after a Sobol
design of 2(d + 1) points (nago's rule), CPU torch, one thread. The standard BoTorch
recipe: one SingleTaskGP per objective (Standardize outcome transform, inputs already in
the unit cube), fit_gpytorch_mll, qLogNoisyExpectedHypervolumeImprovement with the observed
points as baseline (prune_baseline) and 128 Sobol QMC samples, optimize_acqf (q = 4,
sequential greedy, 10 restarts, 512 raw samples). Prints the same `hv ...` lines; cached.

Usage: botorch_bench.py SEEDS [--problems=A,B] [--cache=DIR]
"""
import sys
import warnings

import torch
from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.fit import fit_gpytorch_mll
from botorch.models import ModelListGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from botorch.sampling import SobolQMCNormalSampler
from gpytorch.mlls import SumMarginalLogLikelihood
from torch.quasirandom import SobolEngine

from problems import BATCH, EVALS, Evaluator, cached, hv_line, parse_args

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.set_default_dtype(torch.double)


def run(problem, seed):
    d = problem[1]
    ev = Evaluator(problem, seed)
    torch.manual_seed(seed)
    n0 = max(4, min(2 * (d + 1), max(4, EVALS // 5)))
    x = SobolEngine(d, scramble=True, seed=seed).draw(n0)
    y = torch.tensor([ev(r.tolist()) for r in x])
    ref = -torch.tensor(problem[2])
    bounds = torch.stack([torch.zeros(d), torch.ones(d)])
    while len(ev.clean) < EVALS:
        q = min(BATCH, EVALS - len(ev.clean))
        models = [SingleTaskGP(x, -y[:, k:k + 1], outcome_transform=Standardize(m=1)) for k in range(2)]
        model = ModelListGP(*models)
        fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
        acq = qLogNoisyExpectedHypervolumeImprovement(
            model=model, ref_point=ref.tolist(), X_baseline=x, prune_baseline=True,
            sampler=SobolQMCNormalSampler(sample_shape=torch.Size([128])))
        cand, _ = optimize_acqf(acq, bounds=bounds, q=q, num_restarts=10, raw_samples=512,
                                sequential=True, options={"batch_limit": 5, "maxiter": 200})
        new_y = torch.tensor([ev(r.tolist()) for r in cand])
        x = torch.cat([x, cand])
        y = torch.cat([y, new_y])
    return hv_line(problem, "qlognehvi", seed, ev.clean)


def main():
    seeds, _, problems, cache = parse_args(sys.argv[1:], ["qlognehvi"])
    for p in problems:
        for seed in range(seeds):
            print(cached(cache, "qlognehvi", p, seed, lambda: run(p, seed)), flush=True)


if __name__ == "__main__":
    main()
