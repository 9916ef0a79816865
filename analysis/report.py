#!/usr/bin/env python3
"""One self-contained HTML report of a sweep: the runs table (control first,
threat models, intervals), the matched table(s) from aggregate.json, the plots
and image grids embedded as base64 PNG, per-run provenance and the runs that
failed, are missing, are not finished or not evaluated. No network access:
no external CSS, scripts or fonts.

Usage: report.py SWEEPDIR [--aggregate SWEEPDIR/aggregate/aggregate.json] [--out SWEEPDIR/report.html]
       report.py --aggregate DIR/aggregate.json [--out DIR/report.html]   (runs listed in the aggregate)
"""
import argparse
import base64
import datetime
import html
import io
import json
import os
import sys

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

import edi_results as er
import frontier
import image_grid
import passes_hist
import risk_curves

CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0}tr.control td{background:#fff7d6}tr.snapshot td{background:#f4f8ff}
td.num{text-align:right;white-space:nowrap}td small{color:#666}td.params{max-width:260px;font-size:11px}
div.wide{overflow-x:auto}.note{color:#555;font-size:12px}
img.fig{display:block;max-width:100%;border:1px solid #ddd;margin:.6em 0}
pre{font-size:11px;background:#f7f7f7;padding:.5em;overflow:auto}
"""


def esc(x):
    return html.escape("" if x is None else str(x))


def fmt_rate(r):
    """`v [lo, hi]` of a Rate/Interval dict (1 decimal), `–` where absent."""
    if not isinstance(r, dict) or r.get("value") is None:
        return "–"
    v = f"{r['value']:.1f}"
    return v if r.get("lo") is None or r.get("hi") is None else f"{v} [{r['lo']:.1f}, {r['hi']:.1f}]"


def fmt_cell(v):
    if isinstance(v, dict) and "value" in v:
        return fmt_rate(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return "–" if v is None else str(v)


def _td(c):
    c = str(c)
    if not _numeric(c):
        return f'<td class="params">{esc(c)}</td>' if len(c) > 40 else f"<td>{esc(c)}</td>"
    v, _, rest = c.partition(" ")
    return f'<td class="num">{esc(v)}' + (f"<br><small>{esc(rest)}</small>" if rest else "") + "</td>"


def table(header, rows, classes=None):
    """An HTML table in a horizontally scrolling box; rows are lists of cell strings (escaped here).
    A cell `v [lo, hi]` shows the interval in small type under the value."""
    out = ['<div class="wide"><table><thead><tr>' + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, r in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(_td(c) for c in r) + "</tr>")
    return "\n".join(out) + "</tbody></table></div>"


def _numeric(c):
    s = str(c).split(" ")[0]
    try:
        float(s)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- the runs table

def _attacker_columns(rows):
    """Ordered (attacker, threat model) pairs present in any run (steering first)."""
    cols = []
    for m in rows:
        for who, _k, _m, _s, tm, rank, _r, _why in er.privacy_rates(m):
            if rank == "top1" and (who, tm) not in cols:
                cols.append((who, tm))
    return sorted(cols, key=lambda c: (c[0] != "steering", cols.index(c)))


def runs_table(rows):
    cols = _attacker_columns(rows)
    tasks = [t for t in er.utility_tasks(rows)]
    header = ["run", "method", "operator", "parameters", "passes"] + \
        [f"{'steering' if w == 'steering' else w}: {tm} top-1 %" for w, tm in cols] + \
        [f"{t}: utility %" for t in tasks] + ["PSNR dB", "SSIM"]
    body, classes = [], []
    for m in rows:
        rates = {(w, tm): r for w, _k, _m, _s, tm, rank, r, _why in er.privacy_rates(m) if rank == "top1"}
        us = [er.utility_of(m, t) for t in tasks]
        q = m.get("quality", {})
        body.append([m["_name"], er.method_of(m), er.operator_of(m), m.get("run", {}).get("description", ""),
                     m.get("run", {}).get("passes_run", "")] + [fmt_rate(rates.get(c)) for c in cols] +
                    [fmt_rate(u[0]) + (" (agreement)" if u and u[1].startswith("agreement") else "") if u else "–" for u in us] +
                    [fmt_rate(q.get("psnr_db")), fmt_rate(q.get("ssim"))])
        classes.append("control" if er.method_of(m) == "none" else "snapshot" if m["_snapshot"] else "")
    return table(header, body, classes)


def stats_note(rows):
    """Unit, identities, images, interval method, bootstrap size and seed, from the runs' metrics."""
    m = rows[0]
    p, cfg = m.get("privacy", {}), m.get("config", {})
    unit = p.get("unit", "image (metrics version 1)")
    methods = sorted({r["interval"] for x in rows for *_a, r, _w in er.privacy_rates(x) if r})
    ids = sorted({x.get("identities") for x in rows if x.get("identities") is not None})
    imgs = sorted({x.get("images") for x in rows if x.get("images") is not None})
    return (f"Rates in % of images; 95 % intervals ({', '.join(methods) or '–'}); resampling unit: {unit}; "
            f"identities K = {', '.join(map(str, ids)) or '?'}; images per run n = {', '.join(map(str, imgs)) or '?'}; "
            f"bootstrap B = {p.get('bootstrap', cfg.get('bootstrap', '?'))}, seed = {p.get('seed', cfg.get('seed', '?'))}. "
            f"Random guess (top-1): {m.get('random_guess_percent', {}).get('top1', '?')} %. "
            "Threat models: in_loop = the steering model on every image it steered (the authors' protocol); "
            "heldout = probes whose originals the attacker never saw; linkage = the attacker holds the probes' originals.")


def attackers_note(rows):
    seen, out = set(), []
    for m in rows:
        for a in m.get("privacy", {}).get("attackers", []):
            if a.get("name") in seen:
                continue
            seen.add(a.get("name"))
            tms = "; ".join(f"{k}: {v}" for k, v in (a.get("threat_models") or {}).items())
            out.append([a.get("name"), a.get("kind"), a.get("model"), a.get("trained_on"),
                        "yes" if a.get("available") else f"no: {a.get('reason', '')}", tms or a.get("tested_on", "")])
    return table(["attacker", "kind", "model", "trained / enrolled on", "available", "threat models"], out) if out else ""


# ---------------------------------------------------------------- aggregate.json: matched tables, context

def render_any(title, obj, depth=0):
    """Render a matched-table object of aggregate.json whatever its version: a dict with `rows`, a list of
    row dicts, or a dict of such (one sub-table each); scalar keys are printed above the table."""
    h = f"h{min(3 + depth, 4)}"
    if isinstance(obj, list):
        dicts = [r for r in obj if isinstance(r, dict)]
        keys = []
        for r in dicts:
            keys += [k for k in r if k not in keys]
        return f"<{h}>{esc(title)}</{h}>" + table(keys, [[fmt_cell(r.get(k)) for k in keys] for r in dicts]) if dicts else ""
    if not isinstance(obj, dict):
        return f"<p>{esc(title)}: {esc(fmt_cell(obj))}</p>"
    scal = {k: v for k, v in obj.items() if not isinstance(v, (list, dict)) or (isinstance(v, dict) and "value" in v)}
    out = [f"<{h}>{esc(title)}</{h}>"]
    if scal:
        out.append('<p class="note">' + "; ".join(f"{esc(k)}: {esc(fmt_cell(v))}" for k, v in scal.items()) + "</p>")
    for k, v in obj.items():
        if k in scal:
            continue
        out.append(render_any(k if k != "rows" else "rows", v, depth + 1) if k != "rows" else render_any("", v, depth + 1))
    return "\n".join(out)


# ---------------------------------------------------------------- figures

def img_tag(fig, alt):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return f'<img class="fig" alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def safe_figure(alt, make):
    """A figure as an <img>, or a one-line note where it cannot be drawn (e.g. no multi-pass run)."""
    try:
        return img_tag(make(), alt)
    except SystemExit as e:
        return f'<p class="note">{esc(alt)}: not drawn ({esc(str(e).removeprefix("error: "))})</p>'


def sample_runs(rows):
    runs = [m for m in rows if os.path.isdir(os.path.join(m["_dir"], "images"))]
    if not runs:
        raise SystemExit("no run has an images/ folder")
    return runs


def sample_grid(runs, ids):
    """Rows = the given image ids, columns = each run's written image (control first)."""
    fig, axes = plt.subplots(len(ids), len(runs), figsize=(1.25 * len(runs), 1.45 * len(ids) + 0.4), squeeze=False)
    for j, m in enumerate(runs):
        for i, iid in enumerate(ids):
            ax = axes[i][j]
            p = os.path.join(m["_dir"], "images", os.path.splitext(iid)[0] + ".png")
            if os.path.isfile(p):
                ax.imshow(mpimg.imread(p))
            else:
                ax.text(0.5, 0.5, "no image\n(quarantined?)", ha="center", va="center", fontsize=6, transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(m["_name"].replace("_operator=", " ").replace("@", "\n@"), fontsize=6)
            if j == 0:
                ax.set_ylabel(os.path.splitext(os.path.basename(iid))[0][:14], fontsize=6)
    ctl = any(er.method_of(m) == "none" for m in runs)
    fig.suptitle("Written images per run, one image per identity from the test split" +
                 (" (the control column shows the originals as the steering model sees them)" if ctl else ""), fontsize=8)
    fig.tight_layout()
    return fig


def _sample_ids(rundir, n):
    import pandas as pd
    man = os.path.join(rundir, "outcomes.csv")
    if os.path.isfile(man):
        df = pd.read_csv(man)
        if "split" in df.columns:
            test = df[df["split"].astype(str).isin(["test", "2"])]
            df = test if len(test) else df
        return list(df.groupby("identity").head(1)["id"])[:n] if "identity" in df.columns else list(df["id"])[:n]
    imgs = sorted(os.listdir(os.path.join(rundir, "images")))
    return imgs[:n]


def figures(rows, results):
    multi = [r for r in results if len(r["passes"]) > 1]
    html_parts = []
    for task in er.utility_tasks(rows):
        html_parts.append(safe_figure(f"privacy-utility frontier ({task})", lambda t=task: frontier.figure(rows, t)[0]))
    html_parts.append(safe_figure("risk vs pass", lambda: risk_curves.figure(results)) if results else "")
    html_parts.append(safe_figure("passes to stop", lambda: passes_hist.figure(results)) if results else "")
    grid = "<h2>Image grids</h2>"
    try:
        runs = sample_runs(rows)
        ids = _sample_ids(runs[0]["_dir"], 3)
        for i in range(0, len(runs), 14):  # at most 14 columns per figure
            grid += safe_figure("written images per run", lambda part=runs[i:i + 14]: sample_grid(part, ids))
    except SystemExit as e:
        grid += f'<p class="note">written images per run: not drawn ({esc(e)})</p>'
    with_ex = [r for r in multi if image_grid.has_examples(r)]
    if with_ex:
        grid += safe_figure(f"explanation grid of {er.label(with_ex[0])}", lambda: image_grid.figure(with_ex[0], 4))
    elif multi:
        grid += ('<p class="note">explanation grid: not drawn (no run stored examples in results.h5; '
                 'the runs were made without <code>--examples N</code>, which also embeds the original faces)</p>')
    return "<h2>Plots</h2>" + "\n".join(html_parts), grid


# ---------------------------------------------------------------- provenance and problems

def _first_line(path):
    try:
        with open(path, errors="replace") as fh:
            return fh.readline().strip()
    except OSError as e:
        return f"unreadable ({e.strerror})"


def run_state(d):
    """(state, reason) of a run directory per interfaces §1: finished iff complete.json exists."""
    for marker in ("error.txt", "error.json", "FAILED"):
        if os.path.isfile(os.path.join(d, marker)):
            return "failed", f"{marker}: {_first_line(os.path.join(d, marker))}"
    if not os.path.isfile(os.path.join(d, "complete.json")):
        if os.path.isfile(os.path.join(d, "results.h5")):
            return "no completion marker", "results.h5 present but no complete.json (unfinished, or a runner older than the marker)"
        return "not finished", "no complete.json (running, interrupted or pending)"
    if not os.path.isfile(os.path.join(d, "metrics.json")):
        return "not evaluated", "complete.json present, no metrics.json (edi-anon evaluate RUNDIR)"
    return "ok", ""


def problems(sweep_dir, agg, tabulated):
    """Rows (run, state, in the tables?, reason): aggregate.json's not_included plus every run directory of
    SWEEPDIR that is not finished and evaluated (tabulated: names of the runs in the tables)."""
    out, seen = [], set()
    for r in (agg or {}).get("not_included", []):
        name = os.path.basename(os.path.normpath(r.get("dir", "?")))
        out.append([name, r.get("state", "?"), "yes" if name in tabulated else "no", r.get("reason", "")])
        seen.add(name)
    for name in sorted(os.listdir(sweep_dir)) if sweep_dir else []:
        d = os.path.join(sweep_dir, name)
        if name in seen or not os.path.isdir(d) or not _looks_like_run(d):
            continue
        state, why = run_state(d)
        if state != "ok":
            out.append([name, state, "yes" if name in tabulated else "no", why])
    return out


def _looks_like_run(d):
    return any(os.path.exists(os.path.join(d, f)) for f in
               ("manifest.csv", "provenance.json", "checkpoints", "error.txt", "error.json", "FAILED", "complete.json"))


def provenance(rows, results_by_dir):
    """One <details> per run: code version, config / manifest / model hashes, host, dates, the full config."""
    out = []
    for m in rows:
        p = os.path.join(m["_dir"], "provenance.json")
        pj = json.load(open(p)) if os.path.isfile(p) else {}
        res = results_by_dir.get(os.path.realpath(m["_dir"]), {})
        model = pj.get("model") or {}
        facts = [("code version (run)", pj.get("code_version") or res.get("code_version")),
                 ("code version (evaluate)", m.get("code_version")),
                 ("config sha256", pj.get("config_sha256") or res.get("config_sha256")),
                 ("manifest sha256", pj.get("manifest_sha256") or m.get("run", {}).get("manifest_hash")),
                 ("steering model", f"{model.get('reference', m.get('run', {}).get('model', '?'))} sha256 {model.get('sha256', res.get('model_sha256', '?'))}"),
                 ("data root", pj.get("data_root")), ("host", pj.get("host") or m.get("host")),
                 ("run created", pj.get("created")), ("evaluated", m.get("created")),
                 ("matched-to", (m.get("run", {}).get("options") or {}).get("matched-to"))]
        snap = os.path.join(m["_dir"], "snapshot.json")
        if os.path.isfile(snap):
            facts.append(("snapshot", open(snap).read().strip()))
        rows_html = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts if v)
        cfg = pj.get("config") or m.get("run", {}).get("options") or {}
        out.append(f"<details><summary>{esc(m['_name'])} — {esc(m.get('run', {}).get('description', ''))}</summary>"
                   f"<table>{rows_html}</table><pre>{esc(json.dumps(cfg, indent=1, sort_keys=True))}</pre></details>")
    return "\n".join(out)


# ---------------------------------------------------------------- main

def build(sweep_dir, agg_path):
    agg = er._read_json(agg_path) if agg_path and os.path.isfile(agg_path) else None
    if agg is not None and agg.get("format") != "edi-anon-aggregate":
        sys.exit(f"error: {agg_path}: not an aggregate.json (format {agg.get('format')!r})")
    rows = er.load_metrics_rows([agg_path if agg else sweep_dir])
    results, results_by_dir = [], {}
    for m in rows:
        if m["_snapshot"] is None and os.path.isfile(os.path.join(m["_dir"], "results.h5")):
            res = er.load_results(m["_dir"])
            results.append(res)
            results_by_dir[os.path.realpath(m["_dir"])] = res["attrs"]
    plots, grids = figures(rows, results)
    probs = problems(sweep_dir, agg, {m["_name"] for m in rows})
    ctx = (agg or {}).get("context", {})
    where = os.path.abspath(sweep_dir or agg_path)
    parts = [f"<h1>edi-anon sweep report: {esc(os.path.basename(sweep_dir and os.path.abspath(sweep_dir) or os.path.dirname(where)))}</h1>",
             f'<p class="note">Written {datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")} from '
             f"{esc(where)}; {len(rows)} evaluated row(s); {len(probs)} run(s) failed, missing, "
             "not finished or not evaluated (listed at the end).</p>",
             "<h2>Runs</h2>", f'<p class="note">{esc(stats_note(rows))}</p>', runs_table(rows),
             "<h3>Independent attackers</h3>", attackers_note(rows)]
    if agg is not None:
        parts.append("<h2>Matched comparisons (from aggregate.json)</h2>")
        parts.append(render_any("matched", agg.get("matched", {})) if agg.get("matched") else "<p>no matched table</p>")
        for k, v in agg.items():
            if k.startswith("matched") and k != "matched":
                parts.append(render_any(k, v))
        parts.append("<h3>Context</h3>" + table(["key", "value"], [[k, fmt_cell(v)] for k, v in ctx.items()]))
    else:
        parts.append(f'<p class="note">No aggregate.json at {esc(agg_path)}: no matched table (run edi-anon aggregate).</p>')
    parts += [plots, grids, "<h2>Runs failed, missing, not finished or not evaluated</h2>",
              table(["run", "state", "in the tables above", "reason"], probs) if probs else "<p>none: every run is finished and evaluated.</p>",
              "<h2>Provenance</h2>", provenance(rows, results_by_dir)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>edi-anon report</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", nargs="?", help="sweep directory (its run directories are checked for failed or "
                    "unfinished runs); may be left out with --aggregate")
    ap.add_argument("--aggregate", default=None, help="aggregate.json (default SWEEPDIR/aggregate/aggregate.json)")
    ap.add_argument("--out", default=None, help="output file (default SWEEPDIR/report.html)")
    a = ap.parse_args()
    if a.sweep_dir is None and a.aggregate is None:
        sys.exit("error: give a sweep directory, or --aggregate FILE (an aggregate.json)")
    if a.sweep_dir is not None and not os.path.isdir(a.sweep_dir):
        sys.exit(f"error: {a.sweep_dir}: not a directory (expected a sweep directory)")
    agg = a.aggregate or os.path.join(a.sweep_dir, "aggregate", "aggregate.json")
    if a.aggregate and not os.path.isfile(a.aggregate):
        sys.exit(f"error: {a.aggregate}: no such file (expected an aggregate.json)")
    out = a.out or os.path.join(a.sweep_dir or os.path.dirname(os.path.abspath(agg)), "report.html")
    page = build(a.sweep_dir, agg)
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
