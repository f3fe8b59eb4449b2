"""Random compositions of ops and indices, gradchecked in float64 (issue 13).

Hypothesis draws a short program: elementwise functions, binary ops with a
second input (same or broadcast shape), reductions, reshapes, transposes,
indices of every spelling (ints, slices, lists, tuples, arrays, negatives,
repeats, booleans, Ellipsis, None), stack, concat and matmul. Every program's
gradient must agree with central finite differences. The budget is bounded
(a few seconds) so it runs in CI on every change.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygraph as tg

UNARY = {
    "exp": lambda t: (t * 0.5).exp(),
    "tanh": lambda t: t.tanh(),
    "sigmoid": lambda t: t.sigmoid(),
    "log1p_sq": lambda t: (t * t + 1.0).log(),
    "sqrt1p_sq": lambda t: (t * t + 1.0).sqrt(),
    "neg": lambda t: -t,
    "square": lambda t: t ** 2,
}


def draw_index(data, shape):
    items = []
    n_adv = data.draw(st.integers(1, 3))
    for dim in shape:
        kind = data.draw(st.sampled_from(["int", "slice", "list", "tuple", "array", "bool", "full"]))
        if kind == "int":
            items.append(data.draw(st.integers(-dim, dim - 1)))
        elif kind == "slice":
            items.append(slice(data.draw(st.none() | st.integers(-dim, dim)), None,
                               data.draw(st.sampled_from([None, 1, 2, -1]))))
        elif kind in ("list", "tuple", "array"):
            values = data.draw(st.lists(st.integers(-dim, dim - 1), min_size=n_adv, max_size=n_adv))
            items.append(values if kind == "list" else tuple(values) if kind == "tuple" else np.array(values))
        elif kind == "bool":
            mask = data.draw(st.lists(st.booleans(), min_size=dim, max_size=dim))
            items.append(np.array(mask))
        else:
            items.append(slice(None))
    if data.draw(st.booleans()):
        items.insert(data.draw(st.integers(0, len(items))), None)
    if data.draw(st.booleans()):
        items.insert(0, Ellipsis) if not any(i is Ellipsis for i in items) else None
        items.pop(1) if len(items) > 1 and isinstance(items[1], slice) and items[1] == slice(None) else None
    index = tuple(items)
    try:
        picked = np.zeros(shape)[index]
    except IndexError:
        return None
    return index if picked.size else None


def draw_step(data, shape):
    """One step as (description, function of (t, y) -> t), for a tensor of ``shape``."""
    ndim = len(shape)
    kinds = ["unary", "binary", "broadcast", "sum", "mean", "max", "reshape", "transpose",
             "stack", "concat", "matmul"] + ["index"] * 4  # indices are where gradients went wrong
    kind = data.draw(st.sampled_from(kinds))
    if kind == "unary":
        name = data.draw(st.sampled_from(sorted(UNARY)))
        return name, lambda t, y: UNARY[name](t)
    if kind in ("binary", "broadcast"):
        op = data.draw(st.sampled_from(["+", "-", "*", "/"]))

        def binary(t, y):
            # the second input itself, or one of its elements broadcast against t
            other = y if kind == "binary" and y.shape == t.shape else y[(0,) * y.ndim]
            if op == "+":
                return t + other
            if op == "-":
                return other - t
            if op == "*":
                return t * other
            return t / (other * other + 1.0)
        return f"{kind} {op}", binary
    if kind in ("sum", "mean", "max"):
        if ndim == 0:
            return None
        axis = data.draw(st.none() | st.integers(-ndim, ndim - 1))
        keep = data.draw(st.booleans())
        return f"{kind}(axis={axis}, keepdims={keep})", lambda t, y: getattr(t, kind)(axis=axis, keepdims=keep)
    if kind == "reshape":
        return "reshape(-1)", lambda t, y: t.reshape(-1)
    if kind == "transpose":
        if ndim < 2:
            return None
        perm = tuple(data.draw(st.permutations(range(ndim))))
        return f"transpose{perm}", lambda t, y: t.transpose(perm)
    if kind == "index":
        if ndim == 0:
            return None
        index = draw_index(data, shape)
        if index is None:
            return None
        return f"[{index!r}]", lambda t, y: t[index]
    if kind == "stack":
        axis = data.draw(st.integers(-ndim - 1, ndim))
        return f"stack(axis={axis})", lambda t, y: tg.stack([t, t * 2.0], axis=axis)
    if kind == "concat":
        if ndim == 0:
            return None
        axis = data.draw(st.integers(-ndim, ndim - 1))
        return f"concat(axis={axis})", lambda t, y: tg.concat([t, t.tanh()], axis=axis)
    if ndim == 0:
        return None
    k = shape[-1]
    n = data.draw(st.integers(1, 3))
    W = np.random.default_rng(data.draw(st.integers(0, 2**16))).normal(size=(k, n))
    return f"@ W{W.shape}", lambda t, y: t @ W


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.data())
def test_random_op_compositions_pass_gradcheck(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x0, y0 = rng.normal(size=shape), rng.normal(size=shape)
    steps = []
    current = np.zeros(shape)
    for _ in range(data.draw(st.integers(1, 5))):
        step = draw_step(data, current.shape)
        if step is None:
            continue
        # replay on a probe to learn the new shape (and skip steps that empty it)
        probe = step[1](tg.tensor(current), tg.tensor(np.zeros(shape)))
        if probe.size == 0 or probe.size > 200:
            continue
        steps.append(step)
        current = probe.data
    w = rng.normal(size=current.shape)

    def program(x, y):
        t = x
        for _, fn in steps:
            t = fn(t, y)
        return (t * w).sum()

    x = tg.tensor(x0, requires_grad=True, name="x")
    y = tg.tensor(y0, requires_grad=True, name="y")
    try:
        tg.gradcheck(program, [x, y])
    except AssertionError as exc:
        raise AssertionError(f"program {[d for d, _ in steps]} on shape {shape}: {exc}") from None
