"""Gradient clipping by joint norm and by value."""
import warnings

import numpy as np
import pytest

from tinygraph import nn, optim


def params_with_grads(*grads, dtype=np.float64):
    ps = []
    for i, g in enumerate(grads):
        p = nn.Parameter(np.zeros(np.shape(g), dtype=dtype), name=f"p{i}")
        p.grad = np.array(g, dtype=dtype)
        ps.append(p)
    return ps


def test_clip_grad_norm_scales_all_gradients_jointly():
    ps = params_with_grads([3.0, 0.0], [[4.0], [0.0]])  # joint 2-norm 5
    total = optim.clip_grad_norm_(ps, 1.0)
    assert total == pytest.approx(5.0)
    flat = np.concatenate([p.grad.ravel() for p in ps])
    assert np.linalg.norm(flat) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(flat, np.array([3.0, 0.0, 4.0, 0.0]) / 5, rtol=1e-5)  # direction kept


def test_clip_grad_norm_leaves_small_gradients_alone_and_skips_missing_grads():
    ps = params_with_grads([0.3, -0.4])
    extra = nn.Parameter(np.zeros(2))  # no grad
    before = ps[0].grad.copy()
    assert optim.clip_grad_norm_(ps + [extra], 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(ps[0].grad, before)
    assert extra.grad is None
    assert optim.clip_grad_norm_([extra], 1.0) == 0.0


def test_clip_grad_norm_other_norms_and_a_single_tensor():
    rng = np.random.default_rng(0)
    gs = [rng.normal(size=(3, 2)), rng.normal(size=5)]
    flat = np.concatenate([g.ravel() for g in gs])
    assert optim.clip_grad_norm_(params_with_grads(*gs), 100.0, norm_type=1) == pytest.approx(np.abs(flat).sum())
    assert optim.clip_grad_norm_(params_with_grads(*gs), 100.0, norm_type=float("inf")) == pytest.approx(np.abs(flat).max())
    ps = params_with_grads(*gs)
    optim.clip_grad_norm_(ps, 0.1, norm_type=float("inf"))
    assert max(np.abs(p.grad).max() for p in ps) == pytest.approx(0.1, rel=1e-4)
    (single,) = params_with_grads([6.0, 8.0])
    assert optim.clip_grad_norm_(single, 5.0) == pytest.approx(10.0)
    np.testing.assert_allclose(single.grad, [3.0, 4.0], rtol=1e-5)


def test_clip_grad_norm_does_not_overflow_in_float32():
    ps = params_with_grads(np.full(4, 1e30), dtype=np.float32)
    total = optim.clip_grad_norm_(ps, 1.0)
    assert total == pytest.approx(2e30, rel=1e-6)
    assert ps[0].grad.dtype == np.float32
    np.testing.assert_allclose(ps[0].grad, 0.5, rtol=1e-5)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_clip_grad_norm_non_finite(bad):
    ps = params_with_grads([1.0, 2.0], [bad, 0.0])
    with pytest.raises(ValueError, match=r"clip_grad_norm_: the total gradient norm is (inf|nan).*parameters 1 \('p1'\)"):
        optim.clip_grad_norm_(ps, 1.0)
    before = [p.grad.copy() for p in ps]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        total = optim.clip_grad_norm_(ps, 1.0, error_if_nonfinite=False)
    assert not np.isfinite(total)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p.grad, b)


def test_clip_grad_norm_input_errors():
    ps = params_with_grads([1.0])
    for bad in (0, -1.0, "1"):
        with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be a number > 0"):
            optim.clip_grad_norm_(ps, bad)
    with pytest.raises(ValueError, match="norm_type must be a number >= 1"):
        optim.clip_grad_norm_(ps, 1.0, norm_type=0.5)
    with pytest.raises(TypeError, match=r"got Linear; pass model.parameters\(\)"):
        optim.clip_grad_norm_(nn.Linear(2, 2), 1.0)
    with pytest.raises(TypeError, match=r"params\[0\] is a ndarray, expected a Tensor"):
        optim.clip_grad_norm_([np.ones(2)], 1.0)


def test_clip_grad_value():
    ps = params_with_grads([-3.0, 0.5, 2.0], [[0.1, -0.2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optim.clip_grad_value_(ps, 1.0)
    np.testing.assert_array_equal(ps[0].grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(ps[1].grad, [[0.1, -0.2]])
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be a number > 0, got -1"):
        optim.clip_grad_value_(ps, -1)
