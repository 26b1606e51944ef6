#!/usr/bin/env python3
"""nago_export builds every architecture nago-generate samples, with arch.json's parameter count.

Samples N architectures (nago-generate; random generators over every graph model, merge and
operation, 1x28x28 and 3x32x32 inputs), builds each with nago_export.NagoNet, and checks that
its trainable parameters equal arch.json's counts.params, that every tensor name follows the
trainer's scheme, and that a forward pass gives [batch, classes] logits in eval mode.

    export_params.py --bin target/release --work DIR [--n 40]
"""
import argparse
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import torch  # noqa: E402
from nago_export import NagoNet  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--work", required=True)
    ap.add_argument("--n", type=int, default=40)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    rng = random.Random(11)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    bad = []
    for i in range(a.n):
        w = lambda k: {n: rng.choice([0, 0, 1, 2]) or 0 for n in k}  # noqa: E731
        merge = w(["sum", "attention", "concat"])
        if not any(merge.values()):
            merge["sum"] = 1
        ops = w(["conv3x3", "conv5x5", "conv1x1", "conv3x1", "conv1x3", "avgpool3x3", "avgpool5x5"])
        ops["conv3x3"] = ops["conv3x3"] or 1
        gen = {"schema": "nago.generator/1", "generator": {
            "top": {"model": rng.choice(["ws", "er", "ba"]), "n": rng.randint(3, 6), "k": rng.randint(2, 4),
                    "p": rng.uniform(0.1, 0.9), "merge": merge},
            "mid": {"model": rng.choice(["ws", "er", "ba"]), "n": rng.randint(1, 3), "k": 2,
                    "p": rng.uniform(0.1, 0.9), "merge": merge},
            "bottom": {"model": rng.choice(["ws", "er", "ba"]), "n": rng.randint(3, 5), "k": rng.randint(2, 4),
                       "p": rng.uniform(0.1, 0.9), "merge": merge},
            "ops": ops, "param_limit": rng.choice([3000, 20000, 100000])}}
        # WS on 2 nodes has no ring (K clips to 1): it can never be connected, and sampling it
        # is an error since graphs are redrawn until connected.
        for lvl in gen["generator"].values():
            if isinstance(lvl, dict) and lvl.get("model") == "ws" and lvl.get("n") == 2:
                lvl["n"] = 3
        gpath = os.path.join(a.work, "gen%d.json" % i)
        json.dump(gen, open(gpath, "w"))
        out = os.path.join(a.work, "a%d" % i)
        shape = ["--shape", "3x32x32", "--classes", "100"] if i % 4 == 3 else []
        p = subprocess.run([os.path.join(a.bin, "nago-generate"), "--proposal", gpath, "--seed", str(i), "--out", out]
                           + shape, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("nago-generate failed: %s" % p.stderr)
        arch = json.load(open(os.path.join(out, "arch.json")))
        net = NagoNet(arch).eval()
        n = net.n_params()
        if n != arch["counts"]["params"]:
            bad.append("arch %d: %d parameters, arch.json counts %d" % (i, n, arch["counts"]["params"]))
        for name in net.state_dict():
            if not (name.startswith(("stem.", "cells.", "output.", "head.", "classifier."))):
                bad.append("arch %d: unexpected tensor name %s" % (i, name))
        inp = arch["input"]
        with torch.no_grad():
            y = net(torch.randn(2, inp["channels"], inp["height"], inp["width"]))
        if tuple(y.shape) != (2, inp["classes"]) or not torch.isfinite(y).all():
            bad.append("arch %d: logits %s" % (i, tuple(y.shape)))
    for b in bad:
        print("FAIL:", b)
    if bad:
        sys.exit(1)
    print("ok: %d sampled architectures build in PyTorch with arch.json's parameter count" % a.n)


if __name__ == "__main__":
    main()
