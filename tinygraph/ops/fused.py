"""Pieces shared by the fused recurrent ops (``lstm_cell``, ``gru_cell``).

Both lay their output out gate-major, ``(blocks, ..., H)``, with the new state
first; both take the output gradient lazily; both end their VJP with the
gradients through ``h @ W_h``.
"""
from __future__ import annotations

import numpy as np

from .lazy import OuterSum, ScatterSum, dense


def leading_shape(*arrays):
    """The broadcast shape of the arrays' leading axes (all but the last), or None if they do not broadcast."""
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


def state_grads(g, out, n_state):
    """Split the gradient ``g`` of a fused op's output ``out`` (blocks, ..., H).

    Returns ``(state, rest)``: ``state[j]`` is the gradient of state block j
    (``j < n_state``; None for none, except block 0, which is zeros then), and
    ``rest`` is the dense gradient of the whole output when blocks past the
    state may be non-zero, else None. In the usual unrolled chain only the
    state blocks receive gradients, as pending pieces of a ``ScatterSum``; they
    are summed without building the mostly-zero full gradient.
    """
    pieces = g.pieces() if type(g) is ScatterSum else None
    if pieces is not None:
        state = [None] * n_state
        block_shape = out.shape[1:]
        for index, value in pieces:
            if type(index) is not int or not 0 <= index < n_state or value.shape != block_shape:
                break
            state[index] = value if state[index] is None else state[index] + value
        else:
            if state[0] is None:
                state[0] = np.zeros(block_shape, dtype=out.dtype)
            return state, None
    g = dense(g)
    return [g[j] for j in range(n_state)], g


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
