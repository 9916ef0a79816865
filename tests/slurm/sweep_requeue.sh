#!/usr/bin/env bash
# End-to-end SLURM test (label slurm): a private munge + slurmctld + slurmd on
# localhost, a 3-entry sweep submitted with jobs/submit_sweep.sh (2 MPI ranks per
# array task under srun --mpi=pmix), one array task checkpointed mid-run with
# `scancel --batch --signal=USR1` (the path `--signal=B:USR1@S` takes at the time
# limit), requeued by its batch script and resumed; then the aggregation job
# (afterany). The outputs must equal, byte for byte, the same sweep run
# uninterrupted as one process: outcomes.csv, trajectories.csv and every PNG of
# every entry; the aggregate files must exist and list every run as evaluated.
#
#   tests/slurm/sweep_requeue.sh [WORKDIR]
#
# WORKDIR (default: a fresh mktemp dir, removed on success) holds the cluster's
# config, state and logs, the data, model and run directories. The daemons are
# stopped by PID on exit, also on failure. Needs root. EDI_EXE overrides the binary.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/tests/cluster/lib.sh"   # log, die, same_outputs, h5_all_open, EDI_EXE
source "$HERE/cluster.sh"
[ "$(id -u)" = 0 ] || { echo "needs root (SlurmUser=root)"; exit 1; }
if [ -n "${1:-}" ]; then WORK=$1; mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d /tmp/edi-slurm-XXXXXX); KEEP=0; fi
WORK=$(cd "$WORK" && pwd)
T0=$SECONDS

cleanup() {
  local rc=$?
  cluster_teardown
  if [ "$rc" != 0 ]; then
    echo "--- slurm outputs ---"; tail -n 30 "$WORK"/sw/slurm/*.out 2>/dev/null || true
    echo "--- slurmctld log (tail) ---"; tail -n 20 "$WORK/cluster/log/slurmctld.log" 2>/dev/null || true
  fi
  if [ "$rc" = 0 ] && [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi
  echo "total: $((SECONDS - T0)) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting munged, slurmctld, slurmd in $WORK/cluster"
CLUSTER_CPUS=2 cluster_start "$WORK/cluster" || die "cluster start failed"
log "cluster up ($(sinfo -h -o '%T %c CPUs'))"

cd "$WORK"
"$EDI_EXE" synth --identities 6 --per-identity 8 --size 32 --out D >/dev/null
"$EDI_EXE" train --data D --task identity --epochs 8 --out M.pt --threads 1 >/dev/null
cat >sweep.ini <<'EOF'
# 2 EDI blur runs (k = 5, 9) and a conventional baseline; fixed 20 passes so
# that an EDI run lasts long enough to be interrupted. No control run (CI size).
[sweep]
control = false
attackers = lbph
utility = none
bootstrap = 50

[run]
data = D
model = M.pt
batch = 8
shard-size = 8
stop = fixed
passes = 20
# pass-major: this test follows the per-pass lines and the pass a stop names
schedule = pass

[grid.edi-blur]
method = edi
operator = blur
k = 5 | 9

[grid.conv-blur]
method = conventional
operator = blur
k = 9
EOF
log "data and model ready"

# --- submit ------------------------------------------------------------------
EDI_ANON=$EDI_EXE "$ROOT/jobs/submit_sweep.sh" sweep.ini --out sw --ranks 2 --cpus-per-task 1 --time 20 \
  --signal-seconds 60 | tee submit.log
array=$(awk '/^array job:/ {print $3}' submit.log)
agg=$(awk '/^aggregation job:/ {print $3}' submit.log)
[ -n "$array" ] && [ -n "$agg" ] || die "submit_sweep.sh printed no job ids"
log "array job $array, aggregation job $agg"

# --- interrupt task 0 mid-run: SIGUSR1 to its batch shell ------------------------
out0="sw/slurm/edi-sweep-${array}_0.out"
at_pass3() { grep -Eq '^  pass +3 ' "$out0" 2>/dev/null; }
wait_until 120 "task 0 to reach pass 3" at_pass3
# slurmctld (22.05) may answer "Job can not be altered now, try again later" to a
# signal for an array task even though the batch shell got it, and scancel then
# retries for minutes: bound it, and check that the signal arrived instead.
task0=$(job_field "${array}_0" JobId)
timeout 10 scancel --batch --signal=USR1 "$task0" || log "scancel: exit $? (checking delivery in the job output)"
log "sent SIGUSR1 to the batch shell of ${array}_0 (job $task0)"
wait_until 30 "the batch shell of task 0 to get SIGUSR1" grep -q 'batch shell: SIGUSR1' "$out0"
requeued() { grep -q 'requeueing job' "$out0" && [ "$(job_field "${array}_0" JobState)" = PENDING ]; }
wait_until 60 "task 0 to checkpoint and requeue" requeued
grep -q 'stopped by signal 10' "$out0" || die "task 0 was not stopped by SIGUSR1"
# The stop message names the last pass every shard committed: it may be one the
# progress lines have not shown yet (a rank stops claiming only after the
# others took the pass's last shards; that pass is then printed first).
stopped_at=$(sed -nE 's/.*stopped by signal 10 after pass ([0-9]+) .*/\1/p' "$out0" | tail -1)
[ -n "$stopped_at" ] || die "task 0's stop message names no pass"
last_line=$(grep -E '^  pass +[0-9]+ ' "$out0" | tail -1 | awk '{print $2}')
[ "$last_line" = "$stopped_at" ] || die "task 0 stopped after pass $stopped_at but its last progress line is pass $last_line"
log "task 0 checkpointed after pass $stopped_at and was requeued ($(job_field "${array}_0" Reason))"
# A requeued job is held back for ~120 s (its BeginTime); start it now.
scontrol update JobId="${array}_0" StartTime=now

# --- the array and the aggregation finish ------------------------------------------
agg_done() { case $(job_field "$agg" JobState) in COMPLETED|FAILED|CANCELLED|TIMEOUT|OUT_OF_MEMORY|NODE_FAIL) return 0 ;; esac; return 1; }
wait_until 420 "the aggregation job" agg_done
log "aggregation job: $(job_field "$agg" JobState), exit $(job_field "$agg" ExitCode)"
fail=0
for i in 0 1 2; do
  st=$(job_field "${array}_$i" JobState) ec=$(job_field "${array}_$i" ExitCode) rs=$(job_field "${array}_$i" Restarts)
  log "task $i: $st, exit $ec, restarts $rs"
  [ "$st" = COMPLETED ] && [ "$ec" = 0:0 ] || { echo "  task $i did not complete"; fail=1; }
done
[ "$(job_field "${array}_0" Restarts)" = 1 ] || { echo "  task 0 was not restarted exactly once"; fail=1; }
# The requeued task resumes after the last committed pass: no pass is replayed.
first_after=$(sed -n '/(restart 1)/,$p' "$out0" | grep -E '^  pass +[0-9]+ ' | head -1 | awk '{print $2}')
log "task 0 resumed at pass ${first_after:-?} (stopped after pass $stopped_at)"
[ "${first_after:-x}" = $((stopped_at + 1)) ] || { echo "  task 0 did not resume at pass $((stopped_at + 1))"; fail=1; }
[ "$(job_field "$agg" JobState)" = COMPLETED ] || { echo "  the aggregation job did not complete"; fail=1; }
[ "$fail" = 0 ] || die "SLURM jobs did not all complete"

# --- compare with one uninterrupted process -------------------------------------------
t=$SECONDS
"$EDI_EXE" sweep --config sweep.ini --out single --threads 1 >single.log 2>&1 || { cat single.log; die "single-process sweep failed"; }
log "single-process sweep: $((SECONDS - t)) s"
mapfile -t names < <("$EDI_EXE" sweep --config sweep.ini --out sw --list | awk '/^ *[0-9]+  [^ ]+$/ {print $2}')
[ "${#names[@]}" = 3 ] || die "expected 3 entries, got ${#names[@]}"
for n in "${names[@]}"; do
  echo "$n:"
  same_outputs "single/$n" "sw/$n" || fail=1
  h5_all_open "sw/$n" || fail=1
  [ -f "sw/$n/metrics.json" ] || { echo "  no metrics.json"; fail=1; }
done
for f in aggregate.csv aggregate.md aggregate.tex aggregate.json matched.csv; do
  [ -s "sw/aggregate/$f" ] || { echo "  sw/aggregate/$f missing"; fail=1; }
done
grep -q "runs: 3 given, 3 evaluated" sw/aggregate/aggregate.md ||
  { echo "  the aggregate does not list 3 evaluated runs:"; grep '^runs' sw/aggregate/aggregate.md || true; fail=1; }
[ "$fail" = 0 ] || die "SLURM sweep outputs differ from the single-process sweep"
log "PASS: interrupted+requeued SLURM sweep == single-process sweep (${#names[@]} runs), aggregate written"
# A rank that dies mid-step: tests/slurm/srun_kill.sh.
