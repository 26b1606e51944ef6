#!/usr/bin/env bash
# submit.sh — run a NAGO study on Slurm: per round, one job array (generate + train, one task per
# trial) and one update job that runs after it (afterany: failed tasks are recorded, not fatal),
# which refits, proposes the next round and calls this script again, until the study is done.
set -euo pipefail

usage() {
  cat <<'EOF'
Run a NAGO study on a Slurm cluster, one job array per round.

Usage: pipelines/slurm/submit.sh --run DIR [--preset NAME|FILE] [resources] [--wait]

Each call submits the latest round of the study in DIR: a job array of trial.sbatch
(--array=0-(q-1); task i generates and trains trial i of the round) and an update.sbatch job
with --dependency=afterany:<array>. The update job runs nago-update and nago-propose; if a new
round appeared it calls this script again (with the same settings, passed on in NAGO_*
variables), otherwise the study is done. Job ids are printed; state is kept in DIR/logs.

The first call creates DIR/study.json from the preset and proposes the first round. Calling it
again on a study resumes it: only the trials of the latest round without a final result are
submitted (a `killed` result counts as unfinished), then the update job.

Study:
  --run DIR             study directory (env NAGO_RUN)                     [required]
  --preset P            preset for a new study: smoke, quick, standard, paper (pipelines/presets/P.json)
                        or a study.json path; ignored if DIR/study.json exists
                        (env NAGO_PRESET, default quick)
  --bin-dir DIR         directory of the nago-* binaries, as seen from the compute nodes
                        (env NAGO_BIN_DIR, default <repo>/target/release)

Resources of each trial task (unset = the cluster's default):
  --partition P         env NAGO_PARTITION
  --account A           env NAGO_ACCOUNT
  --gpus N              GPUs per task, as --gres=gpu:N (env NAGO_GPUS); nago-train uses CUDA
                        when the task has a GPU
  --cpus N              CPUs per task, also the trainer's threads (env NAGO_CPUS, default 1)
  --mem M               memory per task, e.g. 8G (env NAGO_MEM)
  --time T              time limit per task, e.g. 04:00:00 (env NAGO_TIME); the trainer stops
                        itself NAGO_TIME_MARGIN s (default 120) before it (status time_limit)
  --max-parallel N      at most N tasks of a round at once (--array=...%N) (env NAGO_MAX_PARALLEL)
  --sbatch-arg ARG      extra sbatch argument for every job (repeat; env NAGO_SBATCH_ARGS,
                        space-separated), e.g. --sbatch-arg=--qos=long
  --train-arg ARG       extra nago-train argument (repeat; env NAGO_TRAIN_ARGS, space-separated)

Resources of the update job (1 CPU, no GPU):
  --update-partition P  env NAGO_UPDATE_PARTITION (default: --partition)
  --update-time T       env NAGO_UPDATE_TIME
  --update-mem M        env NAGO_UPDATE_MEM

Other:
  --wait                block until the study is done (rc 0) or the chain stops (rc 1),
                        printing each round as it is submitted
  --timeout S           with --wait: give up after S seconds (rc 124) (env NAGO_WAIT_TIMEOUT)
  --dry-run             create the study and its first round if needed, print the sbatch
                        commands, submit nothing
  --force               submit even if an update job of this study is still queued
  -h, --help            this text

Examples:
  pipelines/slurm/submit.sh --run runs/fm --preset quick --partition gpu --gpus 1 --cpus 8 \
      --mem 16G --time 02:00:00
  NAGO_PARTITION=cpu NAGO_CPUS=4 pipelines/slurm/submit.sh --run runs/smoke --preset smoke --wait

Jobs run in the directory submit.sh was called from (sbatch's default), so relative paths (the
default data root `data`, NAGO_DATA, dataset.path in study.json) resolve as for `make search`.

Logs: DIR/logs/r<R>-<index>.out (one per task; appended across requeues), DIR/logs/update-r<R>.out,
DIR/trials/<id>/{generate,train}.log (the stages' own output), DIR/logs/slurm-jobs.tsv (every
job submitted), DIR/logs/slurm-state (running round R | done | failed: why).
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

die() { echo "submit.sh: $*" >&2; exit 1; }

WAIT=0 DRY=0 FORCE=0 PRESET_GIVEN=0
: "${NAGO_PRESET:=quick}" "${NAGO_CPUS:=1}" "${NAGO_SBATCH_ARGS:=}" "${NAGO_TRAIN_ARGS:=}"
WAIT_TIMEOUT=${NAGO_WAIT_TIMEOUT:-0}

while [ $# -gt 0 ]; do
  opt=$1 val=
  case "$opt" in
    --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
  esac
  case "$opt" in
    --wait) WAIT=1; shift; continue ;;
    --dry-run) DRY=1; shift; continue ;;
    --force) FORCE=1; shift; continue ;;
    -h|--help) usage; exit 0 ;;
    --run|--preset|--bin-dir|--partition|--account|--gpus|--cpus|--mem|--time|--max-parallel|\
    --sbatch-arg|--train-arg|--update-partition|--update-time|--update-mem|--timeout)
      if [ "$1" = "$opt" ]; then [ $# -ge 2 ] || die "$opt needs a value"; val=$2; shift; fi
      shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
  case "$opt" in
    --run) NAGO_RUN=$val ;;
    --preset) NAGO_PRESET=$val; PRESET_GIVEN=1 ;;
    --bin-dir) NAGO_BIN_DIR=$val ;;
    --partition) NAGO_PARTITION=$val ;;
    --account) NAGO_ACCOUNT=$val ;;
    --gpus) NAGO_GPUS=$val ;;
    --cpus) NAGO_CPUS=$val ;;
    --mem) NAGO_MEM=$val ;;
    --time) NAGO_TIME=$val ;;
    --max-parallel) NAGO_MAX_PARALLEL=$val ;;
    --sbatch-arg) NAGO_SBATCH_ARGS="${NAGO_SBATCH_ARGS:+$NAGO_SBATCH_ARGS }$val" ;;
    --train-arg) NAGO_TRAIN_ARGS="${NAGO_TRAIN_ARGS:+$NAGO_TRAIN_ARGS }$val" ;;
    --update-partition) NAGO_UPDATE_PARTITION=$val ;;
    --update-time) NAGO_UPDATE_TIME=$val ;;
    --update-mem) NAGO_UPDATE_MEM=$val ;;
    --timeout) WAIT_TIMEOUT=$val ;;
  esac
done

[ -n "${NAGO_RUN:-}" ] || die "--run DIR is required (see --help)"
mkdir -p "$NAGO_RUN"
NAGO_RUN=$(cd "$NAGO_RUN" && pwd)
NAGO_BIN_DIR=$(cd "${NAGO_BIN_DIR:-$REPO/target/release}" 2>/dev/null && pwd) ||
  die "bin dir ${NAGO_BIN_DIR:-$REPO/target/release} does not exist (build with \`make bins\`)"
for b in nago-propose nago-generate nago-train nago-update nago-status; do
  [ -x "$NAGO_BIN_DIR/$b" ] || die "$NAGO_BIN_DIR/$b is missing (build with \`make bins\`, or pass --bin-dir)"
done
case "${NAGO_CPUS}${NAGO_GPUS:-0}${NAGO_MAX_PARALLEL:-0}" in *[!0-9]*) die "--cpus, --gpus, --max-parallel take integers" ;; esac
NAGO_PIPELINE_DIR=$HERE
NAGO_SUBMIT=$HERE/submit.sh
# Everything the jobs need travels in the environment (sbatch's default --export=ALL); the
# update job calls this script with no arguments and gets the same settings back.
export NAGO_RUN NAGO_PRESET NAGO_BIN_DIR NAGO_PIPELINE_DIR NAGO_SUBMIT NAGO_CPUS NAGO_SBATCH_ARGS \
  NAGO_TRAIN_ARGS
for v in NAGO_PARTITION NAGO_ACCOUNT NAGO_GPUS NAGO_MEM NAGO_TIME NAGO_MAX_PARALLEL \
  NAGO_UPDATE_PARTITION NAGO_UPDATE_TIME NAGO_UPDATE_MEM NAGO_TRAIN_LAUNCHER NAGO_THREADS \
  NAGO_TIME_MARGIN; do
  [ -n "${!v:-}" ] && export "${v?}"
done
RUN=$NAGO_RUN
LOGS=$RUN/logs
mkdir -p "$LOGS"
name=$(basename "$RUN")

# --- the study definition -------------------------------------------------------------------
if [ ! -e "$RUN/study.json" ]; then
  preset=$NAGO_PRESET
  [ -f "$preset" ] || preset=$REPO/pipelines/presets/$NAGO_PRESET.json
  [ -f "$preset" ] || die "no preset '$NAGO_PRESET' (neither a file nor pipelines/presets/$NAGO_PRESET.json)"
  cp "$preset" "$RUN/study.json.tmp.$$" && mv "$RUN/study.json.tmp.$$" "$RUN/study.json"
  echo "study $name: created $RUN/study.json from $preset"
elif [ "$PRESET_GIVEN" = 1 ]; then
  echo "study $name: $RUN/study.json exists; --preset ignored (a study's definition does not change)" >&2
fi

# --- --wait: follow the chain until the study is done -------------------------------------------
follow() {
  t0=$SECONDS seen=$U
  while :; do
    st=$(get_state "$RUN")
    case "$st" in
      done) echo "study $name: done ($(round_dirs "$RUN" | wc -l) rounds, $((SECONDS - t0)) s waited)"; exit 0 ;;
      failed*) echo "study $name: chain stopped: ${st#failed: } (see $LOGS)" >&2; exit 1 ;;
    esac
    line=$(tail -n 1 "$LOGS/slurm-jobs.tsv")
    u=$(cut -f3 <<<"$line")
    if [ "$u" != "$seen" ]; then
      seen=$u
      echo "study $name round $(cut -f1 <<<"$line"): array job $(cut -f2 <<<"$line"), update job $u"
    elif ! job_alive "$u"; then
      sleep 1   # it may have written its state just now
      st=$(get_state "$RUN")
      if [ "$st" != "running round $(cut -f1 <<<"$line")" ] || [ "$(tail -n 1 "$LOGS/slurm-jobs.tsv" | cut -f3)" != "$u" ]; then
        continue
      fi
      echo "study $name: update job $u left the queue without finishing the round (cancelled or killed?); see $LOGS/update-r$(cut -f1 <<<"$line").out; rerun this command to resume" >&2
      exit 1
    fi
    if [ "$WAIT_TIMEOUT" -gt 0 ] && (( SECONDS - t0 >= WAIT_TIMEOUT )); then
      echo "study $name: still running after ${WAIT_TIMEOUT} s" >&2; exit 124
    fi
    sleep "${NAGO_WAIT_POLL:-2}"
  done
}

# --- one chain per study ----------------------------------------------------------------------
last=$(tail -n 1 "$LOGS/slurm-jobs.tsv" 2>/dev/null || true)
last_round=$(cut -f1 <<<"$last") last_array=$(cut -f2 <<<"$last") last_update=$(cut -f3 <<<"$last")
if [ "$DRY" = 0 ] && [ "$FORCE" = 0 ] && [ "${last_update:-}" != "${SLURM_JOB_ID:-none}" ] &&
  job_alive "${last_update:-}"; then
  if [ "$WAIT" = 1 ]; then
    echo "study $name: already running (update job $last_update); following it"
    U=$last_update
    follow
  fi
  die "update job $last_update of this study is still queued; this study is already running (--force to submit anyway)"
fi

# --- the round to run -------------------------------------------------------------------------
if [ -z "$(latest_round "$RUN")" ]; then
  rc=0; "$NAGO_BIN_DIR/nago-propose" --run "$RUN" || rc=$?
  [ "$rc" = 0 ] || die "nago-propose exited $rc (its message is above)"
fi
R=$(latest_round "$RUN")
[ -n "$R" ] || die "nago-propose proposed no first round (its message is above)"
mapfile -t trials < <(round_trials "$RUN" "$R")
q=${#trials[@]}
mapfile -t pending < <(pending_indices "$RUN" "$R")
[ "$q" -gt 0 ] || die "round $R has no trials ($(round_dir "$RUN" "$R")/proposals.json)"

# Slurm sets SLURM_* in a job's environment; when this script runs inside the update job they
# would leak into the jobs submitted next (sbatch exports everything). Keep only SLURM_CONF.
for v in $(compgen -e | grep '^SLURM_' || true); do
  [ "$v" = SLURM_CONF ] || unset "$v"
done

common=()
[ -n "${NAGO_ACCOUNT:-}" ] && common+=(--account="$NAGO_ACCOUNT")
# shellcheck disable=SC2206  # NAGO_SBATCH_ARGS is a space-separated list by design
[ -n "$NAGO_SBATCH_ARGS" ] && common+=($NAGO_SBATCH_ARGS)

array=${pending[*]}; array=${array// /,}
[ "${#pending[@]}" = "$q" ] && array="0-$((q - 1))"
[ -n "${NAGO_MAX_PARALLEL:-}" ] && array="$array%$NAGO_MAX_PARALLEL"
trial_args=(--parsable --job-name="nago-$name-r$R" --array="$array"
  --output="$LOGS/r$R-%a.out" --open-mode=append --requeue
  --ntasks=1 --cpus-per-task="$NAGO_CPUS" "${common[@]}")
[ -n "${NAGO_PARTITION:-}" ] && trial_args+=(--partition="$NAGO_PARTITION")
[ -n "${NAGO_GPUS:-}" ] && [ "$NAGO_GPUS" -gt 0 ] && trial_args+=(--gres="gpu:$NAGO_GPUS")
[ -n "${NAGO_MEM:-}" ] && trial_args+=(--mem="$NAGO_MEM")
[ -n "${NAGO_TIME:-}" ] && trial_args+=(--time="$NAGO_TIME")

upart=${NAGO_UPDATE_PARTITION:-${NAGO_PARTITION:-}}
update_args=(--parsable --job-name="nago-$name-u$R" --output="$LOGS/update-r$R.out"
  --open-mode=append --ntasks=1 --cpus-per-task=1 --kill-on-invalid-dep=yes
  "${common[@]}")
[ -n "$upart" ] && update_args+=(--partition="$upart")
[ -n "${NAGO_UPDATE_TIME:-}" ] && update_args+=(--time="$NAGO_UPDATE_TIME")
[ -n "${NAGO_UPDATE_MEM:-}" ] && update_args+=(--mem="$NAGO_UPDATE_MEM")

export NAGO_ROUND=$R
if [ "$DRY" = 1 ]; then
  [ "${#pending[@]}" -gt 0 ] && echo "sbatch ${trial_args[*]} $HERE/trial.sbatch"
  echo "sbatch ${update_args[*]} --dependency=afterany:<array job> $HERE/update.sbatch"
  exit 0
fi

A=-
if [ "$FORCE" = 0 ] && [ "${last_round:-}" = "$R" ] && job_alive "${last_array:-}"; then
  # The round's array from an earlier call is still queued or running (its update job was
  # cancelled): do not train the same trials twice, follow that array instead.
  A=$last_array pending=(running) array="(already queued)"
  update_args+=(--dependency="afterany:$A")
  echo "study $name round $R: array job $A is still queued; submitting only an update job after it"
elif [ "${#pending[@]}" -gt 0 ]; then
  A=$(sbatch "${trial_args[@]}" "$HERE/trial.sbatch") || die "sbatch of the trial array failed"
  A=${A%%;*}
  update_args+=(--dependency="afterany:$A")
fi
U=$(sbatch "${update_args[@]}" "$HERE/update.sbatch") || {
  [ "$A" != - ] && scancel "$A"
  die "sbatch of the update job failed (array $A cancelled)"
}
U=${U%%;*}
printf '%s\t%s\t%s\t%s\n' "$R" "$A" "$U" "$(ts)" >> "$LOGS/slurm-jobs.tsv"
set_state "$RUN" "running round $R"
if [ "${#pending[@]}" -eq 0 ]; then
  echo "study $name round $R: all $q trials have a final result; update job $U"
elif [ "$A" = "${last_array:-}" ]; then
  echo "study $name round $R: array job $A (already queued), update job $U"
else
  echo "study $name round $R: array job $A (${#pending[@]} of $q trials, --array=$array), update job $U"
fi

[ "$WAIT" = 1 ] || exit 0
follow
