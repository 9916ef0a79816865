#!/usr/bin/env bash
# The requeue logic of jobs/sweep-array.sbatch and jobs/run.sbatch, run as bash
# scripts (no cluster) against stand-ins for srun and scontrol on PATH that log
# their arguments: the step is `srun -K`; exit 75 requeues; two requeues in a
# row that gained no pass stop the requeueing (exit 75, message); a failed
# `scontrol requeue` gives a clear message and exit 75; a signal during the
# evaluation step is forwarded and requeues; success removes the history.
# (tests/slurm/sweep_requeue.sh runs the same scripts on a real SLURM.)
#   usage: sbatch_requeue.sh SOURCE_DIR
set -euo pipefail
SRC=$(realpath "$1")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
mkdir bin
# srun stand-in: log the arguments; behave as $FAKE_STEP says (exit code / stop line).
cat >bin/srun <<'EOS'
#!/usr/bin/env bash
echo "srun $*" >>"$LOG"
case $FAKE_STEP in
  done) echo "  done: final risk 0.00%"; exit 0 ;;
  stop*) echo "'x': stopped by signal 10 after pass ${FAKE_STEP#stop} (every shard committed through it, some perhaps further); a rerun of the same command resumes at pass $((${FAKE_STEP#stop} + 1)) (exit 75)"; exit 75 ;;
esac
EOS
cat >bin/scontrol <<'EOS'
#!/usr/bin/env bash
echo "scontrol $*" >>"$LOG"
case $1 in
  show) echo "JobId=$3 JobName=t JobState=RUNNING Reason=None" ;;
  requeue) [ "${FAKE_REQUEUE:-ok}" = ok ] || { echo "scontrol: error: Requeue of job $2 failed: Job is pending execution" >&2; exit 1; } ;;
esac
EOS
# The evaluation step (`edi-anon sweep ... --evaluate-only`): waits for SIGUSR1 when asked to.
cat >bin/edi-anon <<'EOS'
#!/usr/bin/env bash
echo "edi-anon $*" >>"$LOG"
if [ "${FAKE_EVAL:-ok}" = wait ]; then
  trap 'echo "edi-anon sweep: signal 10 during the evaluation of x: the run is finished and committed, metrics.json is not written; a rerun evaluates it (exit 75)"; exit 75' USR1
  for _ in $(seq 1 100); do sleep 0.1; done
  exit 9
fi
exit 0
EOS
chmod +x bin/*
export PATH=$W/bin:$PATH LOG=$W/log EDI_ANON=edi-anon SLURM_JOB_ID=77 SLURM_ARRAY_JOB_ID=70 SLURM_ARRAY_TASK_ID=3 SLURM_CPUS_PER_TASK=1
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
array() { bash "$SRC/jobs/sweep-array.sbatch" sweep.ini out >out.txt 2>&1; }

: >log; FAKE_STEP=stop4 array && rc=0 || rc=$?
check "exit 75 is requeued, exit 0" '[ $rc = 0 ] && grep -q "^scontrol requeue 77$" log'
check "the step is srun -K, run without evaluation" 'grep -q "^srun -K --mpi=pmix .* sweep --config sweep.ini --out out --index 3 --threads 1 --no-evaluate$" log'
check "the history holds the pass" '[ "$(cat out/slurm/.requeues-77)" = "resumes at pass 5" ]'
FAKE_STEP=stop4 array && rc=0 || rc=$?
check "one requeue without progress is requeued again" '[ $rc = 0 ]'
: >log; FAKE_STEP=stop4 array && rc=0 || rc=$?
check "two requeues without a pass gained: not requeued, exit 75" \
  '[ $rc = 75 ] && ! grep -q "scontrol requeue" log && grep -q "NOT requeued: the last two requeues gained no pass" out.txt'
: >log; FAKE_STEP=stop5 array && rc=0 || rc=$?
check "a pass gained: requeued again" '[ $rc = 0 ] && grep -q "scontrol requeue 77" log'
: >log; FAKE_STEP=stop6 FAKE_REQUEUE=fail array && rc=0 || rc=$?
check "a failed scontrol requeue: exit 75 and one clear line" \
  '[ $rc = 75 ] && grep -q "but .scontrol requeue 77. failed: scontrol: error: Requeue of job 77 failed: Job is pending execution; the job is not requeued: resubmit it to resume" out.txt'
: >log; FAKE_STEP=done array && rc=0 || rc=$?
check "a finished run is evaluated in a second, single-process step" \
  '[ $rc = 0 ] && grep -q "^edi-anon sweep --config sweep.ini --out out --index 3 --threads 1 --evaluate-only$" log'
check "success removes the requeue history" '[ ! -e out/slurm/.requeues-77 ]'

# SIGUSR1 during the evaluation: forwarded to it, exit 75, requeued.
: >log
FAKE_STEP=done FAKE_EVAL=wait bash "$SRC/jobs/sweep-array.sbatch" sweep.ini out >out.txt 2>&1 &
pid=$!
for _ in $(seq 1 50); do grep -q -- "--evaluate-only" log 2>/dev/null && break; sleep 0.1; done
sleep 0.3
kill -USR1 $pid
wait $pid && rc=0 || rc=$?
check "SIGUSR1 during the evaluation: forwarded, requeued" \
  '[ $rc = 0 ] && grep -q "during the evaluation" out.txt && grep -q "scontrol requeue 77" log && [ "$(cat out/slurm/.requeues-77)" = "evaluates it" ]'
rm -f out/slurm/.requeues-77

# run.sbatch: the same contract; the history sits next to --out.
: >log; FAKE_STEP=stop2 bash "$SRC/jobs/run.sbatch" --data D --model M --out runs/r >out.txt 2>&1 && rc=0 || rc=$?
check "run.sbatch: srun -K, requeued" '[ $rc = 0 ] && grep -q "^srun -K --mpi=pmix .* run --data D --model M --out runs/r --threads 1$" log && [ -f runs/r.requeues-77 ]'
[ "$fail" = 0 ] && echo "1 passed, 0 failed" || { cat out.txt; exit 1; }
