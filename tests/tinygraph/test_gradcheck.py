import numpy as np
import pytest

import tinygraph as tg
from tinygraph import GradcheckError, ops
from tinygraph.tensor import apply


def test_passes_for_correct_gradients_in_float32_inputs():
    x = tg.tensor(np.random.default_rng(0).normal(size=(3, 2)).astype(np.float32), requires_grad=True)
    assert tg.gradcheck(lambda x: (x.tanh() * x).sum(), [x]) is True
    assert x.dtype == np.float32  # the caller's tensor is untouched


def test_works_in_float64_whatever_the_input_dtype():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return (x * 1.0).sum()

    tg.gradcheck(fn, [tg.tensor(np.ones(2, dtype=np.float16))])
    assert set(seen) == {np.dtype(np.float64)}


class _WrongSquare(ops.Op):
    """x**2 with a deliberately wrong gradient on one element."""
    name = "wrong_square_for_test"

    def forward(self, a):
        return a * a

    def vjp(self, g, out, a):
        grad = 2 * a * g
        grad.reshape(-1)[-1] += 1.0
        return (grad,)


def test_mismatch_names_the_input_and_worst_index():
    op = _WrongSquare()
    good = tg.tensor(np.ones(2), name="good")
    bad = tg.tensor(np.ones((2, 3)), name="weights")
    with pytest.raises(GradcheckError) as info:
        tg.gradcheck(lambda a, b: (a * a).sum() + apply(op, b).sum(), [good, bad])
    msg = str(info.value)
    assert "input 1" in msg and "'weights'" in msg and "(1, 2)" in msg and "analytic" in msg and "numeric" in msg


def test_mismatch_names_position_without_a_name():
    with pytest.raises(AssertionError, match=r"input 0 of shape \(3,\) at index \(2,\)"):
        tg.gradcheck(lambda a: apply(_WrongSquare(), a).sum(), [tg.tensor(np.ones(3))])


def test_non_scalar_output_and_bad_inputs():
    with pytest.raises(ValueError, match="one-element"):
        tg.gradcheck(lambda a: a * 2, [tg.tensor(np.ones(3))])
    with pytest.raises(TypeError, match="at least one Tensor"):
        tg.gradcheck(lambda a: a, [np.ones(3)])
    with pytest.raises(TypeError, match="must return a Tensor"):
        tg.gradcheck(lambda a: 1.0, [tg.tensor(np.ones(3))])


def test_non_tensor_inputs_pass_through():
    c = np.array([1.0, 2.0])
    assert tg.gradcheck(lambda x, c: (x * c).sum(), [tg.tensor(np.ones(2)), c])


def test_a_nan_numeric_derivative_does_not_hide_mismatches_elsewhere():
    x = tg.tensor(np.array([1e-7, 2.0, 3.0]), name="x")
    wrong = lambda x: (x * x.detach()).sum() + x[0].sqrt()  # noqa: E731  (analytic gradient misses half)
    with pytest.raises(AssertionError, match=r"'x'.*index \(2,\)"):
        tg.gradcheck(wrong, [x])


def test_a_non_finite_numeric_derivative_alone_is_a_failure_with_a_hint():
    x = tg.tensor(np.array([1e-9, 4.0]), name="x")
    with pytest.raises(AssertionError, match=r"index \(0,\).*numeric derivative is not finite"):
        tg.gradcheck(lambda x: x.sqrt().sum(), [x])
