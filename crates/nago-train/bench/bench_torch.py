"""PyTorch-eager side of `make bench-train`: the same training step as nago-train's (uint8
batch from memory → normalise → forward → cross-entropy → backward → SGD with momentum and
weight decay; loss and accuracy read back every step), images/s per architecture.

usage: bench_torch.py ARCH_JSON DATA_DIR BATCH WARMUP STEPS THREADS
"""

import gzip
import json
import os
import sys
import time

import numpy as np
import torch

# The baseline network is the exported model's module (python/nago_export): one PyTorch
# implementation of arch.json in the repository, the one whose logits are tested against nago-train's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python"))
from nago_export import NagoNet  # noqa: E402


def load_images(data_dir, n):
    with gzip.open(os.path.join(data_dir, "train-images-idx3-ubyte.gz")) as f:
        raw = f.read()
    with gzip.open(os.path.join(data_dir, "train-labels-idx1-ubyte.gz")) as f:
        lab = f.read()
    x = np.frombuffer(raw, dtype=np.uint8, offset=16)[: n * 784].reshape(n, 1, 28, 28)
    y = np.frombuffer(lab, dtype=np.uint8, offset=8)[:n].astype(np.int64)
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


def main():
    arch_path, data_dir, batch, warmup, steps, threads = sys.argv[1:7]
    device = sys.argv[7] if len(sys.argv) > 7 else "cpu"
    mode = sys.argv[8] if len(sys.argv) > 8 else "fp32"
    batch, warmup, steps, threads = int(batch), int(warmup), int(steps), int(threads)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    arch = json.load(open(arch_path))
    net = NagoNet(arch)
    params = sum(p.numel() for p in net.parameters())
    assert params == arch["counts"]["params"], (params, arch["counts"]["params"])
    n = batch * (warmup + steps)
    images, labels = load_images(data_dir, n)
    images, labels, net = images.to(device), labels.to(device), net.to(device)
    if mode.endswith("-cl"):
        net = net.to(memory_format=torch.channels_last)
    mean, std = 0.286, 0.353
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    net.train()
    perm = torch.randperm(n, device=device)
    t0 = None
    for s in range(warmup + steps):
        if s == warmup:
            t0 = time.perf_counter()
        idx = perm[s * batch:(s + 1) * batch]
        x = (images.index_select(0, idx).float() / 255.0 - mean) / std
        y = labels.index_select(0, idx)
        if mode.endswith("-cl"):
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode.startswith("bf16")):
            logits = net(x)
        logits = logits.float()
        loss = torch.nn.functional.cross_entropy(logits, y)
        _ = loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _ = (logits.argmax(1) == y).sum().item()
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0
    print(f"pytorch: {batch * steps / dt:.1f} img/s params {params} peak_mb {peak:.0f}")


if __name__ == "__main__":
    main()
