#!/usr/bin/env python3
"""Independent cv2/numpy reimplementation of edi's perturbation operators.

Usage: cv2_parity.py DIR   (DIR holds manifest.txt and raw float32 files written
by the test_perturb gtest PerturbCv2Parity). For every `op` line it recomputes the
operator from the input and the RNG keys and prints

    PARITY <label> <max |C++ - Python|>

then exits 1 if any difference exceeds 1e-5 (2 on a malformed manifest).

Images are N x 3 x H x W float32 RGB in [0,1]; cv2 runs on HWC images, as a user
of cv2 would. Random draws follow edi::CounterRng (Philox-4x32-10) in the order
documented in include/edi/perturb/operators.hpp.
"""
import sys
from pathlib import Path

import cv2
import numpy as np

TOL = 1e-5
MASK32 = np.uint64(0xFFFFFFFF)


# --- edi::CounterRng in numpy --------------------------------------------------

def philox4x32_10(ctr, key):
    """ctr: 4 uint64 arrays (32-bit values), key: 2 python ints -> 4 uint64 arrays."""
    c0, c1, c2, c3 = (np.asarray(c, dtype=np.uint64) for c in ctr)
    k0, k1 = key
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    for _ in range(10):
        p0 = m0 * c0  # < 2^64: both factors < 2^32
        p1 = m1 * c2
        hi0, lo0 = p0 >> np.uint64(32), p0 & MASK32
        hi1, lo1 = p1 >> np.uint64(32), p1 & MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0
        k0 = (k0 + 0x9E3779B9) & 0xFFFFFFFF
        k1 = (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return c0, c1, c2, c3


def words(seed, item, pass_, stream, count):
    """The first `count` 32-bit words of CounterRng({seed, item, pass, stream})."""
    mixed = (seed ^ ((stream * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
    key = (mixed & 0xFFFFFFFF, mixed >> 32)
    blocks = (count + 3) // 4
    ctr0 = np.arange(blocks, dtype=np.uint64)
    full = lambda v: np.full(blocks, v, dtype=np.uint64)
    out = philox4x32_10((ctr0, full(pass_), full(item & 0xFFFFFFFF), full(item >> 32)), key)
    return np.stack(out, axis=1).reshape(-1)[:count]


def uniforms(key, count):
    """CounterRng::uniform(): next_u64 (high word first) >> 11, (k + 0.5) / 2^53."""
    w = words(*key, 2 * count)
    u64 = (w[0::2] << np.uint64(32)) | w[1::2]
    return ((u64 >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def laplace(key, count, scale):
    u = uniforms(key, count) - 0.5
    sign = np.where(u < 0, -1.0, 1.0)
    return (-scale * sign) * np.log1p(-2.0 * np.abs(u))


def normals(key, count):
    u = uniforms(key, 2 * ((count + 1) // 2))
    r = np.sqrt(-2.0 * np.log(u[0::2]))
    t = 2.0 * np.pi * u[1::2]
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1).reshape(-1)[:count]


def check_philox():
    """Random123 known-answer vectors for Philox-4x32-10."""
    got = [int(v[0]) for v in philox4x32_10(([0], [0], [0], [0]), (0, 0))]
    assert got == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8], [hex(g) for g in got]
    f = 0xFFFFFFFF
    got = [int(v[0]) for v in philox4x32_10(([f], [f], [f], [f]), (f, f))]
    assert got == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD], [hex(g) for g in got]


# --- operators ----------------------------------------------------------------

def hwc(img):
    return np.ascontiguousarray(img.transpose(1, 2, 0))


def chw(img):
    if img.ndim == 2:  # cv2 drops a trailing channel axis only for 1-channel images
        img = img[:, :, None]
    return img.transpose(2, 0, 1)


def dp_pix(img, key, b, m, eps, scale_kind):
    _, h, w = img.shape
    unit = m / (float(b) * b * eps)
    scale = unit if scale_kind == "fan" else 255.0 * unit
    nby, nbx = -(-h // b), -(-w // b)
    noise = laplace(key, 3 * nby * nbx, scale).reshape(3, nby, nbx)  # channel, block row, block column
    out = np.empty_like(img)
    x = img.astype(np.float64)
    for by in range(nby):
        for bx in range(nbx):
            blk = x[:, by * b:(by + 1) * b, bx * b:(bx + 1) * b]
            mean = blk.reshape(3, -1).mean(axis=1)
            v = np.clip(mean + noise[:, by, bx], 0.0, 1.0).astype(np.float32)
            out[:, by * b:(by + 1) * b, bx * b:(bx + 1) * b] = v[:, None, None]
    return out


def apply(op, img, key):
    name, p = op["name"], op
    k, sigma = int(p["k"]), float(p["sigma"])
    _, h, w = img.shape
    if name == "blur":
        return chw(cv2.blur(hwc(img), (k, k), borderType=cv2.BORDER_REFLECT_101))
    if name == "gaussian":
        return chw(cv2.GaussianBlur(hwc(img), (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101))
    if name == "pixelate":
        n = int(p["n"])
        small = cv2.resize(hwc(img), (max(1, w // n), max(1, h // n)), interpolation=cv2.INTER_LINEAR)
        return chw(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))
    if name in ("dp-pix", "dp-blur"):
        out = dp_pix(img, key, int(p["b"]), float(p["m"]), float(p["eps"]), p["scale"])
        if name == "dp-blur":
            out = chw(cv2.GaussianBlur(hwc(out), (k, k), sigmaX=sigma, sigmaY=sigma,
                                       borderType=cv2.BORDER_REFLECT_101))
            out = np.clip(out, 0.0, 1.0)
        return out
    if name == "noise":
        z = normals(key, img.size).reshape(img.shape)
        return np.clip(img.astype(np.float64) + sigma * z, 0.0, 1.0).astype(np.float32)
    if name == "mask":
        color = np.array([float(c) for c in p["color"].split(",")], dtype=np.float32)
        return np.broadcast_to(color[:, None, None], img.shape)
    raise ValueError(f"unknown operator {name}")


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    check_philox()
    print("philox4x32-10 known answers: ok")
    root = Path(argv[1])
    failed = False
    x, keys = None, []
    for line in (root / "manifest.txt").read_text().splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "input":
            n, h, w = map(int, f[2:5])
            x = np.fromfile(root / f[1], dtype="<f4").reshape(n, 3, h, w)
            keys = []
        elif f[0] == "key":
            keys.append(tuple(int(v) for v in f[1:5]))
        elif f[0] == "op":
            op = {"label": f[1], "name": f[2]}
            op.update(kv.split("=", 1) for kv in f[4:])
            got = np.fromfile(root / f[3], dtype="<f4").reshape(x.shape)
            want = np.stack([apply(op, x[i], keys[i]) for i in range(x.shape[0])])
            diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
            print(f"PARITY {op['label']} {diff:.3e}  ({x.shape[2]}x{x.shape[3]}, n={x.shape[0]})")
            failed |= not diff <= TOL
        else:
            print(f"malformed manifest line: {line}")
            return 2
    print("FAILED" if failed else "all operators within", TOL)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
