# Shared helpers of the tests/dist scripts (sourced, not run).
#
# Environment:
#   EDI_EXE   the edi-anon binary (default: build/edi-anon of this checkout)
#   WORK      scratch directory of the calling test (created, reused)
# Every MPI run uses --threads 1 per rank and a fixed --batch, so that outputs
# are comparable byte for byte across rank counts and interruptions.

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1
# A SLURM allocation in the environment would make mpirun use it.
unset SLURM_JOB_ID SLURM_JOBID SLURM_NODELIST SLURM_CPUS_PER_TASK

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EDI_EXE=${EDI_EXE:-$LIB_DIR/../../build/edi-anon}
[ -x "$EDI_EXE" ] || { echo "edi-anon not found at $EDI_EXE (set EDI_EXE)" >&2; exit 1; }

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# make_fixture DIR: a small synthetic data set DIR/data and identity model DIR/model.pt.
make_fixture() {
  local d=$1
  mkdir -p "$d"
  if [ ! -s "$d/model.pt" ]; then
    "$EDI_EXE" synth --identities 6 --per-identity 8 --size 32 --out "$d/data" >/dev/null
    "$EDI_EXE" train --data "$d/data" --task identity --epochs 8 --out "$d/model.pt" --threads 1 >/dev/null
  fi
}

# The run under test (the caller sets FIXTURE; RUN_ARGS and the stop rule's
# arguments come first, extra args are appended).
RUN_ARGS=(--batch 8 --shard-size 8 --threads 1)
K=${K:-9}  # --k of the blur (the refusal case reruns with another one)
# RULE: the stop rule under test. fixed: 8 passes of the blur; image: each
# image until it is no longer identified (at most 16 passes); dataset: the
# paper's rule, until the identified share is <= 46 % (pass 14 of this
# fixture). The last two use weak noise at q = 80, under which images stop
# gradually over many passes (the blur barely moves a 32 px face), so that a
# signal after pass 2 lands inside the loop even on an idle machine.
RULE=${RULE:-fixed}
DATASET_TARGET=46
rule_args() {
  case $1 in
    fixed) echo --stop fixed --passes 8 ;;
    image) echo --stop image --max-passes 16 --operator noise --sigma 0.03 --q 80 ;;
    dataset) echo --stop dataset --target-risk $DATASET_TARGET --max-passes 24 --operator noise --sigma 0.03 --q 80 ;;
    *) die "unknown stop rule '$1'" ;;
  esac
}
# SCHEDULE: --schedule of the runs under test (unset: the default, auto:
# shard-major under the fixed and image rules, pass-major under dataset).
# The references are always made with the default.
schedule_args() { if [ -n "${SCHEDULE:-}" ]; then echo --schedule "$SCHEDULE"; fi; }
# The uninterrupted reference of the rule (reference_run makes it).
ref_dir() { if [ "${1:-$RULE}" = fixed ]; then echo "$WORK/ref"; else echo "$WORK/ref-${1:-$RULE}"; fi; }

# edi_mpirun NP OUT [extra run args...]: mpirun -np NP edi-anon run ... --out OUT
edi_mpirun() {
  local np=$1 out=$2
  shift 2
  local over=()
  [ "$np" -gt 2 ] && over=(--oversubscribe)
  local rule sched
  read -r -a rule <<<"$(rule_args "$RULE")"
  read -r -a sched <<<"$(schedule_args)"
  mpirun "${over[@]}" -np "$np" "$EDI_EXE" run --data "$FIXTURE/data" --model "$FIXTURE/model.pt" --out "$out" \
    "${RUN_ARGS[@]}" "${rule[@]}" "${sched[@]}" --k "$K" "$@"
}

# edi_plain OUT [extra run args...]: the same run as one process without mpirun.
edi_plain() {
  local out=$1 rule sched
  shift
  read -r -a rule <<<"$(rule_args "$RULE")"
  read -r -a sched <<<"$(schedule_args)"
  "$EDI_EXE" run --data "$FIXTURE/data" --model "$FIXTURE/model.pt" --out "$out" "${RUN_ARGS[@]}" "${rule[@]}" "${sched[@]}" --k "$K" "$@"
}

# same_outputs REF RUN: outcomes.csv, trajectories.csv and every PNG byte-identical;
# results.h5, summary.json and checkpoints/run.json the same but for timing
# fields (compare_runs.py).
# Prints the differences; returns non-zero if there are any.
same_outputs() {
  local ref=$1 run=$2 bad=0 f
  for f in outcomes.csv trajectories.csv; do
    if [ ! -f "$run/$f" ]; then echo "  $run/$f missing"; bad=1
    elif ! cmp -s "$ref/$f" "$run/$f"; then echo "  $f differs"; bad=1; fi
  done
  # The per-pass history (pass, active, identified, risk): an interrupted run
  # must neither lose nor replay a pass. Timings differ, so they are left out.
  if ! /usr/bin/python3 - "$ref/summary.json" "$run/summary.json" <<'PY'
import json, sys
def passes(path):
    return [(p["pass"], p["active"], p["risk_percent"]) for p in json.load(open(path))["passes"]]
a, b = passes(sys.argv[1]), passes(sys.argv[2])
if a != b:
    print("  the pass history differs: passes %s vs %s" % ([p[0] for p in a], [p[0] for p in b]))
    sys.exit(1)
PY
  then bad=1; fi
  if [ -f "$run/results.h5" ] && ! /usr/bin/python3 "$LIB_DIR/compare_runs.py" "$ref" "$run"; then bad=1; fi
  # Every PNG: the same set of files, each byte-identical. Stale temp files of a
  # killed writer (".NAME.png.tmp.PID.N") are not outputs; h5_all_open counts them.
  local list_ref list_run n_run p
  list_ref=$(cd "$ref" && find images -name '*.png' | sort)
  list_run=$( (cd "$run" 2>/dev/null && find images -name '*.png' 2>/dev/null || true) | sort)
  n_run=$(printf '%s\n' "$list_run" | grep -c . || true)
  [ -n "$list_ref" ] || { echo "  reference has no PNG"; bad=1; }
  if [ "$list_ref" != "$list_run" ]; then
    echo "  the PNG sets differ:"; diff <(echo "$list_ref") <(echo "$list_run") | grep '^[<>]' | head -5 | sed 's/^/    /'; bad=1
  else
    while IFS= read -r p; do
      cmp -s "$ref/$p" "$run/$p" || { echo "  $p differs"; bad=1; }
    done <<<"$list_ref"
  fi
  # Dataset-rule snapshots (snapshots/<T>/...): the same files, each byte-identical.
  local snaps="" snap_ref snap_run
  if [ -d "$ref/snapshots" ]; then
    snap_ref=$(cd "$ref" && find snapshots -type f | sort)
    snap_run=$( (cd "$run" 2>/dev/null && find snapshots -type f 2>/dev/null || true) | sort)
    if [ "$snap_ref" != "$snap_run" ]; then
      echo "  the snapshot files differ:"; diff <(echo "$snap_ref") <(echo "$snap_run") | grep '^[<>]' | head -5 | sed 's/^/    /'; bad=1
    else
      while IFS= read -r p; do cmp -s "$ref/$p" "$run/$p" || { echo "  $p differs"; bad=1; }; done <<<"$snap_ref"
    fi
    snaps=", $(printf '%s\n' "$snap_ref" | grep -c .) snapshot file(s)"
  fi
  [ "$bad" = 0 ] && echo "  identical: outcomes.csv, trajectories.csv, pass history, results.h5, summary.json, run.json, $n_run PNG(s)$snaps"
  return "$bad"
}

# h5_all_open DIR: every *.h5 under DIR opens (h5dump -H); prints the count.
h5_all_open() {
  local dir=$1 n=0 bad=0 f
  while IFS= read -r -d '' f; do
    n=$((n + 1))
    if ! h5dump -H "$f" >/dev/null 2>&1; then echo "  unreadable HDF5: $f"; bad=1; fi
  done < <(find "$dir" -name '*.h5' -print0)
  [ "$n" -gt 0 ] || { echo "  no .h5 files under $dir"; bad=1; }
  [ "$bad" = 0 ] && echo "  $n .h5 file(s) open"
  return "$bad"
}

# reference_run: the uninterrupted 2-rank reference of $RULE in $(ref_dir) (made once per WORK).
reference_run() {
  local ref
  ref=$(ref_dir)
  if [ ! -f "$ref/outcomes.csv" ]; then
    rm -rf "$ref"
    local t0=$SECONDS
    edi_mpirun 2 "$ref" >"$ref.log" 2>&1 || { cat "$ref.log"; die "reference run ($RULE rule) failed"; }
    REF_SECONDS=$((SECONDS - t0))
    log "reference run ($RULE rule, $(last_pass "$ref") passes after pass 0): $REF_SECONDS s"
  fi
}

# last_pass RUN: the last pass of a finished run's history (checkpoints/run.json).
last_pass() {
  /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["passes"][-1]["pass"])' "$1/checkpoints/run.json"
}

# rank_pids PID: the edi-anon processes below PID (an mpirun, or a background
# subshell running one).
rank_pids() {
  local p c
  for p in $(pgrep -P "$1" || true); do
    if [ "$(ps -o comm= -p "$p" 2>/dev/null)" = edi-anon ]; then echo "$p"; else rank_pids "$p"; fi
  done
}
