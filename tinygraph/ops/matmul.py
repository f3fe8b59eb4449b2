"""The matrix product."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str
from .base import Op, register
from .lazy import OuterSum


@register
class MatMul(Op):
    """``a @ b`` with numpy's matmul broadcasting (1-D operands included)."""
    saves = (0, 1)  # what the VJP reads (the engine checks these were not modified)

    name, symbol = "matmul", "@"
    kind = "matmul"

    def check(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(
                f"matmul: operands must have at least 1 dimension, got shapes "
                f"{shape_str(a.shape)} and {shape_str(b.shape)} (use * for scalars)"
            )
        k_a = a.shape[-1]
        k_b = b.shape[-2] if b.ndim >= 2 else b.shape[0]
        if k_a != k_b:
            raise ShapeError(
                f"matmul: shapes {shape_str(a.shape)} @ {shape_str(b.shape)} do not fit: "
                f"the last dimension of the left operand ({k_a}) must equal the "
                f"{'second-to-last' if b.ndim >= 2 else 'only'} dimension of the right operand ({k_b})"
            )
        if a.ndim > 2 and b.ndim > 2:
            try:
                np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            except ValueError:
                raise ShapeError(
                    f"matmul: batch dimensions of {shape_str(a.shape)} and {shape_str(b.shape)} "
                    f"do not broadcast ({shape_str(a.shape[:-2])} vs {shape_str(b.shape[:-2])})"
                ) from None

    def forward(self, a, b):
        return a @ b

    def vjp(self, g, out, a, b):
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a
        if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
            ga = (g[..., None, :] @ np.swapaxes(b, -1, -2))[..., 0, :]
            gb = a[:, None] * g[..., None, :]
            return ga, gb
        if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
            ga = g[..., :, None] * b
            gb = (np.swapaxes(a, -1, -2) @ g[..., :, None])[..., 0]
            return ga, gb
        ga = g @ np.swapaxes(b, -1, -2)
        if a.ndim == 2 and b.ndim == 2:
            return ga, OuterSum(a, g)
        return ga, np.swapaxes(a, -1, -2) @ g


def _matmul_shape(a, b):
    """The shape of ``a @ b`` for operand shapes that fit (checked before)."""
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        return tuple(b[:-2]) + (b[-1],)
    if len(b) == 1:
        return tuple(a[:-1])
    return tuple(np.broadcast_shapes(a[:-2], b[:-2])) + (a[-2], b[-1])
