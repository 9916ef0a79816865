#!/usr/bin/env bash
# The README's MTF path on a synthetic stand-in in the same layout:
# data/mtf/<identity>/*.png + labels.csv (identity,age,gender,race), models in
# models/{fr,age,gender,race}.pt, and the unchanged configs/mtf-paper.sweep.ini:
# its whole plan is validated (--list), the control, an EDI entry matched to
# its four conv-blur baselines and those baselines run (the baselines first, as
# on SLURM), the control, one baseline and the EDI run evaluated and aggregated.
#   usage: mtf_path.sh EDI_ANON_BINARY SOURCE_DIR
set -euo pipefail
EDI=$(realpath "$1")
SRC=$(realpath "$2")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
export OMP_WAIT_POLICY=passive

$EDI synth --identities 6 --per-identity 10 --size 32 --seed 3 --out data/mtf >/dev/null
mkdir -p models
$EDI train --data data/mtf --task identity --size 32 --epochs 12 --test-fraction 0.12 --val-fraction 0.06 --out models/fr.pt >/dev/null
for t in age gender race; do
  $EDI train --data data/mtf --task $t --size 32 --epochs 3 --test-fraction 0.12 --val-fraction 0.06 --out models/$t.pt >/dev/null
done

$EDI sweep --config "$SRC/configs/mtf-paper.sweep.ini" --out runs/mtf --list > plan.txt
entries=$(grep -cE '^ *[0-9]+  ' plan.txt)
echo "plan: $entries entries"
[[ $entries -eq 39 ]] || { echo "FAIL: expected the full plan of 39 entries, got $entries"; exit 1; }
index() { awk -v n="$1" '$2 == n && $1 ~ /^[0-9]+$/ {print $1}' plan.txt; }
control=$(index control)
edi=$(index edi-blur_k=10_q=90)
[[ $control == 0 && -n $edi ]] || { echo "FAIL: control (entry 0) / edi-blur_k=10_q=90 not in the plan"; cat plan.txt; exit 1; }
# edi-blur_k=10_q=90 is matched to the four conv-blur baselines: they run first
# (as the job array's dependencies order them), the evaluated one is k=9.
baselines=$(sed -n "/^ *$edi  /,/after:/p" plan.txt | sed -n 's/^     after: \([0-9,]*\).*/\1/p')
[[ $(tr ',' '\n' <<<"$baselines" | wc -l) == 4 ]] || { echo "FAIL: edi-blur_k=10_q=90 waits for '$baselines', expected 4 baselines"; exit 1; }
conv=$(index conv-blur_k=9)

for i in $control $conv; do
  $EDI sweep --config "$SRC/configs/mtf-paper.sweep.ini" --out runs/mtf --index "$i" --threads 1 | tail -3
done
for i in $(tr ',' ' ' <<<"$baselines"); do
  [[ $i == "$conv" ]] || $EDI sweep --config "$SRC/configs/mtf-paper.sweep.ini" --out runs/mtf --index "$i" --threads 1 --no-evaluate | tail -1
done
# complete.json is written last by the runner (interfaces §1); a runner that
# predates the marker finished these runs all the same (summary.json).
for i in $(tr ',' ' ' <<<"$baselines"); do
  r=runs/mtf/$(awk -v i="$i" '$1 == i {print $2}' plan.txt)
  [[ -s $r/summary.json ]] || { echo "FAIL: baseline $r did not finish"; exit 1; }
  [[ -f $r/complete.json ]] || echo '{"format":"edi-anon-complete","version":1}' > "$r/complete.json"
done
$EDI sweep --config "$SRC/configs/mtf-paper.sweep.ini" --out runs/mtf --index "$edi" --threads 1 | grep -E 'target-risk|done|metrics'
grep -q '"matched-to"' runs/mtf/edi-blur_k=10_q=90/provenance.json || { echo "FAIL: the EDI run records no matched-to"; exit 1; }
for r in control conv-blur_k=9 edi-blur_k=10_q=90; do
  for f in results.h5 metrics.json outcomes.csv provenance.json; do
    [[ -s runs/mtf/$r/$f ]] || { echo "FAIL: runs/mtf/$r/$f missing"; exit 1; }
  done
done
$EDI aggregate runs/mtf/control runs/mtf/edi-blur_k=10_q=90 runs/mtf/conv-blur_k=9 --out runs/mtf/aggregate --match-task gender | tail -5
grep -q "edi-blur_k=10_q=90" runs/mtf/aggregate/aggregate.md || { echo "FAIL: aggregate.md lacks the EDI run"; exit 1; }
grep -q "control" runs/mtf/aggregate/aggregate.md || { echo "FAIL: aggregate.md lacks the control run"; exit 1; }
grep -q "gender" runs/mtf/aggregate/aggregate.md || { echo "FAIL: aggregate.md lacks the gender utility"; exit 1; }
echo "1 passed, 0 failed"
