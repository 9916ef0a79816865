#!/usr/bin/env bash
# Fault trials (label mpi): kill -9 one rank (or SIGTERM every rank) of
# `mpirun -np 2 edi-anon run` at a random moment, rerun until it exits 0, and
# check that the outputs (outcomes, trajectories, pass history, PNGs) equal an
# uninterrupted reference byte for byte and that every .h5 in the run
# directory opens. Trial t uses the stop rule fixed, image, dataset in turn.
#
#   tests/cluster/fault_trials.sh [--trials N] [--seed S] [--work DIR]
#
#   --trials N  number of trials (default 10, or EDI_FAULT_TRIALS)
#   --seed S    seed of the random choices (default 1, or EDI_FAULT_SEED):
#               kill delay (uniform over the reference run's duration), victim
#               rank, kill -9 or SIGTERM (2 in 3 trials kill -9), --checkpoint-every of the run
#               (0, 0.3 or 2 s under the fixed rule, 0.3 under the others)
#               and of each rerun (0, 0.3 or 2), the rank count of each
#               rerun (1, 2 or 3) and its --schedule (the default, auto, or
#               pass; the interrupted run has the default: shard-major under
#               the fixed and image rules, pass-major under dataset)
#   --work DIR  keep the data, model and run directories there (default: a
#               temporary directory, removed when every trial passes)
# Prints one line per trial and "N passed, M failed"; exits 1 on any failure.
# EDI_EXE overrides the binary.
set -euo pipefail
TRIALS=${EDI_FAULT_TRIALS:-10}
SEED=${EDI_FAULT_SEED:-1}
WORK=
while [ $# -gt 0 ]; do
  case $1 in
    --trials) TRIALS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if [ -n "$WORK" ]; then mkdir -p "$WORK"; KEEP=1; else WORK=$(mktemp -d /tmp/edi-fault-XXXXXX); KEEP=0; fi
WORK=$(cd "$WORK" && pwd)
FIXTURE=$WORK/fixture
trap 'rc=$?; if [ $rc = 0 ] && [ $KEEP = 0 ]; then rm -rf "$WORK"; else echo "work dir kept: $WORK"; fi' EXIT

make_fixture "$FIXTURE"
RULES=(fixed image dataset)
declare -A SPAN_MS
for RULE in "${RULES[@]}"; do
  REF_SECONDS=
  reference_run
  if [ -z "$REF_SECONDS" ]; then  # reference reused from an earlier call: time one run
    t0=$SECONDS; rm -rf "$WORK/timing"; edi_mpirun 2 "$WORK/timing" >/dev/null 2>&1; REF_SECONDS=$((SECONDS - t0))
  fi
  # Kill delays spread over the whole run (start-up and final writing included).
  SPAN_MS[$RULE]=$((REF_SECONDS * 900))
done
RANDOM=$SEED
log "seed $SEED, $TRIALS trial(s) over the rules ${RULES[*]}, kill delays in [0.3 s, 90 % of the rule's reference run]"

passed=0 failed=0
for t in $(seq 1 "$TRIALS"); do
  RULE=${RULES[$(((t - 1) % 3))]}
  span=${SPAN_MS[$RULE]}
  out=$WORK/trial$t
  rm -rf "$out"
  delay_ms=$((300 + (RANDOM * 32768 + RANDOM) % (span > 300 ? span - 300 + 1 : 1)))
  victim_index=$((RANDOM % 2))
  how=kill9
  [ $((RANDOM % 3)) = 0 ] && how=term
  intervals=(0 0.3 2)  # --checkpoint-every: every pass, or shards ahead of their checkpoints
  ce=${intervals[$((RANDOM % 3))]}
  [ "$RULE" = fixed ] || ce=0.3
  t0=$SECONDS
  edi_mpirun 2 "$out" --checkpoint-every "$ce" >"$out.log" 2>&1 &
  sub=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  mapfile -t ranks < <(rank_pids "$sub" | sort -n)
  killed="none (run already over)"
  if [ "${#ranks[@]}" -gt 0 ]; then
    if [ "$how" = term ]; then
      kill -TERM "${ranks[@]}" 2>/dev/null && killed="SIGTERM to ${#ranks[@]} rank(s)"
    else
      idx=$((victim_index % ${#ranks[@]}))
      if kill -9 "${ranks[$idx]}" 2>/dev/null; then killed="kill -9 rank pid ${ranks[$idx]} (#$idx of ${#ranks[@]})"; fi
    fi
  fi
  rc1=0
  wait "$sub" || rc1=$?
  n_ck=$( (find "$out/checkpoints" -name 'shard-*.h5' 2>/dev/null || true) | wc -l)
  # Rerun until it completes (a rerun is never expected to fail; allow 3 tries).
  reruns=() rc=1
  for attempt in 1 2 3; do
    np=$((1 + RANDOM % 3))
    rce=${intervals[$((RANDOM % 3))]}
    sched=auto
    [ $((RANDOM % 2)) = 0 ] && sched=pass
    rc=0
    edi_mpirun "$np" "$out" --checkpoint-every "$rce" --schedule "$sched" >"$out.rerun$attempt.log" 2>&1 || rc=$?
    reruns+=("np=$np,every=$rce,$sched:rc=$rc")
    [ "$rc" = 0 ] && break
  done
  ok=1 why=
  [ "$rc" = 0 ] || { ok=0; why="rerun never exited 0"; }
  # A signalled run checkpoints and exits 75 (0 when it was past its pass
  # loop); before its banner the handlers may not be installed yet.
  if [ "$how" = term ] && grep -q '^run: ' "$out.log" && [ "$rc1" != 75 ] && [ "$rc1" != 0 ]; then ok=0; why="$why; SIGTERM gave exit code $rc1, expected 75"; fi
  if [ "$ok" = 1 ]; then
    if ! diffs=$(same_outputs "$(ref_dir)" "$out"); then ok=0; why="outputs differ:$(echo "$diffs" | tr '\n' ' ')"; fi
  fi
  if ! h5=$(h5_all_open "$out"); then ok=0; why="$why $(echo "$h5" | tr '\n' ' ')"; fi
  tmp_left=$( (find "$out" -name '*.tmp.*' 2>/dev/null || true) | wc -l)  # reported, not a failure
  line=$(printf 'trial %2d: %-7s rule, every %s s, at %6s s %s; mpirun rc %s, %d checkpoint(s) left; reruns %s; %d stale temp file(s); %ds' \
    "$t" "$RULE" "$ce" "$((delay_ms / 1000)).$(printf %03d $((delay_ms % 1000)))" "$killed" "$rc1" "$n_ck" "${reruns[*]}" "$tmp_left" $((SECONDS - t0)))
  if [ "$ok" = 1 ]; then
    passed=$((passed + 1)); echo "$line: identical, PASS"
  else
    failed=$((failed + 1)); echo "$line: FAIL ($why)"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
