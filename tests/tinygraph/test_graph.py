"""The graph as an object: Tensor.op/parents, Graph nodes/ops/instances."""
import numpy as np
import pytest

import tinygraph as tg


def test_graph_nodes_are_topological_and_complete():
    x = tg.tensor(np.ones(3), requires_grad=True, name="x")
    w = tg.tensor(np.ones(3), requires_grad=True, name="w")
    y = (x * w).tanh()
    z = (y + x).sum()
    g = tg.Graph(z)
    position = {id(n): i for i, n in enumerate(g.nodes)}
    for n in g.nodes:
        for p in n.parents:
            assert position[id(p)] < position[id(n)]
    assert len(g) == len(g.nodes) == 6  # x, w, mul, tanh, add, sum
    assert g.ops() == {"mul": 1, "tanh": 1, "add": 1, "sum": 1}
    assert {n.name for n in g.leaves()} == {"x", "w"}
    assert len(g.edges()) == sum(len(n.parents) for n in g.nodes)
    assert x in g and tg.tensor(1.0) not in g
    assert "4 ops" not in repr(g) and "tanh=1" in repr(g)
    assert "%0 x" in g.summary()


def test_graph_of_several_roots_and_shared_nodes():
    x = tg.tensor(1.0, requires_grad=True)
    a, b = x * 2, x * 3
    g = tg.Graph(a, b)
    assert len(g) == 5 and g.ops()["mul"] == 2
    assert len(tg.Graph([a, b])) == 5


def test_graph_is_iterative_on_deep_chains():
    x = tg.tensor(1.0, requires_grad=True)
    h = x
    for _ in range(50_000):
        h = -h
    assert len(tg.Graph(h)) == 50_001


def test_graph_errors():
    with pytest.raises(TypeError, match="Graph: root 0 is a ndarray"):
        tg.Graph(np.ones(2))
    with pytest.raises(ValueError, match="at least one"):
        tg.Graph()


def test_instances_count_template_calls():
    class Double(tg.Template):
        def forward(self, x, state):
            y = x * 2 + state
            return y, y

    cell = Double()
    xs = tg.tensor(np.ones((4, 2, 3)), requires_grad=True)
    out, h = tg.unroll(cell, xs, tg.tensor(np.zeros((2, 3))))
    g = tg.Graph(out)
    assert g.instances() == {"Double": 4}
    groups = g.by_instance()
    assert {k for k in groups if k is not None} == {("Double", t) for t in range(4)}
    assert out.instance is None
