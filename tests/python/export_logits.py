#!/usr/bin/env python3
"""End to end: the Python export and the ONNX export give the Rust model's logits.

For several architectures (every merge kind, every operation, one to three op-graphs per
cell, small and larger widths, both stems: 28 x 28 Fashion-MNIST and 72 x 72 images, which
get the strided stem) this script
  1. writes a study with one trial per architecture and samples it (nago-generate),
  2. trains it briefly on Fashion-MNIST with the real trainer (nago-train, CPU): BN running
     statistics and weights are then trained values, not their initialisation,
  3. exports it (nago-report export: arch.json + weights.safetensors),
  4. runs the trainer's own network (crates/nago-train/examples/rust_logits.rs, nago_train::net::Net) in eval
     mode on a fixed random input and writes its logits,
  5. builds the network in PyTorch from arch.json with nago_export, loads the exported
     weights, runs the same input in eval mode and compares;
  6. with --onnx, exports it again with `nago-report export --format onnx` (model.onnx),
     checks it with onnx's checker (full check, opset >= 17, no training-mode nodes) and
     runs it in onnxruntime on the same images as pixel values 0..255 (the model includes
     the normalisation) and compares with the Rust logits;
  7. measures the exported directory's latency with nago-latency (batch 1 < batch 32).

Tolerance: max |logit difference| <= 1e-4 (float32, CPU), and the same argmax.

    export_logits.py --bin target/release --harness target/release/examples/rust_logits --work DIR [--onnx]
"""
import argparse
import gzip
import json
import os
import struct
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

# 72 x 72 inputs (larger than the generator's 64-pixel threshold): the strided stem, two
# stride-2 convolutions. Fashion-MNIST upsampled, written as IDX (see large_idx).
LARGE_CASES = [
    ("large-stem", {"top": level("ws", 4, 2, 0.5, {"sum": 1, "attention": 1, "concat": 1}),
                    "mid": level("er", 2, 2, 0.6, {"sum": 1, "attention": 1}),
                    "bottom": level("ws", 4, 2, 0.5, {"sum": 1, "concat": 1}), "ops": ALL_OPS,
                    "param_limit": 20000}, 13),
]

STUDY = {
    "schema": "nago.study/1", "name": "export-logits", "seed": 1,
    "dataset": {"name": "fashion-mnist", "validation": 200},
    "objectives": [{"metric": "val_error", "goal": "min"}, {"metric": "params", "goal": "min", "log": True}],
    "budgets": {"min": 1, "max": 1, "eta": 2},
    "search": {"batch_size": 4, "max_evaluations": 4, "initial_design": 4, "final_samples": 1},
    "training": {"lr": 0.05, "batch_size": 64, "train_subset": 256, "crop_padding": 0, "flip": False},
}


def large_idx(src, dst, size=72, n_train=600, n_test=100):
    """Fashion-MNIST images upsampled to size x size, as uncompressed IDX files."""
    os.makedirs(dst, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        with gzip.open(os.path.join(src, prefix + "-images-idx3-ubyte.gz")) as f:
            data = f.read()
        imgs = torch.frombuffer(bytearray(data[16:16 + n * 784]), dtype=torch.uint8).view(n, 1, 28, 28)
        big = torch.nn.functional.interpolate(imgs.float(), size=(size, size), mode="bilinear",
                                              align_corners=False).round().clamp(0, 255).to(torch.uint8)
        with open(os.path.join(dst, prefix + "-images-idx3-ubyte"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, size, size) + big.numpy().tobytes())
        with gzip.open(os.path.join(src, prefix + "-labels-idx1-ubyte.gz")) as f:
            labels = f.read()[8:8 + n]
        with open(os.path.join(dst, prefix + "-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels)


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(cmd), p.stdout[-3000:], p.stderr[-3000:]))
    return p.stdout


def onnx_logits(a, run_dir, name, out, x):
    """model.onnx from `nago-report export --format onnx`, checked, run on x as pixels."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    run([os.path.join(a.bin, "nago-report"), "export", "--run", run_dir, "--trial", name,
         "--out", out, "--format", "onnx", "--python", sys.executable])
    path = os.path.join(out, "model.onnx")
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    opset = max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 17:
        sys.exit("FAILED: %s: opset %d < 17" % (path, opset))
    types = {n.op_type for n in proto.graph.node}
    training_bn = [n for n in proto.graph.node if n.op_type == "BatchNormalization" and len(n.output) > 1]
    if "Dropout" in types or training_bn:
        sys.exit("FAILED: %s has training-mode nodes: %s" % (path, sorted(types)))
    manifest = json.load(open(os.path.join(out, "export.json")))
    if manifest.get("onnx", {}).get("opset") != opset:
        sys.exit("FAILED: export.json does not record the ONNX export: %s" % manifest.get("onnx"))
    mean = torch.tensor(manifest["input_mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(manifest["input_std"], dtype=torch.float32).view(1, -1, 1, 1)
    pixels = ((x * std + mean) * 255.0).numpy().astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"images": pixels})[0]
    return torch.from_numpy(got), opset, len(proto.graph.node)


def check_case(a, run_dir, name, gen, seed, data_root, rows):
    tdir = os.path.join(run_dir, "trials", name)
    os.makedirs(tdir, exist_ok=True)
    prop = {"schema": "nago.proposal/1", "trial": name, "round": 0, "generator": gen, "budget": 1,
            "seed": seed, "origin": "manual"}
    with open(os.path.join(tdir, "proposal.json"), "w") as f:
        json.dump(prop, f, indent=2)
    run([os.path.join(a.bin, "nago-generate"), "--proposal", os.path.join(tdir, "proposal.json"),
         "--study", os.path.join(run_dir, "study.json"), "--out", tdir])
    run([os.path.join(a.bin, "nago-train"), "--run", run_dir, "--trial", name, "--cpu", "--threads", "2",
         "--no-progress", "--no-latency", "--data-root", data_root])
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
    onnx_diff, opset = None, None
    if a.onnx:
        ox, opset, _ = onnx_logits(a, run_dir, name, os.path.join(a.work, "onnx", name), x)
        onnx_diff = (ox - rust).abs().max().item()
        same_argmax = same_argmax and bool((ox.argmax(1) == rust.argmax(1)).all())
        lat = json.loads(run([os.path.join(a.bin, "nago-latency"), "--dir", os.path.join(a.work, "onnx", name),
                              "--json", "--min-runs", "3", "--min-seconds", "0"]))
        if not 0 < lat["batch1"]["median_ms"] < lat["batch32"]["median_ms"]:
            sys.exit("FAILED: %s: nago-latency on the export: %s" % (name, lat))
    merges = sorted({m["kind"] for c in arch["cells"] for g2 in c["opgraphs"] for o in g2["ops"]
                     for m in [o["merge"]] if len(m["inputs"]) > 1})
    ops = sorted({o["op"] for c in arch["cells"] for g2 in c["opgraphs"] for o in g2["ops"]})
    stem = "strided" if any(s["stride"] > 1 for s in arch["stem"]) else "plain"
    rows.append((name, arch["counts"]["params"], "%dx%d" % (i["height"], i["width"]), stem, len(arch["cells"]),
                 sum(len(c["opgraphs"]) for c in arch["cells"]), ",".join(merges) or "-", ops,
                 rust.abs().max().item(), diff, onnx_diff, opset, same_argmax))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--harness", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--data-root", default="data")
    ap.add_argument("--onnx", action="store_true", help="also check the ONNX export with onnxruntime")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    run_dir = os.path.abspath(os.path.join(a.work, "study"))
    os.makedirs(os.path.join(run_dir, "trials"), exist_ok=True)
    with open(os.path.join(run_dir, "study.json"), "w") as f:
        json.dump(STUDY, f, indent=2)
    for name, gen, seed in CASES:
        check_case(a, run_dir, name, gen, seed, a.data_root, rows)
    # The strided stem: 72 x 72 images.
    large = os.path.abspath(os.path.join(a.work, "large-data"))
    large_idx(os.path.join(a.data_root, "fashion-mnist"), large)
    large_run = os.path.abspath(os.path.join(a.work, "study-large"))
    os.makedirs(os.path.join(large_run, "trials"), exist_ok=True)
    study = dict(STUDY, name="export-logits-large",
                 dataset={"name": "idx", "path": large, "channels": 1, "height": 72, "width": 72,
                          "classes": 10, "validation": 100},
                 training=dict(STUDY["training"], train_subset=128))
    with open(os.path.join(large_run, "study.json"), "w") as f:
        json.dump(study, f, indent=2)
    for name, gen, seed in LARGE_CASES:
        check_case(a, large_run, name, gen, seed, a.data_root, rows)

    print("%-10s %7s %6s %-8s %5s %8s %-26s %4s %10s %10s %10s %5s %s" % (
        "arch", "params", "input", "stem", "cells", "opgraphs", "multi-input op merges", "ops", "max|logit|",
        "torch diff", "onnx diff", "opset", "argmax"))
    for r in rows:
        print("%-10s %7d %6s %-8s %5d %8d %-26s %4d %10.4f %10.2e %10s %5s %s" % (
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], len(r[7]), r[8], r[9],
            "-" if r[10] is None else "%.2e" % r[10], r[11] or "-", r[12]))
    worst = max(max(r[9], r[10] or 0.0) for r in rows)
    all_ops = sorted({o for r in rows for o in r[7]})
    all_merges = sorted({m for r in rows for m in r[6].split(",") if m != "-"})
    stems = sorted({r[3] for r in rows})
    covered = len(all_ops) == len(ALL_OPS) and all_merges == ["attention", "concat", "sum"] and stems == ["plain", "strided"]
    ok = worst <= TOL and all(r[-1] for r in rows) and covered
    print("covered: %d operations %s, merges %s, stems %s" % (len(all_ops), all_ops, all_merges, stems))
    print("%s: max |%s - rust| over %d architectures = %.3e (tolerance %.0e)"
          % ("ok" if ok else "FAIL", "python/onnx" if a.onnx else "python", len(rows), worst, TOL))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
