#!/usr/bin/env python3
"""Python reference of the EDI loop (Debian's python3-torch, python3-opencv, numpy).

It is written from the method description (edi-anon-spec.md §C–E), not from the
C++ code: batched forward, cross-entropy towards the runner-up (second-largest
logit) summed over the batch, signed input gradient, numpy.percentile per image
over all 3·H·W entries, mask = G >= t, P(x) with cv2, x <- clip((1-M)x + M·P(x)).

Commands:
  model --out MODEL.pt --classes K --size S [--seed N] [--train IMAGES.f32 LABELS.i64]
      a small CNN as TorchScript + the JSON sidecar edi reads; random-init, or
      fitted (Adam, 300 steps, seeded) to the given images so that it identifies them.
  check DIR
      DIR holds what tests/engine/test_parity.cpp wrote: config.json, the
      starting images and, per operator, the C++ masks of every pass and the
      final images. Prints per operator the share of identical mask entries and
      max |C++ - Python|; exits 1 if any operator misses the thresholds.
  bench --model MODEL.pt --data DIR [--n N] --passes P --batch B [--op blur --k 5 --q 90]
      on the first N images of DIR/<identity>/*.png (labels = the model's own
      predictions, so every image starts identified): image-passes/s of (a) this
      batched loop at fixed passes, (b) the authors' loop, one image at a time
      plus a separate evaluation pass, at fixed passes, and (c) the authors'
      loop with the per-image stop rule (wall seconds for P passes).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "perturb"))
import cv2_parity  # noqa: E402  (operators and Philox in numpy)

MASK_AGREEMENT = 0.999
MAX_PIXEL_DIFF = 1e-4


def stable_hash64(text):
    """edi::stable_hash64: FNV-1a 64 then the splitmix64 finaliser."""
    h = 1469598103934665603
    for c in text.encode():
        h ^= c
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    h ^= h >> 31
    return h


class SmallCnn(torch.nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 32, 3, padding=1, stride=2)
        self.c3 = torch.nn.Conv2d(32, 64, 3, padding=1, stride=2)
        self.fc = torch.nn.Linear(64, classes)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.relu(self.c3(x))
        return self.fc(x.mean(dim=(2, 3)))


def cmd_model(a):
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    net = SmallCnn(a.classes)
    if a.train or a.train_data:
        if a.train_data:  # DIR/<identity>/*.png, classes = sorted folder names
            xs, ids = load_pngs(a.train_data, 10**9, a.size)
            names = sorted({i.split("/")[0] for i in ids})
            x = torch.from_numpy(xs)
            y = torch.tensor([names.index(i.split("/")[0]) for i in ids], dtype=torch.int64)
        else:
            x = torch.from_numpy(np.fromfile(a.train[0], dtype=np.float32).reshape(-1, 3, a.size, a.size))
            y = torch.from_numpy(np.fromfile(a.train[1], dtype=np.int64))
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        for step in range(300):
            idx = torch.arange(x.shape[0]) if x.shape[0] <= 128 else torch.randint(0, x.shape[0], (128,),
                                                                                    generator=torch.Generator().manual_seed(step))
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
    net = net.eval()
    class_names = names if a.train_data else [f"id{c:04d}" for c in range(a.classes)]
    scripted = torch.jit.script(net)
    scripted.save(a.out)
    sidecar = {"format": "edi-anon-model", "version": 1, "backend": "torchscript", "architecture": "reference-cnn",
               "task": "identity", "classes": class_names, "input_size": a.size,
               "normalisation": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}}
    Path(a.out + ".json").write_text(json.dumps(sidecar, indent=2) + "\n")


def explain(model, x, labels):
    """One batched forward + backward: prediction and the runner-up CE gradient."""
    x = x.clone().requires_grad_(True)
    logits = model(x)
    top2 = torch.topk(logits.detach(), 2, dim=1).indices
    loss = torch.nn.functional.cross_entropy(logits, top2[:, 1], reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    correct = top2[:, 0] == labels
    return grad.numpy(), correct.numpy()


def select(grad, q):
    masks = np.empty(grad.shape, dtype=bool)
    for i in range(grad.shape[0]):
        t = np.percentile(grad[i], q)
        masks[i] = grad[i] >= t
    return masks


def perturb(op, x, masks, keys):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        px = cv2_parity.apply(op, x[i], keys[i]).astype(np.float32)
        m = masks[i].astype(np.float32)
        out[i] = np.clip((1.0 - m) * x[i] + m * px, 0.0, 1.0)
    return out


def run_loop(model, x, labels, op, q, passes, seed, ids, batch):
    masks_per_pass = []
    for p in range(passes):
        grads, masks = [], []
        for s in range(0, x.shape[0], batch):
            g, _ = explain(model, torch.from_numpy(x[s:s + batch]), torch.from_numpy(labels[s:s + batch]))
            grads.append(g)
        g = np.concatenate(grads)
        m = select(g, q)
        keys = [(seed, stable_hash64(i), p, 1) for i in ids]  # RngStream::kPerturb = 1
        x = perturb(op, x, m, keys)
        masks_per_pass.append(m)
    return x, masks_per_pass


def cmd_check(a):
    d = Path(a.dir)
    cfg = json.loads((d / "config.json").read_text())
    n, s = cfg["n"], cfg["size"]
    x0 = np.fromfile(d / "images.f32", dtype=np.float32).reshape(n, 3, s, s)
    labels = np.fromfile(d / "labels.i64", dtype=np.int64)
    model = torch.jit.load(cfg["model"]).eval()
    torch.set_num_threads(1)
    ok = True
    for op in cfg["operators"]:
        label, passes = op["label"], cfg["passes"]
        xr, masks = run_loop(model, x0.copy(), labels, op, cfg["q"], passes, cfg["seed"], cfg["ids"], cfg["batch"])
        cm = np.fromfile(d / f"{label}.masks.u8", dtype=np.uint8).reshape(passes, n, 3, s, s).astype(bool)
        cx = np.fromfile(d / f"{label}.state.f32", dtype=np.float32).reshape(n, 3, s, s)
        agree = float(np.mean(np.stack(masks) == cm))
        diff = float(np.max(np.abs(cx - xr)))
        good = agree >= MASK_AGREEMENT and diff <= MAX_PIXEL_DIFF
        ok &= good
        print(f"PARITY {label} mask_agreement={agree:.6f} max_abs_diff={diff:.3g} {'ok' if good else 'FAIL'}")
    return 0 if ok else 1


def load_pngs(data, n, size):
    import cv2
    paths = sorted(str(p) for p in Path(data).glob("*/*.png"))[:n]
    imgs = []
    for p in paths:
        bgr = cv2.imread(p, cv2.IMREAD_COLOR)
        if bgr.shape[0] != size or bgr.shape[1] != size:
            raise SystemExit(f"error: {p}: expected {size}x{size} images")
        imgs.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1) / 255.0)
    return np.ascontiguousarray(np.stack(imgs)), [str(Path(p).relative_to(data)) for p in paths]


def cmd_bench(a):
    torch.set_num_threads(1)
    model = torch.jit.load(a.model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = json.loads(Path(a.model + ".json").read_text())
    x0, ids = load_pngs(a.data, a.n, cfg["input_size"])
    with torch.no_grad():
        labels = model(torch.from_numpy(x0)).argmax(1).numpy()
    n = x0.shape[0]
    op = {"name": a.op, "k": a.k, "sigma": 0.0, "n": a.n_pix, "b": 32, "m": 16, "eps": 100, "scale": "fan", "color": "0,0,0"}

    t0 = time.perf_counter()
    run_loop(model, x0.copy(), labels, op, a.q, a.passes, 0, ids, a.batch)
    batched = n * a.passes / (time.perf_counter() - t0)

    def authors(stop):
        # One image at a time; every pass is followed by a separate evaluation
        # pass at batch size 1 (the authors' EVALUATE over the saved folder).
        x = x0.copy()
        correct = np.ones(n, dtype=bool)
        perturbed = 0
        t = time.perf_counter()
        for p in range(a.passes):
            for i in range(n):
                g, c = explain(model, torch.from_numpy(x[i:i + 1]), torch.from_numpy(labels[i:i + 1]))
                if stop and not c[0]:
                    continue
                m = select(g, a.q)
                x[i:i + 1] = perturb(op, x[i:i + 1], m, [(0, stable_hash64(ids[i]), p, 1)])
                perturbed += 1
            for i in range(n):
                with torch.no_grad():
                    correct[i] = int(model(torch.from_numpy(x[i:i + 1])).argmax(1)) == labels[i]
        return time.perf_counter() - t, perturbed

    t_fixed, _ = authors(False)
    t_stop, perturbed = authors(True)
    print(f"BENCH images={n} passes={a.passes} python_batched={batched:.1f} authors_fixed={n * a.passes / t_fixed:.1f} "
          f"authors_stop_seconds={t_stop:.2f} authors_stop_perturbations={perturbed} "
          f"(image-passes/s; the stop-rule loop still explains every image every pass and re-evaluates all)")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--out", required=True)
    m.add_argument("--classes", type=int, required=True)
    m.add_argument("--size", type=int, required=True)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--train", nargs=2, metavar=("IMAGES", "LABELS"))
    m.add_argument("--train-data", help="fit to DIR/<identity>/*.png instead (classes = sorted folder names)")
    c = sub.add_parser("check")
    c.add_argument("dir")
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--data", required=True)
    b.add_argument("--n", type=int, default=64)
    b.add_argument("--passes", type=int, default=3)
    b.add_argument("--batch", type=int, default=32)
    b.add_argument("--op", default="blur")
    b.add_argument("--k", type=int, default=5)
    b.add_argument("--n-pix", type=int, default=4)
    b.add_argument("--q", type=float, default=90.0)
    a = ap.parse_args()
    return {"model": cmd_model, "check": cmd_check, "bench": cmd_bench}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
