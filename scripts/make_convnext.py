#!/usr/bin/env python3
"""A ConvNeXt-Tiny-class identity classifier in plain PyTorch (no torchvision),
written as TorchScript + the edi-anon JSON sidecar.

    make_convnext.py --out MODEL.pt (--data DIR | --classes K) [--size 224] [--seed 0]
                     [--fit-head N] [--threads T] [--variant tiny|nano]

The network follows ConvNeXt-T (Liu et al. 2022): a 4x4/4 patchify stem,
stages of depths 3-3-9-3 and widths 96-192-384-768, blocks of a 7x7 depthwise
convolution, LayerNorm, a 4x inverted-bottleneck MLP with GELU and layer scale,
LayerNorm + 2x2/2 convolutions between stages, and a global-average-pool,
LayerNorm, linear head (28.6 M parameters, ~4.5 GFLOP forward at 224 px).
Weights are random (seeded; trunc-normal std 0.02, layer scale 1.0 so that
every block contributes to the input gradient): the model is for timing the
engine at the paper's scale, not for privacy numbers.

--data DIR takes the classes from DIR/<identity>/ (sorted folder names, the
order edi-anon's manifest uses); --classes K names them id0000.. instead.
--fit-head N fits only the linear head (features frozen, Adam on the pooled
features of the first N images per identity of --data) so that the model
identifies those images and a stop rule has something to stop: the backbone
stays random. Runs with Debian's python3-torch: /usr/bin/python3.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchscript import atomic_write  # noqa: E402  (one atomic writer for the scripts' model files)

VARIANTS = {"tiny": ([3, 3, 9, 3], [96, 192, 384, 768]), "nano": ([2, 2, 8, 2], [80, 160, 320, 640])}


def fail(msg):
    print(f"make_convnext.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an N x C x H x W tensor."""

    def __init__(self, c):
        super().__init__()
        self.norm = nn.LayerNorm(c, eps=1e-6)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, 4 * dim)
        self.pw2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    def __init__(self, classes, depths, dims):
        super().__init__()
        layers = [nn.Conv2d(3, dims[0], 4, stride=4), LayerNorm2d(dims[0])]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            if i > 0:
                layers += [LayerNorm2d(dims[i - 1]), nn.Conv2d(dims[i - 1], dim, 2, stride=2)]
            layers += [Block(dim) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def pooled(self, x):
        return self.norm(self.features(x).mean(dim=(2, 3)))

    def forward(self, x):
        return self.head(self.pooled(x))


def load_images(data, per_identity, size):
    import cv2  # python3-opencv

    names = sorted(p.name for p in Path(data).iterdir() if p.is_dir())
    xs, ys = [], []
    for c, name in enumerate(names):
        files = sorted(f for f in (Path(data) / name).iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
        for f in files[:per_identity]:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                fail(f"--data {data}: {f} is not a readable image")
            if img.shape[0] != size or img.shape[1] != size:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            xs.append(img[:, :, ::-1].astype(np.float32).transpose(2, 0, 1) / 255.0)
            ys.append(c)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys, dtype=torch.int64)


def fit_head(net, data, per_identity, size):
    x, y = load_images(data, per_identity, size)
    with torch.no_grad():
        feats = torch.cat([net.pooled(x[i:i + 16]) for i in range(0, x.shape[0], 16)])
    opt = torch.optim.Adam(net.head.parameters(), lr=1e-2)
    for _ in range(500):
        opt.zero_grad()
        loss = F.cross_entropy(net.head(feats), y)
        loss.backward()
        opt.step()
    acc = (net.head(feats).argmax(1) == y).float().mean().item()
    print(f"make_convnext.py: head fitted on {x.shape[0]} images, training accuracy {100 * acc:.1f} %", file=sys.stderr)
    return acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="TorchScript file to write (sidecar: OUT.json)")
    ap.add_argument("--data", help="classes = the sorted folder names of DIR/<identity>/")
    ap.add_argument("--classes", type=int, help="K classes named id0000.. (without --data)")
    ap.add_argument("--size", type=int, default=224, help="input side in pixels (default 224)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="tiny")
    ap.add_argument("--fit-head", type=int, default=0, metavar="N",
                    help="fit the head on the first N images per identity of --data (0 = random head)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if (a.data is None) == (a.classes is None):
        fail("give exactly one of --data DIR and --classes K")
    if not 32 <= a.size <= 1024 or a.size % 32:
        fail(f"--size {a.size}: expected a multiple of 32 in [32, 1024] (the network downsamples 32x)")
    if a.fit_head and not a.data:
        fail("--fit-head needs --data")
    if a.data:
        if not Path(a.data).is_dir():
            fail(f"--data {a.data}: not a directory")
        classes = sorted(p.name for p in Path(a.data).iterdir() if p.is_dir())
        if not classes:
            fail(f"--data {a.data}: no identity folders")
    else:
        if not 1 <= a.classes <= 100000:
            fail(f"--classes {a.classes}: expected an integer in [1, 100000]")
        classes = [f"id{c:04d}" for c in range(a.classes)]
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    depths, dims = VARIANTS[a.variant]
    net = ConvNeXt(len(classes), depths, dims).eval()
    train_acc = fit_head(net, a.data, a.fit_head, a.size) if a.fit_head else None
    for p in net.parameters():
        p.requires_grad_(False)
    scripted = torch.jit.script(net)
    check = torch.rand(2, 3, a.size, a.size, generator=torch.Generator().manual_seed(a.seed))
    with torch.no_grad():
        if not torch.allclose(scripted(check), net(check), rtol=1e-4, atol=1e-5):
            fail("the scripted module differs from the eager one")
    atomic_write(a.out, lambda p: scripted.save(p))
    sidecar = {"format": "edi-anon-model", "version": 1, "backend": "torchscript", "architecture": f"convnext-{a.variant}",
               "task": "identity", "classes": classes, "input_size": a.size,
               "normalisation": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},  # RGB in [0, 1], as EDI-Anon
               "source": {"file": "scripts/make_convnext.py", "conversion": "script", "torch": torch.__version__,
                          "weights": "random (seed %d)" % a.seed}}
    if train_acc is not None:  # in "source": "training" is the native trainer's record (split, manifest hash)
        sidecar["source"]["head_fit"] = {"images_per_identity": a.fit_head, "train_accuracy": train_acc}
    atomic_write(a.out + ".json", lambda p: open(p, "w", encoding="utf-8").write(json.dumps(sidecar, indent=2) + "\n"))
    n = sum(p.numel() for p in net.parameters())
    print(f"make_convnext.py: wrote {a.out} (convnext-{a.variant}, {n / 1e6:.1f} M parameters, {len(classes)} classes, "
          f"{a.size}x{a.size}) and {a.out}.json")


if __name__ == "__main__":
    main()
