#!/usr/bin/env python3
"""Privacy–utility frontier per method: risk (%) against utility macro-F1 (%),
95% bootstrap intervals as error bars, the Pareto frontier of each method as a
step line (lower risk and higher utility are better).

Usage: frontier.py RUNDIR|metrics.json|aggregate.json ... [--task gender] [--risk steering|lbph|faceapi|adaptive] [--out DIR]
"""
import argparse

import matplotlib.pyplot as plt

import edi_results as er


def pareto(points):
    """Points (risk, utility) not dominated by another (lower risk, higher utility)."""
    best, front = -1.0, []
    for r, u in sorted(points, key=lambda p: (p[0], -p[1])):
        if u > best:
            front.append((r, u))
            best = u
    return front


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--task", default=None, help="utility task (default: the first labelled task)")
    ap.add_argument("--risk", default="steering", help="steering or an attacker name")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    rows = er.load_metrics_rows(a.inputs)
    task = a.task
    if task is None:
        task = next((u["task"] for m in rows for u in m.get("utility", []) if u.get("labels")), None)
    if task is None:
        raise SystemExit("error: no run has a labelled utility task (evaluate with --utility TASK=MODEL)")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    by_method = {}
    for m in rows:
        r, u = er.risk_of(m, a.risk), er.utility_of(m, task)
        if r is None or u is None:
            continue
        key = f"{m['run']['method']} {m['run']['operator']}"
        by_method.setdefault(key, []).append((r, u, m["run"].get("description", "")))
    if not by_method:
        raise SystemExit(f"error: no run has both {a.risk} risk and {task} utility")
    for i, (key, pts) in enumerate(sorted(by_method.items())):
        color = f"C{i}"
        marker = "o" if key.startswith("edi") else "s"
        for (r, u, _d) in pts:
            ax.errorbar(r[0], u[0], xerr=[[r[0] - r[1]], [r[2] - r[0]]], yerr=[[u[0] - u[1]], [u[2] - u[0]]],
                        fmt=marker, color=color, ms=5, capsize=2, alpha=0.85)
        front = pareto([(r[0], u[0]) for r, u, _ in pts])
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color=color, label=f"{key} ({len(pts)})")
    guess = rows[0].get("random_guess_percent", {}).get("top1")
    if guess is not None:
        ax.axvline(guess, color="grey", ls=":", lw=1, label=f"random guess {guess:.2f}%")
    ax.set_xlabel(f"re-identification risk, {a.risk} top-1 (%)")
    ax.set_ylabel(f"{task} macro-F1 (%)")
    ax.set_title("Privacy–utility frontier (95% bootstrap intervals)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    er.save(fig, a.out or er.default_out(a.inputs[0]), f"frontier-{task}-{a.risk}")


if __name__ == "__main__":
    main()
