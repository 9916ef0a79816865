#!/usr/bin/env bash
# configs/transfer.sweep.ini expands as README "Beyond the paper" says: the
# control, five EDI variants that differ from the paper's rule in their steering
# options only (ensemble, EOT, both, feature target), and the conventional
# baseline, all with the same operator, selection and dataset rule.
#   usage: transfer_plan.sh EDI_ANON_BINARY SOURCE_DIR
set -euo pipefail
EDI=$1 SRC=$2
plan=$(cd "$SRC" && "$EDI" sweep --config configs/transfer.sweep.ini --out "$(mktemp -d)/t" --list)
/usr/bin/python3 - "$plan" <<'PY'
import re, sys
plan = sys.argv[1]
entries = re.findall(r"^\s+\d+\s+(\S+)\n\s+(--.*)$", plan, re.M)
names = [n for n, _ in entries]
want = ["control", "edi-paper", "edi-ensemble", "edi-eot", "edi-ens-eot", "edi-feature", "conv-dp-pix"]
assert names == want, ("entries", names)
opts = {n: dict(re.findall(r"--([\w-]+)=(\S+)", o)) for n, o in entries}
common = {"operator": "dp-pix", "b": "10", "m": "16", "eps": "1", "q": "80", "stop": "dataset", "target-risk": "20",
          "max-passes": "12", "data": ".assets/johns", "seed": "0", "snapshot-psnr": "18"}
for n in names:
    for k, v in common.items():
        assert opts[n].get(k) == v, (n, k, opts[n].get(k))
paper = opts["edi-paper"]
steering = {"model", "eot", "target", "method"}
ensemble = "faceapi:recognition,runs/johns-demo-models/steer-cnn.pt"
expect = {"edi-paper": {}, "edi-ensemble": {"model": ensemble}, "edi-eot": {"eot": "2"},
          "edi-ens-eot": {"model": ensemble, "eot": "2"}, "edi-feature": {"target": "feature"},
          "conv-dp-pix": {"method": "conventional"}, "control": {"method": "none"}}
for n, diff in expect.items():
    got = {k: v for k, v in opts[n].items() if paper.get(k) != v}
    assert got == diff, (n, got, diff)
    assert set(opts[n]) - set(paper) <= steering, (n, set(opts[n]) - set(paper))
print("transfer plan: %d entries, each differing from edi-paper in its steering options only" % len(names))
PY
