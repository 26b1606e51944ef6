#!/usr/bin/env bash
# slurm-ci.sh — a single-node Slurm cluster on 127.0.0.1 for tests and for trying the Slurm
# pipeline on one machine (Debian/Ubuntu, run as root, no systemd needed).
#
#   slurm-ci.sh start            install slurmctld/slurmd/slurm-client/munge if missing, write the
#                                config, start munged/slurmctld/slurmd, wait for the node to be idle
#   slurm-ci.sh wait JOBID [S]   wait (at most S s, default 3600) until every task of JOBID left the
#                                queue; rc 0 only if all ended COMPLETED, 2 if purged, 124 on timeout
#   slurm-ci.sh stop             stop the daemons this script started (PIDs from its pidfiles)
#   slurm-ci.sh running          rc 0 if the daemons this script started are all alive
#   slurm-ci.sh status           daemons, sinfo, squeue
#   slurm-ci.sh logs             the last lines of the daemons' logs
#
# Environment: SLURM_CI_DIR (state, spool, logs, pidfiles; default /tmp/slurm-ci),
# SLURM_CI_TIMEOUT (s to wait for the node, default 60), SLURM_CI_CTLD_PORT (6817),
# SLURM_CI_SLURMD_PORT (6818), SLURM_CI_FORCE=1 (overwrite an /etc/slurm/slurm.conf that this
# script did not write).
#
# Idempotent: `start` on a running cluster only re-checks it; `stop` on a stopped one does nothing.
# It never touches daemons it did not start: a munged that was already running is used and left
# alone, and it refuses to replace a slurm.conf it did not write.
# Derived from the measured recipe in the project notes (shared/notes/slurm.md); the settings
# that matter and why:
#   SchedulerParameters=batch_sched_delay=0   a 3-job chain takes ~6 s instead of ~10 s
#   DependencyParameters=kill_invalid_depend  a never-satisfiable dependency cancels the job
#                                             instead of leaving it PENDING forever (CI hang)
#   AuthInfo=cred_expire=10                   a requeued job waits this long before it may start
#                                             again (default 120 s: the worker test's requeued
#                                             task idled 2 of its 3 minutes)
#   MinJobAge=3600                            finished jobs stay visible to `scontrol show job`
#                                             for an hour (there is no accounting, so no sacct)
#   ProctrackType=proctrack/linuxproc, TaskPlugin=task/none   no cgroups needed (containers)
set -euo pipefail
BASE=${SLURM_CI_DIR:-/tmp/slurm-ci}
TIMEOUT=${SLURM_CI_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
MARK="# written by nago tests/slurm/slurm-ci.sh"
NODE=$(hostname -s)
RUN=$BASE/run

log() { echo "[slurm-ci] $*" >&2; }

pid_ok() {  # pid_ok PID COMM: a live process called COMM (killed daemons linger as zombies)
  [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
alive() { pid_ok "$(cat "$1" 2>/dev/null)" "$2"; }  # alive PIDFILE COMM

need_root() {
  [ "$(id -u)" = 0 ] || { log "must run as root (installs packages, starts daemons)"; exit 1; }
}

install_pkgs() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
    command -v sbatch >/dev/null && command -v munged >/dev/null && return 0
  command -v apt-get >/dev/null || { log "slurm is not installed and there is no apt-get"; return 1; }
  log "installing slurmctld slurmd slurm-client munge (no recommends)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {  # returns 0 if the file changed
  mkdir -p "$BASE"/{ctld,spool,log,run} /etc/slurm
  if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF" && [ "${SLURM_CI_FORCE:-0}" != 1 ]; then
    log "$CONF exists and was not written by this script; refusing to replace it (SLURM_CI_FORCE=1 to do so)"
    exit 1
  fi
  cat > "$CONF.new" <<EOF
$MARK
ClusterName=ci
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURM_CI_CTLD_PORT:-6817}
SlurmdPort=${SLURM_CI_SLURMD_PORT:-6818}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=10
StateSaveLocation=$BASE/ctld
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
DependencyParameters=kill_invalid_depend
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s "$CONF.new" "$CONF"; then rm -f "$CONF.new"; return 1; fi
  mv "$CONF.new" "$CONF"; return 0
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  munge_ok && return 0       # a running munged (ours or not) is fine
  if [ ! -s /etc/munge/munge.key ]; then
    install -d -o munge -g munge -m 0700 /etc/munge
    runuser -u munge -- mungekey --create
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do
    if munge_ok; then cp /run/munge/munged.pid "$RUN/munged.pid"; return 0; fi  # ours: stop it later
    sleep 0.1
  done
  log "munged did not come up"; return 1
}

node_state() { sinfo -h -n "$NODE" -o '%t' 2>/dev/null | head -n1; }

dump_logs() { tail -n 20 "$BASE/log/slurmctld.log" "$BASE/log/slurmd.log" >&2 2>/dev/null || true; }

start() {
  need_root
  local t0=$SECONDS
  install_pkgs
  local changed=0 running=0
  mkdir -p "$RUN"
  if write_conf; then changed=1; fi
  alive "$RUN/slurmctld.pid" slurmctld && alive "$RUN/slurmd.pid" slurmd && running=1
  start_munge
  # The daemons daemonize and exit 0 even when they die right after (e.g. a port in use): the
  # node-state poll below is the real check, and the logs are printed when it fails.
  alive "$RUN/slurmctld.pid" slurmctld || /usr/sbin/slurmctld -i
  alive "$RUN/slurmd.pid" slurmd || /usr/sbin/slurmd
  if [ "$changed$running" = 11 ]; then scontrol reconfigure || true; fi
  local t1=$SECONDS st="" resumed=0
  while :; do
    st=$(node_state)
    case "$st" in
      idle|mix|alloc|comp) log "node $NODE is $st after $((SECONDS - t0)) s"; return 0 ;;
      down*|drain*|drng*|fail*)
        [ $resumed = 0 ] && { scontrol update NodeName="$NODE" State=RESUME || true; resumed=1; } ;;
    esac
    if (( SECONDS - t1 >= TIMEOUT )); then
      log "timeout: node state '$st' after ${TIMEOUT} s"; dump_logs; return 1
    fi
    sleep 0.5
  done
}

stop_pid() {  # stop_pid PIDFILE COMM
  alive "$1" "$2" || { rm -f "$1"; return 0; }
  local pid; pid=$(cat "$1"); kill "$pid"
  for _ in $(seq 100); do pid_ok "$pid" "$2" || break; sleep 0.1; done
  if pid_ok "$pid" "$2"; then kill -9 "$pid"; fi
  rm -f "$1"
}

stop() {
  stop_pid "$RUN/slurmd.pid" slurmd
  stop_pid "$RUN/slurmctld.pid" slurmctld
  stop_pid "$RUN/munged.pid" munged   # only present if this script started munged
  log "stopped"
}

running() { alive "$RUN/slurmctld.pid" slurmctld && alive "$RUN/slurmd.pid" slurmd; }

wait_job() {  # wait_job JOBID [TIMEOUT]
  local j=$1 limit=${2:-3600} t0=$SECONDS out
  while :; do
    if out=$(scontrol -o show job "$j" 2>&1); then
      grep -Eq 'JobState=(PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUED|REQUEUE_HOLD|REQUEUE_FED|RESIZING|SIGNALING|STAGE_OUT)' <<<"$out" || break
    elif grep -q 'Invalid job id' <<<"$out"; then
      log "job $j already purged (MinJobAge); state unknown"; return 2
    fi
    (( SECONDS - t0 >= limit )) && { log "timeout waiting for $j"; return 124; }
    sleep 0.5
  done
  grep -o 'JobId=[0-9]* \(ArrayJobId=[0-9]* ArrayTaskId=[0-9-]* \)\?\|JobState=[A-Z_]*\|ExitCode=[0-9:]*' <<<"$out" |
    paste -d' ' - - - >&2
  local bad; bad=$(grep -o 'JobState=[A-Z_]*' <<<"$out" | grep -vx 'JobState=COMPLETED' || true)
  [ -z "$bad" ]
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  running) running ;;
  wait) shift; [ $# -ge 1 ] || { echo "usage: $0 wait JOBID [timeout]" >&2; exit 64; }; wait_job "$@" ;;
  status)
    for d in munged slurmctld slurmd; do
      if alive "$RUN/$d.pid" "$d"; then echo "$d $(cat "$RUN/$d.pid")"; else echo "$d -"; fi
    done
    sinfo || true; squeue || true ;;
  logs) dump_logs ;;
  -h|--help|help) sed -n '2,30p' "$0" ;;
  *) echo "usage: $0 start|stop|running|status|logs|wait JOBID [timeout]" >&2; exit 64 ;;
esac
