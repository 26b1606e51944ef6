#!/bin/bash
# fault-launcher.sh — the Slurm test's NAGO_TRAIN_LAUNCHER: makes exactly one task fail, for real.
#
# trial.sbatch runs `$NAGO_TRAIN_LAUNCHER <path>/nago-train ARGS...`. This wrapper runs the real
# nago-train unchanged for every task except the one whose round and array index are
# NAGO_TEST_FAULT_ROUND / NAGO_TEST_FAULT_INDEX. That one gets SIGTERM NAGO_TEST_FAULT_AFTER
# seconds after it started (default 2) — what scancel, a Slurm time limit or a preemption sends.
# The trainer must then record status `killed` in result.json and exit non-zero, Slurm marks the
# task FAILED, and the round's update job (afterany) must still run and chain the next round.
# When it sends the signal it writes a line to NAGO_TEST_FAULT_LOG, so the test can tell a fault
# that fired from one that came too late (training already finished).
set -u
round=${NAGO_ROUND:-} index=${SLURM_ARRAY_TASK_ID:-}
if [ "$round" != "${NAGO_TEST_FAULT_ROUND:-x}" ] || [ "$index" != "${NAGO_TEST_FAULT_INDEX:-x}" ]; then
  exec "$@"
fi
after=${NAGO_TEST_FAULT_AFTER:-2}
"$@" &
pid=$!
(
  sleep "$after"
  if kill -0 "$pid" 2>/dev/null; then
    # Log first: once the trainer exits, the wrapper ends this subshell.
    echo "$(date -u +%FT%TZ) SIGTERM to nago-train (pid $pid) of round $round index $index after ${after} s" \
      >> "${NAGO_TEST_FAULT_LOG:-/dev/null}"
    kill -TERM "$pid"
  fi
) &
killer=$!
wait "$pid"
rc=$?
kill "$killer" 2>/dev/null
wait "$killer" 2>/dev/null
exit $rc
