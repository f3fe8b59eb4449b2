"""Public read access to a node: its op object and attributes, and the retain flag."""
import numpy as np

import tinygraph as tg


def test_op_object_and_attrs_give_the_nodes_vjp():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.sum(axis=1)
    assert x.op_object is None and y.op_object is tg.OPS["sum"]
    g = np.array([1.0, 2.0])
    (dx,) = y.op_object.vjp(g, y.data, *[p.data for p in y.parents], **y.attrs)
    np.testing.assert_array_equal(np.broadcast_to(dx, (2, 3)), [[1, 1, 1], [2, 2, 2]])
    y.attrs["axis"] = None  # attrs is a copy: the node cannot be changed through it
    assert y.attrs["axis"] == (1,)


def test_retain_grad_can_be_switched_off_and_read():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    assert not h.retains_grad
    assert h.retain_grad() is h and h.retains_grad
    h.retain_grad(False)
    assert not h.retains_grad
    h.sum().backward()
    assert h.grad is None and x.grad is not None
