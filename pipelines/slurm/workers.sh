#!/usr/bin/env bash
# workers.sh — run a NAGO study on Slurm as one job array of asynchronous workers.
set -euo pipefail

usage() {
  cat <<'USAGE'
Run a NAGO study on a Slurm cluster as N asynchronous workers (one job array).

Usage: pipelines/slurm/workers.sh --run DIR --workers N [--preset P] [resources] [--wait]

Each task of the array runs worker.sbatch: `nago-search --parallel 1` on the study, taking or
proposing one trial at a time until the study (its evaluation budget and final round) is done.
Running it again on a study adds N more workers (another array); a cancelled or requeued task
leaves its trial to the others. Prefer this to submit.sh (the round chain) unless your cluster
limits how long a job may run: each worker lives for the whole study (or until its --time).

  --run DIR          study directory                                         [required]
  --workers N        tasks in the array (default 2)
  --preset P         preset for a new study (smoke, quick, standard, paper or a study.json path)
  --bin-dir DIR      the nago-* binaries as seen from the compute nodes (default target/release)
  --cpus N           CPUs per worker, also the trainer's threads (default 1)
  --partition P, --account A, --mem M, --time T, --gpus N (as --gres=gpu:N)
  --sbatch-arg ARG   extra sbatch argument (repeat)
  --wait             block until the array has left the queue; rc 0 iff the study is done
  --timeout S        with --wait: give up after S seconds (rc 124)
  -h, --help         this text

Logs: DIR/logs/worker-<job>_<task>.out, DIR/logs/slurm-workers.tsv (every array submitted),
DIR/logs/stages.tsv (every stage run), DIR/trials/<id>/{generate,train}.log.
USAGE
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
die() { echo "workers.sh: $*" >&2; exit 1; }

RUN= N=2 PRESET=quick BIN=$REPO/target/release CPUS=1 WAIT=0 TIMEOUT=0
args=()
while [ $# -gt 0 ]; do
  opt=$1 val=
  case "$opt" in --*=*) val=${opt#*=}; opt=${opt%%=*} ;; esac
  case "$opt" in
    --wait) WAIT=1; shift; continue ;;
    -h|--help) usage; exit 0 ;;
    --run|--workers|--preset|--bin-dir|--cpus|--partition|--account|--mem|--time|--gpus|--sbatch-arg|--timeout)
      if [ "$1" = "$opt" ]; then [ $# -ge 2 ] || die "$opt needs a value"; val=$2; shift; fi
      shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  case "$opt" in
    --run) RUN=$val ;;
    --workers) N=$val ;;
    --preset) PRESET=$val ;;
    --bin-dir) BIN=$val ;;
    --cpus) CPUS=$val ;;
    --partition) args+=(--partition="$val") ;;
    --account) args+=(--account="$val") ;;
    --mem) args+=(--mem="$val") ;;
    --time) args+=(--time="$val") ;;
    --gpus) args+=(--gres="gpu:$val") ;;
    --sbatch-arg) args+=("$val") ;;
    --timeout) TIMEOUT=$val ;;
  esac
done
[ -n "$RUN" ] || die "--run DIR is required (see --help)"
case "$N$CPUS$TIMEOUT" in *[!0-9]*) die "--workers, --cpus and --timeout take integers" ;; esac
[ "$N" -ge 1 ] || die "--workers must be at least 1"
mkdir -p "$RUN/logs"
RUN=$(cd "$RUN" && pwd)
BIN=$(cd "$BIN" 2>/dev/null && pwd) || die "bin dir $BIN does not exist (build with \`make bins\`)"
for b in nago-search nago-propose nago-generate nago-train nago-update nago-status; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing (build with \`make bins\`, or pass --bin-dir)"
done
if [ ! -e "$RUN/study.json" ]; then
  preset=$PRESET
  [ -f "$preset" ] || preset=$REPO/pipelines/presets/$PRESET.json
  [ -f "$preset" ] || die "no preset '$PRESET'"
  cp "$preset" "$RUN/study.json.tmp.$$" && mv "$RUN/study.json.tmp.$$" "$RUN/study.json"
  echo "study $(basename "$RUN"): created $RUN/study.json from $preset"
fi
export NAGO_RUN=$RUN NAGO_BIN_DIR=$BIN
J=$(sbatch --parsable --job-name="nago-$(basename "$RUN")-w" --array="0-$((N - 1))" \
  --output="$RUN/logs/worker-%A_%a.out" --open-mode=append --requeue --ntasks=1 \
  --cpus-per-task="$CPUS" "${args[@]}" "$HERE/worker.sbatch") || die "sbatch failed"
J=${J%%;*}
printf '%s\t%s\t%s\n' "$J" "$N" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$RUN/logs/slurm-workers.tsv"
echo "study $(basename "$RUN"): worker array $J ($N tasks)"
[ "$WAIT" = 1 ] || exit 0
t0=$SECONDS
while squeue -h -j "$J" -o %i 2>/dev/null | grep -q .; do
  if [ "$TIMEOUT" -gt 0 ] && (( SECONDS - t0 >= TIMEOUT )); then
    echo "workers.sh: the study is still running after $TIMEOUT s" >&2; exit 124
  fi
  sleep "${NAGO_WAIT_POLL:-2}"
done
"$BIN/nago-status" done --run "$RUN"
