"""The fused ``log_softmax`` and ``cross_entropy`` ops behind ``nn.functional``: one node each,
the same values as the graphs composed from primitive ops that they replaced, gradients
against central finite differences in float64 (hypothesis-drawn shapes and axes)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg
from tinygraph.nn import functional as F
from tinygraph.ops import OPS
from tinygraph.tensor import apply
from tinygraph.tensor import where as tg_where


# -- the composed graphs the fused ops replaced (primitive ops only) -----------------------
def composed_log_softmax(x, axis):
    shifted = x - x.data.max(axis=axis, keepdims=True)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def composed_cross_entropy(logits, targets, keep, reduction):
    C = logits.shape[-1]
    flat = logits.reshape(-1, C)
    if keep is not None and not keep.all():
        flat = tg_where(keep.reshape(-1, 1), flat, np.zeros((), dtype=logits.dtype))
    logp = composed_log_softmax(flat, -1)
    k = np.ones(targets.shape, bool) if keep is None else keep
    nll = -logp[np.arange(flat.shape[0]), np.where(k, targets, 0).reshape(-1)]
    if keep is not None:
        nll = nll * k.reshape(-1).astype(logits.dtype)
    if reduction == "none":
        return nll.reshape(targets.shape)
    total = nll.sum()
    return total if reduction == "sum" else total / max(int(k.sum()), 1)


def nodes_between(inputs, out):
    """How many graph nodes computing ``out`` from ``inputs`` took (the inputs' own graph excluded)."""
    return len(tg.Graph(out)) - len(tg.Graph(*inputs))


@st.composite
def logits_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.normal(size=shape) * draw(st.sampled_from([0.1, 1.0, 5.0])), axis, rng


@st.composite
def ce_cases(draw):
    """Logits (..., C), targets, and one of: nothing dropped, ignore_index, a mask on the leading axes."""
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    C = draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = rng.normal(size=lead + (C,)) * 3
    targets = rng.integers(0, C, size=lead)
    kwargs, keep = {}, None
    drop = draw(st.sampled_from(["none", "ignore", "mask"] if lead else ["none", "ignore"]))
    if drop == "ignore":
        keep = np.asarray(rng.random(lead) < 0.6)
        targets = np.where(keep, targets, -1)
        kwargs["ignore_index"] = -1
    elif drop == "mask":
        m = rng.random(lead[:1]) < 0.6
        kwargs["mask"] = m
        keep = np.broadcast_to(m.reshape(m.shape + (1,) * (len(lead) - 1)), lead).copy()
    return logits, targets, kwargs, keep, draw(st.sampled_from(["mean", "sum", "none"])), rng


# -- log_softmax ---------------------------------------------------------------------------
@given(logits_and_axis())
@settings(max_examples=40, deadline=None)
def test_log_softmax_is_one_node_with_the_composed_values(case):
    x, axis, _ = case
    t = tg.tensor(x, requires_grad=True)
    out = F.log_softmax(t, axis=axis)
    assert out.op == "log_softmax" and out.parents == (t,) and nodes_between([t], out) == 1
    np.testing.assert_allclose(out.data, composed_log_softmax(tg.tensor(x), axis).data, rtol=1e-12, atol=0)


@given(logits_and_axis())
@settings(max_examples=40, deadline=None)
def test_log_softmax_gradient_matches_finite_differences(case):
    x, axis, rng = case
    w = rng.normal(size=x.shape)  # a random output gradient, not just ones (sum(g) != 0 matters)
    assert tg.gradcheck(lambda t: (F.log_softmax(t, axis=axis) * w).sum(), [tg.tensor(x, name="x")],
                        atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_gradient_matches_the_composed_graph(dtype):
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(dtype) * 4
    g = np.random.default_rng(1).normal(size=(5, 7)).astype(dtype)
    grads = []
    for fn in (F.log_softmax, composed_log_softmax):
        t = tg.tensor(x, requires_grad=True)
        fn(t, 0).backward(g)
        assert t.grad.dtype == dtype
        grads.append(t.grad)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-6)


def test_log_softmax_op_checks_its_axis():
    with pytest.raises(ValueError, match=r"log_softmax: axis 2 is out of range for an input of shape \(2,3\)"):
        apply(OPS["log_softmax"], tg.tensor(np.zeros((2, 3))), axis=2)
    with pytest.raises(TypeError, match="log_softmax: axis must be an int"):
        apply(OPS["log_softmax"], tg.tensor(np.zeros((2, 3))), axis=(0, 1))


# -- cross_entropy -------------------------------------------------------------------------
@given(ce_cases())
@settings(max_examples=60, deadline=None)
def test_cross_entropy_matches_the_composed_graph_values_and_gradients(case):
    logits, targets, kwargs, keep, reduction, rng = case
    results = []
    for fused in (True, False):
        x = tg.tensor(logits, requires_grad=True)
        loss = (F.cross_entropy(x, targets, reduction=reduction, **kwargs) if fused
                else composed_cross_entropy(x, targets, keep, reduction))
        g = np.random.default_rng(7).normal(size=loss.shape)
        loss.backward(g)
        results.append((loss, x.grad))
    (fused_loss, fused_grad), (ref_loss, ref_grad) = results
    assert fused_loss.shape == ref_loss.shape and fused_loss.dtype == ref_loss.dtype
    np.testing.assert_allclose(fused_loss.data, ref_loss.data, rtol=1e-12, atol=0)
    np.testing.assert_allclose(fused_grad, ref_grad, rtol=1e-10, atol=1e-14)


@given(ce_cases())
@settings(max_examples=40, deadline=None)
def test_cross_entropy_gradient_matches_finite_differences(case):
    logits, targets, kwargs, _, reduction, rng = case
    w = rng.normal(size=targets.shape) if reduction == "none" else 1.0
    assert tg.gradcheck(lambda t: (F.cross_entropy(t, targets, reduction=reduction, **kwargs) * w).sum(),
                        [tg.tensor(logits, name="logits")], atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"ignore_index": -1}, {"mask": np.array([True, False, True])}])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_takes_at_most_four_nodes_from_logits_to_loss(kwargs, reduction):
    # time-major (T, B, C) logits as a sequence model makes them; the composed version took
    # about ten nodes here (reshape, shift, exp, sum, log, sub, index, neg, [mul], sum, div)
    hs = tg.tensor(np.random.default_rng(0).normal(size=(3, 2, 4)), requires_grad=True)
    W = tg.tensor(np.random.default_rng(1).normal(size=(4, 5)), requires_grad=True)
    logits = hs @ W
    targets = np.array([[0, 1], [4, -1 if "ignore_index" in kwargs else 2], [2, 3]])
    loss = F.cross_entropy(logits, targets, reduction=reduction, **kwargs)
    assert nodes_between([logits], loss) <= 4
    assert "cross_entropy" in tg.Graph(loss).ops()
    assert not {"exp", "log", "index"} & set(tg.Graph(loss).ops())


def test_cross_entropy_gradient_ignores_targets_changed_after_the_forward_pass():
    x = tg.tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True)
    targets = np.array([0, 1, 2, 1])
    loss = F.cross_entropy(x, targets)
    expected = np.exp(F.log_softmax(tg.tensor(x.data)).data)
    expected[np.arange(4), targets] -= 1.0
    targets[:] = 0  # a caller reusing its batch array
    loss.backward()
    np.testing.assert_allclose(x.grad, expected / 4, rtol=1e-12)


def test_cross_entropy_op_applied_directly_checks_its_attributes():
    x = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    op = OPS["cross_entropy"]
    with pytest.raises(ValueError, match=r"cross_entropy: targets of shape \(3\) do not match logits of shape \(2,3\)"):
        apply(op, x, targets=np.zeros(3, int), keep=None, reduction="mean")
    with pytest.raises(ValueError, match="cross_entropy: target 3 is out of range for 3 classes"):
        apply(op, x, targets=np.array([0, 3]), keep=None, reduction="mean")
    with pytest.raises(TypeError, match="cross_entropy: keep must be None or a boolean array of shape"):
        apply(op, x, targets=np.array([0, 1]), keep=np.array([1, 0]), reduction="mean")
    with pytest.raises(ValueError, match="cross_entropy: reduction must be one of"):
        apply(op, x, targets=np.array([0, 1]), keep=None, reduction="avg")
    # a dropped row's target is never read: out of range is fine there
    out = apply(op, x, targets=np.array([0, 7]), keep=np.array([True, False]), reduction="sum")
    np.testing.assert_allclose(out.data, np.log(3))


def test_dropped_rows_block_inf_logits_and_nan_output_gradients():
    # reduction="none": a nan/inf in a dropped row's logits, or a nan gradient arriving at a
    # dropped position from downstream, reaches neither the losses nor the logits' gradient
    logits = np.random.default_rng(0).normal(size=(4, 3))
    logits[1] = np.inf
    logits[3, 0] = np.nan
    x = tg.tensor(logits, requires_grad=True)
    targets = np.array([0, -1, 2, -1])
    loss = F.cross_entropy(x, targets, ignore_index=-1, reduction="none")
    assert np.all(np.isfinite(loss.data)) and loss.data[1] == 0 and loss.data[3] == 0
    loss.backward(np.array([1.0, np.nan, 2.0, np.nan]))
    assert np.all(np.isfinite(x.grad)) and np.all(x.grad[[1, 3]] == 0)
    p = np.exp(F.log_softmax(tg.tensor(logits[[0, 2]])).data)
    p[[0, 1], [0, 2]] -= 1.0
    np.testing.assert_allclose(x.grad[[0, 2]], p * np.array([[1.0], [2.0]]), rtol=1e-12)
