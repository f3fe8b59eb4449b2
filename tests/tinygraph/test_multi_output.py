"""Multi-output ops (``Op.n_outputs``): one application returns several Tensors, each a
real node; backward runs the op's VJP once with the gradients of all its outputs. A
template's step may return a tuple of outputs."""
import gc

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.tensor import apply


class SinCos(tg.Op):
    """(sin(x) * y, cos(x) + y): two outputs of two inputs, saved values private to the op."""

    name = "test_sincos"
    n_outputs = 2

    def forward(self, x, y):
        return np.sin(x) * y, np.cos(x) + y

    def vjp(self, gs, outs, x, y):
        g_s, g_c = gs
        gx = np.zeros_like(x) if g_s is None else g_s * np.cos(x) * y
        gy = np.zeros_like(y) if g_s is None else g_s * np.sin(x)
        if g_c is not None:
            gx = gx - g_c * np.sin(x)
            gy = gy + g_c
        return gx, gy


@pytest.fixture
def sincos():
    tg.register(SinCos)  # the conftest fixture removes it again after the test
    return tg.OPS["test_sincos"]


def test_outputs_are_real_nodes(sincos):
    x = tg.tensor(np.linspace(-1, 1, 5), requires_grad=True)
    y = tg.tensor(np.linspace(0.5, 2, 5), requires_grad=True)
    s, c = SinCos.apply(x, y)
    assert s.op == c.op == "test_sincos" and s.parents == c.parents == (x, y)
    np.testing.assert_allclose(s.data, np.sin(x.data) * y.data)
    np.testing.assert_allclose(c.data, np.cos(x.data) + y.data)


@pytest.mark.parametrize("use", ["both", "first", "second", "first_twice", "through_each_other"])
def test_gradients_match_finite_differences_in_float64(sincos, use):
    rng = np.random.default_rng(0)
    x0, y0 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    w1, w2 = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))

    def loss_of(s, c):
        if use == "both":
            return (s * w1).sum() + (c * w2).sum()
        if use == "first":
            return (s * w1).sum()
        if use == "second":
            return (c * w2).sum()
        if use == "first_twice":
            return (s * w1).sum() + (s * s).sum()
        return (s * c * w1).sum()

    x, y = tg.tensor(x0, requires_grad=True), tg.tensor(y0, requires_grad=True)
    loss_of(*SinCos.apply(x, y)).backward()

    def f(a, b):
        return float(loss_of(*(tg.tensor(v) for v in SinCos().forward(a, b))).data)

    eps = 1e-6
    for which, (grad, base) in enumerate([(x.grad, x0), (y.grad, y0)]):
        num = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[i] += eps
            minus[i] -= eps
            args_p = (plus, y0) if which == 0 else (x0, plus)
            args_m = (minus, y0) if which == 0 else (x0, minus)
            num[i] = (f(*args_p) - f(*args_m)) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_check_graph_checks_each_output(sincos):
    x = tg.tensor(np.linspace(-1, 1, 4), requires_grad=True)
    s, c = SinCos.apply(x, 2.0 * x)
    tg.check_graph((s * c).sum())


def test_a_dropped_output_does_not_break_backward_and_makes_no_cycle(sincos):
    x = tg.tensor(np.linspace(-1, 1, 4), requires_grad=True)
    s, c = SinCos.apply(x, x)
    del c
    gc.collect()
    s.sum().backward()
    np.testing.assert_allclose(x.grad, np.cos(x.data) * x.data + np.sin(x.data))


def test_forward_returning_the_wrong_number_of_outputs_is_a_clear_error():
    class Bad(SinCos):
        name = "test_bad_multi"
        n_outputs = 3

    with pytest.raises(TypeError, match=r"test_bad_multi: forward must return a tuple of 3 arrays"):
        apply(Bad(), np.ones(2), np.ones(2))


def test_a_users_template_may_return_two_outputs():
    class TwoOut(tg.Template):
        def __init__(self):
            super().__init__()
            self.W = tg.nn.Parameter(np.full((2, 2), 0.3))

        def initial_state(self, batch_size, dtype):
            return tg.tensor(np.zeros((batch_size, 2)))

        def forward(self, x, h):
            h_new = (x + h @ self.W).tanh()
            return (h_new, h_new * h_new), h_new

    cell = TwoOut()
    xs = np.random.default_rng(1).normal(size=(4, 3, 2))
    (hs, squares), final = tg.unroll(cell, xs)
    assert hs.shape == squares.shape == (4, 3, 2)
    np.testing.assert_allclose(squares.data, hs.data ** 2)
    (hs.sum() + squares.sum()).backward()
    assert cell.W.grad is not None and np.isfinite(cell.W.grad).all()
