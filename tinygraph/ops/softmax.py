"""Fused softmax-family ops: ``log_softmax`` along an axis and the ``cross_entropy`` of logits.

Composed from generic ops, ``x - log(sum(exp(x - max)))`` is about eight graph
nodes, each a full pass over the logits forward and another backward, and
picking the targets' entries scatters back with ``np.add.at``. Here each is one
node whose VJP is the closed form:

* ``log_softmax``: ``g - softmax * sum(g, axis)``, with ``softmax = exp(out)``
  read from the saved output;
* ``cross_entropy``: ``(softmax - onehot(targets)) * w * g``, ``w`` the per-row
  weight of the reduction (``keep / count`` for the mean).

Both subtract the row maximum first, so logits of magnitude 1e4 neither
overflow nor lose the result.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str
from .base import Op, register


def _check_axis(name, a, axis):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    if a.ndim == 0:
        raise ShapeError(f"{name}: expected an input with at least one dimension, got a 0-d array")
    if not -a.ndim <= axis < a.ndim:
        raise ShapeError(f"{name}: axis {axis} is out of range for an input of shape {shape_str(a.shape)} "
                         f"(expected -{a.ndim} <= axis < {a.ndim})")
    if a.shape[axis] == 0:
        raise ShapeError(f"{name}: input of shape {shape_str(a.shape)} has no classes along axis {axis}; "
                         f"expected at least one")


def _exp_sum(x):
    """For (N, C) ``x``: the (N,) row maxima ``m``, ``exp(x - m)`` (N, C) and its (N,) row sums."""
    m = x.max(axis=1)
    e = np.subtract(x, m[:, None])
    np.exp(e, out=e)
    return m, e, e.sum(axis=1)


@register
class LogSoftmax(Op):
    """``log_softmax(a, axis) = a - logsumexp(a, axis)``, computed as ``s - log(sum(exp(s)))``
    with ``s = a - max(a, axis)``.

    Input ``a`` (..., C, ...), output of the same shape (every entry <= 0). The
    VJP reads only the output: ``g - exp(out) * sum(g, axis)``.
    """
    saves = ("out",)  # what the VJP reads (the engine checks these were not modified)
    name = "log_softmax"
    kind = "softmax"

    def check(self, a, axis=-1):
        _check_axis(self.name, a, axis)

    def forward(self, a, axis=-1):
        shifted = a - a.max(axis=axis, keepdims=True)
        shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        return shifted

    def vjp(self, g, out, a, axis=-1):
        p = np.exp(out)
        p *= g.sum(axis=axis, keepdims=True)
        return (g - p,)


_REDUCTIONS = ("mean", "sum", "none")


@register
class CrossEntropy(Op):
    """Cross-entropy of logits against integer targets along the last axis, fused.

    Input ``logits`` (..., C). Attributes:

    * ``targets``: integer array (...), class indices in ``[0, C)`` where kept;
    * ``keep``: boolean array (...) or None (all kept). A dropped row's logits
      are never read (they count as zeros), so an inf or nan there reaches
      neither the loss nor the gradient; its target may be anything;
    * ``reduction``: ``"none"`` gives the per-row losses (...) (0 where dropped),
      ``"sum"`` their sum, ``"mean"`` their sum over the number of kept rows
      (at least 1), both scalars.

    Per row, ``loss = logsumexp(x) - x[target]``. The VJP is
    ``(softmax(x) - onehot(target)) * w * g`` with the per-row weight ``w``
    (``keep``, divided by the count for the mean). A node's own instance
    (``CrossEntropy(per_node=True)``, what ``nn.functional.cross_entropy`` applies)
    keeps ``exp(x - max)`` and its row sums from its forward pass, so the VJP is one
    pass over (N, C); the registered instance keeps nothing and recomputes them
    from the logits in the VJP.
    """
    saves = (0,)  # what the VJP reads (the registered instance recomputes the softmax from the logits)
    name = "cross_entropy"
    kind = "cross_entropy"

    def __init__(self, per_node=False):
        self.per_node = per_node
        self.saved = None

    def check(self, logits, targets=None, keep=None, reduction="mean"):
        name = self.name
        if logits.ndim == 0 or logits.shape[-1] == 0:
            raise ShapeError(f"{name}: expected logits of shape (..., C) with C >= 1, got {shape_str(logits.shape)}")
        lead, num_classes = logits.shape[:-1], logits.shape[-1]
        if not isinstance(targets, np.ndarray) or not np.issubdtype(targets.dtype, np.integer):
            got = targets.dtype if isinstance(targets, np.ndarray) else type(targets).__name__
            raise TypeError(f"{name}: targets must be an integer numpy array of class indices, got {got}")
        if targets.shape != lead:
            raise ShapeError(f"{name}: targets of shape {shape_str(targets.shape)} do not match logits of shape "
                             f"{shape_str(logits.shape)}; expected targets of shape {shape_str(lead)}")
        if keep is not None and (not isinstance(keep, np.ndarray) or keep.dtype != np.bool_ or keep.shape != lead):
            got = (f"{shape_str(keep.shape)} {keep.dtype}" if isinstance(keep, np.ndarray) else type(keep).__name__)
            raise TypeError(f"{name}: keep must be None or a boolean array of shape {shape_str(lead)}, got {got}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{name}: reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")
        kept = targets if keep is None else targets[keep]
        if kept.size and (kept.min() < 0 or kept.max() >= num_classes):
            bad = kept[(kept < 0) | (kept >= num_classes)][0]
            raise ValueError(f"{name}: target {bad} is out of range for {num_classes} classes "
                             f"(expected 0 <= target < {num_classes})")

    @staticmethod
    def _targets(targets, keep):
        """The (N,) targets (0 where dropped), the (N,) keep mask or None, and the kept count."""
        t = targets.reshape(-1)
        if keep is None:
            return t, None, t.shape[0]
        k = keep.reshape(-1)
        return (t if k.all() else np.where(k, t, 0)), k, int(np.count_nonzero(k))

    @staticmethod
    def _logits(logits, k):
        """The logits as (N, C), rows dropped by the (N,) mask ``k`` (None: none) replaced by zeros."""
        x = logits.reshape(-1, logits.shape[-1])
        if k is not None and not k.all():
            x = np.where(k[:, None], x, np.zeros((), dtype=logits.dtype))
        return x

    def forward(self, logits, targets=None, keep=None, reduction="mean"):
        t, k, count = self._targets(targets, keep)
        x = self._logits(logits, k)
        m, e, s = _exp_sum(x)
        nll = np.log(s) - (x[np.arange(x.shape[0]), t] - m)
        if k is not None:
            nll *= k.astype(nll.dtype)
        if self.per_node:
            self.saved = e, s
        if reduction == "none":
            return nll.reshape(targets.shape)
        total = np.sum(nll)
        if reduction == "sum":
            return total
        return total / logits.dtype.type(max(count, 1))

    def vjp(self, g, out, logits, targets=None, keep=None, reduction="mean"):
        t, k, count = self._targets(targets, keep)
        e, s = self.saved if self.saved is not None else _exp_sum(self._logits(logits, k))[1:]
        if reduction == "none":
            coef = np.array(g, dtype=e.dtype).reshape(-1)
        else:
            gs = g / max(count, 1) if reduction == "mean" else g
            coef = np.full(e.shape[0], gs, dtype=e.dtype)
        if k is not None:  # a where, not a product: a nan gradient at a dropped row reaches nothing
            coef = np.where(k, coef, np.zeros((), dtype=coef.dtype))
        grad = e * (coef / s)[:, None]  # softmax * coef, in one pass over (N, C)
        grad[np.arange(e.shape[0]), t] -= coef
        return (grad.reshape(logits.shape),)
