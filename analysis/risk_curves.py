#!/usr/bin/env python3
"""Risk against pass: the dataset-level identified share after each pass
(/passes) and, per image, the steering model's probability of the true
identity along its trajectory (median and quartiles).

Usage: risk_curves.py RUNDIR|results.h5 ... [--out DIR]
"""
import argparse

import matplotlib.pyplot as plt
import numpy as np

import edi_results as er


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for i, arg in enumerate(a.inputs):
        res = er.load_results(arg)
        p, t = res["passes"], res["trajectory"]
        lab = er.label(res)
        if len(p):
            ax1.plot(p["pass"], p["risk_percent"], marker="o", ms=3, color=f"C{i}", label=lab)
        if len(t):
            g = t.groupby("pass")["true_prob"]
            q = g.quantile([0.25, 0.5, 0.75]).unstack()
            ax2.plot(q.index, q[0.5], color=f"C{i}", label=lab)
            ax2.fill_between(q.index, q[0.25], q[0.75], color=f"C{i}", alpha=0.2)
        k = len(res["classes"])
        if k and i == 0:
            ax1.axhline(100.0 / k, color="grey", ls=":", lw=1, label=f"random guess {100.0 / k:.2f}%")
    ax1.set_xlabel("pass")
    ax1.set_ylabel("identified share (%)")
    ax1.set_title("Re-identification risk per pass (steering model)")
    ax2.set_xlabel("passes applied")
    ax2.set_ylabel("P(true identity)")
    ax2.set_title("Per image: median and quartiles")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    er.save(fig, a.out or er.default_out(a.inputs[0]), "risk-vs-pass")


if __name__ == "__main__":
    main()
