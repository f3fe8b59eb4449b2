"""Edges of the recurrent layers' input: an empty batch, and batch-major data."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models

KINDS = [models.RNN, models.LSTM, models.GRU]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_an_empty_batch_is_a_clear_error(kind, fused):
    model = kind(3, 4, fused=fused)
    with pytest.raises(ValueError, match=r"empty batch \(B = 0"):
        model(np.zeros((5, 0, 3)))
    with pytest.raises(ValueError, match=r"empty batch \(B = 0\)"):
        tg.unroll(model.cell, np.zeros((5, 0, 3)), None)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_first_gives_the_time_major_results_transposed(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3))  # (B, T, D)
    time_major = kind(3, 4, rng=0, output_size=2)
    batch_first = kind(3, 4, rng=0, output_size=2, batch_first=True)
    want, want_state = time_major(np.swapaxes(x, 0, 1))
    got, got_state = batch_first(x)
    assert got.shape == (2, 5, 2)
    np.testing.assert_allclose(got.data, np.swapaxes(want.data, 0, 1), rtol=1e-6)
    flat = lambda s: [t.data for t in (s if isinstance(s, tuple) else (s,))]
    for a, b in zip(flat(got_state), flat(want_state)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    xt = tg.tensor(x, requires_grad=True)
    out, _ = batch_first(xt)
    out.sum().backward()
    assert xt.grad.shape == x.shape
    with pytest.raises(ValueError, match=r"batch_first=True expects an input of shape \(B, T"):
        batch_first(np.zeros((5, 3)))
    with pytest.raises(TypeError, match="batch_first must be True or False"):
        kind(3, 4, batch_first="yes")
