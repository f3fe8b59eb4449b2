"""Reductions over axes: sum, mean, max."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str
from .base import Op, register


def normalize_axis(name, axis, ndim, shape):
    """Return ``axis`` as a sorted tuple of non-negative ints, or raise a clear error."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (tuple, list)) or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}")
    axes = tuple(int(a) for a in axes)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(
                f"{name}: axis {a} is out of range for a tensor of shape {shape_str(shape)} "
                f"(expected -{ndim} <= axis < {ndim})"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{name}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def _expand_reduced(g, shape, axes, keepdims):
    """Broadcast a reduced gradient back to ``shape`` (a read-only view)."""
    if not keepdims and axes:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


class _Reduce(Op):
    kind = "reduce"

    def check(self, a, axis=None, keepdims=False):
        # The tensor method normalises axis first; this guards direct op calls.
        normalize_axis(self.name, axis, a.ndim, a.shape)


@register
class Sum(_Reduce):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    name, symbol = "sum", "Σ"

    def forward(self, a, axis=None, keepdims=False):
        return np.sum(a, axis=axis, keepdims=keepdims)

    def vjp(self, g, out, a, axis=None, keepdims=False):
        return (_expand_reduced(g, a.shape, axis, keepdims),)


@register
class Mean(_Reduce):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    name = "mean"

    def forward(self, a, axis=None, keepdims=False):
        return np.mean(a, axis=axis, keepdims=keepdims)

    def vjp(self, g, out, a, axis=None, keepdims=False):
        count = a.size // max(out.size, 1) if a.size else 1
        if count > 2048 and g.dtype == np.float16:
            # the count as a float16 overflows to inf above 65504 (and rounds above 2048):
            # divide in float32, then round once
            scaled = (g.astype(np.float32) / np.float32(count)).astype(np.float16)
        else:
            scaled = g / count
        return (_expand_reduced(scaled, a.shape, axis, keepdims),)


class _Extreme(_Reduce):
    """Max or min over ``axis``. Where several elements tie for the extreme the
    gradient is split evenly between them (so it sums to the output gradient)."""
    saves = (0, "out")  # what the VJP reads (the engine checks these were not modified)

    domain = "distinct"
    _numpy = None

    def check(self, a, axis=None, keepdims=False):
        super().check(a, axis, keepdims)
        if a.size == 0:
            raise ShapeError(f"{self.name}: cannot take the {self.name} of an empty tensor of shape "
                             f"{shape_str(a.shape)}")

    def forward(self, a, axis=None, keepdims=False):
        return type(self)._numpy(a, axis=axis, keepdims=keepdims)

    def vjp(self, g, out, a, axis=None, keepdims=False):
        out_k = out if keepdims or not axis else np.expand_dims(out, axis)
        g_k = g if keepdims or not axis else np.expand_dims(g, axis)
        hit = a == out_k
        if np.isnan(out).any():
            # a nan is the max (numpy propagates it): the gradient goes to the nan elements
            # (nan != nan, so without this no element matches and every gradient is 0/0)
            hit |= np.isnan(a) & np.isnan(out_k)
        mask = hit.astype(a.dtype)
        mask /= mask.sum(axis=axis, keepdims=True)
        return (mask * g_k,)


@register
class Max(_Extreme):
    """Maximum over ``axis``; tied maxima share the gradient evenly."""

    name = "max"
    _numpy = staticmethod(np.max)


@register
class Min(_Extreme):
    """Minimum over ``axis``; tied minima share the gradient evenly."""

    name = "min"
    _numpy = staticmethod(np.min)
