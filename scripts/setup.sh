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
  cmake g++ make pkg-config git ca-certificates
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

if [[ -x scripts/fetch_assets.sh ]]; then
  scripts/fetch_assets.sh
fi

JOBS=${EDI_BUILD_JOBS:-$(nproc)}
# A compiler cache, when one is installed, makes rebuilds of other checkouts cheap.
LAUNCHER=()
if command -v ccache >/dev/null; then LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${LAUNCHER[@]+"${LAUNCHER[@]}"}" >/dev/null
cmake --build build -j"$JOBS" "${TARGETS[@]+"${TARGETS[@]}"}"
echo "setup: built $(pwd)/build/edi-anon${TARGETS[*]:+ (targets: ${TARGETS[*]//--target /})}"
