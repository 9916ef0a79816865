#!/usr/bin/env bash
# MPI behaviour of `edi-anon run` on a small synthetic data set (label mpi).
#
#   tests/dist/dist_cases.sh CASE [WORKDIR]
#
# CASE:
#   ranks    1, 2 and 3 ranks (3 with --oversubscribe) give byte-identical
#            outcomes.csv, trajectories.csv and PNGs.
#   sigterm  SIGTERM to every rank mid-run -> mpirun exits 75; SIGUSR1 to mpirun
#            (which forwards it to the ranks) -> 75; each rerun completes with
#            outputs identical to the uninterrupted reference.
#   corrupt  an interrupted run with one shard checkpoint truncated and another
#            with flipped bytes: the rerun says "is recomputed" on stderr and
#            still gives identical outputs. Then a finished run whose pass
#            history lost its last entry (a crash just before rank 0 wrote it):
#            the rerun recounts that pass and gives identical outputs.
#   interval with --checkpoint-every: SIGTERM to every rank and to one rank
#            commits the shards that are ahead of their checkpoints (resume at
#            the next pass, identical outputs); 3 ranks with a 0.05 s interval
#            give identical outputs.
#   refusal  rerunning a run directory with a different --k exits 2 and names --k
#            (under mpirun and as one process), leaving the directory untouched.
# WORKDIR (default: a fresh mktemp dir, removed on success) holds the data,
# model and run directories. EDI_EXE overrides the binary.
set -euo pipefail
CASE=${1:?usage: dist_cases.sh ranks|sigterm|interval|corrupt|refusal [WORKDIR]}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ -n "${2:-}" ]; then WORK=$2; mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d /tmp/edi-dist-XXXXXX); KEEP=0; fi
WORK=$(cd "$WORK" && pwd)
FIXTURE=$WORK/fixture
trap 'rc=$?; if [ $rc = 0 ] && [ $KEEP = 0 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi' EXIT

make_fixture "$FIXTURE"
reference_run

# wait_for_pass LOG PASS PID: until LOG shows pass PASS done (or PID exits).
wait_for_pass() {
  local logf=$1 pass=$2 pid=$3
  for _ in $(seq 1 600); do
    grep -Eq "^pass +$pass " "$logf" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# interrupt OUT HOW [RUN ARGS]: start a 2-rank run into OUT, signal it after pass 2, expect exit 75.
#   HOW = term-ranks (SIGTERM to every rank) | term-one-rank | usr1-mpirun (SIGUSR1 to mpirun)
interrupt() {
  local out=$1 how=$2 logf=$1.log rc=0
  shift 2
  rm -rf "$out"
  edi_mpirun 2 "$out" "$@" >"$logf" 2>&1 &
  local mp=$!
  wait_for_pass "$logf" 2 "$mp" || { wait "$mp" || true; cat "$logf"; die "run $out ended before pass 2"; }
  case $how in
    term-ranks) kill -TERM $(rank_pids "$mp") ;;
    # One rank alone: it stops claiming, the other takes the pass's remaining
    # shards, so the pass completes; it must be recorded and printed, and the
    # resume must start after it.
    term-one-rank) kill -TERM "$(rank_pids "$mp" | head -1)" ;;
    usr1-mpirun) kill -USR1 "$(pgrep -P "$mp" -x mpirun)" ;;  # $mp is the subshell running mpirun
  esac
  wait "$mp" || rc=$?
  log "$how: mpirun exit code $rc ($(grep -c '^pass ' "$logf") pass line(s))"
  grep -q "stopped by signal" "$logf" || { cat "$logf"; die "$how: no 'stopped by signal' message"; }
  # The message names the last complete pass, and that pass was printed.
  local stopped last
  stopped=$(sed -nE 's/.*stopped by signal [0-9]+ after pass ([0-9]+) .*/\1/p' "$logf")
  last=$(grep -E '^pass +[0-9]+ ' "$logf" | tail -1 | awk '{print $2}')
  [ -n "$stopped" ] && [ "$stopped" = "$last" ] || { cat "$logf"; die "$how: stop message names pass '${stopped}', last progress line is pass '${last}'"; }
  echo "$stopped" >"$out.stopped-at"
  [ "$rc" = 75 ] || { cat "$logf"; die "$how: expected exit code 75, got $rc"; }
  [ ! -f "$out/outcomes.csv" ] || die "$how: the interrupted run wrote outcomes.csv"
}

# finish OUT NP: rerun until it completes, compare with the reference.
finish() {
  local out=$1 np=$2 rc=0
  edi_mpirun "$np" "$out" >"$out.rerun.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$out.rerun.log"; die "rerun of $out with $np rank(s) exited $rc"; }
  grep -q "resumed at pass" "$out.rerun.log" || { cat "$out.rerun.log"; die "rerun of $out did not resume"; }
  local want got
  want=$(($(cat "$out.stopped-at") + 1))
  got=$(sed -nE 's/^resumed at pass ([0-9]+)$/\1/p' "$out.rerun.log")
  [ "$got" = "$want" ] || { cat "$out.rerun.log"; die "rerun of $out resumed at pass '$got', expected $want"; }
  same_outputs "$WORK/ref" "$out" || die "$out differs from the reference"
  h5_all_open "$out" || die "$out has unreadable HDF5 files"
}

case $CASE in
  ranks)
    for np in 1 3; do
      rm -rf "$WORK/np$np"
      t0=$SECONDS
      edi_mpirun "$np" "$WORK/np$np" >"$WORK/np$np.log" 2>&1 || { cat "$WORK/np$np.log"; die "run with $np rank(s) failed"; }
      log "$np rank(s): $((SECONDS - t0)) s"
      same_outputs "$WORK/ref" "$WORK/np$np" || die "$np rank(s) differ from 2 ranks"
    done
    # and one process without mpirun
    rm -rf "$WORK/plain"
    "$EDI_EXE" run --data "$FIXTURE/data" --model "$FIXTURE/model.pt" --out "$WORK/plain" "${RUN_ARGS[@]}" --k "$K" >"$WORK/plain.log" 2>&1 ||
      { cat "$WORK/plain.log"; die "run without mpirun failed"; }
    same_outputs "$WORK/ref" "$WORK/plain" || die "the run without mpirun differs from 2 ranks"
    ;;
  sigterm)
    interrupt "$WORK/term" term-ranks
    finish "$WORK/term" 2
    interrupt "$WORK/usr1" usr1-mpirun
    finish "$WORK/usr1" 3
    interrupt "$WORK/one" term-one-rank
    finish "$WORK/one" 2
    ;;
  interval)
    # --checkpoint-every 60: no shard commits before the signal but final ones;
    # the signal commits every shard that is ahead of its checkpoint, so the
    # rerun (with the default, every pass: an operational option) resumes at
    # the pass after the one the stop message names.
    interrupt "$WORK/iv-term" term-ranks --checkpoint-every 60
    finish "$WORK/iv-term" 2
    interrupt "$WORK/iv-one" term-one-rank --checkpoint-every 60
    finish "$WORK/iv-one" 3
    # A short interval: shards are ahead of their checkpoints while the ranks
    # trade the others; the outputs still equal the reference.
    rm -rf "$WORK/iv-short"
    edi_mpirun 3 "$WORK/iv-short" --checkpoint-every 0.05 >"$WORK/iv-short.log" 2>&1 || { cat "$WORK/iv-short.log"; die "run with --checkpoint-every 0.05 failed"; }
    same_outputs "$WORK/ref" "$WORK/iv-short" || die "--checkpoint-every 0.05 changed the outputs"
    ;;
  corrupt)
    interrupt "$WORK/bad" term-ranks
    mapfile -t cks < <(find "$WORK/bad/checkpoints" -name 'shard-*.h5' | sort)
    [ "${#cks[@]}" -ge 2 ] || die "expected >= 2 shard checkpoints, found ${#cks[@]}"
    victim1=${cks[0]} victim2=${cks[${#cks[@]}-1]}
    size=$(stat -c %s "$victim1")
    truncate -s $((size / 2)) "$victim1"
    # flip 64 bytes inside the stored image state of the other one: the file
    # stays readable HDF5 metadata; only the per-image Fletcher-32 chunk
    # checksum (or, unchunked, the checkpoint checksum) can tell
    /usr/bin/python3 - "$victim2" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    ds = f["state"].id
    off = ds.get_offset()
    if off is None:  # chunked (one chunk per image): the first image's chunk
        off = ds.get_chunk_info(0).byte_offset
assert off is not None, "cannot locate the stored state"
with open(path, "r+b") as f:
    f.seek(off + 1000)
    b = f.read(64)
    f.seek(off + 1000)
    f.write(bytes(x ^ 0xFF for x in b))
PY
    log "truncated $(basename "$victim1") to $((size / 2)) bytes, flipped 64 bytes of the state in $(basename "$victim2")"
    rc=0
    edi_mpirun 2 "$WORK/bad" >"$WORK/bad.rerun.log" 2>"$WORK/bad.rerun.err" || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/bad.rerun.log" "$WORK/bad.rerun.err"; die "rerun after corruption exited $rc"; }
    for v in "$victim1" "$victim2"; do
      n=$(basename "$v" .h5); n=$((10#${n#shard-}))
      grep -q "shard $n is recomputed" "$WORK/bad.rerun.err" ||
        { cat "$WORK/bad.rerun.err"; die "stderr does not report shard $n as recomputed"; }
    done
    grep "is recomputed" "$WORK/bad.rerun.err" | sort -u | sed 's/^/  stderr: /'
    same_outputs "$WORK/ref" "$WORK/bad" || die "outputs after recomputing corrupt shards differ"
    h5_all_open "$WORK/bad" || die "unreadable HDF5 after the rerun"
    # A crash between the last shard commit of a pass and rank 0's write of the
    # pass history: every shard committed through pass P, the history ending at
    # P-1 and no final output. The rerun recounts pass P from the shards.
    rm -rf "$WORK/gap"
    cp -a "$WORK/ref" "$WORK/gap"
    rm -rf "$WORK/gap/images" "$WORK/gap/outcomes.csv" "$WORK/gap/trajectories.csv" "$WORK/gap/summary.json" "$WORK/gap/results.h5"
    dropped=$(/usr/bin/python3 - "$WORK/gap/checkpoints/run.json" <<'PY'
import json, sys
path = sys.argv[1]
state = json.load(open(path))
print(state["passes"].pop()["pass"])
json.dump(state, open(path, "w"), indent=2)
PY
)
    edi_mpirun 2 "$WORK/gap" >"$WORK/gap.rerun.log" 2>&1 || { cat "$WORK/gap.rerun.log"; die "rerun after a lost history entry failed"; }
    grep -q "^resumed at pass $dropped\$" "$WORK/gap.rerun.log" || { cat "$WORK/gap.rerun.log"; die "the rerun did not resume at the unrecorded pass $dropped"; }
    log "history without pass $dropped: the rerun recounted it"
    same_outputs "$WORK/ref" "$WORK/gap" || die "outputs after a lost history entry differ"
    ;;
  refusal)
    rm -rf "$WORK/refuse"
    cp -a "$WORK/ref" "$WORK/refuse"
    before=$(cd "$WORK/refuse" && find . -type f -exec sha256sum {} + | sort)
    for launcher in mpirun single; do
      rc=0
      if [ $launcher = mpirun ]; then
        K=11 edi_mpirun 2 "$WORK/refuse" >"$WORK/refuse.$launcher.log" 2>&1 || rc=$?
      else
        "$EDI_EXE" run --data "$FIXTURE/data" --model "$FIXTURE/model.pt" --out "$WORK/refuse" "${RUN_ARGS[@]}" --k 11 \
          >"$WORK/refuse.$launcher.log" 2>&1 || rc=$?
      fi
      [ "$rc" = 2 ] || { cat "$WORK/refuse.$launcher.log"; die "$launcher: expected exit code 2, got $rc"; }
      grep -q -- "--k was 9, now 11" "$WORK/refuse.$launcher.log" ||
        { cat "$WORK/refuse.$launcher.log"; die "$launcher: the refusal does not name --k"; }
      log "$launcher: exit 2: $(grep -o 'refusing.*' "$WORK/refuse.$launcher.log" | head -1)"
    done
    after=$(cd "$WORK/refuse" && find . -type f -exec sha256sum {} + | sort)
    [ "$before" = "$after" ] || die "the refused resume changed the run directory"
    ;;
  *) die "unknown case $CASE" ;;
esac
log "$CASE: PASS"
