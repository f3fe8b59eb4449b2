"""Assignment 01: autodiff and the graph as an object.

Student objects:

* ``Softplus``: a ``tinygraph.Op`` subclass (``name = "softplus"``) with
  ``forward(x) = log(1 + exp(x))`` and its ``vjp``;
* ``count_ops(root) -> dict``: op name -> number of nodes made by it, found by
  walking ``Tensor.parents`` from ``root`` (each tensor counted once).
"""
from __future__ import annotations

import numpy as np

from tinygraph import Graph, Op, apply, check_graph, tensor, GradcheckError

from . import reference as ref
from .feedback import Wrong, fmt, rel_error, same_shape
from .registry import call, exercise, need

ASSIGNMENT = "01_autodiff"


def _worst(got, want):
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(got - want))), np.shape(want)))


@exercise(ASSIGNMENT, "softplus_op")
def check_softplus(ns):
    cls = need(ns, "Softplus")
    if not (isinstance(cls, type) and issubclass(cls, Op)):
        raise Wrong(f"Softplus should be a subclass of tinygraph.Op, got {cls!r}")
    op = cls()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)) * 3
    want = ref.softplus(x)
    got = same_shape(call("Softplus.forward", op.forward, x.copy()), want, "Softplus.forward")
    err = rel_error(got, want)
    if err > 1e-6:
        raise Wrong(f"Softplus.forward wrong at index {_worst(got, want)} (relative error {fmt(err)}); "
                    f"hint: log(1 + exp(x)), e.g. np.logaddexp(0, x)")
    # the exercise asks for a forward that is safe for large |x| (log(1 + exp(x)) overflows to inf)
    big = np.array([-1000.0, -50.0, 50.0, 1000.0])
    with np.errstate(all="ignore"):
        got_big = np.asarray(call("Softplus.forward", op.forward, big.copy()), dtype=float)
    if got_big.shape != big.shape or not np.all(np.isfinite(got_big)):
        bad = big[~np.isfinite(got_big)] if got_big.shape == big.shape else big
        raise Wrong(f"Softplus.forward is not finite at x = {bad[-1]:g} (got {got_big.tolist()} for x = "
                    f"{big.tolist()}); hint: exp(x) overflows for large x: use np.logaddexp(0, x)")
    if rel_error(got_big, ref.softplus(big)) > 1e-6:
        raise Wrong(f"Softplus.forward wrong for large |x|: {got_big.tolist()} for x = {big.tolist()}, expected "
                    f"{ref.softplus(big).tolist()}; hint: np.logaddexp(0, x)")
    g = rng.standard_normal(x.shape)
    grads = call("Softplus.vjp", op.vjp, g.copy(), want.copy(), x.copy())
    if not isinstance(grads, (tuple, list)) or len(grads) != 1:
        raise Wrong("Softplus.vjp should return a tuple with one gradient, (dx,)")
    dwant = g * ref.sigmoid(x)
    dgot = same_shape(grads[0], dwant, "Softplus.vjp: dx")
    err = rel_error(dgot, dwant)
    if err > 1e-6:
        hint = ("it is missing the output gradient g (the chain rule: multiply by g)"
                if rel_error(dgot, ref.sigmoid(x)) < 1e-6 else "d/dx log(1 + e^x) = sigmoid(x); multiply by g")
        raise Wrong(f"Softplus.vjp wrong at index {_worst(dgot, dwant)} (relative error {fmt(err)}); hint: {hint}")
    # and in a real graph, through the engine
    t = tensor(x, requires_grad=True, dtype=np.float64)
    try:
        check_graph((apply(op, t) * t).sum())
    except GradcheckError as exc:
        raise Wrong(f"Softplus in a graph: {exc}") from None


@exercise(ASSIGNMENT, "count_ops")
def check_count_ops(ns):
    fn = need(ns, "count_ops")
    x = tensor(np.array([0.5, -1.0]), requires_grad=True, name="x")
    a = (x * 2.0).tanh()
    y = (a * a + a.sigmoid()).sum()  # `a` is used three times: a diamond, not a tree
    want = dict(Graph(y).ops())
    got = call("count_ops", fn, y)
    if not isinstance(got, dict):
        raise Wrong(f"count_ops should return a dict of op name -> count, got {type(got).__name__}")
    got = {k: v for k, v in got.items() if k is not None and v}
    if got != want:
        diff = {k: (got.get(k, 0), want.get(k, 0)) for k in set(got) | set(want) if got.get(k, 0) != want.get(k, 0)}
        first = sorted(diff)[0]
        hint = ("a tensor used by several ops is one node: keep a set of the tensors already seen"
                if any(g > w for g, w in diff.values()) else "walk every parent, not only the first")
        raise Wrong(f"count_ops: op {first!r} counted {diff[first][0]} times, expected {diff[first][1]}; hint: {hint}")
