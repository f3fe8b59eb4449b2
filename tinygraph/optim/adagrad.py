"""Adagrad: per-coordinate step sizes shrinking with the sum of squared gradients."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_nonnegative


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), the optimizer of Karpathy's min-char-rnn.

    At step ``t`` (from 1), with ``g = grad + weight_decay * p``::

        s += g**2                       (s starts at initial_accumulator_value)
        p -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

    min-char-rnn writes ``g / sqrt(s + 1e-8)``; with its ``lr=0.1`` the two
    differ only while ``s`` is tiny.

    Parameters
    ----------
    params : iterable of Tensor
    lr : float >= 0
    lr_decay : float >= 0
    weight_decay : float >= 0
    initial_accumulator_value : float >= 0
    eps : float >= 0
    """

    hyperparameter_names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _validate(self, h):
        for name in self.hyperparameter_names:
            check_nonnegative("Adagrad", name, h[name])

    def _update(self, i, p, g, state):
        t = state["step"] = state.get("step", 0) + 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        s = state.get("sum")
        if s is None:
            s = state["sum"] = np.full_like(p, self.initial_accumulator_value)
        s += g * g
        denom = np.sqrt(s)
        denom += self.eps
        p -= (self.lr / (1 + (t - 1) * self.lr_decay)) * (g / denom)
