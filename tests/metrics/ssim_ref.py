"""Independent numpy reference for SSIM (Wang et al. 2004), used by test_stats.

Usage: ssim_ref.py A.f32 B.f32 H W C  -> prints SSIM and PSNR.
Images are raw float32 H×W×C in [0, 1]. Gaussian 11×11, sigma 1.5, K1 0.01,
K2 0.03, L 1; the SSIM map over the 'valid' region (windows inside the
image), averaged, then averaged over channels. Direct 2-D window sums, no
separable filtering and no OpenCV, so it checks the C++ independently.
"""
import sys

import numpy as np


def window():
    x = np.arange(11) - 5
    g = np.exp(-(x ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    return np.outer(g, g)


def valid_filter(img, w):
    h, wd = img.shape
    out = np.zeros((h - 10, wd - 10))
    for dy in range(11):
        for dx in range(11):
            out += w[dy, dx] * img[dy:dy + h - 10, dx:dx + wd - 10]
    return out


def ssim_channel(x, y):
    w = window()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = valid_filter(x, w), valid_filter(y, w)
    sxx = valid_filter(x * x, w) - mx * mx
    syy = valid_filter(y * y, w) - my * my
    sxy = valid_filter(x * y, w) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return m.mean()


def main():
    a_path, b_path, h, w, c = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    a = np.fromfile(a_path, dtype=np.float32).astype(np.float64).reshape(h, w, c)
    b = np.fromfile(b_path, dtype=np.float32).astype(np.float64).reshape(h, w, c)
    s = np.mean([ssim_channel(a[:, :, k], b[:, :, k]) for k in range(c)])
    mse = np.mean((a - b) ** 2)
    psnr = float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
    print(f"{s:.12f} {psnr:.12f}")


if __name__ == "__main__":
    main()
