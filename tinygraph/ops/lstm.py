"""Fused recurrent ops."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str
from .base import Op, check_buffer, register
from .lazy import OuterSum, ScatterSum, dense


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
        lead = x_proj.shape[:-1]
        if ok and not (x_proj.shape[:-1] == h.shape[:-1] == c.shape[:-1]):
            try:
                lead = np.broadcast_shapes(x_proj.shape[:-1], h.shape[:-1], c.shape[:-1])
            except ValueError:
                ok = False
        if not ok:
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
        zg = _gate_major(z, H)  # (4, ..., H) view of z
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
        g_h, g_c, g_rest = _lstm_output_grads(g, out)
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
        if grad_buffer is not None:
            dz = grad_buffer
        else:
            dz = np.empty(lead + (4 * H,), dtype=out.dtype)
        dzg = _gate_major(dz, H)
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
        if dz.ndim == 2:
            # (W_h @ dz.T).T, not dz @ W_h.T: the same numbers, but OpenBLAS runs the
            # (B, 4H) @ (4H, K) product with a transposed right operand ~1.5x slower
            dh = np.matmul(W_h, dz.T).T
        else:
            dh = dz @ W_h.T
        if h.ndim == 2 and dz.ndim == 2 and h.shape[0] == dz.shape[0]:
            dW = OuterSum(h, dz)
        else:
            hb = np.broadcast_to(h, dz.shape[:-1] + h.shape[-1:])
            dW = hb.reshape(-1, h.shape[-1]).T @ dz.reshape(-1, dz.shape[-1])
        dc *= f
        return dz, dh, dW, dc


def _gate_major(z, H):
    """The (..., 4H) array ``z`` as a (4, ..., H) view: ``[k]`` is gate k's block."""
    n = z.ndim
    return z.reshape(z.shape[:-1] + (4, H)).transpose((n - 1,) + tuple(range(n - 1)) + (n,))


def _lstm_output_grads(g, out):
    """Split the gradient of an ``lstm_cell`` output into ``(g_h, g_c, g_rest)``.

    ``g_rest`` is the dense (7, ..., H) gradient when blocks other than
    ``h_new = out[0]`` and ``c_new = out[1]`` may be non-zero, else None.
    ``g_c`` may be None (zero); ``g_h`` is an array (zeros if nothing reached ``h_new``).
    """
    pieces = g.pieces() if type(g) is ScatterSum else None
    if pieces is not None:
        g_h = g_c = None
        block_shape = out.shape[1:]
        for index, value in pieces:
            if type(index) is not int or index not in (0, 1) or value.shape != block_shape:
                break
            if index == 0:
                g_h = value if g_h is None else g_h + value
            else:
                g_c = value if g_c is None else g_c + value
        else:
            if g_h is None:
                g_h = np.zeros(block_shape, dtype=out.dtype)
            return g_h, g_c, None
    g = dense(g)
    return g[0], g[1], g
