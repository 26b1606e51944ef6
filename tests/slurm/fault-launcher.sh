#!/bin/bash
# fault-launcher.sh — the Slurm test's NAGO_TRAIN_LAUNCHER: makes exactly one task fail, for real.
#
# trial.sbatch runs `$NAGO_TRAIN_LAUNCHER <path>/nago-train ARGS...`. This wrapper runs the real
# nago-train unchanged (exec) for every task except the one whose round and array index are
# NAGO_TEST_FAULT_ROUND / NAGO_TEST_FAULT_INDEX. That one fails, in the way NAGO_TEST_FAULT says:
#
#   time-limit (default)  the real nago-train gets `--time-limit 0.001` appended: it stops at its first
#                         training step with status `time_limit` and exits 2, exactly as a trial
#                         that runs out of its time does. Deterministic.
#   sigterm               the real nago-train gets SIGTERM NAGO_TEST_FAULT_AFTER seconds (default
#                         0.5) after it started — what scancel, Slurm's time limit or preemption
#                         send — and records status `killed`. Timing-dependent: the trainer reacts
#                         to the signal only during its training steps (for the smoke study a
#                         fraction of a second before the long evaluation), so a late signal
#                         lets it finish `ok`.
#
#   scancel               on the task's first run only, `scancel` of this very array task
#                         NAGO_TEST_FAULT_AFTER seconds (default 0.5) after nago-train started:
#                         Slurm's own cancellation (SIGTERM to the job's processes), so the
#                         trainer records `killed`, a retryable failure; the update job must
#                         resubmit the task and the study must still finish.
#
# Slurm marks a faulted task FAILED (or CANCELLED), and the round's update job (afterany) must
# still record it and go on. The wrapper writes one line to NAGO_TEST_FAULT_LOG when it injects
# a fault, so the test can tell that it did. Several faults: NAGO_TEST_FAULTS="R:I:MODE …"
# (else the one of NAGO_TEST_FAULT_ROUND / _INDEX / NAGO_TEST_FAULT).
set -u
round=${NAGO_ROUND:-} index=${SLURM_ARRAY_TASK_ID:-}
mode=
for f in ${NAGO_TEST_FAULTS:-${NAGO_TEST_FAULT_ROUND:-x}:${NAGO_TEST_FAULT_INDEX:-x}:${NAGO_TEST_FAULT:-time-limit}}; do
  IFS=: read -r fr fi fm <<<"$f"
  if [ "$round" = "$fr" ] && [ "$index" = "$fi" ]; then mode=$fm; fi
done
[ -n "$mode" ] || exec "$@"
note() { echo "$(date -u +%FT%TZ) round $round index $index: $*" >> "${NAGO_TEST_FAULT_LOG:-/dev/null}"; }
if [ "$mode" = scancel ]; then
  marker="${NAGO_TEST_FAULT_LOG:-/tmp/nago-fault}.scancel-$round-$index"
  [ -e "$marker" ] && exec "$@"   # the resubmitted task runs normally
  : > "$marker"
fi

case "$mode" in
  time-limit)
    # trial.sbatch may already pass --time-limit (from the job's time limit): replace it.
    args=()
    while [ $# -gt 0 ]; do
      case "$1" in
        --time-limit) shift 2 ;;
        --time-limit=*) shift ;;
        *) args+=("$1"); shift ;;
      esac
    done
    note "nago-train run with --time-limit 0.001"
    exec "${args[@]}" --time-limit 0.001 ;;
  sigterm)
    after=${NAGO_TEST_FAULT_AFTER:-0.5}
    "$@" &
    pid=$!
    (
      sleep "$after"
      if kill -0 "$pid" 2>/dev/null; then
        note "SIGTERM to nago-train (pid $pid) after ${after} s"   # before: the wrapper ends us
        kill -TERM "$pid"
      fi
    ) &
    killer=$!
    wait "$pid"
    rc=$?
    kill "$killer" 2>/dev/null
    wait "$killer" 2>/dev/null
    exit $rc ;;
  scancel)
    after=${NAGO_TEST_FAULT_AFTER:-0.5}
    "$@" &
    pid=$!
    sleep "$after"
    note "scancel ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} while nago-train (pid $pid) runs"
    scancel "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
    wait "$pid"
    exit $? ;;
  *) echo "fault-launcher.sh: unknown fault mode '$mode'" >&2; exit 64 ;;
esac
