#!/usr/bin/env bash
# run-test.sh — the Slurm pipeline against a real Slurm cluster (single node, loopback).
#
#   1. starts slurmctld + slurmd + munge with slurm-ci.sh (installing them from Debian if missing);
#      a cluster that slurm-ci.sh already runs is reused and left running;
#   2. runs the smoke study (2 proposals a round, 4 evaluations: 2 rounds, then the final round
#      of 2 trials) locally, calling the
#      stage binaries in a plain shell loop: propose, then generate + train each index, update;
#   3. runs the same study through pipelines/slurm/submit.sh --wait: sbatch arrays, afterany
#      update jobs, rounds chained by the update job. One task fails on purpose: for round 0,
#      index 1, fault-launcher.sh (NAGO_TRAIN_LAUNCHER) runs the real nago-train with
#      `--time-limit 0.001`, so it stops with status time_limit and exits 2, as a trial that runs out
#      of time does (NAGO_TEST_FAULT=sigterm sends it SIGTERM instead: status killed, but
#      timing-dependent; see fault-launcher.sh);
#   4. checks: the chain finished 3 rounds (the final round included); Slurm saw the faulted task FAILED and the others
#      COMPLETED; the fault is recorded (result.json and trials.parquet status not ok) and did
#      not stop the chain; trials.parquet has the local run's columns (names and types) and
#      row count; the unfaulted round-0 trial has the same result in both runs;
#   5. runs the smoke study again as one array of 2 asynchronous workers (workers.sh): task 0
#      cancelled with scancel while a trial trains, task 1 requeued while one trains; checks the
#      study is done, every evaluation once, nothing stuck, and the trial table's columns equal
#      the local run's;
#   6. cancels its jobs and stops the daemons it started (also on failure or Ctrl-C).
#
# Needs root (packages, daemons), the stage binaries (`make bins`), the dataset
# (`make data/fashion-mnist`; it runs from the repository root, where data/ is), python3 (a venv
# with pyarrow is made in tests/slurm/.venv). Prints `N passed, M failed` last; rc 0 iff M = 0.
# Environment: NAGO_BIN_DIR (default target/release), SLURM_TEST_WORK (default
# tests/slurm/work), NAGO_TEST_FAULT (time-limit | sigterm), SLURM_TEST_TIMEOUT (s, default 900).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BIN=$(cd "${NAGO_BIN_DIR:-$REPO/target/release}" 2>/dev/null && pwd || echo "${NAGO_BIN_DIR:-$REPO/target/release}")
WORK=${SLURM_TEST_WORK:-$HERE/work}
CI=$HERE/slurm-ci.sh
PY=$HERE/.venv/bin/python
TIMEOUT=${SLURM_TEST_TIMEOUT:-900}
FAULT_ROUND=0 FAULT_INDEX=1
# The second fault: round 1's task 0 is cancelled with scancel on its first run (a retryable
# failure): the update job must resubmit it and the study must finish with it `ok`.
CANCEL_ROUND=1 CANCEL_INDEX=0
export NAGO_TEST_FAULT=${NAGO_TEST_FAULT:-time-limit}
case "$NAGO_TEST_FAULT" in sigterm) FAULT_STATUS=killed ;; *) FAULT_STATUS=time_limit ;; esac
cd "$REPO" || exit 1

passed=0 failed=0 started_cluster=0
results=()
pass() { passed=$((passed + 1)); results+=("PASS  $1"); echo "PASS  $1"; }
fail() { failed=$((failed + 1)); results+=("FAIL  $1"); echo "FAIL  $1"; }
check() { local name=$1; shift; if "$@"; then pass "$name"; else fail "$name"; fi; }
say() { echo "== $*"; }

summary() {
  echo
  echo "== Slurm pipeline test summary"
  printf '%s\n' "${results[@]}"
  if [ -n "${timings:-}" ]; then printf '%s\n' "$timings"; fi
  echo "$passed passed, $failed failed"
}

cleanup() {
  local rc=$?
  # Cancel whatever this test submitted that is still queued (the job ids are in its run).
  if [ -f "$WORK/slurm/logs/slurm-jobs.tsv" ] && command -v scancel >/dev/null; then
    cut -f2,3 "$WORK/slurm/logs/slurm-jobs.tsv" | tr '\t' '\n' | grep -E '^[0-9]+$' |
      xargs -r scancel 2>/dev/null || true
  fi
  if [ -f "$WORK/workers/logs/slurm-workers.tsv" ] && command -v scancel >/dev/null; then
    cut -f1 "$WORK/workers/logs/slurm-workers.tsv" | xargs -r scancel 2>/dev/null || true
  fi
  if [ "$started_cluster" = 1 ]; then "$CI" stop || true; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- prerequisites ----------------------------------------------------------------------------
missing=()
for b in nago-propose nago-generate nago-train nago-update nago-status; do
  [ -x "$BIN/$b" ] || missing+=("$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  fail "stage binaries present in $BIN (missing: ${missing[*]}; build them with \`make bins\`)"
  summary; exit 1
fi
if [ ! -e data/fashion-mnist/train-images-idx3-ubyte.gz ] && [ -z "${NAGO_DATA:-}" ]; then
  fail "the dataset is in $REPO/data/fashion-mnist (make data/fashion-mnist)"
  summary; exit 1
fi
if [ "$(id -u)" != 0 ]; then
  fail "running as root (the test installs and starts slurm and munge)"
  summary; exit 1
fi
if [ ! -x "$PY" ] || ! "$PY" -c 'import pyarrow' 2>/dev/null; then
  say "python venv with pyarrow in $HERE/.venv"
  python3 -m venv "$HERE/.venv" && "$HERE/.venv/bin/pip" install -q pyarrow ||
    { fail "python venv with pyarrow"; summary; exit 1; }
fi
rm -rf "$WORK"
mkdir -p "$WORK"

# --- 1. the cluster ---------------------------------------------------------------------------
t0=$SECONDS
if "$CI" running 2>/dev/null; then
  say "reusing the cluster slurm-ci.sh already runs (it stays up)"
else
  say "starting the cluster"
  started_cluster=1
  if ! "$CI" start; then fail "cluster starts (node idle)"; summary; exit 1; fi
fi
t_cluster=$((SECONDS - t0))
pass "cluster up: node $(sinfo -h -o '%n %t' | head -n 1) (${t_cluster} s)"

# --- 2. the local reference run: the same binaries in a plain shell loop ------------------------
say "local reference run (shell loop) in $WORK/local"
t0=$SECONDS
L=$WORK/local
mkdir -p "$L"
cp "$REPO/pipelines/presets/smoke.json" "$L/study.json"
local_ok=1
for _ in 1 2 3 4 5 6 7; do   # more than the 3 rounds expected: a runaway loop stops here
  before=$(ls "$L/rounds" 2>/dev/null | wc -l)
  rc=0; "$BIN/nago-propose" --run "$L" || rc=$?
  case $rc in 0) ;; 6) break ;; *) local_ok=0; break ;; esac   # 6: the study is done
  after=$(ls "$L/rounds" 2>/dev/null | wc -l)
  [ "$after" -gt "$before" ] || { local_ok=0; break; }
  r=$(ls "$L/rounds" | sort -n | tail -n 1)
  # The indices that need training (a generator rejected before training needs none).
  for i in $("$BIN/nago-status" pending --run "$L" --round $((10#$r))); do
    "$BIN/nago-generate" --run "$L" --index "$i" --round $((10#$r)) >>"$WORK/local.log" 2>&1 &&
      OMP_NUM_THREADS=1 "$BIN/nago-train" --run "$L" --index "$i" --round $((10#$r)) --threads 1 \
        >>"$WORK/local.log" 2>&1 || echo "local: round $r index $i failed (see $WORK/local.log)"
  done
  "$BIN/nago-update" --run "$L" >>"$WORK/local.log" 2>&1 || { local_ok=0; break; }
done
t_local=$((SECONDS - t0))
check "local run completes (propose/generate/train/update in a loop, ${t_local} s)" \
  test "$local_ok" = 1 -a -s "$L/trials.parquet"
local_rounds=$(ls "$L/rounds" 2>/dev/null | wc -l)
check "local run: 3 rounds, the final round included (found $local_rounds)" test "$local_rounds" = 3

# --- 3. the same study through Slurm ---------------------------------------------------------------
say "Slurm run in $WORK/slurm (fault: $NAGO_TEST_FAULT for round $FAULT_ROUND index $FAULT_INDEX)"
S=$WORK/slurm
t0=$SECONDS
NAGO_TRAIN_LAUNCHER=$HERE/fault-launcher.sh \
  NAGO_TEST_FAULTS="$FAULT_ROUND:$FAULT_INDEX:$NAGO_TEST_FAULT $CANCEL_ROUND:$CANCEL_INDEX:scancel" \
  NAGO_TEST_FAULT_LOG=$WORK/fault.log \
  "$REPO/pipelines/slurm/submit.sh" --run "$S" --preset smoke --bin-dir "$BIN" --cpus 1 \
  --wait --timeout "$TIMEOUT"
submit_rc=$?
t_slurm=$((SECONDS - t0))
check "submit.sh --wait: the chain ran to the end (rc $submit_rc, ${t_slurm} s)" test "$submit_rc" = 0
check "slurm-state is 'done' (found '$(cat "$S/logs/slurm-state" 2>/dev/null)')" \
  test "$(cat "$S/logs/slurm-state" 2>/dev/null)" = "done"
slurm_rounds=$(ls "$S/rounds" 2>/dev/null | wc -l)
check "Slurm run: 3 rounds, as the local run (found $slurm_rounds)" test "$slurm_rounds" = 3
check "4 submissions: rounds 0 and 1, round 1 again for the cancelled task, the final round 2 (slurm-jobs.tsv)" \
  test "$(cut -f1 "$S/logs/slurm-jobs.tsv" 2>/dev/null | tr '\n' ' ')" = "0 1 1 2 "

# What Slurm itself recorded for every task (MinJobAge=3600 keeps finished jobs visible).
task_states() {  # task_states ARRAYJOB -> "index state" lines
  scontrol -o show job "$1" 2>/dev/null |
    sed -n 's/.*ArrayTaskId=\([0-9]*\) .*JobState=\([A-Z_]*\) .*/\1 \2/p' | sort -n
}
fault_trial=$("$BIN/nago-status" trial --run "$S" --round "$FAULT_ROUND" --index "$FAULT_INDEX")
cancel_trial=$("$BIN/nago-status" trial --run "$S" --round "$CANCEL_ROUND" --index "$CANCEL_INDEX")
sub=0
while IFS=$'\t' read -r r a u _; do
  [ "$a" = - ] && { fail "round $r: an array job was submitted"; continue; }
  states=$(task_states "$a" | tr '\n' ',' | sed 's/,$//')
  sub=$((sub + 1))
  case $sub in
    1) want="0 COMPLETED,1 FAILED" ;;      # round 0: the time-limit fault
    2) want="0 CANCELLED,1 COMPLETED" ;;   # round 1: task 0 cancelled with scancel
    3) want="0 COMPLETED" ;;               # round 1 again: only the cancelled task
    *) want="0 COMPLETED,1 COMPLETED" ;;   # the final round: 2 architectures of 1 generator
  esac
  check "round $r array job $a: Slurm task states [$states], expected [$want]" test "$states" = "$want"
  ustate=$(scontrol -o show job "$u" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
  check "round $r update job $u ran after the array (afterany) and COMPLETED (found $ustate)" \
    test "$ustate" = COMPLETED
done < "$S/logs/slurm-jobs.tsv"

check "both faults were injected: $(tr '\n' ';' < "$WORK/fault.log" 2>/dev/null || echo 'no line in fault.log')" \
  test "$(grep -c . "$WORK/fault.log" 2>/dev/null)" = 2
trial_state() { "$BIN/nago-status" trials --run "$S" --json | "$PY" -c '
import json, sys
for line in sys.stdin:
    t = json.loads(line)
    if t["trial"] == sys.argv[1]:
        print(t["state"])' "$1"; }
result_field() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$S/trials/$1/result.json" "$2" 2>/dev/null; }
fstatus=$(result_field "$fault_trial" status)
check "the faulted trial $fault_trial has status $FAULT_STATUS in result.json (found '${fstatus:-none}')" \
  test "$fstatus" = "$FAULT_STATUS"
check "the faulted trial's failure is final (state '$(trial_state "$fault_trial")')" \
  test "$(trial_state "$fault_trial")" = failed
cstatus=$(result_field "$cancel_trial" status)
check "the cancelled trial $cancel_trial was retried and is ok (found '${cstatus:-none}')" \
  test "$cstatus" = ok

# --- 4. the trial tables -------------------------------------------------------------------------
say "comparing $L/trials.parquet with $S/trials.parquet"
while IFS= read -r line; do
  case "$line" in
    PASS\ *) pass "${line#PASS }" ;;
    FAIL\ *) fail "${line#FAIL }" ;;
    *) echo "$line" ;;
  esac
done < <("$PY" "$HERE/compare_tables.py" "$L" "$S" "$fault_trial" 2>&1 || echo "FAIL compare_tables.py exited non-zero")

# --- 5. asynchronous workers: one array of 2, one task cancelled, one requeued ---------------------
say "asynchronous workers in $WORK/workers (pipelines/slurm/workers.sh --workers 2)"
W=$WORK/workers
t0=$SECONDS
wout=$("$REPO/pipelines/slurm/workers.sh" --run "$W" --preset smoke --workers 2 --cpus 1 --bin-dir "$BIN" 2>&1)
echo "$wout"
WJ=$(sed -n 's/.*worker array \([0-9]*\).*/\1/p' <<<"$wout")
check "workers.sh submitted an array (job ${WJ:-none})" test -n "$WJ"
# A trial in training (train.log written, no result yet), for a fault to land on.
training() {
  local d
  for d in "$W"/trials/*/; do
    [ -f "$d/train.log" ] && [ ! -f "$d/result.json" ] && { basename "$d"; return 0; }
  done
  return 1
}
wait_training() { local i; for ((i = 0; i < 600; i++)); do training >/dev/null && return 0; sleep 0.5; done; return 1; }
if [ -n "$WJ" ] && wait_training; then
  victim=$(training)
  scancel "${WJ}_0"
  pass "task ${WJ}_0 cancelled while trial $victim trains"
  sleep 3
  if wait_training; then
    scontrol requeue "${WJ}_1" && pass "task ${WJ}_1 requeued while trial $(training) trains" ||
      fail "scontrol requeue ${WJ}_1"
  else
    fail "no second trial trained after the cancel"
  fi
else
  fail "no worker started training"
fi
for ((i = 0; i < TIMEOUT; i += 2)); do
  squeue -h -j "${WJ:-0}" -o %i 2>/dev/null | grep -q . || break
  sleep 2
done
t_workers=$((SECONDS - t0))
check "the worker study is done after the cancel and the requeue (${t_workers} s): $("$BIN/nago-status" done --run "$W")" \
  "$BIN/nago-status" done --run "$W"
# Every evaluation exactly once, nothing left unfinished, each trial in one round only.
wstates=$("$BIN/nago-status" trials --run "$W" --json | "$PY" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
print(" ".join(sorted({r["state"] for r in rows})))')
check "every worker-study trial is done or failed for good (states: $wstates)" \
  bash -c "[[ ! '$wstates' =~ pending|running|retry ]]"
dups=$(for r in "$W"/rounds/*/proposals.json; do "$PY" -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["trials"]))' "$r"; done | sort | uniq -d | wc -l)
check "no trial is listed in two rounds ($dups duplicated)" test "$dups" = 0
searched=$("$BIN/nago-status" trials --run "$W" --json | "$PY" -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
print(sum(1 for r in rows if r["origin"] != "final" and r["state"] == "done"))')
check "4 evaluations, as the study asks (found $searched)" test "$searched" = 4
while IFS= read -r line; do
  case "$line" in
    PASS\ *) pass "workers: ${line#PASS }" ;;
    FAIL\ *) fail "workers: ${line#FAIL }" ;;
    *) echo "$line" ;;
  esac
done < <("$PY" "$HERE/compare_tables.py" "$L" "$W" --columns-only 2>&1 || echo "FAIL compare_tables.py --columns-only exited non-zero")

# --- 6. stop what we started ------------------------------------------------------------------------
if [ "$started_cluster" = 1 ]; then
  "$CI" stop
  started_cluster=0
  check "the daemons this test started are stopped" bash -c "! '$CI' running"
fi

timings=$(printf 'timings: cluster start %s s, local smoke study %s s, Slurm smoke study %s s, 2 workers %s s\n' \
  "$t_cluster" "$t_local" "$t_slurm" "${t_workers:-?}")
summary
[ "$failed" = 0 ]
