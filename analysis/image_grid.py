#!/usr/bin/env python3
"""Image grid from /examples: original | explanation heat map | mask | anonymized,
one row per kept example. Runs without attributions (conventional baselines)
show 'no explanation' in that column and the changed entries as the mask.
Examples (with their original faces) are stored only when the run was made with
`--examples N` (docs/run-directory.md); without them the grid falls back to the
anonymized PNGs in RUNDIR/images/ and says that examples were not stored.

Usage: image_grid.py RUNDIR|results.h5 [--rows N] [--out DIR]
"""
import argparse
import os

import matplotlib.pyplot as plt
import numpy as np

import edi_results as er


def hwc(x):
    return np.clip(np.transpose(np.asarray(x, dtype=np.float32), (1, 2, 0)), 0, 1)


def _row(ax, ex, i, first):
    orig, anon = ex["original"][i], ex["anonymized"][i]
    ax[0].imshow(hwc(orig))
    if "attribution" in ex:
        ax[1].imshow(np.abs(np.asarray(ex["attribution"][i])).sum(0), cmap="inferno")
    else:
        ax[1].text(0.5, 0.5, "no explanation\n(conventional)", ha="center", va="center", fontsize=8, transform=ax[1].transAxes)
    if "mask" in ex and ("captured" not in ex or ex["captured"][i]):
        mask, mlabel = np.asarray(ex["mask"][i]).max(0), "mask at pass 0 (any channel)"
    else:
        mask, mlabel = (np.abs(np.asarray(anon) - np.asarray(orig)) > 0.5 / 255).any(0), "changed entries"
    ax[2].imshow(mask, cmap="gray", vmin=0, vmax=1)
    ax[3].imshow(hwc(anon))
    titles = ["original", "|attribution| at pass 0", mlabel, "anonymized (final)"]
    for k in range(4):
        ax[k].set_xticks([])
        ax[k].set_yticks([])
        if first:
            ax[k].set_title(titles[k], fontsize=8)


def has_examples(res):
    ex = res["examples"]
    return bool(ex) and "original" in ex and len(ex["original"]) > 0


def fallback_figure(res, rows=6):
    """No /examples stored: the first ROWS anonymized PNGs of RUNDIR/images/, with a note saying so."""
    rundir = os.path.dirname(os.path.abspath(res["path"]))
    images = os.path.join(rundir, "images")
    ids = [str(i) for i in res["images"]["id"]] if len(res["images"]) else []
    paths = [(i, os.path.join(images, os.path.splitext(i)[0] + ".png")) for i in ids]
    paths = [(i, p) for i, p in paths if os.path.isfile(p)][:rows]
    if not paths:
        raise SystemExit(f"error: {res['path']}: examples were not stored (run with --examples N) and {images} holds no anonymized image")
    stop = dict(zip(res["images"]["id"], res["images"]["stop_pass"]))
    fig, axes = plt.subplots(1, len(paths), figsize=(1.6 * len(paths), 2.3), squeeze=False)
    for k, (iid, p) in enumerate(paths):
        ax = axes[0][k]
        ax.imshow(plt.imread(p))
        ax.set_xticks([])
        ax.set_yticks([])
        sp = stop.get(iid)
        ax.set_title(f"{os.path.splitext(iid.split('/')[-1])[0][:16]}\n{'stopped at pass ' + str(sp) if sp is not None and sp >= 0 else 'never stopped'}",
                     fontsize=6)
    fig.suptitle(f"{er.label(res)}: examples were not stored (run with --examples N);\nanonymized images from images/ only", fontsize=8)
    fig.tight_layout()
    return fig


def figure(res, rows=6):
    """Original | explanation | mask | anonymized for the first ROWS kept examples of loaded
    results; without stored examples, fallback_figure()."""
    ex = res["examples"]
    if not has_examples(res):
        return fallback_figure(res, rows)
    n = min(rows, len(ex["original"]))
    fig, axes = plt.subplots(n, 4, figsize=(8, 2.05 * n + 0.5), squeeze=False)
    stop = dict(zip(res["images"]["id"], res["images"]["stop_pass"]))
    for i in range(n):
        _row(axes[i], ex, i, i == 0)
        eid = ex["id"][i] if "id" in ex else f"example {i}"
        sp = stop.get(eid)
        axes[i][0].set_ylabel(f"{os.path.splitext(eid.split('/')[-1])[0][:22]}\n{'stopped at pass ' + str(sp) if sp is not None and sp >= 0 else 'never stopped'}",
                              fontsize=7)
    a = res["attrs"]
    fig.suptitle(f"{er.label(res)}: {a.get('run', '')}\nsteering model {er.short_model(a.get('model', '?'))}", fontsize=9)
    fig.tight_layout()
    return fig


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    res = er.load_results(a.input)
    er.save(figure(res, a.rows), a.out or er.default_out(a.input), "image-grid")


if __name__ == "__main__":
    main()
