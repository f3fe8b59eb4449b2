"""Elementwise ops: binary ops with numpy broadcasting, unary functions."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str
from .base import Op, register


def _broadcast_check(name, a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"{name}: operand shapes {shape_str(a.shape)} and {shape_str(b.shape)} "
            f"do not broadcast (numpy rules: trailing dimensions must be equal or 1)"
        ) from None


class _Binary(Op):
    kind = "binary"

    def check(self, a, b):
        # A plain-Python test of numpy's rule is far cheaper than np.broadcast_shapes
        # on the tiny shapes of a scalar-heavy graph.
        if a.shape != b.shape:
            for da, db in zip(a.shape[::-1], b.shape[::-1]):
                if da != db and da != 1 and db != 1:
                    _broadcast_check(self.name, a, b)


@register
class Add(_Binary):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    name, symbol = "add", "+"

    def forward(self, a, b):
        return a + b

    def vjp(self, g, out, a, b):
        return g, g


@register
class Sub(_Binary):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    name, symbol = "sub", "-"

    def forward(self, a, b):
        return a - b

    def vjp(self, g, out, a, b):
        return g, -g


@register
class Mul(_Binary):
    saves = (0, 1)  # what the VJP reads (the engine checks these were not modified)
    name, symbol = "mul", "*"

    def forward(self, a, b):
        return a * b

    def vjp(self, g, out, a, b):
        return g * b, g * a


@register
class Div(_Binary):
    saves = (1, "out")  # what the VJP reads (the engine checks these were not modified)
    name, symbol = "div", "/"
    domain = "away_from_zero"  # the divisor

    def forward(self, a, b):
        return a / b

    def vjp(self, g, out, a, b):
        gb = g / b
        return gb, -gb * out


@register
class Pow(_Binary):
    """``a ** b``. The gradient with respect to ``b`` is ``out * log(a)``, defined for ``a > 0``."""
    saves = (0, 1, "out")  # what the VJP reads (the engine checks these were not modified)

    name, symbol = "pow", "**"
    domain = "positive"  # the base

    def forward(self, a, b):
        return a**b

    def vjp(self, g, out, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            ga = g * b * a ** (b - 1)
            gb = g * out * np.log(a)
        # d(a ** 0)/da is 0 everywhere, also at a == 0 where the formula gives 0 * inf
        if not np.all(np.isfinite(ga)):
            ga = np.where(b == 0, 0.0, ga).astype(ga.dtype, copy=False)
        # Where a == 0 the exponent's gradient is 0 * log(0): take the limit 0 for
        # positive exponents, as the other libraries do.
        if not np.all(np.isfinite(gb)):
            gb = np.where(a == 0, 0.0, gb).astype(out.dtype, copy=False)
        return ga, gb


class _Pick(_Binary):
    """Elementwise choice of one operand (``pick``: ``np.maximum`` or ``np.minimum``); the
    gradient goes to the operand picked, and at ties is split evenly between both."""
    saves = (0, 1)  # what the VJP reads (the engine checks these were not modified)

    domain = "distinct"
    pick = None
    wins = None  # a wins where wins(a, b)

    def forward(self, a, b):
        return type(self).pick(a, b)

    def vjp(self, g, out, a, b):
        wa = type(self).wins(a, b) + 0.5 * (a == b)
        return g * wa, g * (1.0 - wa)


@register
class Maximum(_Pick):
    """Elementwise maximum; at ties the gradient is split evenly between both inputs."""

    name = "maximum"
    pick, wins = staticmethod(np.maximum), staticmethod(np.greater)


@register
class Minimum(_Pick):
    """Elementwise minimum; at ties the gradient is split evenly between both inputs."""

    name = "minimum"
    pick, wins = staticmethod(np.minimum), staticmethod(np.less)


@register
class Where(Op):
    """``where(cond, a, b)``: ``a`` where ``cond`` is true, else ``b`` (numpy broadcasting).

    ``cond`` is a boolean array attribute, not differentiated. Unlike
    ``a * mask + b * (1 - mask)``, an inf or nan in the branch not taken never
    leaks into the result or the gradient.
    """
    saves = ()  # what the VJP reads (the engine checks these were not modified)

    name = "where"
    kind = "where"

    def check(self, a, b, cond):
        if not isinstance(cond, np.ndarray) or cond.dtype != np.bool_:
            raise TypeError(f"where: cond must be a boolean numpy array, got "
                            f"{type(cond).__name__ if not isinstance(cond, np.ndarray) else cond.dtype}")
        try:
            np.broadcast_shapes(cond.shape, a.shape, b.shape)
        except ValueError:
            raise ShapeError(
                f"where: cond {shape_str(cond.shape)}, a {shape_str(a.shape)} and b {shape_str(b.shape)} "
                f"do not broadcast together"
            ) from None

    def forward(self, a, b, cond):
        return np.where(cond, a, b)

    def vjp(self, g, out, a, b, cond):
        zero = np.zeros((), dtype=g.dtype)
        return np.where(cond, g, zero), np.where(cond, zero, g)


@register
class Clip(Op):
    """Elementwise ``min(max(a, lo), hi)``. The gradient passes where ``lo <= a <= hi``
    (bounds included, as in PyTorch's ``clamp``) and is 0 where the value was clipped."""
    saves = (0,)  # what the VJP reads (the engine checks these were not modified)

    name = "clip"
    kind = "clip"

    def check(self, a, lo=None, hi=None):
        for name, bound in (("lo", lo), ("hi", hi)):
            if bound is not None and bound != bound:
                raise ValueError(f"clip: {name} is nan; give a number or None (no bound)")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"clip: lo ({lo}) must not exceed hi ({hi})")

    def forward(self, a, lo=None, hi=None):
        return np.clip(a, lo, hi)

    def vjp(self, g, out, a, lo=None, hi=None):
        inside = np.ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        return (g * inside,)


class _Unary(Op):
    kind = "unary"


@register
class Neg(_Unary):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    name, symbol = "neg", "-"

    def forward(self, a):
        return -a

    def vjp(self, g, out, a):
        return (-g,)


@register
class Exp(_Unary):
    saves = ("out",)  # what the VJP reads (the engine checks these were not modified)
    name = "exp"

    def forward(self, a):
        return np.exp(a)

    def vjp(self, g, out, a):
        return (g * out,)


@register
class Log(_Unary):
    saves = (0,)  # what the VJP reads (the engine checks these were not modified)
    name = "log"
    domain = "positive"

    def forward(self, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(a)

    def vjp(self, g, out, a):
        return (g / a,)


@register
class Tanh(_Unary):
    saves = ("out",)  # what the VJP reads (the engine checks these were not modified)
    name = "tanh"

    def forward(self, a):
        return np.tanh(a)

    def vjp(self, g, out, a):
        return (g * (1.0 - out * out),)


@register
class Sigmoid(_Unary):
    saves = ("out",)  # what the VJP reads (the engine checks these were not modified)
    name = "sigmoid"

    def forward(self, a):
        # The split form: 1 / (1 + e) for a >= 0 and e / (1 + e) for a < 0, with
        # e = exp(-|a|) <= 1, never overflows and keeps full relative precision for
        # negative a (0.5 * (1 + tanh(a / 2)) rounds to exactly 0 below about -17
        # in float32, so log(sigmoid(a)) became -inf and its gradient nan).
        e = np.exp(-np.abs(a))
        denom = e + 1.0
        out = np.where(a >= 0, 1.0, e)
        out /= denom
        return out.astype(a.dtype, copy=False)

    def vjp(self, g, out, a):
        return (g * out * (1.0 - out),)


@register
class Relu(_Unary):
    """``max(a, 0)``; the gradient at exactly 0 is taken as 0."""
    saves = (0,)  # what the VJP reads (the engine checks these were not modified)

    name = "relu"
    domain = "away_from_zero"

    def forward(self, a):
        return np.maximum(a, 0)

    def vjp(self, g, out, a):
        return (g * (a > 0),)


@register
class Abs(_Unary):
    """``|a|``; the gradient at exactly 0 is taken as 0."""
    saves = (0,)  # what the VJP reads (the engine checks these were not modified)

    name = "abs"
    domain = "away_from_zero"

    def forward(self, a):
        return np.abs(a)

    def vjp(self, g, out, a):
        return (g * np.sign(a),)


@register
class Sqrt(_Unary):
    saves = ("out",)  # what the VJP reads (the engine checks these were not modified)
    name = "sqrt"
    domain = "positive"

    def forward(self, a):
        with np.errstate(invalid="ignore"):
            return np.sqrt(a)

    def vjp(self, g, out, a):
        return (g * 0.5 / out,)
