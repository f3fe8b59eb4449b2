"""The teacher's reference implementations, hand-written in numpy (float64).

These are what the grader compares the students' functions with. They follow
the notebooks' conventions: row vectors, a layer is ``x @ W + b``, an RNN step
is ``h = tanh(x @ W_xh + h_prev @ W_hh + b_h)``, the LSTM has per-gate
parameters ``W_x{i,f,g,o} (D,H)``, ``W_h{i,f,g,o} (H,H)``, ``b_{i,f,g,o} (H,)``.
Nothing here uses tinygraph's backward pass: it is the independent reference.
"""
from __future__ import annotations

import numpy as np

GATES = "ifgo"


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def softplus(x):
    return np.logaddexp(0.0, x)


# -- Elman RNN ---------------------------------------------------------------------
def rnn_step_forward(x, h_prev, W_xh, W_hh, b_h):
    """One step: x (B,D), h_prev (B,H) -> h (B,H)."""
    return np.tanh(x @ W_xh + h_prev @ W_hh + b_h)


def rnn_step_backward(dh, x, h_prev, h, W_xh, W_hh):
    """Gradients of one step given dL/dh (B,H): ``(dx, dh_prev, dW_xh, dW_hh, db_h)``."""
    da = dh * (1.0 - h * h)
    return da @ W_xh.T, da @ W_hh.T, x.T @ da, h_prev.T @ da, da.sum(axis=0)


def rnn_forward(xs, h0, W_xh, W_hh, b_h):
    """xs (T,B,D), h0 (B,H) -> hs (T,B,H), the hidden state after each step."""
    hs, h = [], h0
    for x in xs:
        h = rnn_step_forward(x, h, W_xh, W_hh, b_h)
        hs.append(h)
    return np.stack(hs)


def rnn_backward(dhs, xs, h0, hs, W_xh, W_hh, k=None, contributions=False):
    """BPTT: ``dhs[t]`` is dL/dh_t from the outputs at step t (T,B,H).

    Returns ``(dxs, dh0, dW_xh, dW_hh, db_h)``. With ``k``, the recurrent gradient
    is cut at the start of every segment of ``k`` steps (truncated BPTT: steps
    ``t`` with ``t % k == 0`` pass no gradient to ``h_{t-1}``). With
    ``contributions=True`` it also returns a dict of per-step terms
    ``{"W_xh": [T arrays], "W_hh": [...], "b_h": [...]}`` whose sums are the gradients.
    """
    T = len(xs)
    dxs = np.zeros_like(xs)
    terms = {"W_xh": [None] * T, "W_hh": [None] * T, "b_h": [None] * T}
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        h_prev = hs[t - 1] if t > 0 else h0
        dx, dh_prev, dWx, dWh, db = rnn_step_backward(dhs[t] + dh_next, xs[t], h_prev, hs[t], W_xh, W_hh)
        dxs[t] = dx
        terms["W_xh"][t], terms["W_hh"][t], terms["b_h"][t] = dWx, dWh, db
        dh_next = np.zeros_like(dh_prev) if (k is not None and t % k == 0) else dh_prev
    grads = (dxs, dh_next, sum(terms["W_xh"]), sum(terms["W_hh"]), sum(terms["b_h"]))
    return (grads, terms) if contributions else grads


def rnn_jacobian_norms(hs, W_hh):
    """Spectral norms of dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh^T, one per step (for batch row 0)."""
    return np.array([np.linalg.norm((1.0 - h[0] ** 2)[:, None] * W_hh.T, 2) for h in hs])


def clip_grad_norm(grads, max_norm):
    """Global clipping: scale every gradient by min(1, max_norm / ||all gradients||).

    ``grads`` is a dict name -> array; returns ``(clipped dict, total_norm)``.
    """
    total = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
    scale = min(1.0, max_norm / (total + 1e-12))
    return {k: g * scale for k, g in grads.items()}, total


# -- LSTM --------------------------------------------------------------------------
def lstm_step_forward(x, h_prev, c_prev, p):
    """One LSTM step with per-gate parameters ``p``; returns ``(h, c, cache)``,
    the cache a dict with the gates ``i f g o`` and what the backward needs."""
    z = {k: x @ p["W_x" + k] + h_prev @ p["W_h" + k] + p["b_" + k] for k in GATES}
    i, f, o = sigmoid(z["i"]), sigmoid(z["f"]), sigmoid(z["o"])
    g = np.tanh(z["g"])
    c = f * c_prev + i * g
    tc = np.tanh(c)
    h = o * tc
    cache = dict(i=i, f=f, g=g, o=o, c=c, tc=tc, x=x, h_prev=h_prev, c_prev=c_prev, p=p)
    return h, c, cache


def lstm_step_backward(dh, dc, cache):
    """Gradients of one LSTM step given dL/dh and dL/dc (from later steps):
    a dict with ``dx, dh_prev, dc_prev`` and ``dW_x{k}, dW_h{k}, db_{k}`` for each gate k."""
    i, f, g, o, tc = (cache[k] for k in ("i", "f", "g", "o", "tc"))
    x, h_prev, c_prev, p = cache["x"], cache["h_prev"], cache["c_prev"], cache["p"]
    dc = dc + dh * o * (1.0 - tc * tc)
    dz = {
        "i": dc * g * i * (1.0 - i),
        "f": dc * c_prev * f * (1.0 - f),
        "g": dc * i * (1.0 - g * g),
        "o": dh * tc * o * (1.0 - o),
    }
    out = {"dx": sum(dz[k] @ p["W_x" + k].T for k in GATES),
           "dh_prev": sum(dz[k] @ p["W_h" + k].T for k in GATES),
           "dc_prev": dc * f}
    for k in GATES:
        out["dW_x" + k] = x.T @ dz[k]
        out["dW_h" + k] = h_prev.T @ dz[k]
        out["db_" + k] = dz[k].sum(axis=0)
    return out


# -- sequence patterns ---------------------------------------------------------------
def softmax(z, axis=-1):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def dot_attention(query, keys, values):
    """query (B,H), keys (T,B,H), values (T,B,H) -> (context (B,H), weights (T,B));
    weights are the softmax over T of <query, keys[t]>."""
    scores = np.einsum("bh,tbh->tb", query, keys)
    weights = softmax(scores, axis=0)
    return np.einsum("tb,tbh->bh", weights, values), weights


def last_valid_state(outputs, lengths):
    """outputs (T,B,H), lengths (B,) -> (B,H): each sequence's state at its last valid step."""
    lengths = np.asarray(lengths)
    return outputs[lengths - 1, np.arange(outputs.shape[1])]


def temperature_probs(logits, temperature):
    """The sampling distribution softmax(logits / temperature); one-hot on the argmax at 0."""
    logits = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        p = np.zeros_like(logits)
        p[..., :] = 0
        idx = np.argmax(logits, axis=-1)
        np.put_along_axis(p, np.expand_dims(idx, -1), 1.0, axis=-1)
        return p
    return softmax(logits / temperature)


def lstm_backward(dhs, xs, h0, c0, p, contributions=False):
    """BPTT through an LSTM: ``dhs[t]`` is dL/dh_t from the output at step t (T,B,H).

    Returns a dict with ``dxs (T,B,D)``, ``dh0``, ``dc0`` and the summed parameter
    gradients ``dW_x{k}, dW_h{k}, db_{k}``; with ``contributions=True`` also a dict
    name -> list of the T per-step terms."""
    caches, h, c = [], h0, c0
    for x in xs:
        h, c, cache = lstm_step_forward(x, h, c, p)
        caches.append(cache)
    T = len(xs)
    names = [f"{w}{k}" for k in GATES for w in ("dW_x", "dW_h", "db_")]
    terms = {n: [None] * T for n in names}
    dxs = np.zeros_like(xs)
    dh_next, dc_next = np.zeros_like(h0), np.zeros_like(c0)
    for t in reversed(range(T)):
        step = lstm_step_backward(dhs[t] + dh_next, dc_next, caches[t])
        dxs[t] = step["dx"]
        dh_next, dc_next = step["dh_prev"], step["dc_prev"]
        for n in names:
            terms[n][t] = step[n]
    grads = {"dxs": dxs, "dh0": dh_next, "dc0": dc_next}
    grads.update({n: sum(terms[n]) for n in names})
    return (grads, terms) if contributions else grads
