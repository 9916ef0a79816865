#!/usr/bin/python3
"""Print the README's selected-column tables from a sweep's aggregate.csv.

    /usr/bin/python3 scripts/readme_tables.py runs/johns-demo [runs/transfer ...]

Every number is read from SWEEP/aggregate/aggregate.csv (written by
`edi-anon aggregate`, i.e. by the sweep): value [lo, hi] of the identity-cluster
intervals, so the README's tables can be checked against the command's output.
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
    ("gender agreement", "gender_agreement", 1),
    ("PSNR dB", "psnr_db", 1),
]


def cell(row, prefix, digits):
    if prefix not in row or pd.isna(row[prefix]):
        return "–"
    if digits is None:
        return str(int(row[prefix]))
    v, lo, hi = row[prefix], row.get(prefix + "_lo"), row.get(prefix + "_hi")
    if lo is None or pd.isna(lo):
        return f"{v:.{digits}f}"
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table(sweep: Path) -> str:
    csv = sweep / "aggregate" / "aggregate.csv"
    if not csv.is_file():
        sys.exit(f"readme_tables.py: {csv}: no such file (run the sweep first)")
    d = pd.read_csv(csv)
    cols = [(label, p, k) for label, p, k in COLUMNS if p in d.columns]
    lines = ["| run | " + " | ".join(c[0] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for _, row in d.iterrows():
        lines.append(f"| {row['run']} | " + " | ".join(cell(row, p, k) for _, p, k in cols) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    for arg in sys.argv[1:]:
        print(f"{arg}:\n\n{table(Path(arg))}\n")
