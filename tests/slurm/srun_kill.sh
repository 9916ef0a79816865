#!/usr/bin/env bash
# SLURM test (label slurm; issue 10 item 9): a job step whose rank dies ends,
# rather than hangs until the time limit. A private munge + slurmctld + slurmd on
# localhost runs jobs/run.sbatch with 2 ranks (srun --mpi=pmix) on a run of 200
# passes, and rank 1 dies in one of three ways:
#
#   start  rank 1's task exits 9 before it starts edi-anon (a wrapper around the
#          binary, EDI_ANON, is the test hook): a node where the binary cannot
#          start. Rank 0 waits in MPI_Init for it; only `srun -K` (end the step
#          when a task exits non-zero) ends the step.
#   crash  the wrapper kills rank 1's edi-anon with SIGKILL once the run printed
#          pass 2 and exits 9; rank 0 waits in the next collective.
#   kill9  rank 1's own edi-anon process is killed with SIGKILL at pass 2.
#
# Each job must end as FAILED within 90 s of the death. Seen with this SLURM
# (22.05, mpi/pmix_v4) and the job scripts of commit 004ed30 (srun without -K):
# `start` hangs (the step stays RUNNING), while `crash` and `kill9` end anyway:
# slurmstepd's PMIx plugin cancels the step when a connected rank vanishes.
#
#   tests/slurm/srun_kill.sh [--jobs DIR] [--cases "start crash kill9"] [WORKDIR]
#
# --jobs DIR: the job scripts to test (default: jobs/ of this tree), e.g. a
# folder holding `git show 004ed30:jobs/run.sbatch`. Needs root (SlurmUser=root).
# EDI_EXE overrides the binary.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/tests/cluster/lib.sh"   # log, die, EDI_EXE
source "$HERE/cluster.sh"
[ "$(id -u)" = 0 ] || { echo "needs root (SlurmUser=root)"; exit 1; }
JOBS=$ROOT/jobs CASES="start crash kill9" WORK=
while [ $# -gt 0 ]; do
  case $1 in
    --jobs) JOBS=$(cd "$2" && pwd); shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    *) WORK=$1; shift ;;
  esac
done
if [ -n "$WORK" ]; then mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d /tmp/edi-srun-kill-XXXXXX); KEEP=0; fi
WORK=$(cd "$WORK" && pwd)
T0=$SECONDS

cleanup() {
  local rc=$?
  cluster_teardown
  if [ "$rc" != 0 ]; then
    echo "--- job outputs ---"; tail -n 15 "$WORK"/*.out 2>/dev/null || true
  fi
  if [ "$rc" = 0 ] && [ "$KEEP" = 0 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi
  echo "total: $((SECONDS - T0)) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting munged, slurmctld, slurmd in $WORK/cluster (job scripts: $JOBS)"
CLUSTER_CPUS=2 cluster_start "$WORK/cluster" || die "cluster start failed"
cd "$WORK"
"$EDI_EXE" synth --identities 6 --per-identity 8 --size 32 --out D >/dev/null
"$EDI_EXE" train --data D --task identity --epochs 4 --out M.pt --threads 1 >/dev/null

# The test hook: EDI_ANON for the job. Rank 0 (SLURM_PROCID 0) runs edi-anon. Rank 1:
# RANK_DIES=start exits 9 at once; RANK_DIES=crash runs edi-anon in the background
# until the job output shows pass 2, then kills it with SIGKILL and exits 9.
cat >rank-dies.sh <<EOF
#!/bin/sh
[ "\${SLURM_PROCID:-0}" = 1 ] || exec "$EDI_EXE" "\$@"
if [ "\$RANK_DIES" = start ]; then
  echo "rank-dies.sh: rank 1 exits 9 before starting edi-anon" >&2
  exit 9
fi
"$EDI_EXE" "\$@" & pid=\$!
while kill -0 \$pid 2>/dev/null && ! grep -Eq '^ *pass +2 ' "\$KILL_OUT"; do sleep 0.2; done
kill -9 \$pid 2>/dev/null
echo "rank-dies.sh: killed rank 1 (pid \$pid) with SIGKILL; task exits 9" >&2
exit 9
EOF
chmod +x rank-dies.sh

# submit NAME EXE: a 2-rank run.sbatch job of 200 passes (pass-major: the hooks wait for pass lines); prints the job id.
submit() {
  sbatch --parsable --ntasks=2 --cpus-per-task=1 --time=10 --output="$WORK/$1.out" \
    --export="ALL,EDI_ANON=$2,KILL_OUT=$WORK/$1.out,RANK_DIES=$1" "$JOBS/run.sbatch" --data D --model M.pt --out "run-$1" --batch 8 \
    --shard-size 8 --stop fixed --passes 200 --schedule pass | cut -d';' -f1
}

fail=0
for c in $CASES; do
  case $c in
    start|crash) job=$(submit "$c" "$WORK/rank-dies.sh") ;;
    kill9)
      job=$(submit kill9 "$EDI_EXE")
      at_pass2() { grep -Eq '^ *pass +2 ' "$WORK/kill9.out" 2>/dev/null; }
      wait_until 180 "job $job to reach pass 2" at_pass2
      comm=$(basename "$EDI_EXE" | cut -c1-15)  # a process name is at most 15 characters
      victim=$(pgrep -f -- "--out run-kill9" | while read -r p; do
        if [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$comm" ]; then echo "$p"; fi; done | tail -1)
      [ -n "$victim" ] || die "no edi-anon rank of job $job found"
      kill -9 "$victim"
      log "kill9: SIGKILL to rank process $victim of job $job" ;;
    *) die "unknown case $c (start, crash, kill9)" ;;
  esac
  dead() { [ "$c" = kill9 ] || grep -q 'rank-dies.sh: ' "$WORK/$c.out" 2>/dev/null; }
  wait_until 180 "the rank of job $job to die" dead
  t=$SECONDS
  ended() { case $(job_field "$job" JobState) in FAILED|COMPLETED|CANCELLED|NODE_FAIL|TIMEOUT) return 0 ;; esac; return 1; }
  for ((i = 0; i < 180; i++)); do ended && break; sleep 0.5; done
  state=$(job_field "$job" JobState) ec=$(job_field "$job" ExitCode)
  log "$c: job $job is $state (exit $ec) $((SECONDS - t)) s after its rank died"
  if [ "$state" != FAILED ]; then
    echo "  FAIL ($c): the step did not end within 90 s of a rank dying (still $state): a hang until the time limit"
    scancel "$job" 2>/dev/null || true
    fail=1
  fi
done
[ "$fail" = 0 ] || die "a job step with a dead rank did not end"
log "PASS: a dead rank ends its job step ($CASES)"
