#!/usr/bin/env bash
# MPI behaviour of `edi-anon run` on a small synthetic data set (label mpi).
#
#   tests/cluster/cluster_cases.sh CASE [WORKDIR]
#
# CASE:
#   ranks    1, 2 and 3 ranks (3 with --oversubscribe) give byte-identical
#            outcomes.csv, trajectories.csv and PNGs (and results.h5,
#            summary.json, run.json but for timing fields, as every case).
#            The runs use the default schedule (auto: shard-major under the
#            fixed and image rules); the cases that wait for "pass N" lines
#            pin --schedule pass (SCHEDULE=pass).
#   schedules  --schedule pass at 1 and 2 ranks and shard as one process give
#            outputs identical to the shard-major reference; --schedule shard
#            with --stop dataset exits 2 with one line (run it with RULE=image).
#   shard_signal  shard-major runs stopped by SIGTERM (every rank, one rank)
#            and kill -9 (one rank) once a shard is done, resumed shard-major,
#            pass-major and auto with 1-3 ranks; a pass-major run stopped
#            after pass 2 resumed shard-major: all identical to the reference.
#   sigterm  SIGTERM to every rank mid-run -> mpirun exits 75; SIGUSR1 to mpirun
#            (which forwards it to the ranks) -> 75; each rerun completes with
#            outputs identical to the uninterrupted reference.
#   corrupt  an interrupted run with one shard's checkpoint slots truncated and another's
#            with flipped bytes: the rerun says "is recomputed" on stderr and
#            still gives identical outputs. Then a finished run whose pass
#            history lost its last entry (a crash just before rank 0 wrote it):
#            the rerun recounts that pass and gives identical outputs. A
#            checkpoint claiming a huge image shape is recomputed; a run.json
#            truncated to 0 bytes is recovered from the checkpoints. A torn
#            newest slot falls back to the shard's other slot (identical outputs).
#   final_signal  SIGTERM during the final writes (before them, and between
#            trajectories.csv and results.h5): exit 75, no completion marker,
#            no temp file; the rerun writes identical final outputs.
#   interval with --checkpoint-every: SIGTERM to every rank and to one rank
#            commits the shards that are ahead of their checkpoints (resume at
#            the next pass, identical outputs); 3 ranks with a 0.05 s interval
#            give identical outputs. The default policy (auto, with
#            --checkpoint-max-loss 0.05) is recorded in run.json and survives a
#            kill -9 of one rank with identical outputs.
#            With RULE=image or RULE=dataset in the environment: the same
#            with that stop rule and --checkpoint-every 0.3 (dataset: the
#            reference's snapshot is checked, and each resumed run's
#            snapshots must equal it byte for byte).
#   rank_error  an I/O error injected on rank 1 mid-run (EDI_FAULT_IO): the
#            error is printed and every rank ends within 30 s, exit code 4.
#   refusal  rerunning a run directory with a different --k exits 2 and names --k;
#            --q 90.0 resumes a run started with the default 90 (typed values hashed)
#            (under mpirun and as one process), leaving the directory untouched;
#            also with provenance.json deleted (the checkpoints' config hash),
#            with an edited model sidecar, and with the data moved elsewhere.
#   lock     a second run on the same --out is refused naming the holder's host
#            and PID; --out inside --data or a non-empty non-run directory: exit 2.
#   diskfull --out on a 2 MB tmpfs filling up mid-run: exit 4 naming "No space",
#            committed checkpoints intact, identical outputs after freeing space
#            (exit 77, skipped, where a tmpfs cannot be mounted).
# WORKDIR (default: a fresh mktemp dir, removed on success) holds the data,
# model and run directories. EDI_EXE overrides the binary.
set -euo pipefail
CASE=${1:?usage: cluster_cases.sh ranks|schedules|sigterm|shard_signal|interval|corrupt|final_signal|refusal|rank_error|lock|diskfull [WORKDIR]}
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ -n "${2:-}" ]; then WORK=$2; mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d /tmp/edi-cluster-XXXXXX); KEEP=0; fi
WORK=$(cd "$WORK" && pwd)
FIXTURE=$WORK/fixture
trap 'rc=$?; mountpoint -q "$WORK/small" 2>/dev/null && umount "$WORK/small"; if [ $rc = 0 ] && [ $KEEP = 0 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi' EXIT

make_fixture "$FIXTURE"
[ "$CASE" = rank_error ] || reference_run

# wait_for_line LOG REGEX PID: until a line of LOG matches REGEX (or PID exits).
wait_for_line() {
  local logf=$1 regex=$2 pid=$3
  for _ in $(seq 1 3000); do
    grep -Eq "$regex" "$logf" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}

# wait_for_pass LOG PASS PID: until LOG shows pass PASS done (or PID exits).
wait_for_pass() { wait_for_line "$1" "^pass +$2 " "$3"; }

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
  [ ! -f "$out/complete.json" ] || die "$how: the interrupted run has a completion marker"
}

# check_snapshots RUN: the dataset rule's snapshot at its target (46 %): written
# at the first pass at or below it, after a pass above it, with the run's
# outcome columns; at the lowest target it is the final state (the halt caps
# the remaining images without perturbing them).
check_snapshots() {
  local run=$1
  /usr/bin/python3 - "$run" "$DATASET_TARGET" <<'PY' || die "the snapshot of $run is wrong"
import json, os, sys
run, target = sys.argv[1], int(sys.argv[2])
snap = json.load(open(os.path.join(run, "snapshots/%d/snapshot.json" % target)))
passes = json.load(open(os.path.join(run, "summary.json")))["passes"]
assert snap["format"] == "edi-anon-snapshot" and snap["version"] == 1 and snap["target_percent"] == target, snap
p = snap["pass"]
assert snap["risk_percent"] <= target and passes[p]["risk_percent"] == snap["risk_percent"], (snap, passes[p])
assert p > 0 and passes[p - 1]["risk_percent"] > target, passes[p - 1]
assert snap["total"] == 48 and snap["identified"] == round(snap["risk_percent"] * 48 / 100), snap
head = open(os.path.join(run, "outcomes.csv")).readline()
lines = open(os.path.join(run, "snapshots/%d/outcomes.csv" % target)).read().splitlines()
assert lines[0] + "\n" == head and len(lines) == 49, (lines[0], len(lines))
print("  snapshot %d: pass %d, risk %.2f %% (pass %d: %.2f %%)" % (target, p, snap["risk_percent"], p - 1, passes[p - 1]["risk_percent"]))
PY
  diff -r "$run/images" "$run/snapshots/$DATASET_TARGET/images" >/dev/null || die "the snapshot at the lowest target is not the final state"
}

# check_target_list: a list of targets (70,55,46) under the dataset rule, one
# process: a snapshot per target, each at the first pass at or below it, and the
# run itself identical to the one-target reference (higher targets change nothing).
check_target_list() {
  local run=$WORK/targets rc=0
  rm -rf "$run"
  "$EDI_EXE" run --data "$FIXTURE/data" --model "$FIXTURE/model.pt" --out "$run" "${RUN_ARGS[@]}" --k "$K" \
    --stop dataset --target-risk 70,55,$DATASET_TARGET --max-passes 24 --operator noise --sigma 0.03 --q 80 \
    >"$run.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$run.log"; die "target list run exited $rc"; }
  /usr/bin/python3 - "$run" 70 55 "$DATASET_TARGET" <<'PY' || die "the target list's snapshots of $run are wrong"
import json, os, sys
run, targets = sys.argv[1], [int(t) for t in sys.argv[2:]]
passes = json.load(open(os.path.join(run, "summary.json")))["passes"]
seen = []
for t in targets:
    snap = json.load(open(os.path.join(run, "snapshots/%d/snapshot.json" % t)))
    p = snap["pass"]
    assert snap["target_percent"] == t and snap["risk_percent"] <= t, snap
    assert passes[p]["risk_percent"] == snap["risk_percent"], (snap, passes[p])
    assert p == 0 or passes[p - 1]["risk_percent"] > t, (t, passes[p - 1])
    seen.append(p)
assert seen == sorted(seen) and len(set(seen)) > 1, seen  # later targets later, not all at one pass
print("  targets %s: snapshots at passes %s" % (targets, seen))
PY
  # (same_outputs also compares the snapshot folders, of which this run has more)
  local f
  for f in outcomes.csv trajectories.csv; do
    cmp -s "$(ref_dir)/$f" "$run/$f" || die "the target list changed $f"
  done
  diff -r "$(ref_dir)/images" "$run/images" >/dev/null || die "the target list changed the images"
  diff -r "$(ref_dir)/snapshots/$DATASET_TARGET" "$run/snapshots/$DATASET_TARGET" >/dev/null ||
    die "the lowest target's snapshot differs from the one-target run's"
  log "target list 70,55,$DATASET_TARGET: one snapshot per target, run identical to the one-target reference"
}

# check_psnr_snapshots: --snapshot-psnr under the dataset rule, 2 ranks: with two
# targets taken between the reference's per-pass mean PSNRs (over the images
# that changed, from trajectories.csv), a snapshot snapshots/psnr<T>/ at the
# first pass at or below each, the run itself identical to the reference, and
# --snapshot-psnr with the per-image rule refused before any work.
check_psnr_snapshots() {
  local run=$WORK/psnr rc=0 targets
  rm -rf "$run"
  targets=$(/usr/bin/python3 - "$(ref_dir)" <<'PY'
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/trajectories.csv")))
last = max(int(r["pass"]) for r in rows)
means = []
for p in range(last + 1):
    latest = {}
    for r in rows:
        if int(r["pass"]) <= p: latest[r["id"]] = float(r["psnr"])
    finite = [v for v in latest.values() if math.isfinite(v)]
    means.append(sum(finite) / len(finite) if finite else math.inf)
assert last >= 3 and means[1] > means[2] > means[last], means
# Between pass 1 and 2, and between pass 2 and the last: rounded to 0.01 dB, strictly inside.
a, b = round((means[1] + means[2]) / 2, 2), round((means[2] + means[last]) / 2, 2)
print("%g,%g" % (a, b))
PY
) || die "no PSNR targets from $(ref_dir)/trajectories.csv"
  edi_mpirun 2 "$run" --snapshot-psnr "$targets" >"$run.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$run.log"; die "--snapshot-psnr run exited $rc"; }
  /usr/bin/python3 - "$run" "$targets" <<'PY' || die "the PSNR snapshots of $run are wrong"
import csv, json, math, os, sys
run, targets = sys.argv[1], [float(t) for t in sys.argv[2].split(",")]
rows = list(csv.DictReader(open(run + "/trajectories.csv")))
def mean_at(p):
    latest = {}
    for r in rows:
        if int(r["pass"]) <= p: latest[r["id"]] = float(r["psnr"])
    finite = [v for v in latest.values() if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.inf
seen = []
for t in targets:
    d = os.path.join(run, "snapshots", "psnr%g" % t)
    snap = json.load(open(d + "/snapshot.json"))
    p = snap["pass"]
    assert snap["format"] == "edi-anon-snapshot" and snap["target_psnr_db"] == t and "target_percent" not in snap, snap
    assert snap["psnr_db"] <= t and abs(snap["psnr_db"] - mean_at(p)) < 1e-3, (snap, mean_at(p))
    assert mean_at(p - 1) > t, (t, p, mean_at(p - 1))
    assert len(os.listdir(d + "/images")) > 0 and open(d + "/outcomes.csv").readline().startswith("id,"), d
    seen.append(p)
assert seen[0] < seen[1], seen
print("  PSNR targets %s: snapshots at passes %s" % (targets, seen))
PY
  local f
  for f in outcomes.csv trajectories.csv; do
    cmp -s "$(ref_dir)/$f" "$run/$f" || die "--snapshot-psnr changed $f"
  done
  diff -r "$(ref_dir)/images" "$run/images" >/dev/null || die "--snapshot-psnr changed the images"
  diff -r "$(ref_dir)/snapshots/$DATASET_TARGET" "$run/snapshots/$DATASET_TARGET" >/dev/null ||
    die "--snapshot-psnr changed the risk target's snapshot"
  rc=0
  RULE=image edi_plain "$WORK/psnr-image" --snapshot-psnr 20 >"$WORK/psnr-image.log" 2>&1 || rc=$?
  [ "$rc" = 2 ] && grep -q -- "--snapshot-psnr" "$WORK/psnr-image.log" && [ ! -e "$WORK/psnr-image/images" ] ||
    { cat "$WORK/psnr-image.log"; die "--snapshot-psnr with --stop image: exit $rc, expected 2 naming the option"; }
  log "PSNR targets $targets: one snapshot each at the first pass at or below it, run identical to the reference"
}

# check_complete OUT: the completion marker is there, written as interfaces §1 says.
check_complete() {
  /usr/bin/python3 - "$1/complete.json" <<'PY' || die "$1/complete.json missing or malformed"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "edi-anon-complete" and j["version"] == 1, j
assert isinstance(j["passes_run"], int) and j["images"] == 48 and j["finished"].endswith("Z"), j
PY
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
  same_outputs "$(ref_dir)" "$out" || die "$out differs from the reference"
  h5_all_open "$out" || die "$out has unreadable HDF5 files"
  check_complete "$out"
}

# wait_for_shards LOG N PID: until LOG shows N shards done (a shard-major
# progress line; the run needs --progress-every 0), or PID exits.
wait_for_shards() { wait_for_line "$1" "^  shards ([$2-9]|[1-9][0-9])/" "$3"; }

# interrupt_shard OUT HOW [RUN ARGS]: a 2-rank shard-major run into OUT (every
# pass committed), signalled once a shard is done. HOW = term-ranks |
# term-one-rank (exit 75) | kill9-one-rank (the job dies).
interrupt_shard() {
  local out=$1 how=$2 logf=$1.log rc=0
  shift 2
  rm -rf "$out"
  SCHEDULE=shard edi_mpirun 2 "$out" --checkpoint-every 0 --progress-every 0 "$@" >"$logf" 2>&1 &
  local mp=$!
  wait_for_shards "$logf" 1 "$mp" || { wait "$mp" || true; cat "$logf"; die "run $out ended before a shard was done"; }
  case $how in
    term-ranks) kill -TERM $(rank_pids "$mp") ;;
    term-one-rank) kill -TERM "$(rank_pids "$mp" | head -1)" ;;
    kill9-one-rank) kill -9 "$(rank_pids "$mp" | head -1)" ;;
  esac
  wait "$mp" || rc=$?
  local n_ck
  n_ck=$(find "$out/checkpoints" -name 'shard-*.h5' | wc -l)
  log "shard-major $how: mpirun exit code $rc, $n_ck checkpoint slot(s)"
  [ ! -f "$out/complete.json" ] || die "$how: the interrupted run has a completion marker"
  [ "$how" = kill9-one-rank ] && return 0
  [ "$rc" = 75 ] || { cat "$logf"; die "$how: expected exit code 75, got $rc"; }
  grep -q "stopped by signal 15 (shard-major: [0-9]* of 6 shard(s) final" "$logf" || { cat "$logf"; die "$how: no shard-major stop message"; }
  grep -o "stopped by signal.*" "$logf" | cut -c1-150 | sed 's/^/  /'
}

# resume_as OUT NP SCHEDULE: rerun OUT with NP ranks and that schedule; the
# outputs must equal the reference.
resume_as() {
  local out=$1 np=$2 rc=0
  SCHEDULE=$3 edi_mpirun "$np" "$out" >"$out.rerun-$3.log" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { cat "$out.rerun-$3.log"; die "rerun of $out with $np rank(s), --schedule $3 exited $rc"; }
  grep -q "resumed at pass" "$out.rerun-$3.log" || { cat "$out.rerun-$3.log"; die "rerun of $out did not resume"; }
  same_outputs "$(ref_dir)" "$out" || die "$out (resumed with $np rank(s), --schedule $3) differs from the reference"
  h5_all_open "$out" || die "$out has unreadable HDF5 files"
  check_complete "$out"
  log "resumed with $np rank(s), --schedule $3: identical"
}

case $CASE in
  schedules)
    # The same run under both schedules (the reference: auto, i.e. shard-major,
    # 2 ranks): pass-major at 1 and 2 ranks and shard-major as one process give
    # byte-identical outputs and the same pass history; --schedule shard with
    # the dataset rule is refused before any work.
    [ "$RULE" != dataset ] || die "the schedules case needs RULE=fixed or image"
    for v in pass:1 pass:2 shard:1; do
      sched=${v%:*} np=${v#*:} out=$WORK/sched-${v/:/-}
      rm -rf "$out"
      t0=$SECONDS
      SCHEDULE=$sched edi_mpirun "$np" "$out" >"$out.log" 2>&1 || { cat "$out.log"; die "--schedule $sched, $np rank(s) failed"; }
      log "--schedule $sched, $np rank(s): $((SECONDS - t0)) s"
      same_outputs "$(ref_dir)" "$out" || die "--schedule $sched with $np rank(s) differs from the shard-major reference"
    done
    grep -q "^  shards 6/6 done  images 48/48 done  active 0" "$WORK/sched-shard-1.log" || { cat "$WORK/sched-shard-1.log"; die "no final shard-major progress line"; }
    ! grep -Eq "^pass +[0-9]+ " "$WORK/sched-shard-1.log" || die "shard-major printed per-pass lines"
    grep -Eq "^pass +[0-9]+ " "$WORK/sched-pass-1.log" || die "pass-major printed no per-pass lines"
    rc=0
    RULE=dataset SCHEDULE=shard edi_plain "$WORK/sched-dataset" >"$WORK/sched-dataset.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q -- "--schedule shard: not available with --stop dataset" "$WORK/sched-dataset.log" &&
      [ "$(grep -c . "$WORK/sched-dataset.log")" = 1 ] && [ ! -e "$WORK/sched-dataset" ] ||
      { cat "$WORK/sched-dataset.log"; die "--schedule shard --stop dataset: exit $rc, expected 2 with one line and no run directory"; }
    log "--schedule shard --stop dataset: exit 2: $(cat "$WORK/sched-dataset.log" | cut -c1-110)"
    ;;
  shard_signal)
    # Shard-major interruptions (every pass committed): SIGTERM to every rank,
    # resumed shard-major and pass-major; SIGTERM to one rank (the other runs
    # the remaining shards); kill -9 of one rank; and a pass-major run stopped
    # after pass 2 resumed shard-major with 3 ranks. Each rerun gives outputs
    # identical to the uninterrupted reference.
    interrupt_shard "$WORK/sh-term" term-ranks
    cp -a "$WORK/sh-term" "$WORK/sh-term-pass"
    resume_as "$WORK/sh-term" 2 shard
    resume_as "$WORK/sh-term-pass" 1 pass
    interrupt_shard "$WORK/sh-one" term-one-rank
    resume_as "$WORK/sh-one" 2 auto
    interrupt_shard "$WORK/sh-kill" kill9-one-rank
    resume_as "$WORK/sh-kill" 2 shard
    SCHEDULE=pass interrupt "$WORK/pm-term" term-ranks
    resume_as "$WORK/pm-term" 3 shard
    ;;
  ranks)
    for np in 1 3; do
      rm -rf "$WORK/np$np"
      t0=$SECONDS
      edi_mpirun "$np" "$WORK/np$np" >"$WORK/np$np.log" 2>&1 || { cat "$WORK/np$np.log"; die "run with $np rank(s) failed"; }
      log "$np rank(s): $((SECONDS - t0)) s"
      same_outputs "$(ref_dir)" "$WORK/np$np" || die "$np rank(s) differ from 2 ranks"
    done
    # and one process without mpirun
    rm -rf "$WORK/plain"
    edi_plain "$WORK/plain" >"$WORK/plain.log" 2>&1 ||
      { cat "$WORK/plain.log"; die "run without mpirun failed"; }
    same_outputs "$(ref_dir)" "$WORK/plain" || die "the run without mpirun differs from 2 ranks"
    ;;
  sigterm)
    SCHEDULE=pass  # waits for pass lines and tests the pass-major stop and resume points
    if [ "$RULE" = fixed ]; then
      interrupt "$WORK/term" term-ranks
      finish "$WORK/term" 2
      interrupt "$WORK/usr1" usr1-mpirun
      finish "$WORK/usr1" 3
      interrupt "$WORK/one" term-one-rank
      finish "$WORK/one" 2
    else
      if [ "$RULE" = dataset ]; then
        check_snapshots "$(ref_dir)"
        check_target_list
        check_psnr_snapshots
      fi
      # The per-image and dataset rules with shards ahead of their checkpoints:
      # under the dataset rule a signal between the two phases of a pass
      # commits the evaluated shards as such (the resume neither repeats nor
      # loses the evaluation).
      interrupt "$WORK/term" term-ranks --checkpoint-every 0.3
      finish "$WORK/term" 2
      interrupt "$WORK/usr1" usr1-mpirun --checkpoint-every 0.3
      finish "$WORK/usr1" 1
      interrupt "$WORK/one" term-one-rank --checkpoint-every 0.3
      finish "$WORK/one" 2
    fi
    ;;
  psnr)  # the --snapshot-psnr check alone (RULE=dataset; also part of sigterm under RULE=dataset)
    [ "$RULE" = dataset ] || die "the psnr case needs RULE=dataset"
    check_psnr_snapshots
    ;;
  rank_error)
    # An I/O error on rank 1 in the middle of the run (its first checkpoint
    # commit as of pass >= 2 fails like a full disk): the job must print the
    # error (rank, file, what) and end on every rank within 30 s of it, with
    # the I/O error's exit code 4, instead of hanging in a collective.
    rm -rf "$WORK/err"
    EDI_FAULT_IO=1:2 edi_mpirun 2 "$WORK/err" >"$WORK/err.log" 2>&1 &
    mp=$!
    for _ in $(seq 1 3000); do
      grep -q "error on rank 1" "$WORK/err.log" 2>/dev/null && break
      kill -0 "$mp" 2>/dev/null || break
      sleep 0.1
    done
    grep -q "error on rank 1" "$WORK/err.log" || { wait "$mp" || true; cat "$WORK/err.log"; die "rank 1 reported no error"; }
    t_err=$SECONDS
    for _ in $(seq 1 300); do kill -0 "$mp" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$mp" 2>/dev/null; then
      for p in $(rank_pids "$mp"); do kill -9 "$p" 2>/dev/null || true; done
      wait "$mp" || true
      cat "$WORK/err.log"
      die "the job still ran 30 s after the error on rank 1 (a hang)"
    fi
    rc=0
    wait "$mp" || rc=$?
    log "rank_error: job ended $((SECONDS - t_err)) s after the error, mpirun exit code $rc"
    grep "error on rank 1" "$WORK/err.log" | head -1 | sed 's/^/  /'
    grep -Eq "error on rank 1: .*checkpoints/shard-[0-9]+(\.b)?\.h5.*: write failed: No space left on device" "$WORK/err.log" ||
      { cat "$WORK/err.log"; die "the message does not name the file and the error"; }
    [ "$rc" = 4 ] || { cat "$WORK/err.log"; die "expected exit code 4 (I/O error), got $rc"; }
    ;;
  interval)
    SCHEDULE=pass  # waits for pass lines and tests the pass-major stop and resume points
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
    same_outputs "$(ref_dir)" "$WORK/iv-short" || die "--checkpoint-every 0.05 changed the outputs"
    # The default policy (auto) under kill -9: --checkpoint-max-loss 0.05 caps
    # the interval at 0.05 s of a shard's work, so shards commit every few
    # passes and are ahead of their checkpoints in between. run.json records
    # the policy; one rank is killed after pass 2; the rerun (default policy)
    # gives identical outputs.
    rm -rf "$WORK/auto"
    edi_mpirun 2 "$WORK/auto" --checkpoint-max-loss 0.05 >"$WORK/auto.log" 2>&1 &
    mp=$!
    wait_for_pass "$WORK/auto.log" 2 "$mp" || { wait "$mp" || true; cat "$WORK/auto.log"; die "auto run ended before pass 2"; }
    /usr/bin/python3 - "$WORK/auto/checkpoints/run.json" <<'PY' || die "run.json does not record the auto checkpoint policy"
import json, sys
p = json.load(open(sys.argv[1]))["checkpoint_policy"]
assert p["mode"] == "auto" and p["max_loss_seconds"] == 0.05 and p["max_commit_share"] == 0.02, p
assert 0 < p["interval_work_seconds"] <= 0.05 and p["commit_seconds_ewma"] > 0, p
print("  run.json: auto policy, commit %.1f ms, interval %.3f s of shard work" % (1000 * p["commit_seconds_ewma"], p["interval_work_seconds"]))
PY
    kill -9 "$(rank_pids "$mp" | head -1)"
    wait "$mp" || true
    rc=0
    edi_mpirun 2 "$WORK/auto" >"$WORK/auto.rerun.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/auto.rerun.log"; die "rerun after kill -9 under the auto policy exited $rc"; }
    grep -q '"mode": "auto"' "$WORK/auto.rerun.log" || { cat "$WORK/auto.rerun.log"; die "the final line does not name the auto policy"; }
    same_outputs "$(ref_dir)" "$WORK/auto" || die "kill -9 under the auto policy changed the outputs"
    ;;
  corrupt)
    SCHEDULE=pass  # waits for pass lines and tests the pass-major stop and resume points
    interrupt "$WORK/bad" term-ranks
    # Slot 0 of each shard (shard-NNNNN.h5); a shard may also have slot 1
    # (shard-NNNNN.b.h5). Both slots of a victim are corrupted, so that it
    # cannot fall back: it must be recomputed.
    mapfile -t cks < <(find "$WORK/bad/checkpoints" -name 'shard-*.h5' ! -name '*.b.h5' | sort)
    [ "${#cks[@]}" -ge 2 ] || die "expected >= 2 shard checkpoints, found ${#cks[@]}"
    victim1=${cks[0]} victim2=${cks[${#cks[@]}-1]}
    for f in "$victim1" "${victim1%.h5}.b.h5"; do
      [ -f "$f" ] || continue
      size=$(stat -c %s "$f")
      truncate -s $((size / 2)) "$f"
    done
    # flip 64 bytes inside the stored image state of the other one: the file
    # stays readable HDF5 metadata; only the per-image Fletcher-32 chunk
    # checksum (or, unchunked, the checkpoint checksum) can tell
    for f in "$victim2" "${victim2%.h5}.b.h5"; do
      [ -f "$f" ] || continue
      /usr/bin/python3 - "$f" <<'PY'
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
    done
    log "truncated the slots of $(basename "$victim1") to half, flipped 64 bytes of the state in the slots of $(basename "$victim2")"
    rc=0
    edi_mpirun 2 "$WORK/bad" >"$WORK/bad.rerun.log" 2>"$WORK/bad.rerun.err" || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/bad.rerun.log" "$WORK/bad.rerun.err"; die "rerun after corruption exited $rc"; }
    for v in "$victim1" "$victim2"; do
      n=$(basename "$v" .h5); n=$((10#${n#shard-}))
      grep -q "shard $n is recomputed" "$WORK/bad.rerun.err" ||
        { cat "$WORK/bad.rerun.err"; die "stderr does not report shard $n as recomputed"; }
    done
    grep "is recomputed" "$WORK/bad.rerun.err" | sort -u | sed 's/^/  stderr: /'
    same_outputs "$(ref_dir)" "$WORK/bad" || die "outputs after recomputing corrupt shards differ"
    h5_all_open "$WORK/bad" || die "unreadable HDF5 after the rerun"
    # A crash between the last shard commit of a pass and rank 0's write of the
    # pass history: every shard committed through pass P, the history ending at
    # P-1 and no final output. The rerun recounts pass P from the shards.
    rm -rf "$WORK/gap"
    cp -a "$(ref_dir)" "$WORK/gap"
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
    same_outputs "$(ref_dir)" "$WORK/gap" || die "outputs after a lost history entry differ"
    # A checkpoint whose image state claims an impossible shape (a huge,
    # sparse dataset: the file stays small): corrupt -> recomputed, never an
    # allocation or a LibTorch error.
    interrupt "$WORK/huge" term-ranks
    victim=$(find "$WORK/huge/checkpoints" -name 'shard-*.h5' ! -name '*.b.h5' | sort | head -1)
    for f in "$victim" "${victim%.h5}.b.h5"; do
      [ -f "$f" ] || continue
      /usr/bin/python3 - "$f" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    del f["state"]
    f.create_dataset("state", shape=(8, 3, 100000, 100000), chunks=(1, 3, 32, 32), dtype="f4")
PY
    done
    rc=0
    edi_mpirun 2 "$WORK/huge" >"$WORK/huge.rerun.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/huge.rerun.log"; die "rerun after a huge checkpoint shape exited $rc"; }
    n=$(basename "$victim" .h5); n=$((10#${n#shard-}))
    grep -q "inconsistent shapes; shard $n is recomputed" "$WORK/huge.rerun.log" ||
      { cat "$WORK/huge.rerun.log"; die "the huge shape was not reported as corrupt"; }
    log "huge state shape in $(basename "$victim"): recomputed"
    same_outputs "$(ref_dir)" "$WORK/huge" || die "outputs after a huge checkpoint shape differ"
    # run.json truncated to 0 bytes (a power loss): treated as missing, the
    # history recovered from the checkpoints, the rest recounted.
    interrupt "$WORK/trunc" term-ranks
    : >"$WORK/trunc/checkpoints/run.json"
    rc=0
    edi_mpirun 2 "$WORK/trunc" >"$WORK/trunc.rerun.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/trunc.rerun.log"; die "rerun after run.json was truncated exited $rc"; }
    grep -q "treated as missing" "$WORK/trunc.rerun.log" || { cat "$WORK/trunc.rerun.log"; die "no warning about the truncated run.json"; }
    log "run.json truncated: $(grep -o 'treated as missing.*' "$WORK/trunc.rerun.log")"
    same_outputs "$(ref_dir)" "$WORK/trunc" || die "outputs after a truncated run.json differ"
    check_complete "$WORK/trunc"
    # Two slots: committed after every pass, each shard has both; the newest
    # slot of one shard truncated (a torn write the file system kept), the
    # shard falls back to its other slot (the pass before) and the outputs
    # stay identical.
    interrupt "$WORK/fb" term-ranks --checkpoint-every 0
    /usr/bin/python3 - "$WORK/fb/checkpoints" >"$WORK/fb.victim" <<'PY'
import glob, h5py, os, sys
a = sorted(glob.glob(os.path.join(sys.argv[1], "shard-00000*.h5")))
assert len(a) == 2, a
passes = {p: int(h5py.File(p, "r").attrs["pass"]) for p in a}
newest = max(a, key=lambda p: passes[p])
assert len(set(passes.values())) == 2, passes
print(newest, passes[newest], min(passes.values()))
PY
    read -r victim newest older <"$WORK/fb.victim"
    truncate -s $(($(stat -c %s "$victim") / 2)) "$victim"
    rc=0
    edi_mpirun 2 "$WORK/fb" >"$WORK/fb.rerun.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/fb.rerun.log"; die "rerun after a torn newest slot exited $rc"; }
    grep -q "shard 0 falls back to its previous checkpoint (pass $older)" "$WORK/fb.rerun.log" ||
      { cat "$WORK/fb.rerun.log"; die "shard 0 did not fall back to its slot of pass $older"; }
    log "newest slot of shard 0 (pass $newest) torn: fell back to pass $older"
    same_outputs "$(ref_dir)" "$WORK/fb" || die "outputs after falling back to the older slot differ"
    ;;
  final_signal)
    # SIGTERM to every rank during the final writes: while every rank waits
    # before them (EDI_TEST_PAUSE_FINAL=120; pass-major), and while rank 0 waits
    # between trajectories.csv and results.h5 (=120@results.h5; shard-major).
    # Each time: exit 75 naming the final writes, no completion marker, every
    # file there whole (no temp file left); the rerun writes the final outputs
    # identically.
    last=$(last_pass "$(ref_dir)")
    for at in "" "@results.h5"; do
      out=$WORK/final; [ -z "$at" ] || out=$WORK/final-mid
      SCHEDULE=pass; [ -z "$at" ] || SCHEDULE=shard
      rm -rf "$out"
      EDI_TEST_PAUSE_FINAL=120$at edi_mpirun 2 "$out" >"$out.log" 2>&1 &
      mp=$!
      # The loop's end: its last pass line, or shard-major's closing progress line.
      loop_end() { grep -Eq "^pass +$last |^  shards ([0-9]+)/\1 done" "$out.log" 2>/dev/null; }
      for _ in $(seq 1 3000); do loop_end && break; kill -0 "$mp" 2>/dev/null || break; sleep 0.02; done
      loop_end || { wait "$mp" || true; cat "$out.log"; die "run $out ended before the end of its pass loop"; }
      if [ -n "$at" ]; then
        for _ in $(seq 1 1500); do [ -f "$out/trajectories.csv" ] && break; sleep 0.02; done
        [ -f "$out/trajectories.csv" ] || { cat "$out.log"; die "rank 0 never wrote trajectories.csv"; }
      fi
      sleep 0.5
      kill -TERM $(rank_pids "$mp")
      rc=0
      wait "$mp" || rc=$?
      [ "$rc" = 75 ] || { cat "$out.log"; die "SIGTERM during the final writes${at}: expected exit 75, got $rc"; }
      grep -q "while writing the final outputs" "$out.log" || { cat "$out.log"; die "no message naming the final writes"; }
      [ ! -f "$out/complete.json" ] || die "the interrupted final writes left a completion marker"
      if [ -n "$at" ]; then
        [ -f "$out/outcomes.csv" ] && [ ! -f "$out/results.h5" ] || die "expected outcomes.csv and no results.h5 at the stop"
        cmp -s "$(ref_dir)/outcomes.csv" "$out/outcomes.csv" || die "the outcomes.csv written before the stop differs"
      fi
      n_tmp=$(find "$out" -name '*.tmp.*' | wc -l)
      [ "$n_tmp" = 0 ] || die "$n_tmp temp file(s) left by the interrupted final writes"
      log "SIGTERM during the final writes${at:- (before them)}: exit 75, $(grep -o 'stopped by signal [0-9]* while writing the final outputs' "$out.log")"
      rc=0
      edi_mpirun 2 "$out" >"$out.rerun.log" 2>&1 || rc=$?
      [ "$rc" = 0 ] || { cat "$out.rerun.log"; die "rerun of $out exited $rc"; }
      same_outputs "$(ref_dir)" "$out" || die "$out differs from the reference"
      h5_all_open "$out" || die "$out has unreadable HDF5 files"
      check_complete "$out"
    done
    ;;
  refusal)
    SCHEDULE=pass  # waits for pass lines and tests the pass-major stop and resume points
    rm -rf "$WORK/refuse"
    cp -a "$(ref_dir)" "$WORK/refuse"
    # (.lock is the run lock's own file: a refused run takes the lock first)
    before=$(cd "$WORK/refuse" && find . -type f ! -name .lock -exec sha256sum {} + | sort)
    for launcher in mpirun single; do
      rc=0
      if [ $launcher = mpirun ]; then
        K=11 edi_mpirun 2 "$WORK/refuse" >"$WORK/refuse.$launcher.log" 2>&1 || rc=$?
      else
        K=11 edi_plain "$WORK/refuse" >"$WORK/refuse.$launcher.log" 2>&1 || rc=$?
      fi
      [ "$rc" = 2 ] || { cat "$WORK/refuse.$launcher.log"; die "$launcher: expected exit code 2, got $rc"; }
      grep -q -- "--k was 9, now 11" "$WORK/refuse.$launcher.log" ||
        { cat "$WORK/refuse.$launcher.log"; die "$launcher: the refusal does not name --k"; }
      log "$launcher: exit 2: $(grep -o 'refusing.*' "$WORK/refuse.$launcher.log" | head -1)"
    done
    after=$(cd "$WORK/refuse" && find . -type f ! -name .lock -exec sha256sum {} + | sort)
    [ "$before" = "$after" ] || die "the refused resume changed the run directory"
    # Without provenance.json the checkpoints still name their configuration.
    interrupt "$WORK/noprov" term-ranks
    rm "$WORK/noprov/provenance.json"
    rc=0
    K=11 edi_mpirun 2 "$WORK/noprov" >"$WORK/noprov.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "made with another configuration" "$WORK/noprov.log" ||
      { cat "$WORK/noprov.log"; die "provenance.json deleted, --k changed: expected exit 2 naming the checkpoint's configuration, got $rc"; }
    log "no provenance.json, --k 11: exit 2: $(grep -o 'refusing.*' "$WORK/noprov.log" | head -1 | cut -c1-120)"
    [ ! -f "$WORK/noprov/provenance.json" ] || die "the refused resume wrote a provenance.json"
    finish "$WORK/noprov" 2  # with the original options it resumes
    # Typed values: a run started with the default --q (90) resumes with --q 90.0.
    interrupt "$WORK/typed" term-ranks
    rc=0
    edi_mpirun 2 "$WORK/typed" --q 90.0 >"$WORK/typed.rerun.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] && grep -q "resumed at pass" "$WORK/typed.rerun.log" ||
      { cat "$WORK/typed.rerun.log"; die "--q 90.0 did not resume a run started with the default 90 (exit $rc)"; }
    same_outputs "$(ref_dir)" "$WORK/typed" || die "the --q 90.0 resume differs from the reference"
    log "--q 90.0 resumed a run started with the default 90, outputs identical"
    # An edited model sidecar (classes, normalisation, input size) is another model.
    rm -rf "$WORK/sidecar"
    cp -a "$(ref_dir)" "$WORK/sidecar"
    cp -a "$FIXTURE" "$WORK/fixture2"
    FIXTURE=$WORK/fixture2
    /usr/bin/python3 - "$FIXTURE/model.pt.json" <<'PY'
import json, sys
p = sys.argv[1]
j = json.load(open(p))
j["edited"] = True  # any edit changes its hash
json.dump(j, open(p, "w"), indent=2)
PY
    rc=0
    edi_mpirun 2 "$WORK/sidecar" >"$WORK/sidecar.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "sidecar .* of the model differs" "$WORK/sidecar.log" ||
      { cat "$WORK/sidecar.log"; die "edited sidecar: expected exit 2 naming the sidecar, got $rc"; }
    log "edited sidecar: exit 2"
    FIXTURE=$WORK/fixture
    # Moved data: the same files elsewhere.
    cp -a "$FIXTURE/data" "$WORK/data-moved"
    rc=0
    "$EDI_EXE" run --data "$WORK/data-moved" --model "$FIXTURE/model.pt" --out "$WORK/sidecar" "${RUN_ARGS[@]}" --stop fixed --passes 8 --k "$K" \
      >"$WORK/moved.log" 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "data root moved: was .*/fixture/data, now .*/data-moved" "$WORK/moved.log" ||
      { cat "$WORK/moved.log"; die "moved data: expected exit 2 with 'data root moved', got $rc"; }
    log "moved data: exit 2: $(grep -o 'data root moved[^;]*' "$WORK/moved.log" | head -1)"
    ;;
  lock)
    # One writer per run directory: a second run on the same --out is refused
    # naming the holder; the first one finishes unharmed. (The default
    # schedule: checkpoints/run.json appears when its pass loop starts.)
    rm -rf "$WORK/locked"
    edi_mpirun 2 "$WORK/locked" >"$WORK/locked.log" 2>&1 &
    mp=$!
    for _ in $(seq 1 3000); do [ -f "$WORK/locked/checkpoints/run.json" ] && break; kill -0 "$mp" 2>/dev/null || break; sleep 0.02; done
    [ -f "$WORK/locked/checkpoints/run.json" ] || { wait "$mp" || true; cat "$WORK/locked.log"; die "first run ended before its pass loop"; }
    # Hold the first run where it is (however fast the machine) while the second one starts.
    mapfile -t held < <(rank_pids "$mp")
    kill -STOP "${held[@]}"
    rc=0
    edi_plain "$WORK/locked" >"$WORK/locked2.log" 2>&1 || rc=$?
    kill -CONT "${held[@]}"
    [ "$rc" = 2 ] && grep -Eq "another run is writing this run directory \(host .*, PID [0-9]+ holds" "$WORK/locked2.log" ||
      { cat "$WORK/locked2.log"; die "second run on one --out: expected exit 2 naming the holder, got $rc"; }
    log "second run: exit 2: $(grep -o 'another run.*' "$WORK/locked2.log" | cut -c1-110)"
    rc=0
    wait "$mp" || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/locked.log"; die "the first run exited $rc"; }
    same_outputs "$(ref_dir)" "$WORK/locked" || die "the locked run's outputs differ"
    check_complete "$WORK/locked"
    # --out inside --data, and a non-empty directory that is not a run directory: refused, untouched.
    for bad in "$FIXTURE/data/runs/x" "$WORK/notes"; do
      mkdir -p "$WORK/notes" && echo keep >"$WORK/notes/todo.txt" && chmod 755 "$WORK/notes"
      before=$(find "$WORK/notes" "$FIXTURE/data" -printf '%p %m %s\n' | sort | sha256sum)
      rc=0
      edi_plain "$bad" >"$WORK/bad-out.log" 2>&1 || rc=$?
      [ "$rc" = 2 ] && grep -Eq "is inside --data|not a run directory" "$WORK/bad-out.log" ||
        { cat "$WORK/bad-out.log"; die "--out $bad: expected exit 2, got $rc"; }
      after=$(find "$WORK/notes" "$FIXTURE/data" -printf '%p %m %s\n' | sort | sha256sum)
      [ "$before" = "$after" ] || die "--out $bad: the refused run changed files"
      log "--out $bad: exit 2: $(grep -o 'edi-anon.*' "$WORK/bad-out.log" | head -1 | cut -c1-110)"
    done
    ;;
  diskfull)
    # --out on a small tmpfs that fills up mid-run: exit 4 naming "No space",
    # every committed checkpoint still opens, and after space is freed the
    # rerun resumes to outputs identical to the reference. Needs root (mount).
    mkdir -p "$WORK/small"
    mount -t tmpfs -o size=2m tmpfs "$WORK/small" 2>/dev/null || { echo "cannot mount a tmpfs here: SKIP"; exit 77; }
    # The run needs about 4 MB (checkpoints, results.h5, PNGs): it fills the 2 MB.
    log "tmpfs: $(df -k --output=avail "$WORK/small" | tail -1) KiB free, the run needs $(du -sk "$(ref_dir)" | cut -f1) KiB"
    rc=0
    edi_mpirun 2 "$WORK/small/run" >"$WORK/full.log" 2>&1 || rc=$?
    { grep -m1 -o "error on rank.*" "$WORK/full.log" || true; } | cut -c1-300 | sed 's/^/  /'
    [ "$rc" = 4 ] && grep -q "No space left on device" "$WORK/full.log" ||
      { cat "$WORK/full.log"; die "disk full: expected exit 4 naming 'No space', got $rc"; }
    [ ! -f "$WORK/small/run/complete.json" ] || die "disk full: a completion marker was written"
    if ls "$WORK/small/run/checkpoints/"shard-*.h5 >/dev/null 2>&1; then
      h5_all_open "$WORK/small/run/checkpoints" || { umount "$WORK/small"; die "disk full: a committed checkpoint does not open"; }
    fi
    mount -o remount,size=16m "$WORK/small"  # space freed
    rc=0
    edi_mpirun 2 "$WORK/small/run" >"$WORK/full.rerun.log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/full.rerun.log"; die "rerun after freeing space exited $rc"; }
    same_outputs "$(ref_dir)" "$WORK/small/run" || { umount "$WORK/small"; die "outputs after a full disk differ"; }
    check_complete "$WORK/small/run"
    umount "$WORK/small"
    ;;
  *) die "unknown case $CASE" ;;
esac
log "$CASE: PASS"
