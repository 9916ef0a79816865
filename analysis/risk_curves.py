#!/usr/bin/env python3
"""Risk against pass: the dataset-level identified share after each pass
(/passes; the steering model, in-loop: the authors' protocol) and, per image,
the steering model's probability of the true identity (median and quartiles).
EDI runs are lines; a conventional baseline (one evaluation) and the control
are horizontal reference lines at their risk. Colour = operator, line style =
method; the legend is outside the axes.

Usage: risk_curves.py RUNDIR|results.h5 ... [--out DIR]
"""
import argparse

import matplotlib.pyplot as plt

import edi_results as er


def _curve(ax, p, st, lab, multi_pass, k):
    if multi_pass:
        ax.plot(p["pass"], p["risk_percent"], color=st["color"], ls=st["ls"], marker=st["marker"], ms=4, lw=1.6, label=lab)
    else:  # one evaluation: a reference level across the axes; the k-th such line's dashes are shifted so that
        # up to three baselines at the same level (e.g. 100 %) stay visible side by side
        dashes = (3 * (k % 3), (3, 6)) if st["ls"] == "--" else st["ls"]
        ax.axhline(float(p["risk_percent"].iloc[-1]), color=st["color"], ls=dashes, lw=1.6, label=lab)


def figure(runs):
    """The figure for loaded results (er.load_results), in the given order."""
    names = [er.label(r) for r in runs]
    styles = er.run_styles([(n, r["attrs"].get("method", "?"), r["attrs"].get("operator", "?")) for n, r in zip(names, runs)])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, max(4.6, 0.2 * (len(runs) + 2) + 1.0)))  # legend within the axes' height
    any_traj, levels = False, 0
    bands = sum(1 for r in runs if len(r["trajectory"]) and r["trajectory"]["pass"].nunique() > 1) <= 3
    for name, res in zip(names, runs):
        p, t, st = res["passes"], res["trajectory"], styles[name]
        method = res["attrs"].get("method", "?")
        multi = len(p) > 1
        lab = f"{name} ({method}, {res['attrs'].get('operator', '?')})"
        if len(p):
            _curve(ax1, p, st, lab, multi, levels)
            levels += 0 if multi else 1
        if len(t) and t["pass"].nunique() > 1:
            any_traj = True
            q = t.groupby("pass")["true_prob"].quantile([0.25, 0.5, 0.75]).unstack()
            ax2.plot(q.index, q[0.5], color=st["color"], ls=st["ls"], marker=st["marker"], ms=3, lw=1.4)
            if bands:  # quartile bands only while they stay readable
                ax2.fill_between(q.index, q[0.25], q[0.75], color=st["color"], alpha=0.12, lw=0)
    k = max((len(r["classes"]) for r in runs), default=0)
    if k:
        ax1.axhline(100.0 / k, color="grey", ls=(0, (1, 3)), lw=1, label=f"random guess {100.0 / k:.1f} % (K = {k})")
    ax1.set(xlabel="passes applied", ylabel="identified share, top-1 (%)", ylim=(0, 102),
            title="Identified share per pass (all images)")
    ax2.set(xlabel="passes applied", ylabel="P(true identity)", ylim=(0, 1.02),
            title="Images still active at each pass: median" + (", quartiles" if bands else ""))
    if not any_traj:
        ax2.text(0.5, 0.5, "no multi-pass run", transform=ax2.transAxes, ha="center", va="center", color="grey")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax2.legend(*ax1.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
               frameon=False, title="run (method, operator)", title_fontsize=8)
    fig.suptitle(f"Re-identification risk vs pass — steering model {er.models_of(runs)}, "
                 "threat model: in-loop (the model that steered, on every image it steered)", fontsize=10)
    fig.tight_layout()
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    runs = [er.load_results(x) for x in a.inputs]
    runs.sort(key=lambda r: 0 if r["attrs"].get("method") == "none" else 1)
    er.save(figure(runs), a.out or er.default_out(a.inputs[0]), "risk-vs-pass")


if __name__ == "__main__":
    main()
