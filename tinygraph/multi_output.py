"""Ops with several outputs (``Op.n_outputs > 1``, like needle's ``TensorTuple``).

``apply`` of such an op returns one real graph node per output. The nodes share
the op, its parents and an ``OutputGroup``, so that backward calls the op's VJP
once, with the gradients of all its outputs (``autograd``); each node's ``.data``
is its own output array.
"""
from __future__ import annotations

import weakref

import numpy as np

from . import tensor as _tensor  # (tensor imports this module at its end: names are read at call time)


class OutputGroup:
    """The outputs of one application of a multi-output op: their arrays (what the VJP
    receives as ``out``) and weak references to their tensors (no reference cycle)."""

    __slots__ = ("arrays", "refs")

    def __init__(self, arrays, tensors):
        self.arrays = arrays
        self.refs = tuple(weakref.ref(t) for t in tensors)

    def tensors(self):
        """The output tensors, None for one that no longer exists."""
        return [r() for r in self.refs]

    def index(self, tensor):
        return next(k for k, r in enumerate(self.refs) if r() is tensor)

    # Weak references cannot be pickled: a copy keeps the arrays and the tensors that
    # still exist (pickle records this object before its state, so the cycle with the
    # tensors that point back at it closes on the one copy).
    def __getstate__(self):
        return self.arrays, self.tensors()

    def __setstate__(self, state):
        self.arrays, tensors = state
        self.refs = tuple(_dead_ref if t is None else weakref.ref(t) for t in tensors)


def _dead_ref():
    return None


def apply_multi(fn, inputs, attrs, outs):
    """The tuple of output Tensors of a multi-output op (``Op.n_outputs``)."""
    if not isinstance(outs, (tuple, list)) or len(outs) != fn.n_outputs:
        raise TypeError(f"{fn.name}: forward must return a tuple of {fn.n_outputs} arrays "
                        f"(n_outputs), got {type(outs).__name__}")
    arrays = tuple(np.asarray(o) for o in outs)
    tensors = [_tensor.record(fn, inputs, attrs, a) for a in arrays]  # nodes like any other, this op's parents
    group = OutputGroup(arrays, tensors)
    for t in tensors:
        t._group = group
    return tuple(tensors)
