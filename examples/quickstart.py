"""tinygraph in a few screens.

1. Build an expression, look at its graph, backpropagate, check it.
2. An LSTM is a graph template: unrolling it over a sequence builds an explicit
   graph with one instance of the cell per time step; BPTT is the ordinary
   backward pass over that graph. Train it with clipped gradients.
3. Read gradient flow out of the graph: ||dL/dh_t|| for a tanh RNN and an LSTM.
4. Draw the unrolled and the folded graph (``out/``; SVG where Graphviz's ``dot``
   is installed, DOT source otherwise).

Run: ``python examples/quickstart.py`` (a few seconds).
"""
import os

import numpy as np

from tinygraph import models
import tinygraph as tg
from tinygraph import optim
from tinygraph.drawing import dot_available, save
from tinygraph.nn import functional as F

OUT = "out"
rng = np.random.default_rng(0)

# -- 1. a first graph ----------------------------------------------------------------
print("== 1. a first graph")
x = tg.tensor(rng.normal(size=(4, 3)), requires_grad=True, name="x")
W = tg.tensor(rng.normal(size=(3, 2)), requires_grad=True, name="W")
b = tg.tensor(np.zeros(2), requires_grad=True, name="b")

loss = ((x @ W + b).tanh() ** 2).mean()
loss.name = "loss"

graph = tg.Graph(loss)
print(graph)
print(graph.summary())

loss.backward()
print("loss =", loss.item())
print("dloss/dW =\n", W.grad)

# Compare every gradient with central finite differences (in float64).
print("gradcheck:", tg.gradcheck(lambda x, W, b: ((x @ W + b).tanh() ** 2).mean(), [x, W, b]))

# -- 2. an LSTM unrolled, trained with BPTT ----------------------------------------------
# Many-to-one task: read a sequence of T numbers, output the first one
# (the answer has to be carried through all T steps).
print("\n== 2. an LSTM unrolled over T = 12 steps, many-to-one")
T, B = 12, 32
model = models.LSTM(input_size=1, hidden_size=16, output_size=1, forget_bias=1.0, rng=0)
opt = optim.Adam(model.parameters(), lr=0.02)


def many_to_one_loss(outputs, target):
    return F.mse_loss(outputs[-1], target)  # only the last step's output counts


def batch():
    xs = rng.uniform(-1, 1, size=(T, B, 1)).astype(np.float32)  # (T, B, D), time-major
    return xs, xs[0]


outputs, _ = model(batch()[0])
print(tg.Graph(outputs))
print("template instances:", dict(tg.Graph(outputs).instances()))  # one LSTMCell per step

for step in range(1, 301):
    xs, target = batch()
    result = models.train_step(model, xs, target, many_to_one_loss, optimizer=opt, max_norm=1.0)
    if step % 50 == 0:
        print(f"step {step:3d}  loss {result.loss:.4f}  grad norm {result.grad_norm:.3f} (clipped to 1.0)")

# -- 3. gradient flow through time -------------------------------------------------------
# The same loss on the last step only; how much gradient reaches each h_t?
print("\n== 3. ||dL/dh_t|| with the loss on the last step (vanishing gradients)")
xs = rng.uniform(-1, 1, size=(30, 4, 1)).astype(np.float32)
for name, net in [("tanh RNN", models.RNN(1, 16, rng=1)), ("LSTM", models.LSTM(1, 16, forget_bias=1.0, rng=1))]:
    outputs, _ = net(xs)
    norms = models.grad_norms_through_time((outputs[-1] ** 2).sum(), models.step_outputs(outputs))
    print(f"{name:9s} t=1: {norms[0]:.2e}   t=15: {norms[14]:.2e}   t=30: {norms[-1]:.2e}")

# -- 4. pictures -------------------------------------------------------------------------
print("\n== 4. drawings")
os.makedirs(OUT, exist_ok=True)
small = models.LSTM(2, 3, fused=False, rng=0)  # every gate its own node (training runs them fused)
outputs, _ = small(rng.normal(size=(3, 1, 2)))
loss = (outputs ** 2).mean()
loss.name = "loss"
loss.backward(retain_grads=True)
ext = "svg" if dot_available() else "dot"
for filename, drawing in [
    (f"lstm_unrolled.{ext}", tg.draw(loss)),                 # one cluster per time step
    (f"lstm_folded.{ext}", tg.draw(loss, folded=True)),      # one copy, state edges drawn back
    (f"lstm_grads.{ext}", tg.draw(loss, grads=True)),        # coloured by log ||dL/dx||
]:
    save(drawing, os.path.join(OUT, filename))
    print("wrote", os.path.join(OUT, filename))
if not dot_available():
    print("(DOT source only: install Graphviz's dot for SVG/PNG, e.g. apt-get install graphviz)")
