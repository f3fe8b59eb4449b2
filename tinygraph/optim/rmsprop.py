"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_nonnegative, check_unit_interval


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e; PyTorch's update rule).

    With ``g = grad + weight_decay * p``::

        v = alpha * v + (1 - alpha) * g**2
        centered:  a = alpha * a + (1 - alpha) * g;  denom = sqrt(v - a**2) + eps
        otherwise: denom = sqrt(v) + eps
        momentum > 0:  buf = momentum * buf + g / denom;  p -= lr * buf
        otherwise:     p -= lr * g / denom

    Parameters
    ----------
    params : iterable of Tensor
    lr : float >= 0
    alpha : float in [0, 1)
        Smoothing constant of the squared-gradient average.
    eps : float >= 0
    weight_decay : float >= 0
    momentum : float >= 0
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its second moment.
    """

    hyperparameter_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _validate(self, h):
        for name in ("lr", "eps", "weight_decay", "momentum"):
            check_nonnegative("RMSprop", name, h[name])
        check_unit_interval("RMSprop", "alpha", h["alpha"])
        if not isinstance(h["centered"], (bool, np.bool_)):
            raise TypeError(f"RMSprop: centered must be a bool, got {h['centered']!r}")

    def _update(self, i, p, g, state):
        state["step"] = state.get("step", 0) + 1
        if self.weight_decay:
            g = g + self.weight_decay * p
        v = self._buffer(state, "square_avg", p)
        v *= self.alpha
        v += (1 - self.alpha) * (g * g)
        if self.centered:
            a = self._buffer(state, "grad_avg", p)
            a *= self.alpha
            a += (1 - self.alpha) * g
            denom = np.sqrt(v - a * a)
        else:
            denom = np.sqrt(v)
        denom += self.eps
        if self.momentum:
            buf = self._buffer(state, "momentum_buffer", p)
            buf *= self.momentum
            buf += g / denom
            p -= self.lr * buf
        else:
            p -= self.lr * (g / denom)
