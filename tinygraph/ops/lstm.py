"""Fused recurrent ops."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str
from .base import Op, check_buffer, register
from .fused import gate_major, leading_shape, recurrent_grads, state_grads


# ---------------------------------------------------------------------------
# Fused recurrent ops
#
# One LSTM step written with primitives is ~15 graph nodes; the Python cost per
# node then dominates small cells. This op is the same pointwise math as one
# node, with forward and VJP side by side like every other op.
# ---------------------------------------------------------------------------
@register
class LSTMCellOp(Op):
    """One LSTM step after the input projection, fused: ``h @ W_h`` and the gate math.

    Inputs: ``x_proj`` (..., 4H), the input's share of the gate pre-activations
    (typically ``x_t @ W_x + b``, all steps projected at once); ``h`` (..., K)
    and ``W_h`` (K, 4H), the previous hidden state and the hidden-to-gate
    matrix; ``c`` (..., H), the previous cell state. Gate order i, f, o, g.
    With ``z = x_proj + h @ W_h``::

        i, f, o = sigmoid(z[..., :H]), sigmoid(z[..., H:2H]), sigmoid(z[..., 2H:3H])
        g = tanh(z[..., 3H:])
        c_new = f * c + i * g
        h_new = o * tanh(c_new)

    The output (7, ..., H) stacks ``[h_new, c_new, i, f, o, g, tanh(c_new)]``
    along a new first axis (``out[0]`` is ``h_new``, ``out[1]`` is ``c_new``):
    the new state first, then the activations the backward pass needs (what
    BPTT must keep anyway). Each block is contiguous, so the pointwise math
    runs on whole arrays rather than column slices. Gradients into every part
    of the output are handled. The gradient of ``W_h`` is a deferred
    ``OuterSum`` like matmul's, so the T steps' terms are summed by one tall
    matmul.

    Optional attributes (buffer reuse, see ``tinygraph.template.BufferPool``):
    ``buffer``, an array of the output's shape and dtype that forward writes
    the output into, and ``grad_buffer``, an array of ``x_proj``'s gradient
    shape ((..., 4H)) that the VJP writes the gradient of the pre-activations
    into (and returns for ``x_proj``). The caller must own them exclusively
    for this node. Without them, fresh arrays are allocated.

    The VJP takes the output gradient lazily (``lazy_grad``): when only the
    ``h_new`` and ``c_new`` blocks receive gradients (the usual unrolled
    chain), it reads them from the pending pieces of the ``ScatterSum`` and
    never builds the mostly-zero (7, ..., H) gradient.
    """

    name = "lstm_cell"
    kind = "lstm"
    lazy_grad = True

    def check(self, x_proj, h, W_h, c, buffer=None, grad_buffer=None):
        ok = min(x_proj.ndim, h.ndim, c.ndim) >= 1 and W_h.ndim == 2
        ok = ok and x_proj.shape[-1] == W_h.shape[1] == 4 * c.shape[-1] and h.shape[-1] == W_h.shape[0]
        lead = leading_shape(x_proj, h, c) if ok else None
        if lead is None:
            raise ShapeError(
                f"lstm_cell: expected x_proj (..., 4H), h (..., K), W_h (K, 4H) and c (..., H) with "
                f"broadcastable leading dimensions, got {shape_str(x_proj.shape)}, {shape_str(h.shape)}, "
                f"{shape_str(W_h.shape)} and {shape_str(c.shape)}"
            )
        if buffer is not None or grad_buffer is not None:
            H = c.shape[-1]
            dtype = np.result_type(x_proj, h, W_h, c)
            check_buffer("lstm_cell", "buffer", buffer, (7,) + tuple(lead) + (H,), dtype)
            check_buffer("lstm_cell", "grad_buffer", grad_buffer, tuple(lead) + (4 * H,), dtype)

    def forward(self, x_proj, h, W_h, c, buffer=None, grad_buffer=None):
        H = c.shape[-1]
        z = h @ W_h
        if z.shape == x_proj.shape and z.dtype == np.result_type(z, x_proj):
            z += x_proj
        else:
            z = z + x_proj
        lead = z.shape[:-1] if z.shape[:-1] == c.shape[:-1] else np.broadcast_shapes(z.shape[:-1], c.shape[:-1])
        if z.shape[:-1] != lead:  # the gate axis leads, so line the other axes up first
            z = np.broadcast_to(z, lead + z.shape[-1:])
        out = buffer if buffer is not None else np.empty((7,) + lead + (H,), dtype=np.result_type(z, c))
        zg = gate_major(z, 4, H)  # (4, ..., H) view of z
        # sigmoid(a) = 0.5 * tanh(a / 2) + 0.5: tanh is cheaper than exp here, and never overflows
        s = out[2:5]
        np.multiply(zg[:3], 0.5, out=s)
        np.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        np.tanh(zg[3], out=out[5])
        i, f, o, cand, tc = out[2], out[3], out[4], out[5], out[6]
        c_new, h_new = out[1], out[0]
        np.multiply(f, c, out=c_new)
        np.multiply(i, cand, out=h_new)  # h_new's block as scratch for i * g
        c_new += h_new
        np.tanh(c_new, out=tc)
        np.multiply(o, tc, out=h_new)
        return out

    def vjp(self, g, out, x_proj, h, W_h, c, buffer=None, grad_buffer=None):
        H = c.shape[-1]
        i, f, o, cand, tc = out[2], out[3], out[4], out[5], out[6]
        (g_h, g_c), g_rest = state_grads(g, out, 2)
        # dc: through h_new = o * tanh(c_new), plus direct uses of tanh(c_new) and c_new
        dc = g_h * o
        if g_rest is not None:
            dc += g_rest[6]
        sq = tc * tc
        np.subtract(1.0, sq, out=sq)
        dc *= sq
        if g_c is not None:
            dc += g_c
        lead = out.shape[1:-1]
        dz = grad_buffer if grad_buffer is not None else np.empty(lead + (4 * H,), dtype=out.dtype)
        dzg = gate_major(dz, 4, H)
        ds = np.empty((3,) + lead + (H,), dtype=out.dtype)
        np.multiply(dc, cand, out=ds[0])
        np.multiply(dc, c, out=ds[1])
        np.multiply(g_h, tc, out=ds[2])
        if g_rest is not None:
            ds += g_rest[2:5]
        s = out[2:5]
        deriv = np.subtract(1.0, s)
        deriv *= s
        np.multiply(ds, deriv, out=dzg[:3])
        dg = dc * i
        if g_rest is not None:
            dg += g_rest[5]
        np.multiply(cand, cand, out=sq)
        np.subtract(1.0, sq, out=sq)
        np.multiply(dg, sq, out=dzg[3])
        dh, dW = recurrent_grads(dz, h, W_h)
        dc *= f
        return dz, dh, dW, dc

