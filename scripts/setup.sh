#!/usr/bin/env bash
# Set-up on a fresh Debian 12 machine, as root: install the Debian packages that
# are missing (--no-install-recommends), fetch the cached face assets, then
# configure and build (Release). Idempotent: a second run only rebuilds.
#
#   scripts/setup.sh                     # everything: edi-anon and every test
#   scripts/setup.sh --target edi-anon   # only what the main job needs
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=()
while (($#)); do
  case $1 in
    --target) TARGETS+=(--target "$2"); shift 2 ;;
    *) echo "setup.sh: unknown argument '$1' (expected --target NAME)" >&2; exit 2 ;;
  esac
done

PACKAGES=(
  # toolchain
  cmake ninja-build g++ make pkg-config git ca-certificates
  # the stack
  libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools libopencv-dev opencv-data
  libtorch-dev libboost-program-options-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libssl-dev
  # LibTorch's small convolutions go through the system BLAS: OpenBLAS, not the reference one
  libopenblas0-pthread
  # SLURM (tests start their own single-node cluster)
  slurm-wlm munge
  # analysis scripts and Python references
  python3 python3-numpy python3-h5py python3-pandas python3-matplotlib python3-opencv python3-torch python3-pil
  # the HTML report's test renders it headless; the LaTeX tables' test compiles them
  chromium texlive-latex-base texlive-latex-recommended
  # face-api reference (Node) and npm pack
  nodejs npm
  # fetching Debian source packages (dlib's example faces)
  dpkg-dev bzip2 xz-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian on some images; accept whatever is on PATH.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# The face assets are fetched (network, npm, apt) while the build compiles.
assets_pid=
if [[ -x scripts/fetch_assets.sh ]]; then
  mkdir -p .assets
  scripts/fetch_assets.sh > .assets/fetch.log 2>&1 &
  assets_pid=$!
fi

JOBS=${EDI_BUILD_JOBS:-$(nproc)}
# A compiler cache, when one is installed, makes rebuilds of other checkouts cheap.
LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# A new build tree uses Ninja: it compiles a stage while the stages it links
# are still compiling (make waits for each whole library), so both cores stay
# busy. An existing tree keeps the generator it was made with.
GENERATOR=()
if [[ ! -f build/CMakeCache.txt ]] && command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${GENERATOR[@]+"${GENERATOR[@]}"}" "${LAUNCHER[@]+"${LAUNCHER[@]}"}" >/dev/null
build_rc=0
cmake --build build -j"$JOBS" "${TARGETS[@]+"${TARGETS[@]}"}" || build_rc=$?
if [[ -n $assets_pid ]]; then
  assets_rc=0
  wait "$assets_pid" || assets_rc=$?
  cat .assets/fetch.log
  ((assets_rc == 0)) || { echo "setup: fetching the face assets failed (exit $assets_rc; log above, also in .assets/fetch.log)" >&2; exit "$assets_rc"; }
fi
((build_rc == 0)) || { echo "setup: the build failed (exit $build_rc)" >&2; exit "$build_rc"; }
echo "setup: built $(pwd)/build/edi-anon${TARGETS[*]:+ (targets: ${TARGETS[*]//--target /})}"
