#!/usr/bin/env bash
# Imported splits through the real binary (issue 13, item 6): every command
# that takes --labels takes --split-file; a released train/test list is used as
# it is (manifest, train and run agree with it); a bad file is one clear line.
#   usage: split_import.sh EDI_ANON_BINARY
set -euo pipefail
EDI=$(realpath "$1")
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
export OMP_WAIT_POLICY=passive
fail() { echo "FAIL: $*"; exit 1; }

for cmd in manifest train run bench; do
  $EDI $cmd --help > help.txt
  grep -q -- "--split-file" help.txt || fail "$cmd --help has no --split-file"
  grep -q -- "--max-megapixels" help.txt || fail "$cmd --help has no --max-megapixels"
done

$EDI synth --identities 3 --per-identity 6 --size 32 --seed 4 --out data >/dev/null
# The "released" split: images 0-3 of each identity train, 4 val, 5 test.
{
  echo "image,split"
  for i in 0 1 2; do
    for k in 0 1 2 3 4 5; do
      s=train; [[ $k == 4 ]] && s=val; [[ $k == 5 ]] && s=test
      echo "id000$i/id000${i}_000$k.png,$s"
    done
  done
} > split.csv

$EDI manifest --data data --split-file split.csv --out m > m.log || { cat m.log; fail "manifest with --split-file"; }
grep -q "split (imported from split.csv): train 12, val 3, test 3" m.log || { cat m.log; fail "split summary"; }
# The manifest holds exactly the file's assignment.
diff <(tail -n +2 split.csv | sort) \
     <(awk -F, 'NR > 2 { print $1 "," $NF }' m/manifest.csv | sort) || fail "manifest splits differ from split.csv"

# train and run read the same split.
$EDI train --data data --split-file split.csv --size 32 --epochs 1 --out fr.pt > t.log || { cat t.log; fail "train"; }
grep -q "data: 12 train, 3 val, 3 test images" t.log || { cat t.log; fail "train did not use the imported split"; }
$EDI run --data data --split-file split.csv --model fr.pt --method conventional --operator blur --k 3 --split test \
  --out r --threads 1 > r.log 2>&1 || { cat r.log; fail "run --split test"; }
[[ $(tail -n +2 r/outcomes.csv | wc -l) -eq 3 ]] || fail "run --split test: expected the 3 imported test images"
for k in 0 1 2; do grep -q "^id000$k/id000${k}_0005.png," r/outcomes.csv || fail "test image of id000$k missing"; done

# A sweep takes it in [run], like --labels.
printf '[sweep]\nout = sw\n[run]\ndata = data\nsplit-file = split.csv\nmodel = fr.pt\nmethod = conventional\n[grid.conv]\noperator = blur\nk = 3\n' > sw.ini
$EDI sweep --config sw.ini --list > list.txt || { cat list.txt; fail "sweep with split-file in [run]"; }
grep -q -- "--split-file=split.csv" list.txt || { cat list.txt; fail "sweep plan lacks --split-file"; }

# Bad input: one clear line each, nothing written.
check() {  # EXPECTED_RC EXPECTED_TEXT ARGS...
  local rc=0 want=$1 text=$2
  shift 2
  $EDI manifest --data data --out bad "$@" > bad.log 2>&1 || rc=$?
  [[ $rc -eq $want ]] || { cat bad.log; fail "$*: expected exit $want, got $rc"; }
  [[ $(wc -l < bad.log) -eq 1 ]] || { cat bad.log; fail "$*: expected one line"; }
  grep -qF -- "$text" bad.log || { cat bad.log; fail "$*: expected '$text'"; }
  [[ ! -e bad/manifest.csv ]] || fail "$*: a manifest was written"
}
check 2 "--split-file nope.csv: expected an existing file" --split-file nope.csv
sed 's#^id0001/id0001_0002.png,train#id0001/id0001_0002.png,holdout#' split.csv > s1.csv
check 3 "s1.csv:10: split 'holdout': expected train, val or test" --split-file s1.csv
{ cat split.csv; echo "id0009/x.png,train"; } > s2.csv
check 3 "s2.csv:20: image 'id0009/x.png' is not in" --split-file s2.csv
grep -v '^id0002/id0002_0003.png' split.csv > s3.csv
check 3 "s3.csv: 1 image(s) of the data set have no split, e.g. 'id0002/id0002_0003.png'" --split-file s3.csv
check 2 "--max-megapixels 0: expected a number in [0.001, 2000]" --max-megapixels 0

# A split column in the labels CSV instead of a file.
awk -F, 'NR == 1 { print $0 ",split"; next } { print $0 "," ($1 == "id0002" ? "test" : "train") }' data/labels.csv > labels-split.csv
$EDI manifest --data data --labels labels-split.csv --out m2 > m2.log || { cat m2.log; fail "labels with a split column"; }
grep -q "split (imported from the labels' split column): train 12, val 0, test 6" m2.log || { cat m2.log; fail "labels split summary"; }
echo "split import: ok"
