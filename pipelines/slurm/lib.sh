# lib.sh — small helpers shared by submit.sh, trial.sbatch and update.sbatch (sourced, not run).
# They parse no study file: what a study holds comes from the nago binaries (nago-status prints
# one item a line; nago-propose's exit status says proposed / pending / done), so the pipeline
# needs nothing on the cluster beyond bash, coreutils, Slurm's client commands and the binaries.

ts() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# The round directory names under RUN/rounds, numerically sorted (e.g. 0001 0002).
round_dirs() {  # round_dirs RUN
  local d
  for d in "$1"/rounds/*; do
    d=${d##*/}
    [[ $d =~ ^[0-9]+$ ]] && echo "$d"
  done | sort -n
}

# The latest round number (decimal, no padding), or nothing if there is no round yet.
latest_round() {  # latest_round RUN
  local d; d=$(round_dirs "$1" | tail -n 1)
  [ -n "$d" ] && echo $((10#$d))
  return 0
}

# The directory of round R (whatever its zero padding).
round_dir() {  # round_dir RUN R
  local d
  for d in $(round_dirs "$1"); do
    if [ $((10#$d)) -eq "$2" ]; then echo "$1/rounds/$d"; return 0; fi
  done
  return 1
}

# The trial ids of round R, one a line, in array-index order (line i+1 = index i).
round_trials() {  # round_trials RUN R
  "$NAGO_BIN_DIR/nago-status" trials --run "$1" --round "$2" --ids
}

# The array indices of round R that still need a task: nago-status applies the study's one
# rule (no final result: pending, or a retryable failure such as a killed task with attempts
# left; nago-train resumes from its checkpoint). The same rule as the local pipeline.
pending_indices() {  # pending_indices RUN R
  "$NAGO_BIN_DIR/nago-status" pending --run "$1" --round "$2"
}

# Slurm bookkeeping of a study lives in RUN/logs: slurm-jobs.tsv (round, array job, update
# job, time), slurm-state (one line: `running round R`, `done`, or `failed: why`).
set_state() {  # set_state RUN TEXT
  mkdir -p "$1/logs"
  printf '%s\n' "$2" > "$1/logs/slurm-state.tmp.$$" && mv "$1/logs/slurm-state.tmp.$$" "$1/logs/slurm-state"
}
get_state() { cat "$1/logs/slurm-state" 2>/dev/null || true; }

# True while Slurm still has the job queued or running.
job_alive() {  # job_alive JOBID
  [ -n "$1" ] && [ "$1" != - ] && squeue -h -j "$1" -o %T 2>/dev/null | grep -q .
}

# Seconds left before this job's time limit (squeue's %L: [days-][hours:]minutes:seconds), or
# nothing when it has none or Slurm cannot say.
job_seconds_left() {
  local l d=0 h=0 m=0 s=0 a b c
  l=$(squeue -h -j "${SLURM_JOB_ID:-none}" -o %L 2>/dev/null | head -n 1)
  [[ "$l" =~ ^([0-9]+-)?[0-9:]+$ ]] || return 0
  if [[ $l == *-* ]]; then d=${l%%-*}; l=${l#*-}; fi
  IFS=: read -r a b c <<<"$l"
  if [ -n "$c" ]; then h=$a m=$b s=$c; elif [ -n "$b" ]; then m=$a s=$b; else s=$a; fi
  echo $((10#$d * 86400 + 10#$h * 3600 + 10#$m * 60 + 10#$s))
}
