"""Baseline for `make bench-generate`: a straightforward networkx implementation of the same
hierarchical sampler (three levels of random graphs, DAG orientation, stages, operation
sampling, width multiplier and parameter count), timed over the same kind of generators.

Prints `networkx: <N> archs/s`.
"""
import math
import random
import sys
import time

import networkx as nx

OPS = {"conv3x3": (3, 3)}


def level_graph(model, n, k, p, rng):
    if n <= 1:
        g = nx.Graph()
        g.add_node(0)
        return g
    k = max(1, min(k, n - 1))
    # Redrawn until connected, as the method (and nago, up to 100,000 draws) does.
    for _ in range(100_000):
        if model == "ws":
            g = nx.watts_strogatz_graph(n, k, p, seed=rng)
        elif model == "er":
            g = nx.gnp_random_graph(n, p, seed=rng)
        else:
            g = nx.barabasi_albert_graph(n, k, seed=rng)
        if nx.is_connected(g):
            return g
    raise ValueError(f"{model}({n}, {k}, {p}) gave no connected graph")


def to_dag(g):
    d = nx.DiGraph()
    d.add_nodes_from(g.nodes)
    d.add_edges_from((min(u, v), max(u, v)) for u, v in g.edges)
    inputs = [v for v in d.nodes if d.in_degree(v) == 0]
    outputs = [v for v in d.nodes if d.out_degree(v) == 0]
    return d, inputs, outputs


def sample(gen, seed, hw=28, classes=10):
    rng = random.Random(seed)
    top, inputs, outputs = to_dag(level_graph(*gen["top"], rng))
    n = top.number_of_nodes()
    # Node x is in the next stage once x >= the running threshold (1/3 and 2/3 of n).
    stages = [sum(1 for t in (1, 2) if 3 * x >= t * n) for x in range(n)]
    ratios = [1, 2, 4]
    cells = []
    base = 0.0
    for c in range(n):
        mid, _, mid_out = to_dag(level_graph(*gen["mid"], rng))
        ogs = []
        for _ in mid.nodes:
            bottom, _, b_out = to_dag(level_graph(*gen["bottom"], rng))
            ops = ["conv3x3" for _ in bottom.nodes]
            for _ in ops:
                base += 9 * ratios[stages[c]] ** 2
            ogs.append((bottom, ops, b_out))
        cells.append((mid, ogs, mid_out))
    m = max(1, int(math.sqrt(gen["limit"] / base)))
    ch = [max(1, round(m * r)) for r in ratios]
    params = 9 * 1 * ch[0] + 2 * ch[0] + 9 * ch[0] * ch[0] + 2 * ch[0]
    for c, (mid, ogs, _) in enumerate(cells):
        cc = ch[stages[c]]
        preds = list(top.predecessors(c))
        params += len(preds) if len(preds) > 1 else 0
        for p in preds:
            if ch[stages[p]] != cc:
                params += ch[stages[p]] * cc + 2 * cc
        for j, (bottom, ops, _) in enumerate(ogs):
            k = mid.in_degree(j)
            params += k if k > 1 else 0
            for v, op in zip(bottom.nodes, ops):
                kh, kw = OPS[op]
                params += kh * kw * cc * cc + 2 * cc
                k = bottom.in_degree(v)
                params += k if k > 1 else 0
    params += ch[stages[-1]] * 1280 + 2 * 1280 + 1280 * classes + classes
    return params


def main():
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    gens = []
    for i in range(256):
        u = [((i + 0.5) * (0.61803398875 + 0.1 * j)) % 1.0 for j in range(8)]
        gens.append({
            "top": ("ws", 3 + int(u[0] * 8), 2 + int(u[1] * 4), 0.1 + 0.8 * u[2]),
            "mid": ("er", 1 + int(u[3] * 10), 2, 0.1 + 0.8 * u[4]),
            "bottom": ("ws", 3 + int(u[5] * 8), 2 + int(u[6] * 4), 0.1 + 0.8 * u[7]),
            "limit": 4e6,
        })
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < secs:
        for g in gens:
            sample(g, n)
            n += 1
    dt = time.perf_counter() - start
    print(f"networkx: {n / dt:.0f} archs/s")


if __name__ == "__main__":
    main()
