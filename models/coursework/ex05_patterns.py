"""Assignment 05: the sequence patterns.

Student functions:

* ``last_valid_state(outputs, lengths) -> Tensor (B,H)`` (many-to-one): each
  sequence's hidden state at its last valid step, from a ``(T,B,H)`` Tensor;
* ``sample_next(logits, temperature, rng) -> int`` (one-to-many generation):
  a token drawn from ``softmax(logits / temperature)``, the argmax at temperature 0;
* ``dot_attention(query, keys, values) -> (context, weights)`` with tinygraph
  Tensors: query (B,H), keys and values (T,B,H); weights (T,B) are the softmax
  over T of ``<query, keys[t]>``, context (B,H) their weighted sum of values.
"""
from __future__ import annotations

import numpy as np

from tinygraph import Tensor, tensor

from . import reference as ref
from .feedback import Wrong, close, fmt, rel_error, same_shape
from .registry import call, exercise, need

ASSIGNMENT = "05_sequence_patterns"


@exercise(ASSIGNMENT, "last_valid_state")
def check_last_valid_state(ns):
    fn = need(ns, "last_valid_state")
    rng = np.random.default_rng(0)
    outputs = tensor(rng.standard_normal((5, 3, 4)), requires_grad=True, dtype=np.float64)
    lengths = np.array([5, 2, 3])
    got = call("last_valid_state", fn, outputs, lengths)
    want = ref.last_valid_state(outputs.data, lengths)
    got_a = same_shape(got, want, "last_valid_state")
    for b in range(3):
        if not close(got_a[b], want[b]):
            match = [t for t in range(5) if close(got_a[b], outputs.data[t, b])]
            seen = f"it holds step t={match[0]}" if match else "it is no step's state"
            raise Wrong(f"last_valid_state: sequence b={b} (length {lengths[b]}) wrong: {seen}, expected "
                        f"t={lengths[b] - 1}; hint: outputs[lengths - 1, np.arange(B)]")
    if not isinstance(got, Tensor) or not got.requires_grad:
        raise Wrong("last_valid_state: return a Tensor built from outputs with tinygraph ops (indexing), "
                    "so that the loss's gradient flows back into the sequence")


@exercise(ASSIGNMENT, "sample_next")
def check_sample_next(ns):
    fn = need(ns, "sample_next")
    logits = np.array([2.0, 0.5, -1.0, 1.0])
    for _ in range(3):
        token = call("sample_next", fn, logits.copy(), 0.0, np.random.default_rng(0))
        if int(token) != 0:
            raise Wrong(f"sample_next: at temperature 0 it returned {int(token)}, expected the argmax 0 (greedy)")
    n = 4000
    for temperature in (1.0, 0.5):
        rng = np.random.default_rng(1)
        counts = np.bincount([int(call("sample_next", fn, logits.copy(), temperature, rng)) for _ in range(n)],
                             minlength=4)[:4] / n
        want = ref.temperature_probs(logits, temperature)
        # 4000 draws: a frequency's standard deviation is below 0.008; 0.04 is five of them
        if np.max(np.abs(counts - want)) > 0.04:
            times = ref.temperature_probs(logits * temperature, 1.0)
            hint = ("they match softmax(logits * temperature): divide by the temperature"
                    if np.max(np.abs(counts - times)) < 0.04 else "p = softmax(logits / temperature), then rng.choice")
            raise Wrong(f"sample_next: at temperature {temperature} the frequencies are {np.round(counts, 3)}, "
                        f"expected {np.round(want, 3)}; hint: {hint}")


@exercise(ASSIGNMENT, "dot_attention")
def check_attention(ns):
    fn = need(ns, "dot_attention")
    rng = np.random.default_rng(2)
    T, B, H = 4, 2, 3
    arrays = [rng.standard_normal((B, H)), rng.standard_normal((T, B, H)), rng.standard_normal((T, B, H))]
    ts = [tensor(a, requires_grad=True, dtype=np.float64) for a in arrays]
    out = call("dot_attention", fn, *ts)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong("dot_attention should return (context, weights)")
    context, weights = out
    want_c, want_w = ref.dot_attention(*arrays)
    w = same_shape(weights, want_w, "dot_attention: weights")
    if not close(w, want_w):
        if np.allclose(w.sum(axis=1), 1.0):
            raise Wrong("dot_attention: weights wrong: they sum to 1 over the batch axis; "
                        "hint: the softmax runs over the time axis T (axis 0)")
        raise Wrong(f"dot_attention: weights wrong (relative error {fmt(rel_error(w, want_w))}); hint: "
                    f"scores[t, b] = <query[b], keys[t, b]>, then a softmax over t")
    c = same_shape(context, want_c, "dot_attention: context")
    if not close(c, want_c):
        raise Wrong(f"dot_attention: context wrong with right weights (relative error {fmt(rel_error(c, want_c))});"
                    f" hint: context[b] = sum_t weights[t, b] * values[t, b]")
    if not isinstance(context, Tensor) or not context.requires_grad:
        raise Wrong("dot_attention: build the context from tinygraph ops so that gradients flow")
    G = rng.standard_normal((B, H))
    (context * G).sum().backward()
    eps = 1e-6
    for name, t, a in zip(("query", "keys", "values"), ts, arrays):
        numeric = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus, minus = [x.copy() for x in arrays], [x.copy() for x in arrays]
            plus[ts.index(t)][idx] += eps
            minus[ts.index(t)][idx] -= eps
            numeric[idx] = np.sum(G * (ref.dot_attention(*plus)[0] - ref.dot_attention(*minus)[0])) / (2 * eps)
        grad = t.grad if t.grad is not None else np.zeros_like(a)
        if rel_error(grad, numeric) > 1e-5:
            raise Wrong(f"dot_attention: the gradient reaching {name} is wrong (relative error "
                        f"{fmt(rel_error(grad, numeric))}); hint: use tinygraph ops only (no .data or numpy "
                        f"inside), so the engine can differentiate it")
