#!/usr/bin/env bash
# Hostile data sets through the real binary (issue 10, items 1 and 7):
#  links   - a symlinked identity folder and a file symlink that leave the data
#            root (which lies deeper than the run directory), a dangling link, a
#            link loop and a second link to one file: the run writes nothing
#            outside its directory, no id has a '..', each link is quarantined
#            with its reason; a manifest.csv with a '..' id is refused.
#  bombs   - under `ulimit -v 4G`: a 30000x30000 PNG, a 16x1,048,576 PNG, a
#            2.5 GiB sparse file and a FIFO are each quarantined with their
#            reason and the scan completes.
#   usage: hostile_input.sh EDI_ANON_BINARY SOURCE_DIR links|bombs
set -euo pipefail
EDI=$(realpath "$1")
SRC=$(realpath "$2")
CASE=$3
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
export OMP_WAIT_POLICY=passive
fail() { echo "FAIL: $*"; exit 1; }
expect_reason() {  # FILE ID TEXT: the quarantine file has ID with a reason containing TEXT
  grep -F -- "$2," "$1" | grep -qF -- "$3" || { cat "$1"; fail "$2 not quarantined with '$3'"; }
}

case_links() {
  # The run directory is W/run; the data root is three levels deeper.
  local data=$W/deep/a/b/data
  $EDI synth --identities 3 --per-identity 5 --size 32 --seed 2 --out "$data" >/dev/null
  rm -f "$data/labels.csv"
  mkdir -p "$W/elsewhere/photos"
  cp "$data/id0000/id0000_0000.png" "$W/elsewhere/photos/b.png"
  cp "$data/id0001/id0001_0000.png" "$W/elsewhere/photos/c.png"
  ln -s "$W/elsewhere/photos" "$data/idlink"                     # identity folder leaving the root
  ln -s ../../../../../elsewhere/photos/c.png "$data/id0000/c.png"  # file symlink leaving the root
  ln -s "$data/id0001/id0001_0001.png" "$data/id0001/again.png"  # second link to one file
  ln -s nowhere.png "$data/id0002/dangling.png"
  ln -s loop2 "$data/id0002/loop1"; ln -s loop1 "$data/id0002/loop2"
  ln -s .. "$data/id0002/up"                                     # folder loop inside the root
  (cd "$W/elsewhere" && find . -type f -exec sha256sum {} + | sort) > "$W/before.txt"
  touch "$W/start"

  $EDI train --data "$data" --labels none --size 32 --epochs 1 --out "$W/m/fr.pt" >/dev/null
  # An identity model's sidecar lists people: owner-only.
  [[ $(stat -c %a "$W/m/fr.pt.json") == 600 ]] || fail "identity sidecar mode $(stat -c %a "$W/m/fr.pt.json"), expected 600"
  $EDI run --data "$data" --labels none --model "$W/m/fr.pt" --method conventional --operator blur --k 3 \
    --out "$W/run" --threads 1 > run.log 2>&1 || { cat run.log; fail "run failed"; }

  # Nothing written outside the run directory (the model directory aside).
  local stray
  stray=$(find "$W" -newer "$W/start" -type f ! -path "$W/run/*" ! -path "$W/m/*" ! -name run.log || true)
  [[ -z $stray ]] || fail "files written outside the run directory: $stray"
  (cd "$W/elsewhere" && find . -type f -exec sha256sum {} + | sort) > "$W/after.txt"
  cmp -s "$W/before.txt" "$W/after.txt" || fail "the link targets changed"
  ! grep -q '\.\.' "$W/run/manifest.csv" || fail "an id with '..' in the manifest"
  [[ $(find "$W/run/images" -name '*.png' | wc -l) -eq 15 ]] || fail "expected 15 images: $(find "$W/run/images" -name '*.png')"
  local q=$W/run/quarantine-scan.csv
  expect_reason "$q" idlink "symlink leaves the data root"
  expect_reason "$q" id0000/c.png "symlink leaves the data root"
  expect_reason "$q" id0001/again.png "same file as id0001/id0001_0001.png"
  expect_reason "$q" id0002/dangling.png "dangling symlink"
  expect_reason "$q" id0002/loop1 "symlink loop"
  expect_reason "$q" id0002/up "symlink loop"

  # A run directory whose manifest.csv has an id that climbs out is refused.
  cp -a "$W/run" "$W/run2"
  sed 's#^id0000/id0000_0001.png,#../../x.png,#' "$W/run/manifest.csv" > "$W/run2/manifest.csv"
  grep -q '^\.\./\.\./x.png,' "$W/run2/manifest.csv" || fail "test set-up: id not replaced"
  set +e
  $EDI run --data "$data" --labels none --model "$W/m/fr.pt" --method conventional --operator blur --k 3 \
    --out "$W/run2" --threads 1 > run2.log 2>&1
  local rc=$?
  set -e
  [[ $rc -eq 3 ]] || { cat run2.log; fail "a '..' id in manifest.csv: expected exit 3, got $rc"; }
  grep -q "image id '../../x.png': '..' component" run2.log || { cat run2.log; fail "no clear message"; }
  [[ ! -e $W/x.png ]] || fail "x.png written outside"
  echo "links: ok"
}

case_bombs() {
  local data=$W/data
  $EDI synth --identities 2 --per-identity 3 --size 32 --out "$data" >/dev/null
  /usr/bin/python3 - "$data/id0000" <<'EOF'
import struct, sys, zlib
def png(path, width, height, colour_type, bit_depth, row_bytes):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + row_bytes)  # filter byte + zero pixels
    body = []
    block = row * 1024
    for _ in range(height // 1024):
        body.append(comp.compress(block))
    body.append(comp.compress(row * (height % 1024)))
    body.append(comp.flush())
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)))
        f.write(chunk(b"IDAT", b"".join(body)))
        f.write(chunk(b"IEND", b""))
out = sys.argv[1]
png(out + "/huge.png", 30000, 30000, 0, 8, 30000)          # 900 MP grey
png(out + "/strip.png", 16, 1048576, 2, 8, 48)             # 16 x 1,048,576 RGB
EOF
  truncate -s 2560M "$data/id0001/sparse.jpg"
  mkfifo "$data/id0001/pipe.png"
  ls -l "$data/id0000/huge.png" "$data/id0000/strip.png" | awk '{print "  " $5 " bytes  " $9}'
  ( ulimit -v 4194304; $EDI manifest --data "$data" --out "$W/scan" --threads 2 ) > scan.log 2>&1 \
    || { cat scan.log; fail "the scan did not complete under ulimit -v 4G"; }
  local q=$W/scan/quarantine.csv
  expect_reason "$q" id0000/huge.png "too many pixels: 30000x30000"
  expect_reason "$q" id0000/strip.png "aspect ratio too extreme: 16x1048576"
  expect_reason "$q" id0001/sparse.jpg "file too large: 2684354560 bytes"
  expect_reason "$q" id0001/pipe.png "not a regular file: a FIFO"
  grep -q "6 images" scan.log || { cat scan.log; fail "the 6 good images are not in the manifest"; }
  # Raising the pixel cap is an option; the aspect cap still holds the strip.
  ( ulimit -v 4194304; $EDI manifest --data "$data" --out "$W/scan2" --threads 2 --max-megapixels 1000 ) > scan2.log 2>&1 \
    || { cat scan2.log; fail "the scan with --max-megapixels 1000 did not complete under ulimit -v 4G"; }
  ! grep -q "id0000/huge.png" "$W/scan2/quarantine.csv" || { cat "$W/scan2/quarantine.csv"; fail "huge.png still quarantined"; }
  expect_reason "$W/scan2/quarantine.csv" id0000/strip.png "aspect ratio too extreme"
  echo "bombs: ok"
}

case "$CASE" in
  links) case_links ;;
  bombs) case_bombs ;;
  *) fail "unknown case $CASE" ;;
esac
