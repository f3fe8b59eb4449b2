"""The fused recurrent ops (models/_fused_ops.py): registered through the public
``tinygraph.register``; the LSTM op has two outputs (h_t, c_t); a per-node instance
keeps the activations private and owns its scratch arrays (never op arguments). Their
gradients against finite differences are in the op-table tests
(tests/tinygraph/test_ops.py), which import ``tinygraph.models`` to register them."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models  # noqa: F401  (registers the fused ops)
from tinygraph.errors import ShapeError
from tinygraph.models._fused_ops import GRUCellOp, LSTMCellOp, RNNCellOp
from tinygraph.ops import OPS
from tinygraph.tensor import apply

LSTM = OPS["lstm_cell"]
GRU = OPS["gru_cell"]
RNN = OPS["rnn_cell"]
rng = np.random.default_rng(0)


def test_the_fused_ops_live_in_models_and_are_registered_there():
    assert type(LSTM) is LSTMCellOp and type(GRU) is GRUCellOp and type(RNN) is RNNCellOp
    assert LSTMCellOp.__module__ == GRUCellOp.__module__ == RNNCellOp.__module__ == "tinygraph.models._fused_ops"
    assert LSTM.out is None and LSTM.grad is None  # the registered instances own no scratch
    assert LSTM.n_outputs == 2 and GRU.n_outputs == 1 and RNN.n_outputs == 1


# -- lstm_cell and gru_cell: buffers and lazy output gradient --------------------------
def lstm_inputs(B=3, K=2, H=4, dtype=np.float64):
    return (rng.normal(size=(B, 4 * H)).astype(dtype), rng.normal(size=(B, K)).astype(dtype),
            rng.normal(size=(K, 4 * H)).astype(dtype), rng.normal(size=(B, H)).astype(dtype))


def rnn_inputs(B=3, K=2, H=4, dtype=np.float64):
    return (rng.normal(size=(B, H)).astype(dtype), rng.normal(size=(B, K)).astype(dtype),
            rng.normal(size=(K, H)).astype(dtype))


def gru_inputs(B=3, H=4, dtype=np.float64):
    return (rng.normal(size=(B, 3 * H)).astype(dtype), rng.normal(size=(B, H)).astype(dtype),
            rng.normal(size=(H, 3 * H)).astype(dtype), rng.normal(size=(H,)).astype(dtype))


# the fused ops: (op, inputs, blocks of the private activations, width of the grad scratch
# in units of H); the blocks are lstm_cell [h c i f o g tanh(c)], gru_cell [h r z n hn] and
# rnn_cell [h]. The grad scratch receives the pre-activation gradient, of which x_proj's
# gradient is the first columns: (B, 4H) for lstm_cell and gru_cell, (B, H) for rnn_cell.
FUSED = [pytest.param(LSTM, lstm_inputs, 7, 4, id="lstm_cell"), pytest.param(GRU, gru_inputs, 5, 4, id="gru_cell"),
         pytest.param(RNN, rnn_inputs, 1, 1, id="rnn_cell")]


def outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("op, inputs, n_blocks, width", FUSED)
def test_fused_cell_writes_into_its_scratch_and_matches_the_registered_op(op, inputs, n_blocks, width):
    arrays = inputs()
    B, H = 3, 4  # the inputs' defaults
    scratch, grad_scratch = np.full((n_blocks, B, H), np.nan), np.full((B, width * H), np.nan)
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ys = [tg.tensor(a, requires_grad=True) for a in arrays]
    node_op = type(op)(out=scratch, grad=grad_scratch)
    outs = outputs(apply(node_op, *xs))
    refs = outputs(apply(op, *ys))  # the registered op: keeps nothing, recomputes in its VJP
    assert node_op.saved is scratch and op.saved is None
    assert all(np.shares_memory(o.data, scratch) for o in outs)
    Gs = [rng.normal(size=o.shape) for o in outs]
    tg.autograd.backward(list(outs), Gs)
    tg.autograd.backward(list(refs), Gs)
    for o, r in zip(outs, refs):
        np.testing.assert_array_equal(o.data, r.data)
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(x.grad, y.grad, rtol=1e-12)
    np.testing.assert_allclose(grad_scratch[:, :arrays[0].shape[1]], xs[0].grad)


@pytest.mark.parametrize("op, inputs, n_blocks, width", FUSED)
def test_fused_cell_read_only_scratch_is_refused(op, inputs, n_blocks, width):
    buf = np.empty((n_blocks, 3, 4))
    buf.flags.writeable = False
    with pytest.raises(ShapeError, match="read-only"):
        apply(type(op)(out=buf), *inputs())


def test_lstm_cell_has_two_outputs_h_and_c_with_private_activations():
    arrays = [tg.tensor(a, requires_grad=True) for a in lstm_inputs()]
    h_new, c_new = apply(LSTMCellOp(per_node=True), *arrays)
    assert h_new.op == c_new.op == "lstm_cell" and h_new.parents == c_new.parents
    x_proj, h, W_h, c = (a.data for a in arrays)
    z = x_proj + h @ W_h
    H = c.shape[1]
    sig = 1 / (1 + np.exp(-z[:, :3 * H]))
    i, f, o, g = sig[:, :H], sig[:, H:2 * H], sig[:, 2 * H:], np.tanh(z[:, 3 * H:])
    c_ref = f * c + i * g
    np.testing.assert_allclose(c_new.data, c_ref, rtol=1e-12)
    np.testing.assert_allclose(h_new.data, o * np.tanh(c_ref), rtol=1e-12)
    assert h_new._fn.saved.shape == (7,) + h_new.shape  # kept by the node's op, not an output


@pytest.mark.parametrize("use", ["h", "c", "both"])
def test_lstm_cell_gradients_of_either_output_match_finite_differences(use):
    arrays = lstm_inputs()
    G = [rng.normal(size=(3, 4)), rng.normal(size=(3, 4))]
    weights = {"h": (G[0], 0 * G[1]), "c": (0 * G[0], G[1]), "both": tuple(G)}[use]

    def loss(*xs):
        h_new, c_new = apply(LSTMCellOp(per_node=True), *xs)
        parts = []
        if use != "c":
            parts.append((h_new * weights[0]).sum())
        if use != "h":
            parts.append((c_new * weights[1]).sum())
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    assert tg.gradcheck(loss, [tg.tensor(a) for a in arrays], eps=1e-6, atol=1e-7, rtol=1e-5)


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


# -- rnn_cell ---------------------------------------------------------------------------
@pytest.mark.parametrize("nonlinearity, act", [("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0.0))])
def test_rnn_cell_forward_is_the_elman_equation(nonlinearity, act):
    x_proj, h, W_h = rnn_inputs()
    out = apply(RNN, *[tg.tensor(a, requires_grad=True) for a in (x_proj, h, W_h)], nonlinearity=nonlinearity)
    np.testing.assert_allclose(out.data, act(x_proj + h @ W_h), rtol=1e-12)


def test_rnn_cell_refuses_an_unknown_nonlinearity_and_bad_shapes():
    arrays = [tg.tensor(a) for a in rnn_inputs()]
    with pytest.raises(ValueError, match=r"rnn_cell: nonlinearity must be one of \('tanh', 'relu'\), got 'sigmoid'"):
        apply(RNN, *arrays, nonlinearity="sigmoid")
    with pytest.raises(ShapeError, match=r"rnn_cell: expected x_proj \(\.\.\., H\), h \(\.\.\., K\) and W_h \(K, H\)"):
        apply(RNN, np.ones((3, 5)), np.ones((3, 2)), np.ones((2, 4)))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_fused_rnn_layer_is_one_rnn_cell_per_step_writing_into_the_workspace(nonlinearity):
    with tg.default_dtype(np.float64):
        layer = models.RNN(3, 4, nonlinearity=nonlinearity, rng=0)
        outputs, _ = layer(rng.normal(size=(5, 2, 3)))
        graph = tg.Graph(outputs)
        assert graph.ops()["rnn_cell"] == 5 and "tanh" not in graph.ops() and "relu" not in graph.ops()
        steps = layer.cell.buffers.arrays("steps")
        assert len(steps) == 1 and np.shares_memory(outputs.data, steps[0])  # h_1 ... h_T: one block, no copy
        assert tg.check_graph(outputs.sum() if nonlinearity == "tanh" else (outputs * outputs).sum())
