"""Adding a gradient into a tensor's ``.grad`` (leaves, and tensors that retain their
gradient), with clear errors for a ``.grad`` that a user set to something unusable."""
from __future__ import annotations

import numpy as np

from .errors import shape_str
from .versions import label as _label


def store_grad(node, grad):
    """``node.grad += grad`` (a copy of ``grad`` when ``node.grad`` is None)."""
    existing = node.grad
    if existing is None:
        # A copy: ``grad`` may be a read-only broadcast view or shared with another edge.
        node.grad = np.array(grad, dtype=node._data.dtype, copy=True)
        return
    if existing.__class__ is not np.ndarray or existing.shape != node._data.shape \
            or existing.dtype.kind != "f" or not existing.flags.writeable:
        _bad_existing_grad(node, existing)
    existing += grad


def _bad_existing_grad(node, existing):
    what = _label(node, "a leaf")
    if not isinstance(existing, np.ndarray):
        raise TypeError(f"backward: {what} has .grad of type {type(existing).__name__}; expected None or a "
                        f"float numpy array of shape {shape_str(node.shape)} to accumulate into")
    if existing.shape != node._data.shape:
        raise ValueError(f"backward: {what} has a .grad of shape {shape_str(existing.shape)} set before "
                         f"backward; gradients accumulate into .grad, which must have the tensor's shape "
                         f"{shape_str(node.shape)} (or be None)")
    if existing.dtype.kind != "f":
        raise TypeError(f"backward: {what} has a .grad of dtype {existing.dtype} set before backward; "
                        f"expected a float array (or None) to accumulate into")
    raise ValueError(f"backward: {what} has a read-only .grad array; set .grad = None (or a writeable "
                     f"copy) before backward")
