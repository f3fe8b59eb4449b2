"""tinygraph in a few screens.

1. Build an expression, look at its graph, backpropagate, check it.
2. An LSTM is a graph template: unrolling it over a sequence builds an explicit
   graph with one instance of the cell per time step (t = 0..T-1); BPTT is the
   ordinary backward pass over that graph. Train it to recall the first number of
   a sequence, and watch the loss fall far below the baseline of answering 0.
3. Read gradient flow out of the graph: ||dL/dh_t|| for a tanh RNN and an LSTM.
4. Draw the unrolled and the folded graph (``out/``; SVG where Graphviz's ``dot``
   is installed, DOT source otherwise).

Run: ``python examples/quickstart.py`` (a few seconds).
"""
import os
from collections import Counter

import numpy as np

from tinygraph import models
import tinygraph as tg
from tinygraph import optim
from tinygraph.drawing import dot_available, save
from tinygraph.nn import functional as F

OUT = "out"
rng = np.random.default_rng(0)


def describe_unrolled_graph(outputs, T):
    """Print what the unrolled graph is made of, in words."""
    graph = tg.Graph(outputs)
    steps = [nodes for instance, nodes in graph.by_instance().items() if instance is not None]
    outside = [n for n in graph.nodes if n.instance is None]
    params = graph.parameters()
    (cell, count), = graph.instances().items()
    per_step = {}  # op -> its count in each step
    for nodes in steps:
        for op, k in Counter(n.op for n in nodes).items():
            per_step.setdefault(op, []).append(k)

    def how_many(counts):
        counts = counts + [0] * (len(steps) - len(counts))
        return str(max(counts)) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"

    print(f"the unrolled graph, tg.Graph(outputs): {len(graph)} nodes")
    print(f"  {count} instances of the template {cell}, one per time step t = 0..{T - 1}; each step has "
          + ", ".join(f"{op} x{how_many(k)}" for op, k in sorted(per_step.items())))
    if "lstm_cell" in per_step:
        print("    (lstm_cell is the whole cell as one fused op; index picks this step's slice of a tensor)")
    print(f"  {len(params)} parameter tensors ({sum(p.size for p in params)} numbers), shared by every step")
    print(f"  {len(outside) - len(params)} more nodes outside the steps: the input and the initial state, the ops "
          f"that prepare the inputs for all steps at once, and the stack of the {T} outputs")
    print("  (models.LSTM(..., fused=False) builds the cell from one node per gate operation instead;"
          " section 4 draws it)")


# -- 1. a first graph ----------------------------------------------------------------
print("== 1. a first graph")
x = tg.tensor(rng.normal(size=(4, 3)), requires_grad=True, name="x")
W = tg.tensor(rng.normal(size=(3, 2)), requires_grad=True, name="W")
b = tg.tensor(np.zeros(2), requires_grad=True, name="b")

loss = ((x @ W + b).tanh() ** 2).mean()
loss.name = "loss"

graph = tg.Graph(loss)
print(graph)
print("one line per node, inputs first: %k is node k; a leaf is an input or a parameter (const: the\n"
      "exponent 2), every other node names its op and the nodes it reads, then its shape and dtype:")
print(graph.summary())

loss.backward()
print("loss =", loss.item())
print("dloss/dW =\n", W.grad)

# Compare every gradient with central finite differences (in float64).
print("gradcheck:", tg.gradcheck(lambda x, W, b: ((x @ W + b).tanh() ** 2).mean(), [x, W, b]))

# -- 2. an LSTM unrolled, trained with BPTT ----------------------------------------------
# float64 from here on: training then follows the same path on every machine's BLAS
# kernel (float32 rounding differs between kernels, and training amplifies it).
tg.set_default_dtype(np.float64)
T, B, H, MAX_NORM = 12, 32, 16, 1.0
print(f"\n== 2. an LSTM unrolled over T = {T} steps (t = 0..{T - 1}), many-to-one")
print(f"task: read {T} numbers x_0 .. x_{T - 1}, each uniform in [-1, 1]; after the last one,\n"
      f"      output the first, x_0 (the LSTM must carry it through all {T} steps)")
model = models.LSTM(input_size=1, hidden_size=H, output_size=1, forget_bias=1.0, rng=0)
opt = optim.Adam(model.parameters(), lr=0.02)


def many_to_one_loss(outputs, target):
    return F.mse_loss(outputs[-1], target)  # only the output at the last step, t = T-1, counts


def batch(size):
    xs = rng.uniform(-1, 1, size=(T, size, 1))  # (T, B, D), time-major
    return xs, xs[0]  # the target is x_0


xs_test, target_test = batch(1000)  # held out: every printed loss is measured on it


def test_loss():
    with tg.no_grad():
        outputs, _ = model(xs_test)
        return many_to_one_loss(outputs, target_test).item()


describe_unrolled_graph(model(batch(B)[0])[0], T)

baseline = float(np.mean(target_test ** 2))  # the MSE of always answering 0 (1/3 in expectation)
print(f"loss before training {test_loss():.4f}   baseline (always answer 0) {baseline:.4f}")
for step in range(1, 601):
    xs, target = batch(B)
    result = models.train_step(model, xs, target, many_to_one_loss, optimizer=opt, max_norm=MAX_NORM)
    if step % 100 == 0:
        clipped = f" -> clipped to {MAX_NORM}" if result.grad_norm > MAX_NORM else ""
        print(f"step {step:3d}  loss {test_loss():.4f}  grad norm {result.grad_norm:.3f}{clipped}")
final = test_loss()
print(f"final loss {final:.4f}: {baseline / final:.0f}x below the baseline")

# -- 3. gradient flow through time -------------------------------------------------------
# The same loss on the last step only; how much gradient reaches each h_t?
T3 = 30
print(f"\n== 3. ||dL/dh_t|| with the loss on the last step, t = {T3 - 1} (vanishing gradients)")
xs = rng.uniform(-1, 1, size=(T3, 4, 1))
for name, net in [("tanh RNN", models.RNN(1, 16, rng=1)), ("LSTM", models.LSTM(1, 16, forget_bias=1.0, rng=1))]:
    outputs, _ = net(xs)
    norms = models.grad_norms_through_time((outputs[-1] ** 2).sum(), models.step_outputs(outputs))
    print(f"{name:9s} t=0: {norms[0]:.2e}   t=15: {norms[15]:.2e}   t={T3 - 1}: {norms[-1]:.2e}")

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
