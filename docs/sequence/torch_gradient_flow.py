"""Worked example: a PyTorch-trained LSTM loaded into tinygraph to see its gradient flow.

Run from the repository root (needs torch and matplotlib):

    python docs/sequence/torch_gradient_flow.py docs/sequence

Trains a torch.nn.LSTM for 400 steps on a delayed-recall toy problem (the
target is the input of 4 steps before the end), loads the weights with
models.from_torch, checks that both give the same outputs, then reads the norm
of dL/dh_t at every step from tinygraph's graph and draws it.
"""
import os
import sys

import numpy as np
import torch

import tinygraph as tg
from tinygraph import models
from tinygraph.drawing import plot_grad_norms

torch.manual_seed(0)
T, B, H, DELAY = 20, 32, 16, 4
rng = np.random.default_rng(0)
lstm_t = torch.nn.LSTM(1, H)
head_t = torch.nn.Linear(H, 1)
opt = torch.optim.Adam(list(lstm_t.parameters()) + list(head_t.parameters()), lr=0.02)
for step in range(400):
    x = rng.uniform(-1, 1, size=(T, B, 1)).astype(np.float32)
    out, _ = lstm_t(torch.from_numpy(x))
    loss = ((head_t(out[-1]) - torch.from_numpy(x[-1 - DELAY])) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"PyTorch training: final loss {loss.item():.4f}")

lstm = models.from_torch(lstm_t, head_t)          # a models.LSTM with an output layer
x = rng.uniform(-1, 1, size=(T, 1, 1)).astype(np.float32)
ys, _ = lstm(x)
with torch.no_grad():
    want = head_t(lstm_t(torch.from_numpy(x))[0]).numpy()
print("outputs agree to", float(np.abs(ys.data - want).max()))

hs, _ = lstm.forward_hidden(x)
target = x[-1 - DELAY]
loss = ((hs[-1] @ lstm.W_hy + lstm.b_y - target) ** 2).sum()
norms = models.grad_norms_through_time(loss, models.step_outputs(hs))
print("||dL/dh_t|| from t = 1 to T:", np.round(norms, 4))
out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
path = os.path.join(out_dir, "torch_lstm_grad_flow.png")
plot_grad_norms({"PyTorch-trained LSTM": norms}, path, title=f"PyTorch-trained LSTM in tinygraph: ||dL/dh_t|| (target: the input of step {T - 1 - DELAY})")
print("wrote", path)
