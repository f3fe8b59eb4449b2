"""Small templates written here, so the drawing tests do not depend on ``models``."""
import os
import sys

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.nn import Parameter

# importlib import mode keeps test folders off sys.path; the DOT-reading helpers live here.
sys.path.insert(0, os.path.dirname(__file__))


class Elman(tg.Template):
    """h_t = tanh(x_t @ W_xh + h_{t-1} @ W_hh + b_h), named tensors."""

    def __init__(self, d, h, name=None, seed=0):
        super().__init__(name=name)
        rng = np.random.default_rng(seed)
        self.W_xh = Parameter(rng.normal(size=(d, h)) * 0.5)
        self.W_hh = Parameter(rng.normal(size=(h, h)) * 0.5)
        self.b_h = Parameter(np.zeros(h))
        self.hidden = h

    def initial_state(self, batch, dtype):
        return tg.tensor(np.zeros((batch, self.hidden), dtype=dtype), name="h0")

    def forward(self, x, h):
        h = (x @ self.W_xh + h @ self.W_hh + self.b_h).tanh()
        h.name = "h"
        return h, h


class TinyLSTM(tg.Template):
    """A per-gate LSTM cell with (h, c) state: two state tensors cross each step."""

    def __init__(self, d, h, seed=1):
        super().__init__()
        rng = np.random.default_rng(seed)
        for gate in "ifgo":
            setattr(self, f"W_{gate}", Parameter(rng.normal(size=(d + h, h)) * 0.4))
            setattr(self, f"b_{gate}", Parameter(np.zeros(h)))
        self.hidden = h

    def initial_state(self, batch, dtype):
        z = np.zeros((batch, self.hidden), dtype=dtype)
        return tg.tensor(z, name="h0"), tg.tensor(z.copy(), name="c0")

    def forward(self, x, state):
        h, c = state
        xh = tg.concat([x, h], axis=1)
        i = (xh @ self.W_i + self.b_i).sigmoid()
        f = (xh @ self.W_f + self.b_f).sigmoid()
        g = (xh @ self.W_g + self.b_g).tanh()
        o = (xh @ self.W_o + self.b_o).sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        h.name, c.name = "h", "c"
        return h, (h, c)


def sequence(T, B=2, D=3, seed=0, requires_grad=True):
    """Inputs that require grad, so the per-step slices xs[t] are graph nodes."""
    rng = np.random.default_rng(seed)
    return tg.tensor(rng.normal(size=(T, B, D)), name="xs", requires_grad=requires_grad)


@pytest.fixture
def elman_loss():
    """(loss, cell, outputs) of an Elman cell unrolled over 4 steps."""
    cell = Elman(3, 4)
    outputs, _ = tg.unroll(cell, sequence(4))
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    return loss, cell, outputs


@pytest.fixture
def lstm_loss():
    cell = TinyLSTM(3, 4)
    outputs, _ = tg.unroll(cell, sequence(3))
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    return loss, cell, outputs
