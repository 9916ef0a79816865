#!/usr/bin/env python3
"""Privacy–utility frontier with both risk axes, two panels sharing the utility
axis: (left) the steering model's in-loop top-1 risk (the authors' protocol),
(right) the held-out top-1 risk of the strongest independent attacker of each
run (or of --attacker NAME). Utility = macro-F1 where the task is labelled,
else agreement with the utility model's prediction on the original. Error bars
are the metrics' 95 % intervals. Colour = operator, marker and line style =
method; snapshot rows (<run>@<T>) are hollow markers joined to their run; the
control (method none) is a black star; a step line per operator and method
is its Pareto frontier (lower risk, higher utility).

Usage: frontier.py SWEEPDIR|RUNDIR|metrics.json|aggregate.json ... [--task gender] [--attacker NAME] [--out DIR]
"""
import argparse

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

import edi_results as er


def pareto(points):
    """Points (risk, utility) not dominated by another (lower risk, higher utility)."""
    best, front = float("-inf"), []
    for r, u in sorted(points, key=lambda p: (p[0], -p[1])):
        if u > best:
            front.append((r, u))
            best = u
    return front


def _points(rows, task, attacker):
    """Per run: name, base run, method, operator, snapshot?, steering Rate, (attacker name, Rate), utility Rate."""
    pts, measures = [], set()
    for m in rows:
        u = er.utility_of(m, task)
        if u is None:
            continue
        measures.add(u[1])
        if attacker:
            r = er.risk_of(m, attacker, "heldout")
            ind = (attacker, r) if r else None
        else:
            ind = er.strongest_attacker(m, "heldout")
        pts.append(dict(name=m["_name"], base=m["_name"].split("@")[0], method=er.method_of(m), op=er.operator_of(m),
                        snap=m["_snapshot"] is not None, steer=er.risk_of(m, "steering", "in_loop"), ind=ind, util=u[0]))
    return pts, measures


def _err(r):
    return [[max(0.0, r["value"] - r["lo"])], [max(0.0, r["hi"] - r["value"])]] if r["lo"] is not None else None


def _panel(ax, pts, key, styles):
    """Draw one risk axis; key picks the point's risk Rate. Returns the attacker names used."""
    used = set()
    groups = {}
    for p in pts:
        r = p["steer"] if key == "steer" else (p["ind"][1] if p["ind"] else None)
        if r is None:
            continue
        if key == "ind":
            used.add(p["ind"][0])
        st, u = styles[p["base"]], p["util"]
        if p["method"] == "none":
            kw = dict(marker="*", ms=14, color="black", mfc="black")
        else:
            kw = dict(marker=st["marker"], ms=7, color=st["color"], mfc="white" if p["snap"] else st["color"], mew=1.5)
        ax.errorbar(r["value"], u["value"], xerr=_err(r), yerr=_err(u), fmt="none", ecolor=kw["color"], elinewidth=0.8,
                    capsize=2, alpha=0.6, zorder=2)
        ax.plot(r["value"], u["value"], ls="none", zorder=3, **kw)
        groups.setdefault((p["method"], p["op"]), []).append((r["value"], u["value"]))
    for (method, op), g in groups.items():
        if method != "none" and len(g) > 1:
            front = pareto(g)
            ax.step([q[0] for q in front], [q[1] for q in front], where="post", color=er.operator_colour(op),
                    ls=er.method_style(method)["ls"], lw=1.2, zorder=1)
    return used


def figure(rows, task=None, attacker=None):
    tasks = er.utility_tasks(rows)
    task = task or (tasks[0] if tasks else None)
    if task is None:
        raise SystemExit("error: no run has a classification utility task (evaluate with --utility TASK=MODEL)")
    pts, measures = _points(rows, task, attacker)
    if not pts:
        raise SystemExit(f"error: no run has {task} utility (macro-F1 or agreement with the original)")
    styles = er.run_styles([(p["base"], p["method"], p["op"]) for p in pts if not p["snap"]] +
                           [(p["base"], p["method"], p["op"]) for p in pts if p["snap"]])
    entries = len({p["base"] for p in pts}) + 2  # the legend stays within the axes' height
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12.5, max(5.0, 0.2 * entries + 1.0)), sharey=True)
    _panel(ax1, pts, "steer", styles)
    used = _panel(ax2, pts, "ind", styles)
    if not used:
        ax2.text(0.5, 0.5, f"no run has a held-out rate of {attacker or 'an independent attacker'}",
                 transform=ax2.transAxes, ha="center", va="center", color="grey")
    guess = rows[0].get("random_guess_percent", {}).get("top1")
    for ax in (ax1, ax2):
        if guess is not None:
            ax.axvline(guess, color="grey", ls=(0, (1, 3)), lw=1)
        ax.grid(alpha=0.3)
        ax.set_xlim(-2, 102)
    model = ", ".join(sorted({er.short_model(m.get("privacy", {}).get("steering", {}).get("model", "?")) for m in rows}))
    umodel = er.short_model(next((u.get("model") for m in rows for u in m.get("utility", []) if u.get("task") == task), "?"))
    ax1.set_xlabel(f"in-loop top-1 risk (%)\nsteering model {model}")
    ax1.set_title("Threat model: in-loop (authors' protocol)", fontsize=10)
    who = ", ".join(sorted(used)) or "none available"
    ax2.set_xlabel("held-out top-1 risk (%)\n" + ("attacker " + who if attacker else "strongest independent attacker per run\n(" + who + ")"))
    ax2.set_title("Threat model: held-out (probes' originals never seen)", fontsize=10)
    ax1.set_ylabel(f"{task}: {' / '.join(sorted(measures))} (%)")
    intervals = sorted({r["interval"] for p in pts for r in (p["steer"], p["util"]) if r})
    fig.suptitle(f"Privacy–utility frontier — utility {task} by {umodel}; 95 % intervals: {', '.join(intervals)}", fontsize=10)
    _legend(fig, ax2, pts, styles, guess)
    fig.tight_layout()
    return fig, task


def _legend(fig, ax, pts, styles, guess):
    hs, seen = [], set()
    for p in pts:
        if p["snap"] or p["base"] in seen:
            continue
        seen.add(p["base"])
        if p["method"] == "none":
            hs.append(Line2D([], [], marker="*", ms=11, color="black", ls="none", label=f"{p['base']} (control: originals)"))
        else:
            st = styles[p["base"]]
            hs.append(Line2D([], [], marker=st["marker"], color=st["color"], ls=st["ls"], label=f"{p['base']} ({p['method']}, {p['op']})"))
    if any(p["snap"] for p in pts):
        hs.append(Line2D([], [], marker="o", mfc="white", color="0.3", ls="none", label="hollow: snapshot <run>@<target>"))
    if guess is not None:
        hs.append(Line2D([], [], color="grey", ls=(0, (1, 3)), label=f"random guess {guess:.1f} %"))
    ax.legend(handles=hs, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False,
              title="run (method, operator); line = Pareto front", title_fontsize=8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--task", default=None, help="utility task (default: the first labelled task, else the first task)")
    ap.add_argument("--attacker", default=None, help="right panel: this attacker instead of each run's strongest")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rows = er.load_metrics_rows(a.inputs)
    fig, task = figure(rows, a.task, a.attacker)
    er.save(fig, a.out or er.default_out(a.inputs[0]), f"frontier-{task}")


if __name__ == "__main__":
    main()
