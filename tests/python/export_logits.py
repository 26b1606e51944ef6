#!/usr/bin/env python3
"""End to end: the Python export gives the Rust model's logits.

For several architectures (every merge kind, every operation, one to three op-graphs per
cell, small and larger widths) this script
  1. writes a study with one trial per architecture and samples it (nago-generate),
  2. trains it briefly on Fashion-MNIST with the real trainer (nago-train, CPU): BN running
     statistics and weights are then trained values, not their initialisation,
  3. exports it (nago-report export: arch.json + weights.safetensors),
  4. runs the trainer's own network (tests/python/rust_logits, nago_train::net::Net) in eval
     mode on a fixed random input and writes its logits,
  5. builds the network in PyTorch from arch.json with nago_export, loads the exported
     weights, runs the same input in eval mode and compares.

Tolerance: max |logit difference| <= 1e-4 (float32, CPU), and the same argmax.

    export_logits.py --bin target/release --harness PATH/nago-rust-logits --work DIR
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import torch  # noqa: E402
from nago_export import load_model, load_safetensors, save_safetensors  # noqa: E402

TOL = 1e-4


def level(model, n, k, p, merge):
    return {"model": model, "n": n, "k": k, "p": p, "merge": merge}


ALL_OPS = {"conv3x3": 1, "conv5x5": 1, "conv1x1": 1, "conv3x1": 1, "conv1x3": 1, "avgpool3x3": 1, "avgpool5x5": 1}
CASES = [
    ("sum", {"top": level("ws", 4, 2, 0.5, {"sum": 1}), "mid": level("er", 2, 2, 0.6, {"sum": 1}),
             "bottom": level("ws", 4, 2, 0.5, {"sum": 1}), "param_limit": 20000}, 3),
    ("attention", {"top": level("ws", 5, 4, 0.4, {"sum": 0, "attention": 1, "concat": 0}), "mid": level("er", 3, 2, 0.7, {"sum": 0, "attention": 1, "concat": 0}),
                   "bottom": level("ws", 4, 2, 0.3, {"sum": 0, "attention": 1, "concat": 0}), "ops": ALL_OPS, "param_limit": 30000}, 11),
    ("concat", {"top": level("ws", 4, 2, 0.5, {"sum": 0, "attention": 0, "concat": 1}), "mid": level("er", 2, 2, 0.9, {"sum": 0, "attention": 0, "concat": 1}),
                "bottom": level("ws", 5, 4, 0.5, {"sum": 0, "attention": 0, "concat": 1}), "ops": ALL_OPS, "param_limit": 30000}, 5),
    ("mixed", {"top": level("ba", 6, 2, 0.5, {"sum": 1, "attention": 1, "concat": 1}),
               "mid": level("er", 1, 2, 0.5, {"sum": 1}),
               "bottom": level("ws", 5, 4, 0.2, {"sum": 1, "attention": 1, "concat": 1}), "ops": ALL_OPS,
               "param_limit": 100000}, 7),
]

STUDY = {
    "schema": "nago.study/1", "name": "export-logits", "seed": 1,
    "dataset": {"name": "fashion-mnist", "validation": 200},
    "objectives": [{"metric": "val_error", "goal": "min"}, {"metric": "params", "goal": "min", "log": True}],
    "budgets": {"min": 1, "max": 1, "eta": 2},
    "search": {"batch_size": 4, "max_evaluations": 4, "initial_design": 4, "final_samples": 1},
    "training": {"lr": 0.05, "batch_size": 64, "train_subset": 256, "crop_padding": 0, "flip": False},
}


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(cmd), p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--harness", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--data-root", default="data")
    a = ap.parse_args()
    torch.set_num_threads(1)
    run_dir = os.path.abspath(os.path.join(a.work, "study"))
    os.makedirs(os.path.join(run_dir, "trials"), exist_ok=True)
    with open(os.path.join(run_dir, "study.json"), "w") as f:
        json.dump(STUDY, f, indent=2)
    worst = 0.0
    rows = []
    for name, gen, seed in CASES:
        tdir = os.path.join(run_dir, "trials", name)
        os.makedirs(tdir, exist_ok=True)
        prop = {"schema": "nago.proposal/1", "trial": name, "round": 0, "generator": gen, "budget": 1,
                "seed": seed, "origin": "manual"}
        with open(os.path.join(tdir, "proposal.json"), "w") as f:
            json.dump(prop, f, indent=2)
        run([os.path.join(a.bin, "nago-generate"), "--proposal", os.path.join(tdir, "proposal.json"),
             "--study", os.path.join(run_dir, "study.json"), "--out", tdir])
        run([os.path.join(a.bin, "nago-train"), "--run", run_dir, "--trial", name, "--cpu", "--threads", "2",
             "--no-progress", "--data-root", a.data_root])
        out = os.path.join(a.work, "export", name)
        run([os.path.join(a.bin, "nago-report"), "export", "--run", run_dir, "--trial", name, "--out", out])
        arch = json.load(open(os.path.join(out, "arch.json")))
        g = torch.Generator().manual_seed(seed)
        i = arch["input"]
        x = torch.randn(8, i["channels"], i["height"], i["width"], generator=g)
        inp = os.path.join(a.work, name + "-input.safetensors")
        save_safetensors({"input": x}, inp)
        rl = os.path.join(a.work, name + "-logits.safetensors")
        run([a.harness, os.path.join(tdir, "arch.json"), tdir, inp, rl])
        rust = load_safetensors(rl)["logits"]
        net = load_model(out)
        with torch.no_grad():
            py = net(x)
        if rust.shape != (8, i["classes"]) or rust.std(0).max().item() <= 0:
            sys.exit("FAILED: %s: degenerate Rust logits %s" % (name, rust))
        diff = (py - rust).abs().max().item()
        same_argmax = bool((py.argmax(1) == rust.argmax(1)).all())
        merges = sorted({m["kind"] for c in arch["cells"] for g2 in c["opgraphs"] for o in g2["ops"]
                         for m in [o["merge"]] if len(m["inputs"]) > 1})
        ops = sorted({o["op"] for c in arch["cells"] for g2 in c["opgraphs"] for o in g2["ops"]})
        rows.append((name, arch["counts"]["params"], len(arch["cells"]), sum(len(c["opgraphs"]) for c in arch["cells"]),
                     ",".join(merges) or "-", len(ops), rust.abs().max().item(), diff, same_argmax))
        worst = max(worst, diff)
    print("%-10s %8s %5s %8s %-26s %4s %10s %10s %s" % ("arch", "params", "cells", "opgraphs", "multi-input op merges",
                                                       "ops", "max|logit|", "max diff", "argmax"))
    for r in rows:
        print("%-10s %8d %5d %8d %-26s %4d %10.4f %10.2e %s" % r)
    ok = worst <= TOL and all(r[-1] for r in rows)
    print("%s: max |python - rust| over %d architectures = %.3e (tolerance %.0e)"
          % ("ok" if ok else "FAIL", len(rows), worst, TOL))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
