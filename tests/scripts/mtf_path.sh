#!/usr/bin/env bash
# The README's MTF path on a synthetic stand-in in the same layout:
# data/mtf/<identity>/*.png + labels.csv (identity,age,gender,race), models in
# models/{fr,age,gender,race}.pt, and the unchanged configs/mtf-paper.sweep.ini:
# its whole plan is validated (--list), two entries run (an EDI one and its
# conventional baseline), are evaluated and aggregated.
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
[[ $entries -ge 20 ]] || { echo "FAIL: expected the full plan, got $entries entries"; exit 1; }
edi=$(awk '/^ *[0-9]+  edi-blur_k=10/ {print $1}' plan.txt)
conv=$(awk '/^ *[0-9]+  conv-blur_k=9/ {print $1}' plan.txt)
[[ -n $edi && -n $conv ]] || { echo "FAIL: entries edi-blur_k=10 / conv-blur_k=9 not in the plan"; cat plan.txt; exit 1; }

for i in $edi $conv; do
  $EDI sweep --config "$SRC/configs/mtf-paper.sweep.ini" --out runs/mtf --index "$i" --threads 1 | tail -3
done
for r in edi-blur_k=10 conv-blur_k=9; do
  for f in results.h5 metrics.json outcomes.csv provenance.json; do
    [[ -s runs/mtf/$r/$f ]] || { echo "FAIL: runs/mtf/$r/$f missing"; exit 1; }
  done
done
$EDI aggregate runs/mtf/edi-blur_k=10 runs/mtf/conv-blur_k=9 --out runs/mtf/aggregate --match-task gender | tail -5
grep -q "edi-blur_k=10" runs/mtf/aggregate/aggregate.md || { echo "FAIL: aggregate.md lacks the EDI run"; exit 1; }
grep -q "gender" runs/mtf/aggregate/aggregate.md || { echo "FAIL: aggregate.md lacks the gender utility"; exit 1; }
echo "1 passed, 0 failed"
