#!/usr/bin/env bash
# The GPU check of the device-resident steps (issue 15 item 6), at most 8 minutes (BUDGET=480 s).
#
# On a CUDA machine with a pip PyTorch it:
#   1. configures a build in $BUILD against the wheel's LibTorch
#      (-DTorch_DIR from `python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'`);
#   2. builds edi-ops-bench, then edi-anon, then the two unit-test binaries, one target at a time,
#      so that one that fails does not stop the others (it says which could not be built, and why);
#   3. parity: the ATen selection and operators on CUDA against the CPU reference at 64 and 224 px
#      (identical masks, max |diff| <= 1e-6: `edi-ops-bench --parity cuda`);
#   4. ms per image of selection and every operator on CUDA at 224 px;
#   5. the engine on CUDA with --ops aten against --ops opencv and against the CPU (fixed 3 passes);
#   6. `edi-anon bench` at 224 px with a ConvNeXt-Tiny from scripts/make_convnext.py (skipped,
#      with a message, where that script is missing);
#   7. the CPU parity unit tests with this build.
# Without a CUDA device (or without a CUDA PyTorch) it ends at once with "no CUDA device: skipped ..."
# and exit status 0. Exit status 1: a parity check failed. Logs: $OUT/*.log, summary: $OUT/summary.txt.
#   scripts/gpu-check.sh        (OUT=runs/gpu-check BUILD=build-cuda BUDGET=480 PYTHON=python3 JOBS=nproc)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-check}
BUILD=${BUILD:-build-cuda}
BUDGET=${BUDGET:-480}
PY=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
START=$SECONDS
mkdir -p "$OUT"
SUMMARY=()
PARITY_FAIL=0
note() { echo "== $*" >&2; SUMMARY+=("$*"); }
left() { echo $((BUDGET - (SECONDS - START))); }
finish() {
  { echo "gpu-check summary ($((SECONDS - START)) s of $BUDGET s):"; printf '  %s\n' "${SUMMARY[@]}"; } \
    | tee "$OUT/summary.txt" >&2
  exit "$1"
}
# step SECONDS LOG CMD...: run CMD for at most min(SECONDS, time left) with its output in $OUT/LOG.
step() {
  local want=$1 log=$2 t
  shift 2
  t=$(left)
  ((t > want)) && t=$want
  if ((t < 15)); then echo "not run: the ${BUDGET} s budget is spent" >"$OUT/$log"; return 124; fi
  timeout "$t" "$@" >"$OUT/$log" 2>&1
}
why() { grep -m1 -iE "error|not found|could not|undefined" "$OUT/$1" | cut -c1-200 || tail -1 "$OUT/$1"; }

ALL="configure with LibTorch, build, CPU-vs-CUDA parity (selection, operators, engine), ops and engine bench at 224 px"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$OUT/gpus.txt" 2>&1 || ! grep -q GPU "$OUT/gpus.txt"; then
  note "no CUDA device: skipped $ALL"
  finish 0
fi
note "device: $(head -1 "$OUT/gpus.txt")"
if ! TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>"$OUT/torch.log"); then
  note "no PyTorch in $PY ($(tail -1 "$OUT/torch.log")): skipped $ALL"
  finish 0
fi
if [ "$("$PY" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null)" != True ]; then
  note "no CUDA device visible to PyTorch ($("$PY" -c 'import torch; print(torch.__version__)' 2>&1)): skipped $ALL"
  finish 0
fi
note "PyTorch $("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)'), Torch_DIR=$TORCH_PREFIX/Torch"

# --- 1-2. configure and build --------------------------------------------------------------------
CONFIG=(-S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$TORCH_PREFIX/Torch")
TARGETS=(edi-ops-bench edi-anon test_perturb test_explain)
if ! step 120 configure.log cmake "${CONFIG[@]}" -DEDI_BUILD_TESTS=ON; then
  # GoogleTest is the likeliest thing a GPU image lacks: try once more without the tests.
  if step 120 configure-notests.log cmake "${CONFIG[@]}" -DEDI_BUILD_TESTS=OFF; then
    note "could not build test_perturb, test_explain: configuring with tests failed: $(why configure.log)"
    TARGETS=(edi-ops-bench edi-anon)
  else
    note "could not configure against the pip LibTorch: $(why configure-notests.log) (see $OUT/configure*.log); skipped the build, parity and bench"
    finish 0
  fi
fi
BUILT=()
for target in "${TARGETS[@]}"; do
  if step 300 "build-$target.log" cmake --build "$BUILD" -j"$JOBS" --target "$target"; then
    BUILT+=("$target")
  else
    note "could not build $target: $(why "build-$target.log") (see $OUT/build-$target.log)"
  fi
  # The parity check needs only the first target: run it before spending time on the rest.
  if [ "$target" = edi-ops-bench ] && [ -x "$BUILD/edi-ops-bench" ]; then
    # --- 3. parity of the ATen selection and operators, CUDA against the CPU reference ----------
    if step 120 parity-ops.log "$BUILD/edi-ops-bench" --parity cuda --sizes 64,224 --batch 4 --threads "$JOBS"; then
      note "parity selection+operators CUDA vs CPU: PASS ($(grep -c ' ok$' "$OUT/parity-ops.log") operator checks, masks identical)"
    else
      PARITY_FAIL=1
      note "parity selection+operators CUDA vs CPU: FAIL: $(grep -E 'FAIL|DIFFER|^edi-ops-bench:' "$OUT/parity-ops.log" | head -3 | cut -c1-200 | tr '\n' ';') (see $OUT/parity-ops.log)"
    fi
    # --- 4. ms per image on CUDA at 224 px --------------------------------------------------------
    if step 120 bench-ops-cuda.log "$BUILD/edi-ops-bench" --device cuda --sizes 224 --batch 32 --threads "$JOBS"; then
      note "ops bench at 224 px on CUDA: $OUT/bench-ops-cuda.log"
    else
      note "ops bench at 224 px on CUDA did not finish (see $OUT/bench-ops-cuda.log)"
    fi
  fi
done
note "built: ${BUILT[*]:-nothing}"

# --- 5. the engine: CUDA --ops aten vs --ops opencv vs CPU ----------------------------------------
EDI=$BUILD/edi-anon
if [ -x "$EDI" ] && step 60 synth.log "$EDI" synth --identities 8 --per-identity 8 --size 64 --out "$OUT/data64" &&
   step 60 model64.log "$PY" tests/engine/reference.py model --out "$OUT/model64.pt" --classes 8 --size 64; then
  RUN=(run --data "$OUT/data64" --model "$OUT/model64.pt" --operator blur --k 5 --q 90 --stop fixed --passes 3
       --no-images --threads "$JOBS")
  rm -rf "$OUT"/engine-*
  step 90 engine-aten.log "$EDI" "${RUN[@]}" --device cuda --ops aten --out "$OUT/engine-aten"
  step 90 engine-opencv.log "$EDI" "${RUN[@]}" --device cuda --ops opencv --out "$OUT/engine-opencv"
  step 90 engine-cpu.log "$EDI" "${RUN[@]}" --device cpu --out "$OUT/engine-cpu"
  compare() {  # compare A B: outcomes.csv equal, or how many rows differ
    local a=$OUT/engine-$1/outcomes.csv b=$OUT/engine-$2/outcomes.csv
    if [ ! -f "$a" ] || [ ! -f "$b" ]; then
      echo "not compared: $(for r in "$1" "$2"; do [ -f "$OUT/engine-$r/outcomes.csv" ] || echo -n "--ops/device run '$r' failed: $(grep -m1 error "$OUT/engine-$r.log" | cut -c1-160); "; done)"
    elif cmp -s "$a" "$b"; then echo "outcomes.csv identical"
    else echo "$(diff "$a" "$b" | grep -c '^<') of $(($(wc -l <"$a") - 1)) rows differ"; fi
  }
  note "engine CUDA --ops aten vs --ops opencv: $(compare aten opencv)"
  note "engine CUDA vs CPU (model arithmetic differs, so rows may differ): $(compare aten cpu)"
else
  note "skipped the engine parity: edi-anon, synth data or the reference model is missing (see $OUT/synth.log, model64.log)"
fi

# --- 6. engine bench at 224 px with a ConvNeXt-Tiny ----------------------------------------------
if [ ! -f scripts/make_convnext.py ]; then
  note "skipped the engine bench at 224 px: scripts/make_convnext.py is missing (it comes from the engine-performance work)"
elif [ ! -x "$EDI" ]; then
  note "skipped the engine bench at 224 px: edi-anon was not built"
elif step 60 synth224.log "$EDI" synth --identities 4 --per-identity 16 --size 224 --out "$OUT/data224" &&
     step 90 convnext.log "$PY" scripts/make_convnext.py --out "$OUT/convnext.pt" --data "$OUT/data224" --size 224; then
  for ops in aten opencv; do
    if step 150 "bench224-$ops.log" "$EDI" bench --data "$OUT/data224" --model "$OUT/convnext.pt" --device cuda --ops "$ops" \
        --operator blur --q 90 --batch 1,8,32 --passes-per-batch 2 --images 64 --threads "$JOBS"; then
      note "engine bench 224 px, ConvNeXt-Tiny, CUDA, --ops $ops: $OUT/bench224-$ops.log"
    else
      note "engine bench 224 px --ops $ops did not finish (see $OUT/bench224-$ops.log)"
    fi
  done
else
  note "skipped the engine bench at 224 px: data or model failed (see $OUT/synth224.log, convnext.log)"
fi

# --- 7. the CPU parity unit tests with this build ---------------------------------------------------
for t in "test_perturb AtenOps.*" "test_explain Select.*:Percentile.*"; do
  set -- $t
  bin=$(find "$BUILD/tests" -name "$1" -type f -perm -u+x 2>/dev/null | head -1)
  if [ -z "$bin" ]; then note "skipped $1: not built"; continue; fi
  if step 120 "$1.log" "$bin" --gtest_filter="$2"; then note "$1 ($2): passed"
  else PARITY_FAIL=1; note "$1 ($2): FAILED (see $OUT/$1.log)"; fi
done
finish "$PARITY_FAIL"
