#!/usr/bin/env python3
"""Export a PyTorch classifier to TorchScript + the edi-anon JSON sidecar.

    export_torchscript.py --model MODEL.pth --classes CLASSES.txt --input-size S --out MODEL
                          [--task T] [--architecture NAME] [--mean R G B --std R G B] [--mode trace|script]
                          [--trust-pickle]

MODEL.pth is either a whole nn.Module saved with torch.save (e.g. the authors'
torchvision ConvNeXt-Base; its class must be importable, so torchvision or the
module defining it has to be on PYTHONPATH) or an existing TorchScript file.
The module is put in eval mode, traced (or scripted) on a 1x3xSxS input,
checked against the eager module and for an output width equal to the number
of classes, and written to MODEL (TorchScript) and MODEL.json (sidecar, the
schema read by edi::models::read_sidecar). --mean/--std describe the
normalisation the model expects on RGB input in [0, 1]; the C++ classifier
applies it before the module (default: none, as in EDI-Anon).

Loading a model runs code from the file: a TorchScript archive holds code
that torch.jit.load compiles and the module executes, and a pickled module
(torch.save(model)) runs arbitrary Python while it is unpickled. Use only
model files from a source you trust. The pickle is first loaded with
torch.load(weights_only=True), which executes nothing; a file that needs
more (a whole pickled nn.Module, such as the authors' ConvNeXt files) is
refused unless --trust-pickle is given.

Runs with Debian's python3-torch: /usr/bin/python3.
"""
import argparse
import hashlib
import inspect
import json
import os
import sys
import tempfile

import torch


def fail(msg):
    print(f"export_torchscript.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_classes(path):
    try:
        with open(path, encoding="utf-8") as f:
            classes = [line.strip() for line in f if line.strip()]
    except OSError as e:
        fail(f"--classes {path}: {e.strerror}")
    if not classes:
        fail(f"--classes {path}: no class names (expected one per line, in logit order)")
    dup = sorted({c for c in classes if classes.count(c) > 1})
    if dup:
        fail(f"--classes {path}: duplicate class names {dup}")
    return classes


def unpickle(path, trust_pickle):
    """torch.load with weights_only=True (executes no code from the file) when
    this torch has it; a full unpickling only with --trust-pickle."""
    has_weights_only = "weights_only" in inspect.signature(torch.load).parameters
    if has_weights_only:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - the reason goes into one line
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
            if not trust_pickle:
                fail(f"--model {path}: cannot be loaded with torch.load(weights_only=True) ({reason[:120]}); "
                     "a pickled nn.Module runs code from the file while it is loaded: pass --trust-pickle "
                     "only for a file from a source you trust")
    elif not trust_pickle:
        fail(f"--model {path}: torch {torch.__version__} has no weights_only loading, so unpickling runs code "
             "from the file: pass --trust-pickle only for a file from a source you trust")
    print(f"export_torchscript.py: warning: --trust-pickle: unpickling {path} runs code from the file",
          file=sys.stderr)
    return torch.load(path, map_location="cpu", **({"weights_only": False} if has_weights_only else {}))


def load_module(path, trust_pickle):
    """(module, is_script): a TorchScript archive or a torch.save'd nn.Module."""
    if not os.path.isfile(path):
        fail(f"--model {path}: no such file")
    try:
        return torch.jit.load(path, map_location="cpu"), True
    except Exception:  # not a TorchScript archive: try a pickle
        pass
    try:
        obj = unpickle(path, trust_pickle)
    except Exception as e:  # noqa: BLE001 - report any unpickling failure in one line
        fail(f"--model {path}: neither TorchScript nor a torch.save'd nn.Module ({type(e).__name__}: {e})")
    if isinstance(obj, torch.nn.Module):
        return obj, False
    if isinstance(obj, dict):
        fail(f"--model {path}: holds a state_dict, not a module; save the whole module with torch.save(model, path)")
    fail(f"--model {path}: holds a {type(obj).__name__}, expected an nn.Module")


def atomic_write(path, write):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=d)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="torch.save'd nn.Module or TorchScript file")
    ap.add_argument("--classes", required=True, help="text file, one class name per line, in logit order")
    ap.add_argument("--input-size", type=int, required=True, help="square input side S in pixels")
    ap.add_argument("--out", required=True, help="TorchScript file to write (sidecar: OUT.json)")
    ap.add_argument("--task", default="identity", help="task name recorded in the sidecar (default identity)")
    ap.add_argument("--architecture", default="", help="architecture name (default: module class name, lower case)")
    ap.add_argument("--mean", type=float, nargs=3, default=[0.0, 0.0, 0.0], metavar=("R", "G", "B"))
    ap.add_argument("--std", type=float, nargs=3, default=[1.0, 1.0, 1.0], metavar=("R", "G", "B"))
    ap.add_argument("--mode", choices=["trace", "script"], default="trace", help="how to convert an eager module")
    ap.add_argument("--seed", type=int, default=0, help="seed of the check input")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="allow a full unpickling of --model (runs code from the file; only for trusted files) "
                         "when torch.load(weights_only=True) cannot load it")
    args = ap.parse_args()

    if not 1 <= args.input_size <= 8192:
        fail(f"--input-size {args.input_size}: expected an integer in [1, 8192]")
    if any(not s > 0 for s in args.std):
        fail(f"--std {args.std}: expected positive values")
    if not args.task:
        fail("--task must not be empty")
    classes = read_classes(args.classes)
    module, is_script = load_module(args.model, args.trust_pickle)
    module.eval()
    arch = args.architecture or (module.original_name if is_script else type(module).__name__).lower()

    s = args.input_size
    gen = torch.Generator().manual_seed(args.seed)
    check = torch.rand(2, 3, s, s, generator=gen)
    mean = torch.tensor(args.mean).view(1, 3, 1, 1)
    std = torch.tensor(args.std).view(1, 3, 1, 1)
    check = (check - mean) / std
    with torch.no_grad():
        if is_script:
            scripted = module
        elif args.mode == "script":
            scripted = torch.jit.script(module)
        else:
            scripted = torch.jit.trace(module, torch.zeros(1, 3, s, s), check_trace=False)
        scripted.eval()
        out = scripted(check)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
            fail(f"--model {args.model}: output for a 2x3x{s}x{s} input is not a 2xC tensor")
        if out.shape[1] != len(classes):
            fail(f"--model {args.model}: output width {out.shape[1]} != {len(classes)} classes in {args.classes}")
        if not is_script:
            ref = module(check)
            if isinstance(ref, (tuple, list)):
                ref = ref[0]
            if not torch.allclose(out, ref, rtol=1e-4, atol=1e-5):
                fail(f"--model {args.model}: the {args.mode}d module differs from the eager one "
                     f"(max |diff| {float((out - ref).abs().max()):.3g}); try --mode script")

    atomic_write(args.out, lambda p: torch.jit.save(scripted, p))
    sidecar = {
        "format": "edi-anon-model",
        "version": 1,
        "backend": "torchscript",
        "architecture": arch,
        "task": args.task,
        "classes": classes,
        "input_size": s,
        "normalisation": {"mean": list(args.mean), "std": list(args.std)},
        "source": {
            "file": os.path.basename(args.model),
            "sha256": sha256_file(args.model),
            "conversion": "as-is" if is_script else args.mode,
            "torch": torch.__version__,
        },
    }
    atomic_write(args.out + ".json",
                 lambda p: open(p, "w", encoding="utf-8").write(json.dumps(sidecar, indent=2) + "\n"))
    print(f"export_torchscript.py: wrote {args.out} ({arch}, {len(classes)} classes, "
          f"{s}x{s}, {'kept TorchScript' if is_script else args.mode + 'd'}) and {args.out}.json")


if __name__ == "__main__":
    main()
