#!/usr/bin/env bash
# Fetch the external assets the face-api port and its tests need into the cache
# directory ${EDI_ASSETS:-<repo>/.assets} (gitignored; never commit its contents):
#   faceapi/  face_recognition_model* and age_gender_model* from the npm tarball
#             @vladmandic/face-api@1.7.15 (MIT), sha256-pinned;
#   human/    faceres.json + faceres.bin (HSE FaceRec graph model) from the npm
#             tarball @vladmandic/human@3.3.6 (MIT), sha256-pinned;
#   johns/    dlib's examples/johns face chips (5 people x 11 JPEGs), taken from
#             Debian's dlib 19.24 source tarball (only the 8.6 MB orig tarball).
# Idempotent: whatever is already present and verified is skipped.
# Needs: npm (registry access), apt-get + apt-helper (Debian archive access), tar,
# bzip2, sha256sum. Root is needed for the private apt lists only as usual for apt.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSETS="${EDI_ASSETS:-$REPO_DIR/.assets}"

FACEAPI_PKG="@vladmandic/face-api@1.7.15"
FACEAPI_TGZ="vladmandic-face-api-1.7.15.tgz"
FACEAPI_TGZ_SHA256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
# Extracted files, checked after extraction and on every later run.
FACEAPI_FILES=(
  "face_recognition_model.bin b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"
  "face_recognition_model-weights_manifest.json cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b"
  "age_gender_model.bin 49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa"
  "age_gender_model-weights_manifest.json 74b60bf3ebf981bf4e661e9cca3a185614e10b25d797118b62e2a68d3ff2569f"
)

HUMAN_PKG="@vladmandic/human@3.3.6"
HUMAN_TGZ="vladmandic-human-3.3.6.tgz"
HUMAN_TGZ_SHA256="425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
HUMAN_FILES=(
  "faceres.json 5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df"
  "faceres.bin 2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"
)

DLIB_SRC_PKG="dlib"
DLIB_ORIG="dlib_19.24+dfsg.orig.tar.bz2"
DLIB_ORIG_SHA256="66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6"
JOHNS_PEOPLE=(John_Salley John_Savage John_Schneider John_Shimkus John_Simm)
JOHNS_PER_PERSON=11

die() { echo "fetch_assets.sh: error: $*" >&2; exit 1; }
log() { echo "fetch_assets.sh: $*" >&2; }
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$ASSETS"
ASSETS="$(cd "$ASSETS" && pwd)"
WORK="$ASSETS/.work"
mkdir -p "$WORK"

# ---------------------------------------------------------------- face-api ---
faceapi_ok() {
  local entry name want
  for entry in "${FACEAPI_FILES[@]}"; do
    name="${entry%% *}"; want="${entry##* }"
    [[ -f "$ASSETS/faceapi/$name" ]] || return 1
    [[ "$(sha256_of "$ASSETS/faceapi/$name")" == "$want" ]] || return 1
  done
}

fetch_faceapi() {
  if faceapi_ok; then
    log "faceapi weights present and verified ($ASSETS/faceapi)"
    return
  fi
  local tgz="$WORK/$FACEAPI_TGZ"
  if [[ ! -f "$tgz" || "$(sha256_of "$tgz")" != "$FACEAPI_TGZ_SHA256" ]]; then
    rm -f "$tgz"
    log "npm pack $FACEAPI_PKG"
    (cd "$WORK" && npm pack --silent "$FACEAPI_PKG" >/dev/null) || die "npm pack $FACEAPI_PKG failed"
    [[ -f "$tgz" ]] || die "npm pack did not produce $tgz"
  fi
  local got; got="$(sha256_of "$tgz")"
  [[ "$got" == "$FACEAPI_TGZ_SHA256" ]] \
    || die "$tgz has sha256 $got, expected $FACEAPI_TGZ_SHA256 (refusing to use it)"
  rm -rf "$WORK/faceapi-x" && mkdir -p "$WORK/faceapi-x" "$ASSETS/faceapi"
  tar -xzf "$tgz" -C "$WORK/faceapi-x" --wildcards \
    'package/model/face_recognition_model*' 'package/model/age_gender_model*'
  local entry name want
  for entry in "${FACEAPI_FILES[@]}"; do
    name="${entry%% *}"; want="${entry##* }"
    [[ -f "$WORK/faceapi-x/package/model/$name" ]] || die "$FACEAPI_TGZ lacks model/$name"
    got="$(sha256_of "$WORK/faceapi-x/package/model/$name")"
    [[ "$got" == "$want" ]] || die "model/$name has sha256 $got, expected $want"
    mv -f "$WORK/faceapi-x/package/model/$name" "$ASSETS/faceapi/$name"
  done
  rm -rf "$WORK/faceapi-x"
  log "faceapi weights installed in $ASSETS/faceapi"
}

# ------------------------------------------------------------------- human ---
human_ok() {
  local entry name want
  for entry in "${HUMAN_FILES[@]}"; do
    name="${entry%% *}"; want="${entry##* }"
    [[ -f "$ASSETS/human/$name" ]] || return 1
    [[ "$(sha256_of "$ASSETS/human/$name")" == "$want" ]] || return 1
  done
}

# Same steps as fetch_faceapi: npm pack the pinned tarball, check its sha256,
# extract only models/faceres.*, check each file, then move it into place.
fetch_human() {
  if human_ok; then
    log "human faceres weights present and verified ($ASSETS/human)"
    return
  fi
  local tgz="$WORK/$HUMAN_TGZ"
  if [[ ! -f "$tgz" || "$(sha256_of "$tgz")" != "$HUMAN_TGZ_SHA256" ]]; then
    rm -f "$tgz"
    log "npm pack $HUMAN_PKG"
    (cd "$WORK" && npm pack --silent "$HUMAN_PKG" >/dev/null) || die "npm pack $HUMAN_PKG failed"
    [[ -f "$tgz" ]] || die "npm pack did not produce $tgz"
  fi
  local got; got="$(sha256_of "$tgz")"
  [[ "$got" == "$HUMAN_TGZ_SHA256" ]] \
    || die "$tgz has sha256 $got, expected $HUMAN_TGZ_SHA256 (refusing to use it)"
  rm -rf "$WORK/human-x" && mkdir -p "$WORK/human-x" "$ASSETS/human"
  tar -xzf "$tgz" -C "$WORK/human-x" 'package/models/faceres.json' 'package/models/faceres.bin'
  local entry name want
  for entry in "${HUMAN_FILES[@]}"; do
    name="${entry%% *}"; want="${entry##* }"
    [[ -f "$WORK/human-x/package/models/$name" ]] || die "$HUMAN_TGZ lacks models/$name"
    got="$(sha256_of "$WORK/human-x/package/models/$name")"
    [[ "$got" == "$want" ]] || die "models/$name has sha256 $got, expected $want"
    mv -f "$WORK/human-x/package/models/$name" "$ASSETS/human/$name"
  done
  rm -rf "$WORK/human-x"
  log "human faceres weights installed in $ASSETS/human"
}

# ------------------------------------------------------------------- johns ---
johns_ok() {
  local p n
  [[ -f "$ASSETS/johns/.verified" ]] || return 1
  for p in "${JOHNS_PEOPLE[@]}"; do
    n=$(find "$ASSETS/johns/$p" -maxdepth 1 -name '*.jpg' 2>/dev/null | wc -l)
    [[ "$n" -eq "$JOHNS_PER_PERSON" ]] || return 1
  done
  # .verified holds the sha256 list of the extracted files.
  (cd "$ASSETS/johns" && sha256sum --quiet --status -c .verified) || return 1
}

download_dlib_orig() {
  local out="$WORK/$DLIB_ORIG"
  if [[ -f "$out" && "$(sha256_of "$out")" == "$DLIB_ORIG_SHA256" ]]; then
    return
  fi
  rm -f "$out"
  # Private deb-src lists built from the machine's own Debian entries, so the
  # system apt configuration is left untouched and no host is hard-coded.
  local aptdir="$WORK/apt-src"
  mkdir -p "$aptdir/lists/partial" "$aptdir/parts"
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$aptdir/parts/src.sources"
  elif [[ -f /etc/apt/sources.list ]]; then
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > "$aptdir/parts/src.list"
  else
    die "no Debian apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)"
  fi
  local opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$aptdir/parts"
              -o "Dir::State::Lists=$aptdir/lists")
  log "apt-get update (private deb-src lists in $aptdir)"
  apt-get -qq "${opts[@]}" update >/dev/null || die "apt-get update for deb-src lists failed"
  local uri
  uri=$(apt-get -qq "${opts[@]}" --print-uris source "$DLIB_SRC_PKG" 2>/dev/null \
          | awk -v f="$DLIB_ORIG" '$2 == f { gsub("\x27", "", $1); print $1; exit }')
  [[ -n "$uri" ]] || die "apt-get --print-uris source $DLIB_SRC_PKG does not list $DLIB_ORIG"
  log "downloading $DLIB_ORIG"
  /usr/lib/apt/apt-helper download-file "$uri" "$out" "SHA256:$DLIB_ORIG_SHA256" >/dev/null 2>&1 \
    || die "apt-helper download-file $uri failed or sha256 mismatch"
  local got; got="$(sha256_of "$out")"
  [[ "$got" == "$DLIB_ORIG_SHA256" ]] || { rm -f "$out"; die "$out has sha256 $got, expected $DLIB_ORIG_SHA256"; }
}

fetch_johns() {
  if johns_ok; then
    log "johns photos present and verified ($ASSETS/johns)"
    return
  fi
  download_dlib_orig
  rm -rf "$WORK/johns-x" "$ASSETS/johns"
  mkdir -p "$WORK/johns-x"
  tar -xjf "$WORK/$DLIB_ORIG" -C "$WORK/johns-x" dlib-19.24+dfsg/examples/johns \
    || die "cannot extract examples/johns from $WORK/$DLIB_ORIG"
  mkdir -p "$ASSETS/johns"
  local p n
  for p in "${JOHNS_PEOPLE[@]}"; do
    n=$(find "$WORK/johns-x/dlib-19.24+dfsg/examples/johns/$p" -maxdepth 1 -name '*.jpg' | wc -l)
    [[ "$n" -eq "$JOHNS_PER_PERSON" ]] || die "$DLIB_ORIG: examples/johns/$p has $n JPEGs, expected $JOHNS_PER_PERSON"
    mkdir -p "$ASSETS/johns/$p"
    cp "$WORK/johns-x/dlib-19.24+dfsg/examples/johns/$p/"*.jpg "$ASSETS/johns/$p/"
  done
  (cd "$ASSETS/johns" && find . -name '*.jpg' | LC_ALL=C sort | xargs sha256sum > .verified)
  rm -rf "$WORK/johns-x"
  log "johns photos installed in $ASSETS/johns"
}

fetch_faceapi
fetch_human
fetch_johns
log "assets ready in $ASSETS"
