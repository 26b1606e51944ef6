#!/usr/bin/env python3
"""trials.parquet and pareto.parquet, read with pandas, polars and DuckDB.

Runs the smoke study with the real binaries (nago-search: propose -> generate -> train ->
update), then reads the two tables written by nago-update and checks:

  * pandas (pyarrow engine), polars and DuckDB all read both files, with the same rows;
  * the documented columns exist with the documented types (below, SCHEMA), and nothing is
    null where the documentation says it cannot be;
  * units: fractions in [0, 1], val_error = 1 - val_accuracy, params and MACs whole numbers
    equal to arch.json's counts, memory_mb = params * 4 / 1e6 (float32, 10^6 bytes), seconds
    non-negative; hyperparameter columns equal the trial's proposal.json;
  * one row per evaluation (trial x budget) with a result.json, values equal to result.json;
  * pareto.parquet holds exactly the non-dominated `ok` rows of trials.parquet under the
    study's objectives.

    test_parquet.py --bin target/release --work DIR [--run EXISTING_STUDY]

SCHEMA is what this test holds nago-table to; where nago-table documents a column
differently, the two must be brought into agreement (the documentation is the contract).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import duckdb
import pandas as pd
import polars as pl

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

LEVELS = ("top", "mid", "bottom")
MERGES = ("sum", "attention", "concat")
OPS = ("conv3x3", "conv5x5", "conv1x1", "conv3x1", "conv1x3", "avgpool3x3", "avgpool5x5")

# Generator::flat(): the same columns in the same order in every study.
FLAT = []
for lv in LEVELS:
    FLAT += [(lv + "_model", "str"), (lv + "_n", "int"), (lv + "_k", "int"), (lv + "_p", "float")]
    FLAT += [("%s_merge_%s" % (lv, m), "float") for m in MERGES]
FLAT += [("stage_ratio_%d" % i, "float") for i in range(3)]
FLAT += [("channel_ratio_%d" % i, "float") for i in range(3)]
FLAT += [("op_" + o, "float") for o in OPS]
FLAT += [("param_limit", "float"), ("head_channels", "int"), ("head_dropout", "float")]

# (column, kind, nullable): kind is str / int / float.
SCHEMA = [
    ("trial", "str", False),
    ("round", "int", False),
    ("parent", "str", True),
    ("origin", "str", False),
    ("seed", "int", False),
    ("budget", "float", False),
    ("status", "str", False),
] + [(c, k, False) for c, k in FLAT] + [
    ("epochs_done", "float", True),
    ("val_error", "float", True),
    ("val_accuracy", "float", True),
    ("test_accuracy", "float", True),
    ("params", "int", True),
    ("macs", "int", True),
    ("memory_mb", "float", True),
    ("min_channels", "int", True),
    ("train_seconds", "float", True),
    ("latency_ms", "float", True),
    ("latency_ms_b32", "float", True),
    ("latency_machine", "str", True),
    ("error", "str", True),
    ("feasible", "bool", False),
    ("hypervolume", "float", True),
]

STATUSES = {"ok", "diverged", "out_of_memory", "time_limit", "killed", "crashed", "rejected"}


def kind_of_pandas(dtype):
    s = str(dtype)
    if s.startswith(("int", "uint", "Int", "UInt")):
        return "int"
    if s.startswith(("float", "Float")):
        return "float"
    if s in ("object", "string", "str", "large_string") or s.startswith("string"):
        return "str"
    if s in ("bool", "boolean"):
        return "bool"
    return s


def kind_of_polars(dtype):
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if dtype in (pl.Utf8, pl.String, pl.Categorical):
        return "str"
    if dtype == pl.Boolean:
        return "bool"
    return str(dtype)


def kind_of_duckdb(t):
    t = t.upper()
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "HUGEINT"):
        return "int"
    if t in ("FLOAT", "DOUBLE", "REAL"):
        return "float"
    if t in ("VARCHAR",):
        return "str"
    if t == "BOOLEAN":
        return "bool"
    return t


class Checks:
    def __init__(self):
        self.n = 0
        self.failures = []

    def check(self, cond, msg):
        self.n += 1
        if not cond:
            self.failures.append(msg)


def run_smoke(bin_dir, work):
    run = os.path.join(work, "smoke")
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    cmd = [os.path.join(bin_dir, "nago-search"), "--preset", "smoke", "--run", run, "--parallel", "1"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("FAILED: %s\n%s%s" % (" ".join(cmd), p.stdout[-3000:], p.stderr[-3000:]))
    return run


def dominates(a, b):
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--work", default="target/report-test/parquet")
    ap.add_argument("--run", help="an existing study directory (default: run the smoke study)")
    a = ap.parse_args()
    run = a.run or run_smoke(a.bin, a.work)
    trials_path = os.path.join(run, "trials.parquet")
    pareto_path = os.path.join(run, "pareto.parquet")
    for p in (trials_path, pareto_path):
        if not os.path.isfile(p):
            sys.exit("FAILED: %s was not written" % p)
    c = Checks()

    # --- the three readers agree -------------------------------------------------------
    tp = pd.read_parquet(trials_path, engine="pyarrow")
    tl = pl.read_parquet(trials_path)
    con = duckdb.connect()
    src = "read_parquet('%s')" % trials_path.replace("'", "''")
    td_types = {r[0]: str(r[1]) for r in con.execute("DESCRIBE SELECT * FROM " + src).fetchall()}
    td_rows = con.execute("SELECT count(*) FROM " + src).fetchall()[0][0]
    pp = pd.read_parquet(pareto_path, engine="pyarrow")
    plr = pl.read_parquet(pareto_path)
    c.check(len(tp) == tl.height == td_rows, "trials.parquet rows: pandas %d, polars %d, duckdb %d"
            % (len(tp), tl.height, td_rows))
    c.check(len(pp) == plr.height, "pareto.parquet rows: pandas %d, polars %d" % (len(pp), plr.height))
    c.check(list(tp.columns) == tl.columns, "column order differs between pandas and polars")

    # --- documented columns and types ----------------------------------------------------
    for table, pdf, pldf in (("trials.parquet", tp, tl), ("pareto.parquet", pp, plr)):
        for col, kind, nullable in SCHEMA:
            if col not in pdf.columns:
                c.check(False, "%s: column %s missing" % (table, col))
                continue
            c.check(kind_of_pandas(pdf[col].dtype) == kind or (pdf[col].isna().all() and nullable),
                    "%s: %s is %s in pandas, documented %s" % (table, col, pdf[col].dtype, kind))
            c.check(kind_of_polars(pldf.schema[col]) == kind or (pldf[col].null_count() == pldf.height and nullable),
                    "%s: %s is %s in polars, documented %s" % (table, col, pldf.schema[col], kind))
            if not nullable:
                c.check(pldf[col].null_count() == 0, "%s: %s has nulls" % (table, col))
    for col, kind, _ in SCHEMA:
        if col in td_types:
            c.check(kind_of_duckdb(td_types[col]) == kind or td_types[col] == '"NULL"',
                    "trials.parquet: %s is %s in DuckDB, documented %s" % (col, td_types[col], kind))

    # --- one row per evaluation, values equal to the trial files ----------------------------
    study = json.load(open(os.path.join(run, "study.json")))
    results = {}
    tdir = os.path.join(run, "trials")
    for t in sorted(os.listdir(tdir)):
        rp = os.path.join(tdir, t, "result.json")
        if os.path.isfile(rp):
            results[t] = json.load(open(rp))
    c.check(set(tp["trial"]) == set(results), "trials in trials.parquet %s vs with result.json %s"
            % (sorted(set(tp["trial"])), sorted(results)))
    c.check(not tp.duplicated(["trial", "budget"]).any(), "duplicate (trial, budget) rows")
    for row in tl.iter_rows(named=True):
        t = row["trial"]
        r = results.get(t)
        if r is None:
            continue
        prop = json.load(open(os.path.join(tdir, t, "proposal.json")))
        arch_path = os.path.join(tdir, t, "arch.json")
        if row["status"] == "rejected":
            # Rejected before training by nago-propose: no arch.json, the reason in `error`.
            c.check(not os.path.exists(arch_path) and row["error"], "%s: rejected but trained?" % t)
            continue
        arch = json.load(open(arch_path))
        c.check(row["status"] in STATUSES, "%s: status %r" % (t, row["status"]))
        # seed: int64 holding the u64 seed's bits (seeds >= 2^63 read back negative).
        c.check(row["round"] == prop["round"] and row["seed"] % 2**64 == prop["seed"],
                "%s: round/seed differ from proposal" % t)
        c.check(row["origin"] == prop.get("origin", "manual"), "%s: origin" % t)
        if row["budget"] == r["budget"]:
            c.check(row["status"] == r["status"], "%s: status %s vs result.json %s" % (t, row["status"], r["status"]))
            for m in ("val_error", "val_accuracy", "test_accuracy", "train_seconds"):
                if r.get(m) is not None:
                    c.check(row[m] is not None and math.isclose(row[m], r[m], rel_tol=1e-12, abs_tol=1e-15),
                            "%s: %s %s vs result.json %s" % (t, m, row[m], r[m]))
        for m in ("val_error", "val_accuracy", "test_accuracy"):
            if row[m] is not None:
                c.check(0.0 <= row[m] <= 1.0, "%s: %s = %s is not a fraction in [0, 1]" % (t, m, row[m]))
        if row["val_error"] is not None and row["val_accuracy"] is not None:
            c.check(abs(row["val_error"] - (1 - row["val_accuracy"])) < 1e-9, "%s: val_error != 1 - val_accuracy" % t)
        if row["params"] is not None:
            c.check(row["params"] == arch["counts"]["params"], "%s: params %s vs arch.json %s"
                    % (t, row["params"], arch["counts"]["params"]))
            if row["memory_mb"] is not None:
                c.check(abs(row["memory_mb"] - row["params"] * 4 / 1e6) < 1e-9 * max(1, row["memory_mb"]),
                        "%s: memory_mb %s is not params*4/1e6" % (t, row["memory_mb"]))
        if row["macs"] is not None:
            c.check(row["macs"] == arch["counts"]["macs"], "%s: macs vs arch.json" % t)
        if row["train_seconds"] is not None:
            c.check(row["train_seconds"] >= 0, "%s: negative train_seconds" % t)
        g = prop["generator"]
        for lv in LEVELS:
            c.check(row[lv + "_model"] == g[lv]["model"] and row[lv + "_n"] == g[lv]["n"]
                    and row[lv + "_k"] == g[lv]["k"] and math.isclose(row[lv + "_p"], g[lv]["p"]),
                    "%s: %s level columns differ from proposal.json" % (t, lv))
            sm = sum(row["%s_merge_%s" % (lv, m)] for m in MERGES)
            c.check(abs(sm - 1) < 1e-9, "%s: %s merge weights sum to %s, documented normalised" % (t, lv, sm))
        c.check(abs(sum(row["op_" + o] for o in OPS) - 1) < 1e-9, "%s: op weights not normalised" % t)
        c.check(math.isclose(row["param_limit"], g.get("param_limit", 4e6)), "%s: param_limit" % t)
        c.check(row["head_channels"] == g.get("head_channels", 1280), "%s: head_channels" % t)
        c.check(math.isclose(row["head_dropout"], g.get("head_dropout", 0.2)), "%s: head_dropout" % t)
        c.check(row["head_dropout"] == arch["head"]["dropout"], "%s: head_dropout vs arch.json" % t)

    # --- pareto.parquet is the non-dominated set -------------------------------------------
    objs = study["objectives"]

    def coords(row):
        out = []
        for o in objs:
            v = row[o["metric"]]
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return None
            v = math.log10(v) if o.get("log") else v
            out.append(v if o["goal"] == "min" else -v)
        return out

    # The front is taken at one budget (the largest with enough evaluations), over the
    # feasible ok rows of the search there.
    front_budgets = set(plr["budget"].to_list())
    c.check(len(front_budgets) <= 1, "pareto.parquet mixes budgets %s" % sorted(front_budgets))
    fb = next(iter(front_budgets), None)
    # (The final round's rows are not evaluations of the search: never on its front.)
    ok = [(r["trial"], r["budget"], coords(r)) for r in tl.iter_rows(named=True)
          if r["status"] == "ok" and r["feasible"] and r["budget"] == fb and r["origin"] != "final"]
    ok = [x for x in ok if x[2] is not None]
    front = {(t, b) for t, b, p in ok if not any(dominates(q, p) for _, _, q in ok)}
    got = {(r["trial"], r["budget"]) for r in plr.iter_rows(named=True)}
    c.check(got == front, "pareto.parquet %s, expected the non-dominated ok rows %s" % (sorted(got), sorted(front)))
    if fb is not None:
        c.check(len(front) >= 1, "empty front although a budget was chosen")
    # Hypervolume after each evaluation, in (round, trial, budget) order: never decreasing.
    hv = [r["hypervolume"] for r in tl.sort(["round", "trial", "budget"]).iter_rows(named=True)]
    hv = [h for h in hv if h is not None]
    c.check(all(h >= 0 for h in hv) and all(b >= a - 1e-12 for a, b in zip(hv, hv[1:])),
            "hypervolume decreases or is negative: %s" % hv)

    # --- the README recipes run as written --------------------------------------------------
    best = (pl.scan_parquet(trials_path).filter(pl.col("status") == "ok")
            .sort("val_error").select("trial", "val_error", "params").collect())
    c.check(best.height == int((tp.status == "ok").sum()), "polars recipe")
    q = con.execute("SELECT round, min(val_error) AS best FROM '%s' WHERE status = 'ok' GROUP BY round ORDER BY round"
                    % trials_path.replace("'", "''")).fetchall()
    c.check(len(q) >= 1, "duckdb recipe")

    print("trials.parquet: %d rows x %d columns; pareto.parquet: %d rows; %d checks"
          % (len(tp), len(tp.columns), len(pp), c.n))
    if c.failures:
        for f in c.failures[:40]:
            print("FAIL:", f)
        print("%d of %d checks failed" % (len(c.failures), c.n))
        sys.exit(1)
    print("ok: pandas %s, polars %s, duckdb %s agree with the documented schema" %
          (pd.__version__, pl.__version__, duckdb.__version__))


if __name__ == "__main__":
    main()
