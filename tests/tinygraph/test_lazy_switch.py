"""The switch of lazy gradient accumulation (``tinygraph.autograd.accumulate``): with it off
every gradient term is dense and the gradients are the same."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.autograd import accumulate
from tinygraph.config import SPEED
from tinygraph.ops import LAZY_GRADIENTS, OuterSum, ScatterSum


@pytest.fixture
def lazy_off():
    before = SPEED.lazy_gradients
    SPEED.lazy_gradients = False
    yield
    SPEED.lazy_gradients = before


@pytest.fixture
def lazy_on():
    before = SPEED.lazy_gradients
    SPEED.lazy_gradients = True
    yield
    SPEED.lazy_gradients = before


def shared_weight_loss(seed=0):
    rng = np.random.default_rng(seed)
    W = tg.tensor(rng.normal(size=(3, 3)), requires_grad=True)
    xs = tg.tensor(rng.normal(size=(6, 2, 3)), requires_grad=True)
    h = tg.tensor(np.zeros((2, 3)))
    for t in range(6):
        h = (xs[t] + h @ W).tanh()
    return (h * h).sum(), W, xs


def test_gradients_are_the_same_with_lazy_accumulation_off(lazy_off):
    loss, W, xs = shared_weight_loss()
    loss.backward()
    SPEED.lazy_gradients = True  # (the fixture restores the setting the run started with)
    loss2, W2, xs2 = shared_weight_loss()
    loss2.backward()
    np.testing.assert_allclose(W.grad, W2.grad, rtol=1e-12)
    np.testing.assert_allclose(xs.grad, xs2.grad, rtol=1e-12)


def test_accumulate_returns_dense_arrays_when_off(lazy_off):
    a, g = np.ones((2, 3)), np.ones((2, 4))
    lazy = OuterSum(a, g)
    got = accumulate(None, lazy)
    assert type(got) is np.ndarray
    np.testing.assert_allclose(accumulate(got, OuterSum(a, g)), 2 * a.T @ g)
    piece = ScatterSum((3, 4), np.float64, 1, np.ones(4))
    assert type(accumulate(np.zeros((3, 4)), piece)) not in LAZY_GRADIENTS


def test_accumulate_keeps_terms_pending_when_on(lazy_on):
    a, g = np.ones((2, 3)), np.ones((2, 4))
    got = accumulate(accumulate(None, OuterSum(a, g)), OuterSum(a, g))
    assert type(got) is OuterSum
    np.testing.assert_allclose(got.materialize(), 2 * a.T @ g)


@pytest.mark.parametrize("value, expected", [("0", False), ("off", False), ("1", True), ("", True)])
def test_the_environment_variable_sets_the_switch(value, expected):
    env = dict(os.environ, TINYGRAPH_LAZY_GRADIENTS=value)
    out = subprocess.run([sys.executable, "-c", "from tinygraph.config import SPEED; print(SPEED.lazy_gradients)"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(expected)
