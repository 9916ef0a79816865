#!/usr/bin/env bash
# README command 1: set everything up, then the main job on real faces:
# dlib's examples/johns (5 people x 11 crops), steered by the ported face-api
# recognition net, utility from the face-api age/gender net, independent
# attackers that steered nothing (HSE FaceRec, LBPH, a CNN trained here);
# a 2-rank MPI sweep of EDI with blur, pixelation, DP-Pix, DP-Blur, noise and
# masking plus the matching conventional baselines and the control (the
# originals); then the transfer experiment (ensemble, EOT and feature-level
# steering); the tables, the plots and one HTML report.
#
#   OUT=runs/johns-demo RANKS=2 scripts/main-job.sh
set -euo pipefail
cd "$(dirname "$0")/.."

job_start=$(date +%s)
start=$job_start step_start=$start step_name=
# step N TEXT: close the previous step with its duration, then announce the next.
step() {
  local now
  now=$(date +%s)
  [ -z "$step_name" ] || echo "== $step_name took $((now - step_start)) s"
  step_name="step $1" step_start=$now
  echo; echo "== [$1/6] $2 (at $((now - start)) s)"
}

step 1 "set-up: Debian packages, face assets, build edi-anon only (first time: packages, then a cold build of edi-anon, about 100 s on 2 cores without a compiler cache; seconds with a warm cache)"
scripts/setup.sh --target edi-anon

OUT=${OUT:-runs/johns-demo}
TRANSFER=${TRANSFER:-runs/transfer}
RANKS=${RANKS:-2}
EDI=build/edi-anon
MODELS=runs/johns-demo-models
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
setup_s=$(( $(date +%s) - job_start ))
echo "== step 1 took $setup_s s"
start=$(date +%s) step_start=$start step_name=

# Two small CNNs on the original johns training split (the runs' split: test
# 0.2, val 0.1, seed 0): the independent attacker (seed 0) and a second
# steering model for ensemble steering (seed 1), trained side by side (one
# thread each). Skipped when present.
step 2 "two small CNNs on the original training split, side by side (about 10 s)"
mkdir -p "$MODELS"
pids=()
for which in attacker:0 steer:1; do
  name=${which%%:*} seed=${which##*:}
  if [[ ! -f $MODELS/$name-cnn.pt ]]; then
    $EDI train --data .assets/johns --labels none --task identity --arch small-cnn --size 64 --seed "$seed" \
      --test-fraction 0.2 --val-fraction 0.1 --epochs 40 --patience 40 --threads 1 --quiet --out "$MODELS/$name-cnn.pt" \
      > "$MODELS/$name-cnn.log" 2>&1 &
    pids+=($!)
  fi
done
for pid in "${pids[@]+"${pids[@]}"}"; do
  wait "$pid" || { cat "$MODELS"/*-cnn.log >&2; exit 1; }
done
for name in attacker steer; do [[ ! -f $MODELS/$name-cnn.log ]] || tail -2 "$MODELS/$name-cnn.log"; done

step 3 "the main sweep: control, 6 EDI runs, 8 conventional baselines, then evaluated, each run by one of the $RANKS MPI ranks (1 thread each; about 1 min)"
mpirun -np "$RANKS" --bind-to core $EDI sweep --config configs/johns-demo.sweep.ini --out "$OUT" --threads 1

step 4 "the transfer experiment: EDI steered by an ensemble, with EOT, with a feature-level target (about 1.5 min)"
mpirun -np "$RANKS" --bind-to core $EDI sweep --config configs/transfer.sweep.ini --out "$TRANSFER" --threads 1
$PY scripts/readme_tables.py "$TRANSFER"  # the README's transfer tables: matched steering risk, then matched PSNR

step 5 "plots and the HTML report, the two sweeps side by side (about 10 s)"
# plots DIR: the frontier, risk-curve and passes plots and report.html of one sweep.
plots() {
  local d=$1 runs
  mkdir -p "$d/plots"
  runs=$(find "$d" -mindepth 2 -maxdepth 2 -name results.h5 -printf '%h\n' | sort)
  $PY analysis/frontier.py "$d/aggregate/aggregate.json" --task gender --out "$d/plots"
  $PY analysis/risk_curves.py $runs --out "$d/plots"
  $PY analysis/passes_hist.py $runs --out "$d/plots"
  [[ $d != "$OUT" ]] || $PY analysis/image_grid.py "$OUT/edi-blur" --out "$OUT/plots"
  $PY analysis/report.py "$d" --out "$d/report.html"
}
plots "$OUT" > "$OUT/plots.log" 2>&1 &
main_plots=$!
plots "$TRANSFER" > "$TRANSFER/plots.log" 2>&1 || { cat "$TRANSFER/plots.log" >&2; exit 1; }
wait "$main_plots" || { cat "$OUT/plots.log" >&2; exit 1; }
cat "$OUT/plots.log" "$TRANSFER/plots.log"

step 6 "tables"
cat "$OUT/aggregate/aggregate.md"
echo
cat "$TRANSFER/aggregate/aggregate.md"
echo
echo "== $step_name took $(( $(date +%s) - step_start )) s"
echo "== done in $(( $(date +%s) - job_start )) s, $(( $(date +%s) - start )) s after set-up ($setup_s s)"
echo "tables:   $OUT/aggregate/aggregate.{md,csv,tex,json}, matched.{md,csv}; $TRANSFER/aggregate/"
echo "report:   $OUT/report.html, $TRANSFER/report.html (one file each, no network)"
echo "plots:    $OUT/plots/, $TRANSFER/plots/"
echo "status:   $EDI status $OUT --config configs/johns-demo.sweep.ini"
echo "images:   $OUT/<run>/images/  (export without identities: $EDI export --run $OUT/edi-blur --out EXPORT)"
