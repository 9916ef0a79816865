#!/usr/bin/env python3
"""Passes to stop: histogram of /images/stop_pass per run, with the images
that never stopped (capped or stalled) as a separate bar.

Usage: passes_hist.py RUNDIR|results.h5 ... [--out DIR]
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
    runs = [er.load_results(x) for x in a.inputs]
    top = max([int(r["images"]["stop_pass"].max()) for r in runs] + [0])
    bins = np.arange(top + 2)
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(runs)
    for i, r in enumerate(runs):
        sp = r["images"]["stop_pass"].to_numpy()
        counts = np.array([(sp == b).sum() for b in bins[:-1]] + [(sp < 0).sum()])
        x = np.arange(len(counts)) + i * width
        ax.bar(x, counts, width=width, color=f"C{i}", label=f"{er.label(r)} (n={len(sp)})")
    ax.set_xticks(np.arange(len(bins)) + 0.4 - width / 2)
    ax.set_xticklabels([str(b) for b in bins[:-1]] + ["never"])
    ax.set_xlabel("pass at which the image stopped being identified")
    ax.set_ylabel("images")
    ax.set_title("Passes to stop")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    er.save(fig, a.out or er.default_out(a.inputs[0]), "passes-to-stop")


if __name__ == "__main__":
    main()
