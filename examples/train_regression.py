"""Train a model: fit a noisy line with Linear + Adam, checkpoint it, and load it back.

Runs in well under a second:  python examples/train_regression.py
"""
import os
import tempfile

import numpy as np

import tinygraph as tg
from tinygraph import nn, optim
from tinygraph.nn import functional as F

rng = np.random.default_rng(0)
true_W = np.array([[2.0], [-3.0]], dtype=np.float32)
x = rng.normal(size=(256, 2)).astype(np.float32)
y = x @ true_W + 0.5 + 0.05 * rng.normal(size=(256, 1)).astype(np.float32)

model = nn.Linear(2, 1, rng=0)  # y = x @ W + b, W of shape (2, 1)
opt = optim.Adam(model.parameters(), lr=0.05)

for step in range(300):
    opt.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    if step % 50 == 0:
        print(f"step {step:3d}  loss {loss.item():.4f}")

print("learned W", model.W.data.ravel(), "b", model.b.data, "(true: [2, -3], 0.5)")

# Checkpoint model and optimizer together (an .npz, written atomically, no pickle) and restore.
path = os.path.join(tempfile.mkdtemp(), "regression.npz")
tg.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": 300}, path)
ckpt = tg.load(path)
restored = nn.Linear(2, 1)
restored.load_state_dict(ckpt["model"])
print("restored from", path, "at step", ckpt["step"], "loss", F.mse_loss(restored(x), y).item())
