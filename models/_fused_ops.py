"""The fused recurrent ops of the built-in cells (``rnn_cell``, ``lstm_cell``, ``gru_cell``).

They are ordinary custom ops, registered through the public ``tinygraph.register``
like any user's op: the engine knows nothing of gates. Each step applies its
*own* instance of the op, which keeps that node's activations private (they
are not outputs: the LSTM op has the two outputs ``h_t`` and ``c_t``, the GRU
and RNN ops ``h_t``) and, in a fused unroll (``LSTMCellOp(out=..., grad=...)``), owns
that step's slots of the unroll's workspace as scratch: the activations are
written into ``out`` and the pre-activation gradient into ``grad``. Buffers are
never op arguments. The registered instance (what ``tinygraph.apply``,
``check_graph`` and the op-table tests use) keeps nothing, allocates fresh
arrays and recomputes the activations in its VJP.
"""
from __future__ import annotations

import numpy as np

import tinygraph
from tinygraph.errors import ShapeError, shape_str
from tinygraph.ops import OuterSum, check_buffer


class _FusedOp(tinygraph.Op):
    """A fused cell op. An instance made for one graph node (``per_node=True``, which
    the cells always use) keeps the activations its VJP needs (``saved``, private to
    the op: they are not outputs) and may own scratch arrays; the registered instance
    keeps nothing and recomputes them in the VJP."""

    def __init__(self, out=None, grad=None, lease=None, per_node=False):
        # ``lease``: the object the arrays are leased to (the unroll's workspace, see
        # tinygraph.buffers); the node keeps it alive, so the pool cannot hand them out again
        self.out, self.grad, self.lease = out, grad, lease
        self.per_node = per_node or out is not None or grad is not None
        self.saved = None

    def _activations(self, *xs):
        """The (blocks, ..., H) activations of this node's forward (recomputed by the registered op)."""
        if self.saved is not None:
            return self.saved
        return type(self)()._compute(*xs)

    def _scratch(self, which, shape, dtype):
        array = getattr(self, which)
        if array is None:
            return np.empty(shape, dtype=dtype)
        check_buffer(self.name, f"its {which} scratch", array, shape, dtype)
        return array


def leading_shape(*arrays):
    """The broadcast shape of the arrays' leading axes (all but the last), or None if they do not broadcast."""
    lead = arrays[0].shape[:-1]
    if all([a.shape[:-1] == lead for a in arrays]):  # the usual case: every step's (B, .) operands
        return lead
    leads = [a.shape[:-1] for a in arrays]
    if all(lead == leads[0] for lead in leads):
        return leads[0]
    try:
        return np.broadcast_shapes(*leads)
    except ValueError:
        return None


def gate_major(a, k, H):
    """The (..., k*H) array ``a`` as a (k, ..., H) view: ``[j]`` is block j."""
    n = a.ndim
    return a.reshape(a.shape[:-1] + (k, H)).transpose((n - 1,) + tuple(range(n - 1)) + (n,))


def recurrent_grads(d_a, h, W_h):
    """``(dh, dW_h)`` for ``a = h @ W_h`` given ``d_a``; ``dW_h`` is a deferred ``OuterSum``
    when it can be, so the T steps' terms are summed by one tall matmul."""
    if d_a.ndim == 2:
        # (W_h @ d_a.T).T, not d_a @ W_h.T: the same numbers, but OpenBLAS runs the
        # (B, G) @ (G, K) product with a transposed right operand ~1.5x slower at B=32
        dh = np.matmul(W_h, d_a.T).T
    else:
        dh = d_a @ W_h.T
    if h.ndim == 2 and d_a.ndim == 2 and h.shape[0] == d_a.shape[0]:
        return dh, OuterSum(h, d_a)
    hb = np.broadcast_to(h, d_a.shape[:-1] + h.shape[-1:])
    return dh, hb.reshape(-1, h.shape[-1]).T @ d_a.reshape(-1, d_a.shape[-1])


@tinygraph.register
class RNNCellOp(_FusedOp):
    """One Elman step after the input projection, fused: ``h @ W_h``, the sum and the nonlinearity.

    Inputs: ``x_proj`` (..., H), the input's share of the pre-activation
    (typically ``x_t @ W_xh + b_h``, all steps projected at once); ``h`` (..., K)
    and ``W_h`` (K, H), the previous hidden state and the recurrent matrix.
    Attribute ``nonlinearity``: ``"tanh"`` (default) or ``"relu"``::

        h_new = tanh(x_proj + h @ W_h)          (or relu(...))

    One output, ``h_new``; the VJP needs nothing else (``tanh' = 1 - h_new**2``,
    ``relu' = h_new > 0``), kept private to the op as a (1, ..., H) array. The
    gradient of ``W_h`` is a deferred ``OuterSum`` like matmul's.

    Scratch (an instance made with ``RNNCellOp(out=..., grad=...)``): ``out``,
    a (1, ..., H) array that forward writes ``h_new`` into, and ``grad``, an
    array of ``x_proj``'s gradient shape that the VJP writes the gradient of
    the pre-activation into (and returns for ``x_proj``). Such an instance is
    applied to one node only.
    """

    name = "rnn_cell"
    kind = "rnn"
    NONLINEARITIES = ("tanh", "relu")

    def check(self, x_proj, h, W_h, nonlinearity="tanh"):
        if nonlinearity not in self.NONLINEARITIES:
            raise ValueError(f"rnn_cell: nonlinearity must be one of {self.NONLINEARITIES}, got {nonlinearity!r}")
        ok = min(x_proj.ndim, h.ndim) >= 1 and W_h.ndim == 2
        ok = ok and x_proj.shape[-1] == W_h.shape[1] and h.shape[-1] == W_h.shape[0]
        lead = leading_shape(x_proj, h) if ok else None
        if lead is None:
            raise ShapeError(
                f"rnn_cell: expected x_proj (..., H), h (..., K) and W_h (K, H) with broadcastable "
                f"leading dimensions, got {shape_str(x_proj.shape)}, {shape_str(h.shape)} and "
                f"{shape_str(W_h.shape)}"
            )

    def forward(self, x_proj, h, W_h, nonlinearity="tanh"):
        out = self._compute(x_proj, h, W_h, nonlinearity)
        if self.per_node:
            self.saved = out
        return out[0]

    def _compute(self, x_proj, h, W_h, nonlinearity="tanh"):
        lead = x_proj.shape[:-1] if x_proj.shape[:-1] == h.shape[:-1] else np.broadcast_shapes(
            x_proj.shape[:-1], h.shape[:-1])
        dtype = np.result_type(x_proj, h, W_h)
        out = self._scratch("out", (1,) + lead + (W_h.shape[1],), dtype)
        y = out[0]
        if h.shape[:-1] == lead and h.dtype == W_h.dtype == dtype:
            np.matmul(h, W_h, out=y)  # straight into the output: no temporary
        else:
            y[...] = h @ W_h
        y += x_proj
        if nonlinearity == "tanh":
            np.tanh(y, out=y)
        else:
            np.maximum(y, 0, out=y)
        return out

    def vjp(self, g, out, x_proj, h, W_h, nonlinearity="tanh"):
        y = self._activations(x_proj, h, W_h, nonlinearity)[0]
        dz = self._scratch("grad", y.shape, y.dtype)
        if nonlinearity == "tanh":
            np.multiply(y, y, out=dz)
            np.subtract(1.0, dz, out=dz)
            dz *= g
        else:
            np.greater(y, 0, out=dz, casting="unsafe")
            dz *= g
        dh, dW = recurrent_grads(dz, h, W_h)
        return dz, dh, dW


@tinygraph.register
class LSTMCellOp(_FusedOp):
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

    Two outputs, ``h_new`` and ``c_new`` (a multi-output op: two real graph
    nodes). The activations the backward pass needs stay private to the op: a
    (7, ..., H) array ``[h_new, c_new, i, f, o, g, tanh(c_new)]`` (what BPTT must
    keep anyway) whose first two blocks the outputs are. Each block is
    contiguous, so the pointwise math runs on whole arrays rather than column
    slices. The gradient of ``W_h`` is a deferred ``OuterSum`` like matmul's, so
    the T steps' terms are summed by one tall matmul.

    Scratch (an instance made with ``LSTMCellOp(out=..., grad=...)``, see the
    module docstring): ``out``, a (7, ..., H) array that forward writes the
    activations into, and ``grad``, an array of ``x_proj``'s gradient shape
    ((..., 4H)) that the VJP writes the gradient of the pre-activations into
    (and returns for ``x_proj``). Such an instance is applied to one node only.
    """

    name = "lstm_cell"
    kind = "lstm"
    n_outputs = 2  # (h_new, c_new)

    def check(self, x_proj, h, W_h, c):
        ok = min(x_proj.ndim, h.ndim, c.ndim) >= 1 and W_h.ndim == 2
        ok = ok and x_proj.shape[-1] == W_h.shape[1] == 4 * c.shape[-1] and h.shape[-1] == W_h.shape[0]
        lead = leading_shape(x_proj, h, c) if ok else None
        if lead is None:
            raise ShapeError(
                f"lstm_cell: expected x_proj (..., 4H), h (..., K), W_h (K, 4H) and c (..., H) with "
                f"broadcastable leading dimensions, got {shape_str(x_proj.shape)}, {shape_str(h.shape)}, "
                f"{shape_str(W_h.shape)} and {shape_str(c.shape)}"
            )

    def forward(self, x_proj, h, W_h, c):
        out = self._compute(x_proj, h, W_h, c)
        if self.per_node:
            self.saved = out
        return out[0], out[1]

    def _compute(self, x_proj, h, W_h, c):
        H = c.shape[-1]
        grad = self.grad  # this node's gradient scratch is free until its VJP: z goes there
        if (type(grad) is np.ndarray and grad.flags.writeable and h.shape[:-1] == x_proj.shape[:-1]
                and grad.shape == x_proj.shape and grad.dtype == h.dtype == W_h.dtype == x_proj.dtype):
            z = np.matmul(h, W_h, out=grad)
        else:
            z = h @ W_h
        if z.shape == x_proj.shape and z.dtype == np.result_type(z, x_proj):
            z += x_proj
        else:
            z = z + x_proj
        lead = z.shape[:-1] if z.shape[:-1] == c.shape[:-1] else np.broadcast_shapes(z.shape[:-1], c.shape[:-1])
        if z.shape[:-1] != lead:  # the gate axis leads, so line the other axes up first
            z = np.broadcast_to(z, lead + z.shape[-1:])
        out = self._scratch("out", (7,) + lead + (H,), np.result_type(z, c))
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

    def vjp(self, gs, outs, x_proj, h, W_h, c):
        H = c.shape[-1]
        out = self._activations(x_proj, h, W_h, c)
        i, f, o, cand, tc = out[2], out[3], out[4], out[5], out[6]
        g_h, g_c = gs
        if g_h is None:
            g_h = np.zeros(out.shape[1:], dtype=out.dtype)
        # dc: through h_new = o * tanh(c_new), plus the direct gradient of c_new
        dc = g_h * o
        sq = tc * tc
        np.subtract(1.0, sq, out=sq)
        dc *= sq
        if g_c is not None:
            dc += g_c
        lead = out.shape[1:-1]
        dz = self._scratch("grad", lead + (4 * H,), out.dtype)
        dzg = gate_major(dz, 4, H)
        ds = np.empty((3,) + lead + (H,), dtype=out.dtype)
        np.multiply(dc, cand, out=ds[0])
        np.multiply(dc, c, out=ds[1])
        np.multiply(g_h, tc, out=ds[2])
        s = out[2:5]
        deriv = np.subtract(1.0, s)
        deriv *= s
        np.multiply(ds, deriv, out=dzg[:3])
        dg = dc * i
        np.multiply(cand, cand, out=sq)
        np.subtract(1.0, sq, out=sq)
        np.multiply(dg, sq, out=dzg[3])
        dh, dW = recurrent_grads(dz, h, W_h)
        dc *= f
        return dz, dh, dW, dc



@tinygraph.register
class GRUCellOp(_FusedOp):
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

    The output is ``h_new``. What the backward pass needs stays private to the
    op: a (5, ..., H) array ``[h_new, r, z, n, hn]`` (``h_new`` is its first
    block), each block contiguous. The gradient of ``W_h`` is a deferred
    ``OuterSum`` like matmul's.

    Scratch (an instance made with ``GRUCellOp(out=..., grad=...)``): ``out``,
    a (5, ..., H) array that forward writes the activations into, and
    ``grad``, a (..., 4H) array that the VJP writes the pre-activation
    gradients into (layout above; ``x_proj``'s gradient is ``grad[..., :3H]``).
    Such an instance is applied to one node only.
    """

    name = "gru_cell"
    kind = "gru"

    def check(self, x_proj, h, W_h, b_hn):
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

    def forward(self, x_proj, h, W_h, b_hn):
        out = self._compute(x_proj, h, W_h, b_hn)
        if self.per_node:
            self.saved = out
        return out[0]

    def _compute(self, x_proj, h, W_h, b_hn):
        H = h.shape[-1]
        a = h @ W_h
        lead = x_proj.shape[:-1]
        if a.shape[:-1] != lead:  # the gate axis leads, so line the other axes up first
            lead = np.broadcast_shapes(a.shape[:-1], lead)
            a = np.broadcast_to(a, lead + a.shape[-1:])
            x_proj = np.broadcast_to(x_proj, lead + x_proj.shape[-1:])
        dtype = np.result_type(a, x_proj, b_hn)
        out = self._scratch("out", (5,) + lead + (H,), dtype)
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

    def vjp(self, g_h, h_new, x_proj, h, W_h, b_hn):
        H = h.shape[-1]
        out = self._activations(x_proj, h, W_h, b_hn)
        r, z, n, hn = out[1], out[2], out[3], out[4]
        lead = out.shape[1:-1]
        dz = self._scratch("grad", lead + (4 * H,), out.dtype)
        dg = gate_major(dz, 4, H)  # [n (input part), r, z, n (hidden part)]
        d_an, d_ar, d_az, d_hn = dg[0], dg[1], dg[2], dg[3]
        # update gate: d z = g_h * (h - n)
        np.subtract(h, n, out=d_az)
        d_az *= g_h
        # candidate: d n = g_h * (1 - z), through tanh
        np.subtract(1.0, z, out=d_an)
        d_an *= g_h
        sq = n * n
        np.subtract(1.0, sq, out=sq)
        d_an *= sq
        # reset gate: d r = d_an * hn; the hidden part: d hn = d_an * r
        np.multiply(d_an, hn, out=d_ar)
        np.multiply(d_an, r, out=d_hn)
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

