# A private single-node SLURM cluster on localhost for tests (sourced, not run).
#
#   source tests/slurm/cluster.sh
#   cluster_start DIR     # munged + slurmctld + slurmd, everything under DIR
#   ...                   # sbatch/squeue/scontrol use it through SLURM_CONF
#   cluster_stop          # stops the three daemons by PID (safe to call twice)
#
# Nothing under /etc, /run or /var is touched: the munge key, socket, slurm.conf,
# spool, state, PID and log files all live in DIR, and the ports are picked
# free ones, so a system-wide SLURM or munge on the machine is left alone.
# Needs root (SlurmUser=root), munge, slurmctld, slurmd (Debian slurm-wlm),
# Open MPI with PMIx. The recipe is /work/shared/docs/toolchain.md section 6.

CLUSTER_DIR=
CLUSTER_PIDS=()

_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cluster_start() {
  CLUSTER_DIR=$1
  local d=$CLUSTER_DIR
  mkdir -p "$d/munge" "$d/spool/slurmd" "$d/state" "$d/log" "$d/run"
  chmod 700 "$d/munge"
  # munged refuses a socket directory others can write to, and a key others can read.
  [ -s "$d/munge/munge.key" ] || mungekey --create --keyfile="$d/munge/munge.key" >/dev/null
  chmod 400 "$d/munge/munge.key"
  munged --force --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/munge/munged.log" --seed-file="$d/munge/munged.seed" ||
    { cat "$d/munge/munged.log" >&2; return 1; }
  _cluster_wait_pidfile "$d/munge/munged.pid" munged || return 1
  munge --socket="$d/munge/munge.socket" -n | unmunge --socket="$d/munge/munge.socket" >/dev/null ||
    { echo "munge does not work" >&2; return 1; }

  local ctld_port slurmd_port cpus
  ctld_port=$(_free_port)
  slurmd_port=$(_free_port)
  cpus=${CLUSTER_CPUS:-2}
  cat >"$d/slurm.conf" <<EOF
ClusterName=editest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.socket
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
ReturnToService=2
MailProg=/bin/true
KillWait=30
SlurmctldPidFile=$d/run/slurmctld.pid
SlurmdPidFile=$d/run/slurmd.pid
SlurmdSpoolDir=$d/spool/slurmd
StateSaveLocation=$d/state
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
NodeName=localhost NodeHostname=localhost CPUs=$cpus RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$d/slurm.conf
  slurmctld -i -f "$d/slurm.conf" || { cat "$d/log/slurmctld.log" >&2; return 1; }
  _cluster_wait_pidfile "$d/run/slurmctld.pid" slurmctld || return 1
  slurmd -N localhost -f "$d/slurm.conf" || { cat "$d/log/slurmd.log" >&2; return 1; }
  _cluster_wait_pidfile "$d/run/slurmd.pid" slurmd || return 1
  local i
  for i in $(seq 1 240); do
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && return 0
    sleep 0.25
  done
  echo "the node did not become idle within 60 s:" >&2
  sinfo >&2 || true
  tail -20 "$d/log/slurmctld.log" "$d/log/slurmd.log" >&2 || true
  return 1
}

# Wait until a daemon wrote its PID file; remember the PID for cluster_stop.
_cluster_wait_pidfile() {
  local f=$1 name=$2 i pid
  for i in $(seq 1 100); do
    if [ -s "$f" ]; then
      pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then CLUSTER_PIDS+=("$pid"); return 0; fi
    fi
    sleep 0.1
  done
  echo "$name did not start (no live PID in $f)" >&2
  return 1
}

# Stop the daemons this shell started, newest first, by PID; wait for them to go.
cluster_stop() {
  local i pid
  for ((i = ${#CLUSTER_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${CLUSTER_PIDS[$i]}
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
  done
  CLUSTER_PIDS=()
  return 0
}

# cluster_teardown: every job cancelled first (its slurmstepd would outlive
# slurmd), then the daemons stopped by PID.
cluster_teardown() {
  if [ -n "${SLURM_CONF:-}" ] && [ "${#CLUSTER_PIDS[@]}" -gt 0 ]; then
    scancel --full --quiet --user=root 2>/dev/null || true
    for _ in $(seq 1 60); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  cluster_stop
}

# job_field JOB FIELD: one field of `scontrol show job` (JobState, ExitCode, Restarts...).
job_field() { scontrol show job "$1" 2>/dev/null | grep -o "\b$2=[^ ]*" | head -1 | cut -d= -f2; }

# wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.5 s (die, from tests/cluster/lib.sh).
wait_until() {
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 2; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  die "timed out after $limit s waiting for $what"
}
