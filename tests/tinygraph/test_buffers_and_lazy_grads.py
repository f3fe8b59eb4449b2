"""Output buffers of ops, zero-copy joins of adjacent slots, and lazy gradients
(ScatterSum pieces read by the VJPs of lstm_cell and gru_cell, OuterSum runs over
adjacent terms). gru_cell's equations and error messages are in tests/models/test_gru_fused.py."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph.errors import ShapeError
from tinygraph.ops import OPS, OuterSum, ScatterSum, join_tiles
from tinygraph.tensor import apply

LSTM = OPS["lstm_cell"]
GRU = OPS["gru_cell"]
rng = np.random.default_rng(0)


# -- join_tiles -------------------------------------------------------------------------
def test_join_tiles_views_adjacent_slots_read_only():
    buf = rng.normal(size=(4, 3, 5))
    joined = join_tiles([buf[t, :, 1:4] for t in range(4)])
    assert joined is not None and joined.base is buf and not joined.flags.writeable
    np.testing.assert_array_equal(joined, buf[:, :, 1:4])
    with pytest.raises(ValueError):
        joined[0, 0, 0] = 1.0


def test_join_tiles_refuses_what_is_not_a_regular_tiling():
    buf, other = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    assert join_tiles([buf[0], buf[2], buf[1]]) is None  # out of order
    assert join_tiles([buf[3], buf[2]]) is None  # backwards
    assert join_tiles([buf[0], buf[1], buf[3]]) is None  # a gap
    assert join_tiles([buf[0], other[1]]) is None  # two owners
    assert join_tiles([buf[0]]) is None
    assert join_tiles([buf[0].copy(), buf[1].copy()]) is None  # owners, not views
    assert join_tiles([buf[0, :2], buf[1, :3]]) is None  # shapes differ


# -- ScatterSum -------------------------------------------------------------------------
def test_scatter_sum_of_all_slots_is_a_read_only_view_and_add_copies_first():
    buf = rng.normal(size=(3, 2, 4))
    s = ScatterSum(buf.shape, buf.dtype, 2, buf[2])
    s.add(ScatterSum(buf.shape, buf.dtype, 0, buf[0]))
    s.add(ScatterSum(buf.shape, buf.dtype, 1, buf[1]))
    view = s.materialize()
    assert view.base is buf and not view.flags.writeable
    np.testing.assert_array_equal(view, buf)
    before = buf.copy()
    s.add(np.ones_like(buf))
    np.testing.assert_array_equal(buf, before)  # the pieces' memory is untouched
    np.testing.assert_array_equal(s.materialize(), before + 1)


@pytest.mark.parametrize("pieces", [
    [(0, "a"), (0, "b")],  # repeated slot: must be summed, not viewed
    [(0, "a"), (1, "c")],  # not every slot
    [(0, "a"), (1, "b"), (2, "c"), (1, "d"), (0, "e"), (2, "f")],  # many pieces, not views of one array
])
def test_scatter_sum_matches_dense_sum(pieces):
    shape = (3, 2)
    values = {k: rng.normal(size=2) for k in "abcdef"}
    s = None
    want = np.zeros(shape)
    for index, key in pieces:
        piece = ScatterSum(shape, np.float64, index, values[key])
        s = piece if s is None else s.add(piece)
        want[index] += values[key]
    np.testing.assert_allclose(s.materialize(), want)


def test_index_gradients_of_every_step_of_a_tensor():
    x = tg.tensor(rng.normal(size=(4, 3)), requires_grad=True)
    w = rng.normal(size=(4, 3))
    loss = sum((x[t] * w[t]).sum() for t in range(4)) + (x[1] * 2).sum()
    loss.backward()
    want = w.copy()
    want[1] += 2
    np.testing.assert_allclose(x.grad, want)


# -- OuterSum runs ----------------------------------------------------------------------
@pytest.mark.parametrize("order", ["forward", "backward", "mixed"])
def test_outer_sum_over_adjacent_slots_equals_the_sum_of_products(order):
    T, B, K, N = 6, 2, 3, 5
    hs, gs = rng.normal(size=(T, B, 7)), rng.normal(size=(T, B, N))
    terms = [(hs[t, :, 2:2 + K], gs[t]) for t in range(T)]
    if order == "backward":
        terms = terms[::-1]
    elif order == "mixed":
        terms = terms[3:] + [(rng.normal(size=(B, K)), rng.normal(size=(B, N)))] + terms[:3][::-1]
    total = None
    for a, g in terms:
        total = OuterSum(a, g) if total is None else total.add(OuterSum(a, g))
    want = sum(a.T @ g for a, g in terms)
    np.testing.assert_allclose(total.materialize(), want, rtol=1e-12)


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
    out = apply(op, *xs, buffer=buffer, grad_buffer=grad_buffer)
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
        apply(op, *arrays, buffer=buf)


@pytest.mark.parametrize("what, bad, message", [
    ("buffer", np.empty((7, 3, 5)), r"buffer must be a writeable array of shape \(7,3,4\)"),
    ("buffer", np.empty((7, 3, 4), np.float32), r"dtype float64"),
    ("grad_buffer", np.empty((3, 4)), r"grad_buffer must be a writeable array of shape \(3,16\)"),
    ("grad_buffer", np.empty((3, 16))[::1].view(), None),  # a fine (writeable) view
    ("buffer", "no", r"got str"),
])
def test_lstm_cell_buffer_errors(what, bad, message):
    arrays = lstm_inputs()
    if message is None:
        apply(LSTM, *arrays, **{what: bad})
        return
    with pytest.raises(ShapeError, match=message):
        apply(LSTM, *arrays, **{what: bad})


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


# -- matmul buffer and zero-copy stack ----------------------------------------------------
def test_matmul_writes_into_its_buffer():
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(3, 4))
    A, Bt = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    buf = np.empty((5, 4))
    out = apply(OPS["matmul"], A, Bt, buffer=buf)
    assert out.data is buf
    np.testing.assert_allclose(buf, a @ b)
    out.sum().backward()
    np.testing.assert_allclose(A.grad, np.ones((5, 4)) @ b.T)
    np.testing.assert_allclose(Bt.grad, a.T @ np.ones((5, 4)))
    with pytest.raises(ShapeError, match=r"matmul: buffer must be a writeable array of shape \(5,4\)"):
        apply(OPS["matmul"], A, Bt, buffer=np.empty((4, 5)))


def test_stack_of_adjacent_workspace_slots_is_a_read_only_view_with_the_right_gradient():
    # per-step results written into the slots of one workspace (as an unrolled fused cell does)
    A = tg.tensor(rng.normal(size=(2, 5)), requires_grad=True)
    Ws = [tg.tensor(rng.normal(size=(5, 3)), requires_grad=True) for _ in range(4)]
    workspace = np.empty((4, 2, 3))
    steps = [apply(OPS["matmul"], A, Ws[t], buffer=workspace[t]) for t in range(4)]
    s = tg.stack(steps, axis=0)
    assert np.shares_memory(s.data, workspace) and not s.data.flags.writeable
    G = rng.normal(size=s.shape)
    (s * G).sum().backward()
    np.testing.assert_allclose(A.grad, sum(G[t] @ Ws[t].data.T for t in range(4)))
    # not adjacent: an ordinary copy
    t = tg.stack([steps[1], steps[0]], axis=0)
    assert not np.shares_memory(t.data, workspace) and t.data.flags.writeable


def test_stack_of_a_tensors_own_rows_copies_like_numpy():
    # the rows of a user's tensor: aliasing (and freezing) its memory would surprise (issue 13)
    base = tg.tensor(rng.normal(size=(4, 2, 3)), requires_grad=True)
    s = tg.stack([base[t] for t in range(4)], axis=0)
    assert not np.shares_memory(s.data, base.data) and s.data.flags.writeable
    np.testing.assert_array_equal(s.data, base.data)
    G = rng.normal(size=s.shape)
    (s * G).sum().backward()
    np.testing.assert_allclose(base.grad, G)


@pytest.mark.parametrize("shape, index_shape", [((65, 8), (200,)), ((10, 3, 2), (16, 8)), ((7, 4), (64,))])
def test_row_scatter_of_many_indices_matches_add_at(shape, index_shape):
    index = rng.integers(-shape[0], shape[0], size=index_shape)
    value = rng.normal(size=index_shape + shape[1:])
    s = ScatterSum(shape, np.float64, index, value)
    want = np.zeros(shape)
    np.add.at(want, index, value)
    np.testing.assert_allclose(s.materialize(), want, rtol=1e-12, atol=1e-12)


def test_embedding_gradient_through_many_repeated_rows():
    E = tg.tensor(rng.normal(size=(5, 3)), requires_grad=True)
    idx = rng.integers(0, 5, size=(20, 8))
    G = rng.normal(size=(20, 8, 3))
    (E[idx] * G).sum().backward()
    want = np.zeros((5, 3))
    np.add.at(want, idx, G)
    np.testing.assert_allclose(E.grad, want, rtol=1e-12)
