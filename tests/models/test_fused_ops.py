"""The fused recurrent ops (models/_fused_ops.py): registered through the public
``tinygraph.register``; a per-node instance owns its scratch arrays (never op
arguments); the VJP reads the pending pieces of a lazy output gradient. Their
gradients against finite differences are in the op-table tests
(tests/tinygraph/test_ops.py), which import ``tinygraph.models`` to register them."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models  # noqa: F401  (registers the fused ops)
from tinygraph.errors import ShapeError
from tinygraph.models._fused_ops import GRUCellOp, LSTMCellOp
from tinygraph.ops import OPS, OuterSum, ScatterSum
from tinygraph.tensor import apply

LSTM = OPS["lstm_cell"]
GRU = OPS["gru_cell"]
rng = np.random.default_rng(0)


def test_the_fused_ops_live_in_models_and_are_registered_there():
    assert type(LSTM) is LSTMCellOp and type(GRU) is GRUCellOp
    assert LSTMCellOp.__module__ == GRUCellOp.__module__ == "tinygraph.models._fused_ops"
    assert LSTM.out is None and LSTM.grad is None  # the registered instances own no scratch


# -- lstm_cell and gru_cell: buffers and lazy output gradient --------------------------
def lstm_inputs(B=3, K=2, H=4, dtype=np.float64):
    return (rng.normal(size=(B, 4 * H)).astype(dtype), rng.normal(size=(B, K)).astype(dtype),
            rng.normal(size=(K, 4 * H)).astype(dtype), rng.normal(size=(B, H)).astype(dtype))


def gru_inputs(B=3, H=4, dtype=np.float64):
    return (rng.normal(size=(B, 3 * H)).astype(dtype), rng.normal(size=(B, H)).astype(dtype),
            rng.normal(size=(H, 3 * H)).astype(dtype), rng.normal(size=(H,)).astype(dtype))


# the fused ops: (op, inputs, blocks of the output); the blocks are lstm_cell
# [h c i f o g tanh(c)] and gru_cell [h r z n hn]. Both take a (B, 4H) grad_buffer for
# the pre-activation gradient, of which x_proj's gradient is the first columns.
FUSED = [pytest.param(LSTM, lstm_inputs, 7, id="lstm_cell"), pytest.param(GRU, gru_inputs, 5, id="gru_cell")]


@pytest.mark.parametrize("op, inputs, n_blocks", FUSED)
def test_fused_cell_writes_into_its_buffers_and_matches_fresh_arrays(op, inputs, n_blocks):
    arrays = inputs()
    B, H = 3, 4  # the inputs' defaults
    buffer, grad_buffer = np.full((n_blocks, B, H), np.nan), np.full((B, 4 * H), np.nan)
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ys = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = apply(type(op)(out=buffer, grad=grad_buffer), *xs)
    ref = apply(op, *ys)
    assert out.data is buffer
    np.testing.assert_array_equal(out.data, ref.data)
    G = rng.normal(size=out.shape)
    out.backward(G)
    ref.backward(G)
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(x.grad, y.grad, rtol=1e-12)
    np.testing.assert_allclose(grad_buffer[:, :arrays[0].shape[1]], xs[0].grad)


@pytest.mark.parametrize("op, inputs, n_blocks", FUSED)
def test_fused_cell_read_only_buffer_is_refused(op, inputs, n_blocks):
    arrays = inputs()
    buf = np.empty((n_blocks, 3, 4))
    buf.flags.writeable = False
    with pytest.raises(ShapeError, match="read-only"):
        apply(type(op)(out=buf), *arrays)


@pytest.mark.parametrize("what, bad, message", [
    ("out", np.empty((7, 3, 5)), r"out scratch must be a writeable array of shape \(7,3,4\)"),
    ("out", np.empty((7, 3, 4), np.float32), r"dtype float64"),
    ("grad", np.empty((3, 4)), r"grad scratch must be a writeable array of shape \(3,16\)"),
    ("grad", np.empty((3, 16))[::1].view(), None),  # a fine (writeable) view
    ("out", "no", r"got str"),
])
def test_lstm_cell_scratch_errors(what, bad, message):
    arrays = [tg.tensor(a, requires_grad=True) for a in lstm_inputs()]
    if message is None:
        apply(LSTMCellOp(**{what: bad}), *arrays)[0].sum().backward()
        return
    with pytest.raises(ShapeError, match=message):
        apply(LSTMCellOp(**{what: bad}), *arrays)[0].sum().backward()


@pytest.mark.parametrize("kw", [{"buffer": np.empty((7, 3, 4))}, {"grad_buffer": np.empty((3, 16))}])
def test_buffers_are_not_op_arguments(kw):
    with pytest.raises(TypeError):
        apply(LSTM, *lstm_inputs(), **kw)


@pytest.mark.parametrize("op, inputs, blocks", [
    *[pytest.param(LSTM, lstm_inputs, blocks, id=f"lstm_cell-{blocks}")
      for blocks in [(0,), (1,), (0, 1), (0, 0, 1), (0, 1, 3), (6,), (1, 1)]],
    *[pytest.param(GRU, gru_inputs, blocks, id=f"gru_cell-{blocks}")
      for blocks in [(0,), (0, 0), (1,), (0, 2), (0, 3, 4), (4,)]],
])
def test_fused_cell_lazy_output_gradient_equals_the_dense_one(op, inputs, blocks):
    arrays = inputs()
    out = op.forward(*arrays)
    lazy = None
    dense = np.zeros(out.shape)
    for k in blocks:
        value = rng.normal(size=out.shape[1:])
        piece = ScatterSum(out.shape, out.dtype, k, value)
        lazy = piece if lazy is None else lazy.add(piece)
        dense[k] += value
    got = op.vjp(lazy, out, *arrays)
    want = op.vjp(dense, out, *arrays)
    assert len(got) == len(want) == len(arrays)
    for a, b in zip(got, want):
        np.testing.assert_allclose(OuterSum.materialize(a) if type(a) is OuterSum else a,
                                   OuterSum.materialize(b) if type(b) is OuterSum else b, rtol=1e-12, atol=1e-15)
