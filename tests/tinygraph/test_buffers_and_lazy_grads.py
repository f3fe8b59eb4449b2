"""Zero-copy joins of adjacent slots, lazy gradients (ScatterSum, OuterSum runs over
adjacent terms) and the switch that turns them off. The fused cells' ops (which own
scratch arrays and read ScatterSum pieces) are tested in tests/models/test_fused_ops.py."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph.ops import OPS, OuterSum, ScatterSum, join_tiles
from tinygraph.tensor import apply



class MatMulInto(type(OPS["matmul"])):
    """A matmul whose instance owns the array it writes into (as a fused cell's step does)."""

    def __init__(self, out):
        self.out = out

    def forward(self, a, b):
        return np.matmul(a, b, out=self.out)
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


# -- matmul buffer and zero-copy stack ----------------------------------------------------
def test_an_op_owning_its_output_array_writes_into_it_and_matmul_takes_no_buffer_attribute():
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(3, 4))
    A, Bt = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    buf = np.empty((5, 4))
    out = apply(MatMulInto(buf), A, Bt)
    assert out.data is buf and out.op == "matmul" and out.attrs == {}
    np.testing.assert_allclose(buf, a @ b)
    out.sum().backward()
    np.testing.assert_allclose(A.grad, np.ones((5, 4)) @ b.T)
    np.testing.assert_allclose(Bt.grad, a.T @ np.ones((5, 4)))
    with pytest.raises(TypeError):  # buffers are not op arguments
        apply(OPS["matmul"], A, Bt, buffer=np.empty((5, 4)))


def test_stack_of_adjacent_workspace_slots_is_a_read_only_view_with_the_right_gradient():
    # per-step results written into the slots of one workspace (as an unrolled fused cell does)
    A = tg.tensor(rng.normal(size=(2, 5)), requires_grad=True)
    Ws = [tg.tensor(rng.normal(size=(5, 3)), requires_grad=True) for _ in range(4)]
    workspace = np.empty((4, 2, 3))
    steps = [apply(MatMulInto(workspace[t]), A, Ws[t]) for t in range(4)]
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
