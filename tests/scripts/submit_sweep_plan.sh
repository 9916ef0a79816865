#!/usr/bin/env bash
# jobs/submit_sweep.sh --dry-run (no cluster): the arrays are sized from
# `edi-anon sweep --list`, the output directory is taken from it (a quoted
# [sweep] out is unquoted, as edi-anon reads it), and entries with
# target-risk = match wait for exactly their baselines' tasks (afterok) while
# the control and the baselines go first.
#   usage: submit_sweep_plan.sh EDI_ANON_BINARY SOURCE_DIR
set -euo pipefail
EDI=$(realpath "$1")
SRC=$(realpath "$2")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
cat >s.ini <<'EOS'
[sweep]
out = "my runs/x"
[run]
data = D
model = M.pt
stop = dataset
target-risk = match
[grid.edi-blur]
k = 5 | 9
[grid.edi-noise]
operator = noise
[grid.conv-blur]
method = conventional
k = 3 | 9
[grid.conv-noise]
method = conventional
operator = noise
EOS
EDI_ANON=$EDI bash "$SRC/jobs/submit_sweep.sh" s.ini --dry-run >dry.txt
cat dry.txt
sed -i 's/\\//g' dry.txt  # the commands are printed shell-quoted (printf %q): drop the backslashes
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
check "7 entries, out unquoted" 'grep -q "^sweep .*s.ini: 7 entries -> $W/my runs/x " dry.txt'
check "control and baselines first, no dependency" \
  'grep -E -- "--array=0,1,2,3 " dry.txt | grep -vq -- "--dependency"'
check "edi-blur waits for conv-blur" \
  'grep -E -- "--array=4,5 " dry.txt | grep -q -- "--dependency=afterok:FIRST_ARRAY_1:FIRST_ARRAY_2 --kill-on-invalid-dep=yes"'
check "edi-noise waits for conv-noise" \
  'grep -E -- "--array=6 " dry.txt | grep -q -- "--dependency=afterok:FIRST_ARRAY_3 --kill-on-invalid-dep=yes"'
check "the aggregation waits for every array" 'grep -q -- "--dependency=afterany:ALL_ARRAYS" dry.txt'
check "nothing created" '[ ! -e "my runs" ]'
[ "$fail" = 0 ] && echo "1 passed, 0 failed" || exit 1
