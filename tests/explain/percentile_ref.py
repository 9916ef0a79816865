#!/usr/bin/env python3
"""Reference percentiles for tests/explain: numpy.percentile(values, q) with
numpy's default (linear) method.

usage: percentile_ref.py VALUES.f32 CASES.txt OUT.txt
  VALUES.f32  little-endian float32 values, all cases concatenated
  CASES.txt   one case per line: "offset count q"
  OUT.txt     one result per case, repr() of the float64 (round-trips exactly)
"""
import sys

import numpy as np


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    values = np.fromfile(argv[1], dtype="<f4")
    out = []
    with open(argv[2]) as cases:
        for line in cases:
            if not line.strip():
                continue
            offset, count, q = line.split()
            offset, count = int(offset), int(count)
            a = values[offset:offset + count]
            assert a.dtype == np.float32 and a.size == count
            out.append(repr(float(np.percentile(a, float(q)))))
    with open(argv[3], "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
