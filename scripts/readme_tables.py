#!/usr/bin/python3
"""Print the README's selected-column tables from a sweep's aggregate.csv.

    /usr/bin/python3 scripts/readme_tables.py runs/johns-demo [runs/transfer ...]

Every number is read from SWEEP/aggregate/aggregate.csv (written by
`edi-anon aggregate`, i.e. by the sweep): value [lo, hi] of the identity-cluster
intervals, so the README's tables can be checked against the command's output.
A snapshot row `<run>@<T>` whose numbers all equal its run's (the snapshot at
the dataset rule's stop target is the final state) is left out. Where the sweep
has matched-PSNR snapshots (`<run>@psnr<T>`, --snapshot-psnr), a second table
lists them: every variant at the first pass at or below the same mean PSNR.
"""
import sys
from pathlib import Path

import pandas as pd

COLUMNS = [  # (label, column prefix, digits)
    ("passes", "passes", None),
    ("steering in_loop", "steering_in_loop_top1", 1),
    ("faceres heldout", "faceres_heldout_top1", 1),
    ("faceres linkage", "faceres_linkage_top1", 1),
    ("LBPH heldout", "lbph_heldout_top1", 1),
    ("LBPH linkage", "lbph_linkage_top1", 1),
    ("CNN heldout", "model:attacker-cnn.pt_heldout_top1", 1),
    ("adaptive heldout", "adaptive_heldout_top1", 1),
    ("gender agreement", "gender_agreement", 1),
    ("PSNR dB", "psnr_db", 1),
]
MATCHED_PSNR = ["passes", "PSNR dB", "steering in_loop", "faceres heldout", "LBPH heldout", "adaptive heldout",
                "gender agreement"]


def cell(row, prefix, digits):
    if prefix not in row or pd.isna(row[prefix]):
        return "–"
    if digits is None:
        return str(int(row[prefix]))
    v, lo, hi = row[prefix], row.get(prefix + "_lo"), row.get(prefix + "_hi")
    if lo is None or pd.isna(lo):
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def render(d, cols):
    lines = ["| run | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for _, row in d.iterrows():
        lines.append(f"| {row['run']} | " + " | ".join(cell(row, p, k) for _, p, k in cols) + " |")
    return "\n".join(lines)


def load(sweep: Path):
    csv = sweep / "aggregate" / "aggregate.csv"
    if not csv.is_file():
        sys.exit(f"readme_tables.py: {csv}: no such file (run the sweep first)")
    return pd.read_csv(csv)


def duplicate_snapshots(d):
    """Snapshot rows whose numbers equal their run's row in every shown column."""
    numbers = [c for c in d.columns if c not in ("run", "dir", "snapshot_target", "seconds")
               and not c.startswith("seconds")]
    runs = {r["run"]: r for _, r in d.iterrows() if "@" not in str(r["run"])}
    dup = set()
    for i, r in d.iterrows():
        name = str(r["run"])
        if "@" not in name or name.split("@")[0] not in runs:
            continue
        base = runs[name.split("@")[0]]
        if all((pd.isna(r[c]) and pd.isna(base[c])) or r[c] == base[c] for c in numbers):
            dup.add(i)
    return dup


def tables(sweep: Path) -> str:
    d = load(sweep)
    cols = [(label, p, k) for label, p, k in COLUMNS if p in d.columns]
    main = d[~d.index.isin(duplicate_snapshots(d)) & ~d["run"].astype(str).str.contains("@psnr")]
    out = render(main, cols)
    psnr = d[d["run"].astype(str).str.contains("@psnr")]
    if len(psnr):
        by_label = {c[0]: c for c in cols}
        mcols = [by_label[m] for m in MATCHED_PSNR if m in by_label]
        out += "\n\nmatched PSNR (each EDI variant at the first pass whose mean PSNR is at or below the target):\n\n"
        out += render(psnr, mcols)
    return out


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    for arg in sys.argv[1:]:
        print(f"{arg}:\n\n{tables(Path(arg))}\n")
