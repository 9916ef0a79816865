"""Readers shared by the analysis scripts (Debian's python3-h5py, pandas, matplotlib).

A *run* argument is a run directory or its ``results.h5``; results follow
docs/results-schema.md. Metrics come from ``RUNDIR/metrics.json``
(docs/metrics-schema.md) or an ``aggregate.json`` from ``edi-anon aggregate``.
"""
import json
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def results_path(arg):
    """RUNDIR or RUNDIR/results.h5 → the results file; exits with a one-line error."""
    p = os.path.join(arg, "results.h5") if os.path.isdir(arg) else arg
    if not os.path.isfile(p):
        sys.exit(f"error: {arg}: no results.h5 (expected a run directory or a results file)")
    return p


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def load_results(arg):
    """Everything in results.h5 as plain Python/pandas objects."""
    path = results_path(arg)
    with h5py.File(path, "r") as f:
        if _str(f.attrs.get("format", "")) != "edi-anon-results":
            sys.exit(f"error: {path}: not an edi-anon results file (format attribute)")
        out = {"path": path, "attrs": {k: (_str(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}}
        out["images"] = pd.DataFrame({k: (np.array([_str(x) for x in f["images"][k][()]]) if k == "id" else f["images"][k][()])
                                      for k in f["images"].keys()})
        out["trajectory"] = pd.DataFrame({k: f["trajectory"][k][()] for k in f["trajectory"].keys()}) if "trajectory" in f else pd.DataFrame()
        out["passes"] = pd.DataFrame({k: f["passes"][k][()] for k in f["passes"].keys()}) if "passes" in f else pd.DataFrame()
        out["classes"] = [_str(x) for x in f["classes"][()]] if "classes" in f else []
        ex = {}
        if "examples" in f:
            for k in f["examples"].keys():
                v = f["examples"][k][()]
                ex[k] = [_str(x) for x in v] if k == "id" else v
        out["examples"] = ex
    return out


def label(res):
    """Short label of a run for legends."""
    a = res["attrs"]
    return a.get("run") or f"{a.get('method', '?')} {a.get('operator', '?')}"


def load_metrics_rows(args):
    """Rows (dicts) of evaluated runs from run directories, metrics.json or aggregate.json files."""
    rows = []
    for arg in args:
        if os.path.isdir(arg):
            arg = os.path.join(arg, "metrics.json")
        if not os.path.isfile(arg):
            sys.exit(f"error: {arg}: no such file (expected RUNDIR, RUNDIR/metrics.json or aggregate.json)")
        with open(arg) as fh:
            j = json.load(fh)
        fmt = j.get("format")
        if fmt == "edi-anon-metrics":
            rows.append(j)
        elif fmt == "edi-anon-aggregate":
            for r in j["runs"]:
                mpath = os.path.join(r["dir"], "metrics.json")
                if os.path.isfile(mpath):
                    with open(mpath) as fh:
                        rows.append(json.load(fh))
        else:
            sys.exit(f"error: {arg}: neither metrics.json nor aggregate.json (format {fmt!r})")
    return rows


def risk_of(m, which):
    """(value, lo, hi) of a run's risk: 'steering' or an attacker name; None if not available."""
    if which == "steering":
        iv = m["privacy"]["steering"]["top1"]["all"]
    else:
        a = next((a for a in m["privacy"]["attackers"] if a.get("name") == which and a.get("available")), None)
        if a is None:
            return None
        iv = a["top1"].get("all", a["top1"].get("test"))
    return None if iv is None or iv.get("value") is None else (iv["value"], iv["lo"], iv["hi"])


def utility_of(m, task):
    u = next((u for u in m.get("utility", []) if u.get("task") == task and u.get("labels")), None)
    if u is None:
        return None
    iv = u["macro_f1"]
    return iv["value"], iv["lo"], iv["hi"]


def save(fig, out_dir, stem):
    """Write OUT/stem.png and OUT/stem.pdf; print both paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = os.path.join(out_dir, f"{stem}.{ext}")
        fig.savefig(p, dpi=150, bbox_inches="tight")
        paths.append(p)
    plt.close(fig)
    for p in paths:
        print(p)
    return paths


def default_out(arg):
    d = arg if os.path.isdir(arg) else os.path.dirname(os.path.abspath(arg))
    return os.path.join(d, "figures")
