"""The fused GRU: what is particular to it. The gru_cell op's equations, its buffer and
shape errors, the graph it makes under unroll, and fused vs unfused in float32.

What the fused GRU shares with the fused LSTM is tested once for both: buffer reuse
across training steps in tests/models/test_buffer_reuse.py; the fused ops writing into
the scratch they own, refusing a read-only one, and their lazy output gradient in
tests/models/test_fused_ops.py."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.errors import ShapeError
from tinygraph.models._fused_ops import GRUCellOp
from tinygraph.ops import OPS
from tinygraph.tensor import apply

GRU_CELL = OPS["gru_cell"]
D, H, B, T = 3, 4, 2, 5


def make_gru(dtype=np.float64, **kw):
    with tg.default_dtype(dtype):
        return models.GRU(D, H, rng=3, **kw)


# -- the op on its own -------------------------------------------------------------------
def gru_inputs(B=3, H=4, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    return (r.normal(size=(B, 3 * H)).astype(dtype), r.normal(size=(B, H)).astype(dtype),
            r.normal(size=(H, 3 * H)).astype(dtype), r.normal(size=(H,)).astype(dtype))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_gru_cell_forward_is_the_gru_equations():
    x_proj, h, W_h, b_hn = gru_inputs()
    Hs = h.shape[1]
    op = GRUCellOp(per_node=True)  # keeps its activations, private: the op's one output is h_t
    h_new = op.forward(x_proj, h, W_h, b_hn)
    out = op.saved
    assert h_new.shape == h.shape and np.shares_memory(h_new, out)
    a = h @ W_h
    r = sigmoid(x_proj[:, Hs:2 * Hs] + a[:, :Hs])
    z = sigmoid(x_proj[:, 2 * Hs:] + a[:, Hs:2 * Hs])
    hn = a[:, 2 * Hs:] + b_hn
    n = np.tanh(x_proj[:, :Hs] + r * hn)
    for k, want in enumerate([(1 - z) * n + z * h, r, z, n, hn]):
        np.testing.assert_allclose(out[k], want, rtol=1e-12, atol=1e-14, err_msg=str(k))


@pytest.mark.parametrize("what, bad, message", [
    ("out", np.empty((5, 3, 5)), r"out scratch must be a writeable array of shape \(5,3,4\)"),
    ("out", np.empty((5, 3, 4), np.float32), r"dtype float64"),
    ("grad", np.empty((3, 12)), r"grad scratch must be a writeable array of shape \(3,16\)"),
    ("grad", np.empty((3, 16))[::1].view(), None),  # a fine (writeable) view
    ("out", "no", r"got str"),
])
def test_gru_cell_scratch_errors(what, bad, message):
    xs = [tg.tensor(a, requires_grad=True) for a in gru_inputs()]
    if message is None:
        apply(GRUCellOp(**{what: bad}), *xs)[0].sum().backward()
        return
    with pytest.raises(ShapeError, match=message):
        apply(GRUCellOp(**{what: bad}), *xs)[0].sum().backward()


@pytest.mark.parametrize("shapes", [
    ((3, 12), (3, 5), (5, 12), (4,)),  # h of another size than the gates
    ((3, 12), (3, 4), (4, 12), (1, 4)),  # b_hn not (H,)
    ((3, 12), (2, 4), (4, 12), (4,)),  # batch sizes that do not broadcast
    ((3, 8), (3, 4), (4, 8), (4,)),  # 2H instead of 3H
])
def test_gru_cell_shape_errors_name_the_op_and_shapes(shapes):
    arrays = [tg.tensor(np.zeros(s)) for s in shapes]
    with pytest.raises(ShapeError, match=r"gru_cell: expected x_proj \(\.\.\., 3H\)"):
        apply(GRU_CELL, *arrays)


# -- the graph under unroll --------------------------------------------------------------
def test_fused_graph_is_one_gru_cell_per_step_tagged_and_named():
    model = make_gru()
    out, h = model(np.ones((T, B, D)))
    graph = tg.Graph(out, h)
    assert graph.ops()["gru_cell"] == T
    assert graph.instances() == {"GRUCell": T}
    steps = [n for n in graph.nodes if n.op == "gru_cell"]
    assert [n.instance for n in steps] == [("GRUCell", t) for t in range(T)]
    assert {n.name for n in steps} == {"h_t"}  # the op's output is h_t itself
    assert h.name == "h_t"
    # the stacked output is the workspace's h block, not a copy
    assert np.shares_memory(out.data, steps[0].data)
    unfused = make_gru(fused=False)
    out2, _ = unfused(np.ones((T, B, D)))
    assert "gru_cell" not in tg.Graph(out2).ops()
    np.testing.assert_allclose(out.data, out2.data, rtol=1e-12)


def test_fused_and_unfused_float32_agree():
    x = np.random.default_rng(0).normal(size=(T, B, D)).astype(np.float32)
    G = np.random.default_rng(1).normal(size=(T, B, H)).astype(np.float32)
    a, b = make_gru(np.float32), make_gru(np.float32, fused=False)

    def step(model):
        out, h = model(tg.tensor(x))
        ((out * G).sum() + (h * h).sum()).backward()
        return out

    oa, ob = step(a), step(b)
    assert oa.dtype == np.float32
    np.testing.assert_allclose(oa.data, ob.data, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5, err_msg=name)
