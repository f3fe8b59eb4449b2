"""Numerics at the edges: each case gave a silently wrong value or gradient before (issue 13)."""
import numpy as np
import pytest

import tinygraph as tg


def test_sigmoid_keeps_relative_precision_for_negative_inputs():
    x = tg.tensor(np.array([-80.0, -30.0, -20.0, -5.0, 0.0, 5.0, 30.0], dtype=np.float32), requires_grad=True)
    y = x.sigmoid().log()
    want = -np.logaddexp(0.0, -x.data.astype(np.float64))
    np.testing.assert_allclose(y.data, want, rtol=1e-6, atol=1e-7)  # relative for x < 0
    y.sum().backward()
    assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(x.grad, 1 - 1 / (1 + np.exp(-x.data.astype(np.float64))), rtol=1e-5, atol=1e-7)


def test_sigmoid_extremes_and_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        s = tg.tensor(np.array([-1e4, -50, 0, 50, 1e4]), dtype=dtype).sigmoid().data
        assert s.dtype == dtype and np.all(np.isfinite(s))
        assert s[0] == 0 and s[-1] == 1 and s[2] == 0.5


def test_max_with_nan_sends_the_gradient_to_the_nan():
    x = tg.tensor([1.0, np.nan, 2.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    y = tg.tensor([[1.0, np.nan], [3.0, 2.0]], requires_grad=True)
    y.max(axis=1).sum().backward()
    np.testing.assert_array_equal(y.grad, [[0.0, 1.0], [1.0, 0.0]])


def test_float16_mean_over_many_elements_has_a_gradient():
    x = tg.tensor(np.ones(70_000, dtype=np.float16), requires_grad=True)
    x.mean().backward()
    np.testing.assert_allclose(x.grad.astype(np.float64), 1 / 70_000, rtol=2e-3)


def test_grad_of_x_to_the_zero_at_zero_is_zero():
    x = tg.tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    x.grad = None
    (x ** tg.tensor([0.0, 1.0])).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0])


def test_clip_with_nan_bound_is_refused():
    t = tg.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="clip.*nan"):
        t.clip(lo=float("nan"))
    with pytest.raises(ValueError, match="clip.*nan"):
        tg.apply("clip", t, lo=None, hi=float("nan"))


@pytest.mark.parametrize("axis", [1.7, "1", None, True])
def test_concat_and_stack_axis_must_be_an_int(axis):
    a = tg.tensor(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="concat: axis"):
        tg.concat([a, a], axis=axis)
    with pytest.raises(TypeError, match="stack: axis"):
        tg.stack([a, a], axis=axis)


def test_reshape_of_an_empty_batch_with_minus_one_explains_itself():
    x = tg.tensor(np.zeros((0, 16)))
    with pytest.raises(ValueError, match=r"reshape.*\(5, 0, -1\).*0 elements the -1 dimension cannot be inferred"):
        x.reshape(5, 0, -1)
