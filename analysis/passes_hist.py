#!/usr/bin/env python3
"""Passes to stop: one small panel per run with the histogram of
/images/stop_pass (the pass whose evaluation by the steering model stopped the
image) and the images that never stopped (capped or stalled) as a hatched
bar. Colour = operator. Conventional baselines and the control have a single
evaluation, so only multi-pass runs are drawn (the others are named below).

Usage: passes_hist.py RUNDIR|results.h5 ... [--out DIR]
"""
import argparse
import math

import matplotlib.pyplot as plt
import numpy as np

import edi_results as er


def _panel(ax, res, top):
    sp = res["images"]["stop_pass"].to_numpy()
    colour = er.operator_colour(res["attrs"].get("operator"))
    counts = np.array([(sp == b).sum() for b in range(top + 1)])
    ax.bar(np.arange(top + 1), counts, color=colour, width=0.8)
    never = int((sp < 0).sum())
    ax.bar([top + 1.5], [never], color="white", edgecolor=colour, hatch="///", width=0.8)
    ax.set_title(f"{er.label(res)}  (n = {len(sp)}, never = {never})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ticks = list(range(0, top + 1, max(1, (top + 1) // 6))) + [top + 1.5]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks[:-1]] + ["never"], fontsize=8)


def figure(runs):
    """Small multiples for loaded results; raises SystemExit when no run has more than one pass."""
    multi = [r for r in runs if len(r["passes"]) > 1]
    single = [er.label(r) for r in runs if len(r["passes"]) <= 1]
    if not multi:
        raise SystemExit("error: no multi-pass run among the inputs (passes to stop needs EDI runs)")
    top = max(int(r["images"]["stop_pass"].max()) for r in multi)
    top = max(top, max(int(r["passes"]["pass"].max()) for r in multi))
    cols = min(3, len(multi))
    rows = math.ceil(len(multi) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows + 0.6), squeeze=False, sharex=True, sharey=True)
    for ax, res in zip(axes.flat, multi):
        _panel(ax, res, top)
    for ax in list(axes.flat)[len(multi):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("pass that stopped the image")
    for ax in axes[:, 0]:
        ax.set_ylabel("images")
    fig.suptitle(f"Passes to stop — steering model {er.models_of(multi)} (in-loop); colour = operator", fontsize=10)
    if single:
        fig.text(0.01, 0.005, "single-evaluation runs not drawn: " + ", ".join(single), fontsize=7, color="0.35", wrap=True)
    fig.tight_layout(rect=(0, 0.03 if single else 0, 1, 1))
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    runs = [er.load_results(x) for x in a.inputs]
    er.save(figure(runs), a.out or er.default_out(a.inputs[0]), "passes-to-stop")


if __name__ == "__main__":
    main()
