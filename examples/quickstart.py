"""tinygraph in one screen: build an expression, look at its graph, backpropagate, check it."""
import numpy as np

import tinygraph as tg

rng = np.random.default_rng(0)
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
