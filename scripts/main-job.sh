#!/usr/bin/env bash
# README command 1: set everything up, then run the main job on real faces:
# dlib's examples/johns (5 people x 11 crops), steered by the ported face-api
# recognition net, utility from the face-api age/gender net, an independent
# attacker trained here; a 2-rank MPI sweep of EDI with blur, pixelation,
# DP-Pix, DP-Blur, noise and masking plus the matching conventional
# baselines; then the aggregated table, the plots and where everything is.
#
#   OUT=runs/johns-demo RANKS=2 scripts/main-job.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

OUT=${OUT:-runs/johns-demo}
RANKS=${RANKS:-2}
EDI=build/edi-anon
MODELS=runs/johns-demo-models
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
start=$(date +%s)

# The independent attacker: a small CNN trained on the original training split
# (the same split as the runs': test 0.2, val 0.1, seed 0). Skipped if present.
mkdir -p "$MODELS"
if [[ ! -f $MODELS/attacker-cnn.pt ]]; then
  echo "== training the independent attacker (small-cnn on the original johns training split)"
  $EDI train --data .assets/johns --labels none --task identity --arch small-cnn --size 64 \
    --test-fraction 0.2 --val-fraction 0.1 --epochs 40 --patience 40 --out "$MODELS/attacker-cnn.pt"
fi

echo "== sweep: $RANKS MPI rank(s), 1 thread each"
mpirun -np "$RANKS" --bind-to core $EDI sweep --config configs/johns-demo.sweep.ini --out "$OUT" --threads 1

echo "== plots"
PY=/usr/bin/python3
mkdir -p "$OUT/plots"
runs=$(find "$OUT" -mindepth 2 -maxdepth 2 -name results.h5 -printf '%h\n' | sort)
# (johns has no attribute labels, so there is no utility F1 to plot a frontier against)
$PY analysis/risk_curves.py $runs --out "$OUT/plots"
$PY analysis/passes_hist.py $runs --out "$OUT/plots"
$PY analysis/image_grid.py "$OUT/edi-blur" --out "$OUT/plots"

echo
echo "== done in $(( $(date +%s) - start )) s"
echo "tables:            $OUT/aggregate/aggregate.{md,csv,tex,json}, matched-privacy: $OUT/aggregate/matched.{md,csv}"
echo "plots:             $OUT/plots/"
echo "anonymized images: $OUT/<run>/images/  (export without identities: $EDI export --run $OUT/edi-blur --out EXPORT)"
echo "per-run results:   $OUT/<run>/results.h5, metrics.json, outcomes.csv, trajectories.csv"
