#!/usr/bin/env python3
"""configs/mtf-paper.sweep.ini is the paper's grid, no more and no less.

Expands the config with `edi-anon sweep --list` in an empty directory (no data,
no models: the plan must show before they exist) and checks, entry by entry,
that the configured values equal the paper's (../shared/docs/edi-anon-spec.md
§E) after the config's one resolution rule: every size parameter of a
conventional method (blur k, pixelation n, DP block b) scaled by 224/1000 and
rounded to the nearest integer, the DP-Blur Gaussian k to the nearest odd
integer; EDI's own parameters (already at 224 px) unchanged. Also: the control
first, the baselines before the EDI runs, each EDI run matched to exactly the
baselines of its operator, the adaptive attacker on.

    usage: mtf_paper_grid.py EDI_ANON_BINARY SOURCE_DIR
"""
import collections
import math
import os
import re
import subprocess
import sys
import tempfile

R = 224 / 1000


def size(v):  # nearest integer, halves up
    return int(math.floor(v * R + 0.5))


def odd(v):  # nearest odd integer
    return 2 * int(math.floor((v * R - 1) / 2 + 0.5)) + 1


def paper_grid():
    """The spec's grid as (method, operator, frozenset of (key, value)) after the rule."""
    g = []
    conv = lambda op, **kw: g.append(("conventional", op, frozenset((k, str(v)) for k, v in kw.items())))
    edi = lambda op, **kw: g.append(("edi", op, frozenset((k, str(v)) for k, v in kw.items())))
    for k in (31, 40, 70, 100):
        conv("blur", k=size(k))
    for n in (15, 25, 50, 75):  # n = 5 -> 1: the identity, i.e. the control run
        conv("pixelate", n=size(n))
    for b, eps in ((16, 0.1), (16, 1), (32, 0.5), (32, 1), (8, 10)):
        conv("dp-pix", m=16, b=size(b), eps=eps)
    for b in (16, 32):
        for eps in (0.1, 0.5, 1):
            conv("dp-blur", m=16, k=odd(99), b=size(b), eps=eps)
    for region in ("eyes", "mouth", "eyes-mouth"):
        conv(region)
    for q in (90, 95):
        for k in (10, 40):
            edi("blur", k=k, q=q)
        for n in (15, 20):
            edi("pixelate", n=n, q=q)
        edi("dp-pix", b=32, m=16, eps=100, q=q, **{"dp-scale": "authors"})
        for k in (99, 9):
            edi("dp-blur", b=32, m=16, eps=100, k=k, q=q, **{"dp-scale": "authors"})
    for q in (95, 99):
        edi("mask", q=q)
    return g


PARAMS = {"k", "n", "b", "m", "eps", "q", "dp-scale"}


def main():
    exe, src = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2])
    config = os.path.join(src, "configs", "mtf-paper.sweep.ini")
    fails = []
    with tempfile.TemporaryDirectory() as work:
        r = subprocess.run([exe, "sweep", "--config", config, "--out", "runs/mtf", "--list"], cwd=work,
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL: sweep --list without data/ and models/ exited {r.returncode}: {r.stdout}{r.stderr}")
            return 1
        if os.listdir(work):
            fails.append(f"--list created {os.listdir(work)}")
    entries, lines = [], r.stdout.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^ *(\d+)  (\S+)$", line)
        if not m:
            continue
        opts = dict(re.match(r"--([^=]+)=(.*)", a).groups() for a in lines[i + 1].split())
        after = None
        if i + 2 < len(lines) and lines[i + 2].strip().startswith("after:"):
            after = [int(x) for x in lines[i + 2].split()[1].split(",")]
        entries.append((int(m.group(1)), m.group(2), opts, after))
    print(f"plan: {len(entries)} entries")

    if not entries or entries[0][1] != "control" or entries[0][2].get("method") != "none":
        fails.append("entry 0 is not the control (method none)")
    got = collections.Counter()
    for _, name, o, _ in entries[1:]:
        method = o.get("method", "edi")
        op = o.get("operator", "blur")
        got[(method, op, frozenset((k, v) for k, v in o.items() if k in PARAMS))] += 1
    want = collections.Counter(paper_grid())
    for key in want - got:
        fails.append(f"missing from the config: {key[0]} {key[1]} {dict(key[2])}")
    for key in got - want:
        fails.append(f"not in the paper's grid: {key[0]} {key[1]} {dict(key[2])}")

    conv = [i for i, _, o, _ in entries if o.get("method") == "conventional"]
    edis = [(i, o, after) for i, _, o, after in entries if o.get("method", "edi") == "edi"]
    if edis and conv and max(conv) > min(i for i, _, _ in edis):
        fails.append("a conventional baseline comes after an EDI run")
    family = lambda op: {"eyes", "mouth", "eyes-mouth", "mask"} if op == "mask" else {op}
    for i, o, after in edis:
        want_after = sorted(j for j, _, oj, _ in entries
                            if oj.get("method") == "conventional" and oj.get("operator") in family(o.get("operator")))
        if o.get("target-risk") != "match" or after != want_after:
            fails.append(f"entry {i}: target-risk {o.get('target-risk')}, after {after}; expected match after {want_after}")
        for k, v in (("stop", "dataset"), ("split", "all"), ("explainer", "gradient"), ("target", "runner-up"),
                     ("select", "entry"), ("model", "models/fr.pt")):
            if o.get(k) != v:
                fails.append(f"entry {i}: {k} = {o.get(k)}, expected {v}")
    with open(config) as f:
        sweep = f.read().split("[run]")[0]
    if not re.search(r"^attackers *=.*\badaptive\b", sweep, re.M):
        fails.append("[sweep] attackers does not include the adaptive attacker")

    for f in fails:
        print("FAIL:", f)
    print(f"{len(want)} paper grid points + the control checked; " + ("PASS" if not fails else f"{len(fails)} failure(s)"))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
