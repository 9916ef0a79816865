"""Write DIR/tiny.pth (a torch.save'd TinyNet) and DIR/classes.txt.

    make_tiny_model.py DIR CLASSES SIZE

BatchNorm statistics are made non-trivial with a few train-mode passes.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_net import TinyNet  # noqa: E402

out, classes, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
net = TinyNet(classes)
net.train()
with torch.no_grad():
    for _ in range(3):
        net(torch.rand(8, 3, size, size))
net.eval()
torch.save(net, os.path.join(out, "tiny.pth"))
with open(os.path.join(out, "classes.txt"), "w") as f:
    for c in range(classes):
        f.write(f"class-{c:02d}\n")
