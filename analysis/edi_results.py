"""Readers shared by the analysis scripts (Debian's python3-h5py, pandas, matplotlib),
and notebook access to a sweep:

    import sys; sys.path.insert(0, "analysis"); import edi_results as er
    df = er.load_sweep("runs/johns-demo")          # one row per run (and <run>@<T>), attacker, threat model, rank
    traj = er.load_trajectories("runs/johns-demo/edi-blur")   # one row per image and pass

A *run* argument is a run directory or its ``results.h5``; results follow
docs/run-directory.md. Metrics come from ``RUNDIR/metrics.json`` (docs/metrics-schema.md,
version 2; version 1 is still read, its `all` rates labelled as mixing threat models),
``RUNDIR/snapshots/<T>/metrics.json`` (rows ``<run>@<T>``) or an ``aggregate.json``.
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
    """Short label of a run for legends: its directory name (`edi-blur`), else method and operator."""
    d = os.path.basename(os.path.dirname(os.path.abspath(res["path"])))
    a = res["attrs"]
    return d or f"{a.get('method', '?')} {a.get('operator', '?')}"


def short_model(ref):
    """A model reference for titles: built-in names as they are, files by their base name."""
    ref = str(ref)
    return os.path.basename(ref) if "/" in ref else ref


def models_of(runs):
    """The steering model(s) of results, for titles."""
    return ", ".join(sorted({short_model(r["attrs"].get("model", "?")) for r in runs}))


# ---------------------------------------------------------------- metrics.json

def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {path}: cannot read JSON ({e})")


def _with_place(m, path):
    """Name a metrics object after its directory: `<run>` or `<run>@<T>` for RUNDIR/snapshots/<T>/metrics.json."""
    d = os.path.dirname(os.path.abspath(path))
    parent = os.path.dirname(d)
    if os.path.basename(parent) == "snapshots":
        m["_name"] = f"{os.path.basename(os.path.dirname(parent))}@{os.path.basename(d)}"
        m["_snapshot"] = os.path.basename(d)
    else:
        m["_name"] = os.path.basename(d)
        m["_snapshot"] = None
    m["_dir"] = d
    return m


def metrics_files(arg):
    """metrics.json files under ARG: a run (and its snapshots), a sweep directory, a metrics.json or an aggregate.json."""
    if os.path.isfile(arg):
        j = _read_json(arg)
        if j.get("format") == "edi-anon-aggregate":
            out = []
            for r in j.get("runs", []):
                d = _resolve_run_dir(r.get("dir", ""), arg)
                if d:
                    out += [f for f in metrics_files(d) if f not in out]
            return out
        if j.get("format") == "edi-anon-metrics":
            return [arg]
        sys.exit(f"error: {arg}: neither metrics.json nor aggregate.json (format {j.get('format')!r})")
    if not os.path.isdir(arg):
        sys.exit(f"error: {arg}: no such file or directory (expected RUNDIR, a sweep directory, metrics.json or aggregate.json)")
    runs = [arg] if os.path.isfile(os.path.join(arg, "metrics.json")) else \
        [os.path.join(arg, d) for d in sorted(os.listdir(arg)) if os.path.isdir(os.path.join(arg, d))]
    out = []
    for r in runs:
        if os.path.isfile(os.path.join(r, "metrics.json")):
            out.append(os.path.join(r, "metrics.json"))
        snaps = os.path.join(r, "snapshots")
        if os.path.isdir(snaps):
            ts = [t for t in os.listdir(snaps) if os.path.isfile(os.path.join(snaps, t, "metrics.json"))]
            out += [os.path.join(snaps, t, "metrics.json") for t in sorted(ts, key=_target_key, reverse=True)]
    return out


def _resolve_run_dir(d, agg_path):
    """A run directory named in aggregate.json: as written (absolute or relative to the current directory),
    relative to the aggregate's directory, or as a sibling of the aggregate's directory (SWEEPDIR/<run>)."""
    base = os.path.dirname(os.path.abspath(agg_path))
    for c in (d, os.path.join(base, d), os.path.join(os.path.dirname(base), os.path.basename(os.path.normpath(d)))):
        if d and os.path.isfile(os.path.join(c, "metrics.json")):
            return c
    return None


def _target_key(t):
    try:
        return float(t)
    except ValueError:
        return float("-inf")


def load_metrics_rows(args):
    """metrics.json objects (with `_name`, `_snapshot`, `_dir`) from run or sweep directories,
    metrics.json or aggregate.json files; the control run (method none) first, snapshots after their run."""
    rows, seen = [], set()
    for arg in args:
        files = metrics_files(arg)
        if not files:
            sys.exit(f"error: {arg}: no metrics.json found (evaluate the runs first: edi-anon evaluate RUNDIR)")
        for f in files:
            key = os.path.realpath(f)
            if key in seen:
                continue
            seen.add(key)
            m = _read_json(f)
            if m.get("format") != "edi-anon-metrics" or m.get("version") not in (1, 2):
                sys.exit(f"error: {f}: expected format edi-anon-metrics version 1 or 2, got {m.get('format')!r} version {m.get('version')!r}")
            rows.append(_with_place(m, f))
    rows.sort(key=lambda m: 0 if method_of(m) == "none" else 1)  # stable: the control first, the rest in input order
    return rows


def method_of(m):
    return m.get("run", {}).get("method", "?")


def operator_of(m):
    return m.get("run", {}).get("operator", "?")


def rate(d):
    """A Rate (v2) or Interval (v1) as a dict value/lo/hi/n/n_identities/interval; None if absent or null."""
    if not isinstance(d, dict) or d.get("value") is None:
        return None
    return {"value": d["value"], "lo": d.get("lo"), "hi": d.get("hi"), "n": d.get("n"),
            "n_identities": d.get("n_identities"), "interval": d.get("method", "image-bootstrap (v1)")}


def privacy_rates(m):
    """(who, kind, model, steered, threat_model, rank, Rate|None, reason) for the steering model and every attacker.
    Version 2 threat models: steering in_loop / heldout, attackers heldout / linkage. Version 1 (cheap reader):
    steering in_loop = top1_in_loop, heldout = the test split; attackers heldout = the test split and
    `all (v1: mixed)` = every image, which mixes both threat models."""
    p, v2 = m.get("privacy", {}), m.get("version") == 2
    st = p.get("steering", {})
    out = []
    for rank in ("top1", "top5"):
        ks = st.get(rank, {})
        if v2:
            pairs = [("in_loop", ks.get("in_loop")), ("heldout", ks.get("heldout"))]
        else:
            pairs = [("in_loop", st.get("top1_in_loop") if rank == "top1" else None), ("heldout", ks.get("test"))]
        out += [("steering", "steering", st.get("model"), True, tm, rank, rate(r), None) for tm, r in pairs]
    for a in p.get("attackers", []):
        models = ("heldout", "linkage") if v2 else ("heldout", "all (v1: mixed)")
        for rank in ("top1", "top5"):
            ks = a.get(rank) or {}
            for tm in models:
                key = {"heldout": "heldout" if v2 else "test", "linkage": "linkage", "all (v1: mixed)": "all"}[tm]
                out.append((a.get("name"), a.get("kind"), a.get("model"), bool(a.get("steered")), tm, rank,
                            rate(ks.get(key)) if a.get("available") else None, a.get("reason")))
    return out


def risk_of(m, which, threat_model=None, rank="top1"):
    """A Rate dict of a run's risk: `steering` (default threat model in_loop) or an attacker name (default heldout)."""
    tm = threat_model or ("in_loop" if which == "steering" else "heldout")
    return next((r for (who, _k, _m, _s, t, k, r, _why) in privacy_rates(m) if who == which and t == tm and k == rank), None)


def strongest_attacker(m, threat_model="heldout", rank="top1"):
    """(name, Rate) of the independent (not steered) attacker with the highest risk; None if none is available."""
    cands = [(who, r) for (who, kind, _m, steered, t, k, r, _why) in privacy_rates(m)
             if kind != "steering" and not steered and t == threat_model and k == rank and r is not None]
    return max(cands, key=lambda c: c[1]["value"]) if cands else None


def utility_of(m, task):
    """(Rate, measure) of a utility task: macro-F1 where labelled, else agreement with the prediction on the original."""
    u = next((u for u in m.get("utility", []) if u.get("task") == task and u.get("kind", "classification") == "classification"), None)
    if u is None or not u.get("available", True):
        return None
    if u.get("labels") and rate(u.get("macro_f1")):
        return rate(u["macro_f1"]), "macro-F1"
    if rate(u.get("agreement_with_original")):
        return rate(u["agreement_with_original"]), "agreement with the original's prediction"
    return None


def utility_tasks(rows):
    """Classification utility tasks of the runs, labelled ones first."""
    seen = {}
    for m in rows:
        for u in m.get("utility", []):
            if u.get("kind", "classification") == "classification" and u.get("task"):
                seen[u["task"]] = seen.get(u["task"], False) or bool(u.get("labels"))
    return sorted(seen, key=lambda t: not seen[t])


# ---------------------------------------------------------------- notebook access

def _run_columns(m):
    r = m.get("run", {})
    snap = m.get("_snapshot")
    return {"run": m["_name"], "base_run": m["_name"].split("@")[0], "snapshot_target": float(snap) if snap else np.nan,
            "method": r.get("method"), "operator": r.get("operator"), "parameters": r.get("description"),
            "matched_to": (r.get("options") or {}).get("matched-to"), "passes": r.get("passes_run"),
            "images": m.get("images"), "identities": m.get("identities"), "steering_model": r.get("model"),
            "metrics_version": m.get("version"), "dir": m["_dir"]}


def _extra_columns(m):
    """Utility (one value per task) and quality of a run, repeated on each of its rows."""
    out = {}
    for u in m.get("utility", []):
        t = u.get("task")
        got = utility_of(m, t) if t else None
        if got:
            out[f"utility_{t}"], out[f"utility_{t}_lo"], out[f"utility_{t}_hi"] = got[0]["value"], got[0]["lo"], got[0]["hi"]
            out[f"utility_{t}_measure"] = got[1]
        elif u.get("kind") == "regression" and rate(u.get("mae_vs_original")):
            out[f"utility_{t}_mae"] = u["mae_vs_original"]["value"]
    q = m.get("quality", {})
    for k in ("psnr_db", "ssim", "changed_share_percent"):
        if rate(q.get(k)):
            out[k] = q[k]["value"]
    return out


def load_sweep(path):
    """One row per run (and snapshot row `<run>@<T>`), privacy measure and threat model of a sweep.

    PATH: a sweep directory (runs are its sub-directories), an aggregate.json, a run directory or a
    metrics.json. Columns: run, base_run, snapshot_target, method, operator, parameters, matched_to, passes,
    images, identities, steering_model, attacker ('steering' or the attacker's name), attacker_kind,
    attacker_model, steered, threat_model (in_loop / heldout / linkage), rank (top1 / top5), value, lo, hi,
    n, n_identities, interval (cluster-bootstrap / clopper-pearson), reason (why an attacker is unavailable),
    then per run utility_<task>{,_lo,_hi,_measure}, utility_<task>_mae, psnr_db, ssim, changed_share_percent.
    Rates are in %; unavailable rates are NaN."""
    recs = []
    for m in load_metrics_rows([path]):
        base, extra = _run_columns(m), _extra_columns(m)
        for who, kind, model, steered, tm, rank, r, why in privacy_rates(m):
            r = r or {}
            recs.append({**base, "attacker": who, "attacker_kind": kind, "attacker_model": model, "steered": steered,
                         "threat_model": tm, "rank": rank, "value": r.get("value", np.nan), "lo": r.get("lo", np.nan),
                         "hi": r.get("hi", np.nan), "n": r.get("n", np.nan), "n_identities": r.get("n_identities", np.nan),
                         "interval": r.get("interval"), "reason": why, **extra})
    df = pd.DataFrame(recs)
    for c in ("value", "lo", "hi", "n", "n_identities"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def load_trajectories(run):
    """Per image and evaluation of a run: id, pass, true_prob, true_rank, top1, changed_share, psnr, linf, plus
    identity and split (0 train, 1 val, 2 test). From RUNDIR/trajectories.csv, else from results.h5."""
    d = run if os.path.isdir(run) else os.path.dirname(os.path.abspath(run))
    csv = os.path.join(d, "trajectories.csv")
    res = load_results(run)
    img = res["images"][["id", "identity", "split"]]
    if os.path.isfile(csv):
        t = pd.read_csv(csv)
        missing = {"id", "pass", "true_prob"} - set(t.columns)
        if missing:
            sys.exit(f"error: {csv}: missing columns {sorted(missing)}")
    else:
        t = res["trajectory"].copy()
        if t.empty:
            return pd.DataFrame(columns=["id", "pass", "true_prob", "identity", "split"])
        t.insert(0, "id", img["id"].to_numpy()[t.pop("image").to_numpy()])
    return t.merge(img, on="id", how="left")


# ---------------------------------------------------------------- plot style

OPERATOR_ORDER = ["blur", "pixelate", "dp-pix", "dp-blur", "noise", "mask", "eyes", "mouth", "eyes-mouth"]
METHOD_STYLE = {"edi": dict(ls="-", marker="o"), "conventional": dict(ls="--", marker="s"),
                "none": dict(ls=":", marker="*")}


def operator_colour(op):
    """One colour per operator, the same in every figure (the control, operator none, is black)."""
    if op in (None, "none", "identity"):
        return "black"
    i = OPERATOR_ORDER.index(op) if op in OPERATOR_ORDER else len(OPERATOR_ORDER) + (sum(map(ord, op)) % 10)
    return plt.get_cmap("tab10")(i % 10)


def method_style(method):
    return METHOD_STYLE.get(method, dict(ls="-.", marker="^"))


def style_legend(ax_or_fig, operators, methods, extra=(), loc="upper left", bbox=(1.01, 1.0)):
    """A legend outside the axes: one entry per operator (colour) and one per method (line style and marker)."""
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=operator_colour(o), lw=6, label=o) for o in operators if o != "none"]
    if "none" in operators:
        handles.append(Line2D([], [], color="black", lw=6, label="none (control)"))
    handles += [Line2D([], [], color="0.3", label=f"method: {m}", **method_style(m)) for m in methods]
    handles += list(extra)
    return ax_or_fig.legend(handles=handles, loc=loc, bbox_to_anchor=bbox, fontsize=8, frameon=False, borderaxespad=0.0)


_MARKERS = {"edi": "o^vDPX", "conventional": "sdp<>h", "none": "*"}


def run_styles(runs):
    """runs: (name, method, operator) → {name: dict(color, ls, marker)}. Colour by operator, line style by
    method; runs that share both get different markers (the legend names each run)."""
    out, seen = {}, {}
    for name, method, op in runs:
        if name in out:
            continue
        k = seen.get((method, op), 0)
        seen[(method, op)] = k + 1
        marks = _MARKERS.get(method, "^")
        out[name] = dict(color=operator_colour(op), ls=method_style(method)["ls"], marker=marks[k % len(marks)])
    return out


def sorted_operators(ops):
    ops = set(ops)
    known = [o for o in OPERATOR_ORDER if o in ops]
    return (["none"] if "none" in ops else []) + known + sorted(ops - set(known) - {"none"})


def sorted_methods(ms):
    return [m for m in ("none", "conventional", "edi") if m in set(ms)] + sorted(set(ms) - {"none", "conventional", "edi"})


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
