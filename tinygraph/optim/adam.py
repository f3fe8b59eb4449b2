"""Adam and AdamW: bias-corrected moving averages of the gradient and its square."""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer, check_nonnegative, check_unit_interval


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with optional L2 weight decay added to the gradient.

    At step ``t`` (from 1), with ``g = grad + weight_decay * p``::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        p -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

    Parameters
    ----------
    params : iterable of Tensor
    lr : float >= 0
    betas : (float, float), each in [0, 1)
    eps : float >= 0
    weight_decay : float >= 0

    State per parameter: ``step`` (int), ``exp_avg`` (m) and ``exp_avg_sq`` (v),
    arrays of the parameter's shape and dtype.
    """

    hyperparameter_names = ("lr", "betas", "eps", "weight_decay")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _validate(self, h):
        where = type(self).__name__
        check_nonnegative(where, "lr", h["lr"])
        check_nonnegative(where, "eps", h["eps"])
        check_nonnegative(where, "weight_decay", h["weight_decay"])
        betas = h["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{where}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_unit_interval(where, "betas[0]", betas[0])
        check_unit_interval(where, "betas[1]", betas[1])

    def _update(self, i, p, g, state):
        beta1, beta2 = self.betas
        t = state["step"] = state.get("step", 0) + 1
        if self.weight_decay:
            if self._decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m = self._buffer(state, "exp_avg", p)
        v = self._buffer(state, "exp_avg_sq", p)
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - beta2 ** t)
        denom += self.eps
        p -= (self.lr / (1 - beta1 ** t)) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Before the Adam step (which then sees the plain gradient):
    ``p *= 1 - lr * weight_decay``. Default ``weight_decay`` 0.01.

    Parameters
    ----------
    params : iterable of Tensor
    lr : float >= 0
    betas : (float, float), each in [0, 1)
    eps : float >= 0
    weight_decay : float >= 0
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
