"""nago through `nago-ask` (the mo-bench/1 protocol), as any black-box user runs it: one
request per batch of 4, state kept in a per-run state_dir. On the noiseless problems it
gives the same points as bench_bo.rs's in-process `bo` (same engine, seeds, defaults), so
its lines check the protocol end to end; on noisy problems the noise stream is Python's.
Prints `hv <problem> bo_ask <seed> ...` lines (not cached: nago changes with the code).

Usage: ask_bench.py SEEDS [--problems=A,B] [--bin=target/release/nago-ask]
"""
import json
import os
import subprocess
import sys
import tempfile

from problems import BATCH, EVALS, Evaluator, hv_line, parse_args


def run(problem, seed, binary):
    name, d, ref, _, noise = problem
    ev = Evaluator(problem, seed)
    xs, ys = [], []
    with tempfile.TemporaryDirectory() as tmp:
        k = 0
        while len(xs) < EVALS:
            req = {"protocol": "mo-bench/1",
                   "problem": {"name": name, "dim": d, "num_objectives": 2, "ref_point": list(ref),
                               "levels": [None] * d, "noisy": noise[0] > 0},
                   "seed": seed, "q": min(BATCH, EVALS - len(xs)), "budget": EVALS, "ask_index": k,
                   "state_dir": os.path.join(tmp, "state"), "history": {"X": xs, "Y": ys}}
            rq, rs = os.path.join(tmp, "req.json"), os.path.join(tmp, "resp.json")
            with open(rq, "w") as f:
                json.dump(req, f)
            subprocess.run([binary, rq, rs], check=True)
            with open(rs) as f:
                new = json.load(f)["X"]
            for x in new:
                xs.append(x)
                ys.append(ev(x))
            k += 1
    return hv_line(problem, "bo_ask", seed, ev.clean)


def main():
    binary = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--bin=")), "target/release/nago-ask")
    seeds, _, problems, _ = parse_args([a for a in sys.argv[1:] if not a.startswith("--bin=")], ["bo_ask"])
    for p in problems:
        for seed in range(seeds):
            print(run(p, seed, binary), flush=True)


if __name__ == "__main__":
    main()
