"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay."""
from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, check_nonnegative


class SGD(Optimizer):
    """Stochastic gradient descent (PyTorch's update rule).

    With ``g = grad + weight_decay * p``::

        buf = g                                        (first step)
        buf = momentum * buf + (1 - dampening) * g     (later steps)
        d = g + momentum * buf if nesterov else buf    (d = g without momentum)
        p -= lr * d

    Parameters
    ----------
    params : iterable of Tensor
    lr : float >= 0
    momentum : float >= 0
    dampening : float >= 0
    weight_decay : float >= 0
    nesterov : bool
        Needs ``momentum > 0`` and ``dampening == 0``.
    """

    hyperparameter_names = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _validate(self, h):
        for name in ("lr", "momentum", "dampening", "weight_decay"):
            check_nonnegative("SGD", name, h[name])
        if not isinstance(h["nesterov"], (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be a bool, got {h['nesterov']!r}")
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov momentum needs momentum > 0 and dampening == 0, "
                f"got momentum={h['momentum']!r}, dampening={h['dampening']!r}"
            )

    def _update(self, i, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g
