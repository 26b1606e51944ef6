"""nago's ER(8, 0.1) level graphs against networkx's, by two-sample tests.

The method redraws a level's graph until it is connected. This samples 2,000 graphs from
networkx (`gnp_random_graph` redrawn until `is_connected`) and 2,000 from nago
(`target/release/examples/dag_stats`), orients both from lower to higher index, and
compares the number of inputs, outputs and the longest path (in edges) by Mann–Whitney U
and χ² on the count tables, and each of the 28 edge frequencies by a two-proportion χ²
test; Bonferroni-corrected at a family-wise level of 1%. As a check of the test's power, it
also compares networkx's redraw-until-connected graphs with the old sampler's (100 draws, then
the components joined by a chain of their smallest nodes), which it must reject.

Usage: python tests/python/generator_networkx.py [PATH_TO_dag_stats] (exit 1 on a failure).
"""
import itertools
import json
import random
import subprocess
import sys

import networkx as nx
from scipy import stats

N, P, COUNT = 8, 0.1, 2000
ALPHA = 0.01
PAIRS = list(itertools.combinations(range(N), 2))


def describe(g):
    """(inputs, outputs, longest path in edges, set of edges) of g oriented low → high."""
    edges = {(min(u, v), max(u, v)) for u, v in g.edges}
    preds = {v: [u for u, w in edges if w == v] for v in range(N)}
    succ = {u for u, _ in edges}
    depth = [0] * N
    for v in range(N):
        depth[v] = max((depth[u] + 1 for u in preds[v]), default=0)
    inputs = sum(1 for v in range(N) if not preds[v])
    outputs = sum(1 for v in range(N) if v not in succ)
    return inputs, outputs, max(depth), edges


def networkx_sample(rng, old=False):
    for _ in range(100 if old else 10**9):
        g = nx.gnp_random_graph(N, P, seed=rng)
        if nx.is_connected(g):
            return g
    firsts = sorted(min(c) for c in nx.connected_components(g))
    g.add_edges_from(zip(firsts, firsts[1:]))
    return g


def nago_samples(exe):
    out = subprocess.run([exe, "er", str(N), "2", str(P), str(COUNT), "1"],
                         check=True, capture_output=True, text=True).stdout
    res = []
    for line in out.splitlines():
        d = json.loads(line)
        res.append((d["inputs"], d["outputs"], d["longest"], {tuple(e) for e in d["edges"]}))
    return res


def table_chi2(a, b):
    """χ² test of homogeneity on the count table of two integer samples (rare values pooled
    so that every expected count is ≥ 5)."""
    values = sorted(set(a) | set(b))
    cols = [[a.count(v), b.count(v)] for v in values]
    pooled = []
    for c in cols:
        if pooled and (sum(pooled[-1]) < 10):
            pooled[-1] = [pooled[-1][0] + c[0], pooled[-1][1] + c[1]]
        else:
            pooled.append(c)
    while len(pooled) > 1 and sum(pooled[-1]) < 10:
        last = pooled.pop()
        pooled[-1] = [pooled[-1][0] + last[0], pooled[-1][1] + last[1]]
    if len(pooled) < 2:
        return 1.0
    return stats.chi2_contingency(list(zip(*pooled)), correction=False).pvalue


def compare(x, y, label_x, label_y, verbose=True):
    """Every test's p-value; returns (smallest p, number of tests)."""
    tests = []
    for i, name in enumerate(["inputs", "outputs", "longest"]):
        a = [s[i] for s in x]
        b = [s[i] for s in y]
        mw = stats.mannwhitneyu(a, b).pvalue
        ch = table_chi2(a, b)
        tests += [(f"{name} Mann-Whitney", mw), (f"{name} chi2", ch)]
        if verbose:
            print(f"  {name:8s} mean {label_x} {sum(a)/len(a):.3f}  {label_y} {sum(b)/len(b):.3f}"
                  f"   Mann-Whitney p = {mw:.3g}   chi2 p = {ch:.3g}")
    worst_edge = (None, 1.0, 0, 0)
    for e in PAIRS:
        ka = sum(1 for s in x if e in s[3])
        kb = sum(1 for s in y if e in s[3])
        table = [[ka, len(x) - ka], [kb, len(y) - kb]]
        p = stats.chi2_contingency(table, correction=False).pvalue if 0 < ka + kb < len(x) + len(y) else 1.0
        tests.append((f"edge {e}", p))
        if p < worst_edge[1]:
            worst_edge = (e, p, ka, kb)
    if verbose:
        e, p, ka, kb = worst_edge
        print(f"  edges    28 two-proportion tests; smallest p = {p:.3g} at {e} "
              f"({label_x} {ka / len(x):.3f}, {label_y} {kb / len(y):.3f})")
    return min(p for _, p in tests), len(tests)


def main():
    exe = sys.argv[1] if len(sys.argv) > 1 else "target/release/examples/dag_stats"
    rng = random.Random(2020)
    nx_new = [describe(networkx_sample(rng)) for _ in range(COUNT)]
    nago = nago_samples(exe)
    print(f"ER({N}, {P}), {COUNT} graphs each, lower -> higher index:")
    print("nago vs networkx (redrawn until connected):")
    p_min, k = compare(nago, nx_new, "nago", "networkx")
    ok = p_min * k >= ALPHA
    print(f"  smallest p = {p_min:.3g}, Bonferroni-corrected {min(1.0, p_min * k):.3g} over {k} tests: "
          + ("same distribution (not rejected at 1%)" if ok else "REJECTED at 1%"))
    # Power check: the old sampler (100 draws, then components joined) must be rejected.
    rng = random.Random(7)
    nx_old = [describe(networkx_sample(rng, old=True)) for _ in range(COUNT)]
    print("check: networkx's old-style sampler (100 draws, then joined) vs redrawn until connected:")
    p_old, k = compare(nx_old, nx_new, "joined", "redrawn")
    power = p_old * k < ALPHA
    print(f"  smallest p = {p_old:.3g}: " + ("rejected, as it must be" if power else "NOT rejected: the test has no power"))
    sys.exit(0 if ok and power else 1)


if __name__ == "__main__":
    main()
