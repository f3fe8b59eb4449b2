"""Activations and losses of tinygraph.nn.functional: values against numpy references,
stability for huge logits, gradients against finite differences, and input errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg
from tinygraph.nn import functional as F


def np_log_softmax(x, axis=-1):
    # Reference in float64 via the textbook formula (only used on moderate values).
    x = np.asarray(x, dtype=np.float64)
    return np.log(np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True))


def t64(a, name=None):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True, name=name)


moderate = hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                      elements=st.floats(-5, 5))


# -- softmax / log_softmax -------------------------------------------------------
@given(moderate)
@settings(max_examples=30, deadline=None)
def test_softmax_and_log_softmax_match_numpy(x):
    for axis in range(-x.ndim, x.ndim):
        np.testing.assert_allclose(F.softmax(tg.tensor(x), axis=axis).data,
                                   np.exp(np_log_softmax(x, axis)), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(F.log_softmax(tg.tensor(x), axis=axis).data,
                                   np_log_softmax(x, axis), rtol=1e-10, atol=1e-12)


@given(moderate, st.integers(0, 2**31 - 1))
@settings(max_examples=15, deadline=None)
def test_softmax_and_log_softmax_gradients(x, seed):
    w = np.random.default_rng(seed).normal(size=x.shape)  # a random projection to get a scalar
    assert tg.gradcheck(lambda t: (F.softmax(t, axis=-1) * w).sum(), [t64(x)])
    assert tg.gradcheck(lambda t: (F.log_softmax(t, axis=0) * w).sum(), [t64(x)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_is_stable_for_huge_logits(dtype):
    x = tg.tensor(np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], dtype=dtype), requires_grad=True)
    out = F.log_softmax(x)
    expected = np.array([[0.0, -1e4, -2e4], [-np.log(3)] * 3])
    np.testing.assert_allclose(out.data, expected, rtol=1e-6)
    (out * np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]], dtype=dtype)).sum().backward()
    assert np.all(np.isfinite(x.grad))
    sm = F.softmax(x)
    assert np.all(np.isfinite(sm.data))
    np.testing.assert_allclose(sm.data.sum(axis=-1), 1.0, rtol=1e-6)


def test_softmax_errors():
    with pytest.raises(ValueError, match="softmax.*0-d"):
        F.softmax(tg.tensor(1.0))
    with pytest.raises(ValueError, match="log_softmax: axis 2 is out of range.*2 dimensions"):
        F.log_softmax(tg.tensor(np.zeros((2, 3))), axis=2)
    with pytest.raises(TypeError, match="softmax: x must be a Tensor"):
        F.softmax("abc")


# -- cross_entropy -------------------------------------------------------------------
def np_cross_entropy(logits, targets):
    lsm = np_log_softmax(logits.reshape(-1, logits.shape[-1]))
    return -lsm[np.arange(lsm.shape[0]), targets.reshape(-1)].reshape(targets.shape)


@st.composite
def ce_cases(draw):
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    c = draw(st.integers(1, 4))
    logits = draw(hnp.arrays(np.float64, lead + (c,), elements=st.floats(-4, 4)))
    targets = draw(hnp.arrays(np.int64, lead, elements=st.integers(0, c - 1)))
    return logits, targets


@given(ce_cases())
@settings(max_examples=40, deadline=None)
def test_cross_entropy_values_for_any_leading_shape(case):
    logits, targets = case
    per = np_cross_entropy(logits, targets)
    np.testing.assert_allclose(F.cross_entropy(tg.tensor(logits), targets, reduction="none").data, per, rtol=1e-10)
    np.testing.assert_allclose(F.cross_entropy(tg.tensor(logits), targets, reduction="sum").item(), per.sum(), rtol=1e-10)
    np.testing.assert_allclose(F.cross_entropy(tg.tensor(logits), targets).item(), per.mean(), rtol=1e-10)


@given(ce_cases(), st.sampled_from(["mean", "sum"]))
@settings(max_examples=25, deadline=None)
def test_cross_entropy_gradient(case, reduction):
    logits, targets = case
    assert tg.gradcheck(lambda x: F.cross_entropy(x, targets, reduction=reduction), [t64(logits, "logits")])


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4))
    targets = np.array([0, 3, 1, 1, 2])
    x = t64(logits)
    F.cross_entropy(x, targets).backward()
    onehot = np.eye(4)[targets]
    np.testing.assert_allclose(x.grad, (np.exp(np_log_softmax(logits)) - onehot) / 5, rtol=1e-10)


def test_cross_entropy_ignore_index():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 5))
    targets = np.array([[1, -100, 4], [-100, 0, 2]])
    keep = targets != -100
    safe = np.where(keep, targets, 0)
    per = np_cross_entropy(logits, safe) * keep
    x = t64(logits)
    loss = F.cross_entropy(x, targets, ignore_index=-100)
    np.testing.assert_allclose(loss.item(), per.sum() / keep.sum(), rtol=1e-10)
    loss.backward()
    assert np.all(x.grad[~keep] == 0)
    assert np.all(np.abs(x.grad[keep]).sum(axis=-1) > 0)
    none = F.cross_entropy(tg.tensor(logits), targets, ignore_index=-100, reduction="none")
    np.testing.assert_allclose(none.data, per, rtol=1e-10)
    assert tg.gradcheck(lambda t: F.cross_entropy(t, targets, ignore_index=-100), [t64(logits)])
    # an ignore_index inside the class range
    np.testing.assert_allclose(
        F.cross_entropy(tg.tensor(logits), safe, ignore_index=0, reduction="sum").item(),
        (np_cross_entropy(logits, safe) * (safe != 0)).sum(), rtol=1e-10)


def test_cross_entropy_all_ignored_is_zero_not_nan():
    x = t64(np.ones((3, 2)))
    loss = F.cross_entropy(x, np.array([7, 7, 7]), ignore_index=7)
    assert loss.item() == 0.0
    loss.backward()
    assert np.all(x.grad == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    x = tg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, np.array([1, 1]), reduction="none")
    np.testing.assert_allclose(loss.data, [2e4, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(x.grad, [[1, -1, 0], [0, -0.5, 0.5]], atol=1e-6)
    assert loss.dtype == dtype


def test_cross_entropy_errors():
    logits = tg.tensor(np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"cross_entropy: targets must be integer.*float64"):
        F.cross_entropy(logits, np.zeros(4))
    with pytest.raises(TypeError, match=r"cross_entropy: targets must be an integer numpy array.*Tensor"):
        F.cross_entropy(logits, tg.tensor(np.zeros(4)))
    with pytest.raises(ValueError, match=r"targets of shape \(4,1\).*logits of shape \(4,3\).*\(4\)"):
        F.cross_entropy(logits, np.zeros((4, 1), dtype=int))
    with pytest.raises(ValueError, match=r"cross_entropy: target 3 is out of range for 3 classes"):
        F.cross_entropy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"target -1 is out of range"):
        F.cross_entropy(logits, np.array([0, -1, 2, 2]))
    with pytest.raises(ValueError, match=r"reduction must be one of.*'avg'"):
        F.cross_entropy(logits, np.array([0, 1, 2, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"cross_entropy: logits must have shape \(\.\.\., C\)"):
        F.cross_entropy(tg.tensor(1.0), np.array(0))


# -- mse_loss ----------------------------------------------------------------------
def test_mse_loss_values_and_gradient():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    np.testing.assert_allclose(F.mse_loss(tg.tensor(a), b).item(), ((a - b) ** 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(F.mse_loss(tg.tensor(a), b, reduction="sum").item(), ((a - b) ** 2).sum(), rtol=1e-12)
    np.testing.assert_allclose(F.mse_loss(tg.tensor(a), tg.tensor(b), reduction="none").data, (a - b) ** 2, rtol=1e-12)
    assert tg.gradcheck(lambda x, y: F.mse_loss(x, y), [t64(a), t64(b)])


def test_mse_loss_refuses_broadcasting():
    with pytest.raises(ValueError, match=r"mse_loss: input of shape \(5,1\) and target of shape \(5\)"):
        F.mse_loss(tg.tensor(np.zeros((5, 1))), np.zeros(5))


# -- binary_cross_entropy_with_logits ------------------------------------------------
@given(hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.floats(-8, 8)),
       st.integers(0, 2**31 - 1))
@settings(max_examples=30, deadline=None)
def test_bce_with_logits_values_and_gradient(x, seed):
    t = np.random.default_rng(seed).uniform(0, 1, size=x.shape)
    s = 1 / (1 + np.exp(-x))
    ref = -(t * np.log(s) + (1 - t) * np.log(1 - s))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(tg.tensor(x), t, reduction="none").data,
                               ref, rtol=1e-8, atol=1e-10)
    assert tg.gradcheck(lambda z: F.binary_cross_entropy_with_logits(z, t), [t64(x)])


def test_bce_with_logits_gradient_at_zero_is_exact():
    x = t64(np.zeros(3))
    F.binary_cross_entropy_with_logits(x, np.array([0.0, 0.5, 1.0]), reduction="sum").backward()
    np.testing.assert_allclose(x.grad, [0.5, 0.0, -0.5], atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_is_stable_for_huge_logits(dtype):
    x = tg.tensor(np.array([1e4, 1e4, -1e4, -1e4], dtype=dtype), requires_grad=True)
    t = np.array([1.0, 0.0, 1.0, 0.0], dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.data, [0, 1e4, 1e4, 0], atol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, [0, 1, -1, 0], atol=1e-6)


def test_bce_with_logits_errors():
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: logits of shape \(3\) and targets of shape \(3,1\)"):
        F.binary_cross_entropy_with_logits(tg.tensor(np.zeros(3)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        F.binary_cross_entropy_with_logits(tg.tensor(np.zeros(2)), np.array([0.0, 2.0]))


# -- dropout (functional) --------------------------------------------------------------
def test_dropout_inactive_returns_input_and_bad_p_raises():
    x = tg.tensor(np.ones(4))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert np.all(F.dropout(x, 1.0).data == 0)
    for p in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError, match="dropout: p must be a probability"):
            F.dropout(x, p)


def test_array_targets_take_the_input_dtype():
    x = tg.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    assert F.mse_loss(x, np.ones(3)).dtype == np.float32
    assert F.binary_cross_entropy_with_logits(x, np.ones(3)).dtype == np.float32
    np.testing.assert_allclose(F.mse_loss(x, np.ones(3)).item(), 1.0)
