#!/usr/bin/python3
"""compare_runs.py REF RUN: the run directories' results.h5 (every dataset and
attribute), summary.json and checkpoints/run.json are the same but for the
fields that measure time or name the process run: results.h5 /passes/seconds
and its attributes created, host and ranks; summary.json date, host, ranks,
timing and each pass's seconds; run.json each pass's seconds and rate and the
checkpoint policy (measured commit costs) and schedule. Prints what differs; exit 1 if
anything does. (outcomes.csv, trajectories.csv and the PNGs are compared byte
for byte by lib.sh's same_outputs.)"""
import json
import sys

import h5py
import numpy as np

H5_SKIP_ATTRS = {"created", "host", "ranks"}
H5_SKIP_DATASETS = {"passes/seconds"}
SUMMARY_SKIP = {"date", "host", "ranks", "timing"}
PASS_TIMING = {"seconds", "rate", "image_passes_per_s"}


def h5_items(path):
    items = {}
    with h5py.File(path, "r") as f:
        for k, v in f.attrs.items():
            if k not in H5_SKIP_ATTRS:
                items["@" + k] = v

        def visit(name, obj):
            for k, v in obj.attrs.items():
                items[name + "@" + k] = v
            if isinstance(obj, h5py.Dataset) and name not in H5_SKIP_DATASETS:
                items[name] = obj[()]

        f.visititems(visit)
    return items


def same_value(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


def strip_passes(passes):
    return [{k: v for k, v in p.items() if k not in PASS_TIMING} for p in passes]


def main(ref, run):
    bad = []
    a, b = h5_items(ref + "/results.h5"), h5_items(run + "/results.h5")
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            bad.append("results.h5 %s only in %s" % (k, "the reference" if k in a else "the run"))
        elif not same_value(a[k], b[k]):
            bad.append("results.h5 %s differs" % k)
    sa, sb = (json.load(open(d + "/summary.json")) for d in (ref, run))
    for s in (sa, sb):
        for k in SUMMARY_SKIP:
            s.pop(k, None)
        s["passes"] = strip_passes(s["passes"])
    if sa != sb:
        keys = sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))
        bad.append("summary.json differs in %s" % keys)
    ra, rb = (json.load(open(d + "/checkpoints/run.json")) for d in (ref, run))
    for r in (ra, rb):
        r.pop("checkpoint_policy", None)
        r.pop("schedule", None)
        r["passes"] = strip_passes(r["passes"])
    if ra != rb:
        bad.append("checkpoints/run.json differs (passes %s vs %s)" % ([p["pass"] for p in ra["passes"]], [p["pass"] for p in rb["passes"]]))
    for line in bad:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
