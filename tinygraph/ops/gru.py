"""The fused GRU step."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str
from .base import Op, check_buffer, register
from .fused import gate_major, leading_shape, recurrent_grads, state_grads


@register
class GRUCellOp(Op):
    """One GRU step after the input projection, fused: ``h @ W_h`` and the gate math.

    Inputs: ``x_proj`` (..., 3H), the input's share of the pre-activations
    (typically ``x_t @ W_x + b``, all steps projected at once) in gate order
    **n, r, z**; ``h`` (..., H), the previous hidden state; ``W_h`` (H, 3H),
    the hidden-to-gate matrix in gate order **r, z, n**; ``b_hn`` (H,), the
    bias of the candidate's hidden part. With ``a = h @ W_h``::

        r = sigmoid(x_proj[..., H:2H] + a[..., :H])
        z = sigmoid(x_proj[..., 2H:] + a[..., H:2H])
        hn = a[..., 2H:] + b_hn
        n = tanh(x_proj[..., :H] + r * hn)
        h_new = (1 - z) * n + z * h

    (the cuDNN/PyTorch variant: the reset gate scales ``h @ W_hn + b_hn``).

    The two gate orders differ so that the gradients of the pre-activations fit
    one (..., 4H) array laid out ``[n (input part), r, z, n (hidden part)]``:
    ``x_proj``'s gradient is its first 3H columns and the one multiplying
    ``W_h`` (for ``h``'s and ``W_h``'s gradients) its last 3H, both views,
    neither copied.

    The output (5, ..., H) stacks ``[h_new, r, z, n, hn]`` along a new first
    axis (``out[0]`` is ``h_new``): the new state first, then what the
    backward pass needs. Each block is contiguous. Gradients into every part
    of the output are handled. The gradient of ``W_h`` is a deferred
    ``OuterSum`` like matmul's.

    Optional attributes (buffer reuse, see ``tinygraph.template.BufferPool``):
    ``buffer``, an array of the output's shape and dtype that forward writes
    the output into, and ``grad_buffer``, a (..., 4H) array that the VJP writes
    the pre-activation gradients into (layout above; ``x_proj``'s gradient is
    ``grad_buffer[..., :3H]``). The caller must own them exclusively for this
    node. Without them, fresh arrays are allocated.

    The VJP takes the output gradient lazily (``lazy_grad``): when only
    ``h_new`` receives gradients (the usual unrolled chain), it sums the
    pending pieces and never builds the mostly-zero (5, ..., H) gradient.
    """

    name = "gru_cell"
    kind = "gru"
    lazy_grad = True

    def check(self, x_proj, h, W_h, b_hn, buffer=None, grad_buffer=None):
        H = h.shape[-1] if h.ndim >= 1 else -1
        ok = min(x_proj.ndim, h.ndim) >= 1 and W_h.ndim == 2 and b_hn.shape == (H,)
        ok = ok and x_proj.shape[-1] == 3 * H and W_h.shape == (H, 3 * H)
        lead = leading_shape(x_proj, h) if ok else None
        if lead is None:
            raise ShapeError(
                f"gru_cell: expected x_proj (..., 3H), h (..., H), W_h (H, 3H) and b_hn (H,) with "
                f"broadcastable leading dimensions, got {shape_str(x_proj.shape)}, {shape_str(h.shape)}, "
                f"{shape_str(W_h.shape)} and {shape_str(b_hn.shape)}"
            )
        if buffer is not None or grad_buffer is not None:
            dtype = np.result_type(x_proj, h, W_h, b_hn)
            check_buffer("gru_cell", "buffer", buffer, (5,) + tuple(lead) + (H,), dtype)
            check_buffer("gru_cell", "grad_buffer", grad_buffer, tuple(lead) + (4 * H,), dtype)

    def forward(self, x_proj, h, W_h, b_hn, buffer=None, grad_buffer=None):
        H = h.shape[-1]
        a = h @ W_h
        lead = x_proj.shape[:-1]
        if a.shape[:-1] != lead:  # the gate axis leads, so line the other axes up first
            lead = np.broadcast_shapes(a.shape[:-1], lead)
            a = np.broadcast_to(a, lead + a.shape[-1:])
            x_proj = np.broadcast_to(x_proj, lead + x_proj.shape[-1:])
        dtype = np.result_type(a, x_proj, b_hn)
        out = buffer if buffer is not None else np.empty((5,) + lead + (H,), dtype=dtype)
        ag, xg = gate_major(a, 3, H), gate_major(x_proj, 3, H)
        # r, z = sigmoid(...) with sigmoid(s) = 0.5 * tanh(s / 2) + 0.5 (one tanh call, never overflows)
        s = out[1:3]
        np.add(ag[:2], xg[1:], out=s)
        s *= 0.5
        np.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        h_new, r, z, n, hn = out[0], out[1], out[2], out[3], out[4]
        np.add(ag[2], b_hn, out=hn)
        np.multiply(r, hn, out=n)
        n += xg[0]
        np.tanh(n, out=n)
        # h_new = (1 - z) * n + z * h = n + z * (h - n)
        np.subtract(h, n, out=h_new)
        h_new *= z
        h_new += n
        return out

    def vjp(self, g, out, x_proj, h, W_h, b_hn, buffer=None, grad_buffer=None):
        H = h.shape[-1]
        r, z, n, hn = out[1], out[2], out[3], out[4]
        (g_h,), g_rest = state_grads(g, out, 1)
        lead = out.shape[1:-1]
        dz = grad_buffer if grad_buffer is not None else np.empty(lead + (4 * H,), dtype=out.dtype)
        dg = gate_major(dz, 4, H)  # [n (input part), r, z, n (hidden part)]
        d_an, d_ar, d_az, d_hn = dg[0], dg[1], dg[2], dg[3]
        # update gate: d z = g_h * (h - n)
        np.subtract(h, n, out=d_az)
        d_az *= g_h
        if g_rest is not None:
            d_az += g_rest[2]
        # candidate: d n = g_h * (1 - z), through tanh
        np.subtract(1.0, z, out=d_an)
        d_an *= g_h
        if g_rest is not None:
            d_an += g_rest[3]
        sq = n * n
        np.subtract(1.0, sq, out=sq)
        d_an *= sq
        # reset gate: d r = d_an * hn; the hidden part: d hn = d_an * r
        np.multiply(d_an, hn, out=d_ar)
        np.multiply(d_an, r, out=d_hn)
        if g_rest is not None:
            d_ar += g_rest[1]
            d_hn += g_rest[4]
        # through both sigmoids at once: s * (1 - s)
        s = out[1:3]
        deriv = np.subtract(1.0, s)
        deriv *= s
        dg[1:3] *= deriv
        d_x = dz[..., : 3 * H]
        d_a = dz[..., H:]
        # h's gradient: through h @ W_h, and directly (z * g_h)
        dh, dW = recurrent_grads(d_a, h, W_h)
        direct = g_h * z
        if dh.shape == direct.shape:
            dh += direct
        else:
            dh = dh + direct
        return d_x, dh, dW, d_hn

