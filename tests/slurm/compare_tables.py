"""Compare the trial tables of the local and the Slurm run of the smoke study.

Usage: compare_tables.py LOCAL_RUN SLURM_RUN FAULT_TRIAL
       compare_tables.py LOCAL_RUN OTHER_RUN --columns-only   (the same shape: columns, types)

Prints one `PASS what` or `FAIL what` line per check (run-test.sh counts them) and other lines
as information. Checks: both trials.parquet read with pyarrow; the same column names, in the same
order, with the same Arrow types; the same number of rows; the faulted trial is in the Slurm
table with a status other than `ok`, and every other row of the Slurm table is `ok`; the
round-0 trial that was not faulted has the same deterministic fields in both tables.
"""

import sys

import pyarrow.parquet as pq

# Fields that depend only on the inputs and the seed (train on CPU is exactly reproducible);
# timings and host names are left out.
DETERMINISTIC = ["trial", "round", "budget", "status", "epochs_done", "val_accuracy", "val_error",
                 "test_accuracy", "params", "macs", "memory_mb"]


def out(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)


def main():
    local_run, slurm_run, fault = sys.argv[1], sys.argv[2], sys.argv[3]
    columns_only = fault == "--columns-only"
    tables = {}
    for name, run in (("local", local_run), ("Slurm", slurm_run)):
        path = f"{run}/trials.parquet"
        try:
            tables[name] = pq.read_table(path)
            out(True, f"{name} trials.parquet reads with pyarrow ({tables[name].num_rows} rows)")
        except Exception as e:  # noqa: BLE001 - any failure to read is the finding
            out(False, f"{name} trials.parquet reads with pyarrow: {e}")
    if len(tables) < 2:
        return
    loc, slu = tables["local"], tables["Slurm"]
    ls = [(f.name, str(f.type)) for f in loc.schema]
    ss = [(f.name, str(f.type)) for f in slu.schema]
    print("columns: " + ", ".join(f"{n}:{t}" for n, t in ls))
    if ls == ss:
        out(True, f"same {len(ls)} columns, names and types, in the same order")
    else:
        only_l = [c for c in ls if c not in ss]
        only_s = [c for c in ss if c not in ls]
        out(False, f"same columns: only local {only_l}, only Slurm {only_s}"
            + ("" if only_l or only_s else " (order differs)"))
    if columns_only:
        return
    out(loc.num_rows == slu.num_rows,
        f"same number of rows: local {loc.num_rows}, Slurm {slu.num_rows}")

    cols = slu.column_names
    tcol = next((c for c in ("trial", "trial_id", "id") if c in cols), None)
    if tcol is None or "status" not in cols:
        out(False, f"the table has a trial column and a status column (columns: {cols})")
        return
    srows = slu.to_pylist()
    lrows = loc.to_pylist()
    frows = [r for r in srows if r[tcol] == fault]
    fstat = [r["status"] for r in frows]
    out(len(frows) >= 1 and all(s != "ok" for s in fstat),
        f"the faulted trial {fault} is recorded in the Slurm table with status {fstat}")
    others = sorted({r["status"] for r in srows if r[tcol] != fault})
    out(others == ["ok"], f"every other Slurm row has status ok (found {others})")
    lstat = sorted({r["status"] for r in lrows})
    print(f"local statuses: {lstat}")

    # The unfaulted round-0 trial: same id (propose is deterministic) and same result.
    ltr = [r[tcol] for r in lrows]
    rnd = "round" if "round" in cols else None
    if rnd:
        l0 = sorted(r[tcol] for r in lrows if r[rnd] == 0)
        s0 = sorted(r[tcol] for r in srows if r[rnd] == 0)
        out(l0 == s0, f"round 0 has the same trials in both runs ({l0} / {s0})")
    ref = [t for t in ltr if t != fault]
    if not ref:
        return
    t = sorted(ref)[0]
    lr = next(r for r in lrows if r[tcol] == t)
    sr = next((r for r in srows if r[tcol] == t), None)
    if sr is None:
        out(False, f"trial {t} is in both tables")
        return
    fields = [c for c in DETERMINISTIC if c in cols]
    diff = {c: (lr[c], sr[c]) for c in fields if lr[c] != sr[c]}
    out(not diff, f"trial {t} has the same {fields} in both runs"
        + (f" (differences local/Slurm: {diff})" if diff else ""))


if __name__ == "__main__":
    main()
