#!/usr/bin/env python3
"""Image grid from /examples: original | explanation heat map | mask | anonymized,
one row per kept example. Runs without attributions (conventional baselines)
show 'no explanation' in that column and the changed entries as the mask.

Usage: image_grid.py RUNDIR|results.h5 [--rows N] [--out DIR]
"""
import argparse

import matplotlib.pyplot as plt
import numpy as np

import edi_results as er


def hwc(x):
    return np.clip(np.transpose(np.asarray(x, dtype=np.float32), (1, 2, 0)), 0, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    res = er.load_results(a.input)
    ex = res["examples"]
    if not ex or "original" not in ex or len(ex["original"]) == 0:
        raise SystemExit(f"error: {res['path']}: no /examples (run with examples kept)")
    n = min(a.rows, len(ex["original"]))
    fig, axes = plt.subplots(n, 4, figsize=(8, 2.1 * n), squeeze=False)
    titles = ["original", "explanation |attribution|", "mask", "anonymized"]
    for i in range(n):
        orig, anon = ex["original"][i], ex["anonymized"][i]
        cells = [hwc(orig), None, None, hwc(anon)]
        ax = axes[i]
        ax[0].imshow(cells[0])
        if "attribution" in ex:
            heat = np.abs(np.asarray(ex["attribution"][i])).sum(0)
            ax[1].imshow(heat, cmap="inferno")
        else:
            ax[1].text(0.5, 0.5, "no explanation\n(conventional)", ha="center", va="center", fontsize=8)
        if "mask" in ex:
            mask = np.asarray(ex["mask"][i]).max(0)
            mlabel = "mask (any channel)"
        else:
            mask = (np.abs(np.asarray(anon) - np.asarray(orig)) > 0.5 / 255).any(0)
            mlabel = "changed entries"
        ax[2].imshow(mask, cmap="gray", vmin=0, vmax=1)
        ax[3].imshow(cells[3])
        for k in range(4):
            ax[k].set_xticks([])
            ax[k].set_yticks([])
            if i == 0:
                ax[k].set_title(titles[k] if k != 2 else mlabel, fontsize=8)
        ax[0].set_ylabel(f"example {i}", fontsize=7)
    fig.suptitle(er.label(res), fontsize=9)
    er.save(fig, a.out or er.default_out(a.input), "image-grid")


if __name__ == "__main__":
    main()
