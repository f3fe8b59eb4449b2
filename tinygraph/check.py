"""Check every node of a real graph: each op's VJP against central finite differences.

``tinygraph.gradcheck`` checks the gradient of a whole function; when it fails
it cannot say *where* the backward pass went wrong. ``check_graph`` takes the
graph that is already built (a loss, a model's outputs) and checks one node at
a time, in the order backward visits them: for each node it takes float64
copies of the parents' values, draws a random output cotangent ``g`` and
compares the op's ``vjp`` with central differences of the op's ``forward``
with respect to each parent. The first node whose VJP disagrees is reported
with its op, its name, its template instance (``LSTMCell t=3, f: sigmoid``),
the parent whose gradient is wrong and the worst element.

Because the check is local, a node whose parents are themselves wrong does not
hide anything: each node is judged on its own inputs. It works for any
registered op, the user's own included, and for any template.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np

from .autograd import topological_order, unbroadcast
from .errors import GradcheckError, shape_str
from .ops import OPS, dense



def scratch_free(fn):
    """The op to re-run for node op ``fn``: the registered instance of its class when there is
    one. A node's own instance may own scratch arrays of the graph (a fused cell's step writes
    into the unroll's workspace), which a check must never write into; the registered one owns none."""
    registered = OPS.get(fn.name)
    return registered if type(registered) is type(fn) or isinstance(fn, type(registered)) else fn


def describe_node(node, index=None):
    """A one-line description of a graph node: op, name and template instance.

    Examples: ``sigmoid 'f' (LSTMCell t=3, f: sigmoid)``, ``matmul (RNNCell t=0)``.
    """
    text = node.op or ("parameter" if node.requires_grad else "leaf")
    if node.name:
        text += f" {node.name!r}"
    if index is not None:
        text = f"%{index} " + text
    if node.instance is not None:
        template, step = node.instance[0], node.instance[1]
        where = f"{template} t={step}"
        if node.op is not None:
            where += f", {node.name + ': ' if node.name else ''}{node.op}"
        text += f" ({where})"
    return text


def _parent_label(position, parent):
    what = parent.op or ("parameter" if parent.requires_grad else "leaf")
    name = f" {parent.name!r}" if parent.name else ""
    return f"parent {position}{name} ({what}, shape {shape_str(parent.shape)})"


class _Budget:
    def __init__(self, total):
        self.left = total

    def spend(self, n):
        self.left -= n


def check_graph(*roots, eps=1e-6, atol=1e-5, rtol=1e-3, samples=8, budget=200_000, seed=0):
    """Check the VJP of every node of the graph behind ``roots`` against finite differences.

    Nodes are visited in backward order (from the roots towards the leaves).
    For each node and each parent that requires grad, two comparisons are made
    in float64 with a random output cotangent ``g``:

    * a *directional* one, along a random direction ``v`` over the whole
      parent: ``<vjp, v>`` against ``<g, f(x + eps v) - f(x - eps v)> / (2 eps)``
      (two forward calls; it sees a mistake in any element);
    * *element* ones at up to ``samples`` sampled elements (all of them for a
      small parent): ``vjp[i]`` against ``<g, f(x + eps e_i) - f(x - eps e_i)> / (2 eps)``.

    When the directional check fails, every element of the parent is checked
    (within what is left of ``budget``) to find the worst one. Elements where the
    op is not differentiable (its left and right derivatives differ: relu at 0,
    a max with ties) are skipped, so a kink is never reported as a wrong VJP.

    Parameters
    ----------
    *roots : Tensor
        The outputs whose graph is checked (e.g. a loss).
    eps : float
        Step of the central differences.
    atol, rtol : float
        A value passes when ``|analytic - numeric| <= atol + rtol * |numeric|``.
    samples : int
        Elements checked per parent (sampled without replacement when the parent
        is larger).
    budget : int
        Maximum number of forward evaluations in all. When it runs out the
        remaining nodes get only the directional check, and when even that is
        spent the check stops with a ``UserWarning`` naming how many nodes it checked.
    seed : int
        Seeds the cotangents, directions and samples (same seed, same check).

    Returns
    -------
    True
        When every checked node agrees.

    Raises
    ------
    GradcheckError
        For the first node (in backward order) whose VJP disagrees, or whose
        VJP fails or returns a wrong shape. The message names the node's op,
        name and instance, the parent and the worst element with both values;
        the exception also carries them as attributes ``node``, ``parent``,
        ``parent_index``, ``index``, ``analytic``, ``numeric`` and ``where``
        (the node description).
    """
    from .tensor import Tensor

    if len(roots) == 1 and isinstance(roots[0], (list, tuple)):
        roots = tuple(roots[0])
    if not roots:
        raise ValueError("check_graph: needs at least one root tensor")
    for i, r in enumerate(roots):
        if not isinstance(r, Tensor):
            raise TypeError(f"check_graph: root {i} is a {type(r).__name__}, expected a Tensor")
    if not eps > 0:
        raise ValueError(f"check_graph: eps must be positive, got {eps!r}")
    rng = np.random.default_rng(seed)
    order = topological_order(roots, only_requires_grad=True)
    nodes = [n for n in reversed(order) if n._fn is not None]
    position = {id(n): i for i, n in enumerate(order)}
    budget = _Budget(int(budget))
    for checked, node in enumerate(nodes):
        if budget.left < 2:
            warnings.warn(f"check_graph: the budget of forward evaluations ran out after {checked} of "
                          f"{len(nodes)} nodes; raise budget= to check them all", stacklevel=2)
            return True
        _check_node(node, position[id(node)], eps, atol, rtol, samples, budget, rng)
    return True


def _check_node(node, index, eps, atol, rtol, samples, budget, rng):
    fn = scratch_free(node._fn)
    attrs = node._attrs
    xs = [np.array(p.data, dtype=np.float64, copy=True) for p in node.parents]
    where = describe_node(node, index)

    k = None if fn.n_outputs == 1 else node._group.index(node)  # which output of a multi-output op

    def forward(arrays):
        result = fn.forward(*arrays, **attrs)
        return np.asarray(result if k is None else result[k], dtype=np.float64)

    def fail(message, **info):
        error = GradcheckError(f"check_graph: node {where}: {message}")
        error.node, error.where = node, where
        for key in ("parent", "parent_index", "index", "analytic", "numeric"):
            setattr(error, key, info.get(key))
        return error

    try:
        out = forward(xs)
    except Exception as exc:  # a user's forward failing on float64 copies is worth naming
        raise fail(f"forward raised {type(exc).__name__}: {exc}") from exc
    budget.spend(1)
    g = rng.standard_normal(out.shape)
    try:
        if k is None:
            grads = fn.vjp(g.copy(), out.copy(), *[x.copy() for x in xs], **attrs)
        else:  # this output's gradient only
            outs = [np.asarray(o, dtype=np.float64) for o in fn.forward(*xs, **attrs)]
            gs = tuple(g.copy() if i == k else None for i in range(len(outs)))
            grads = fn.vjp(gs, tuple(outs), *[x.copy() for x in xs], **attrs)
    except Exception as exc:
        raise fail(f"vjp raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(grads, (tuple, list)) or len(grads) != len(xs):
        got = f"{type(grads).__name__} of length {len(grads)}" if isinstance(grads, (tuple, list)) else type(grads).__name__
        raise fail(f"vjp must return a tuple with one gradient per input ({len(xs)}), got {got}")

    for j, parent in enumerate(node.parents):
        if not parent.requires_grad:
            continue
        label = _parent_label(j, parent)
        analytic = grads[j]
        if analytic is None:
            analytic = np.zeros(parent.shape)
        else:
            try:
                analytic = np.asarray(dense(analytic), dtype=np.float64)
                if analytic.shape != parent.shape:
                    analytic = unbroadcast(analytic, parent.shape, fn.name, j)
            except RuntimeError:
                raise fail(f"the vjp's gradient for {label} has shape {shape_str(np.shape(analytic))}, "
                           f"which does not reduce to the parent's shape", parent=parent, parent_index=j) from None

        def numeric_along(direction, one_sided=False):
            plus = list(xs)
            plus[j] = xs[j] + eps * direction
            minus = list(xs)
            minus[j] = xs[j] - eps * direction
            budget.spend(2)
            f_plus, f_minus = forward(plus), forward(minus)
            if one_sided:  # (right, left) derivatives: they differ where the op has a kink
                return float(np.sum(g * (f_plus - out))) / eps, float(np.sum(g * (out - f_minus))) / eps
            return float(np.sum(g * (f_plus - f_minus))) / (2 * eps)

        def element(i, one_sided=False):
            e = np.zeros(parent.shape)
            e[i] = 1.0
            return numeric_along(e, one_sided)

        def at_kink(i):
            # Not differentiable here (relu at 0, max with ties, clip at a bound): the left and right
            # derivatives disagree, so central differences mean nothing and the element is skipped.
            right, left = element(i, one_sided=True)
            return abs(right - left) > 10 * (atol + rtol * max(abs(right), abs(left)))

        def report(bad):
            # bad: list of (excess, index, analytic, numeric)
            _, idx, a, n = max(bad, key=lambda b: b[0])
            raise fail(f"wrong gradient for {label} at index {idx}: vjp {a:.10g} vs finite differences {n:.10g} "
                       f"(atol={atol}, rtol={rtol})", parent=parent, parent_index=j, index=idx, analytic=a,
                       numeric=n)

        def excess(a, n):
            value = abs(a - n) - (atol + rtol * abs(n))
            return value if np.isfinite(value) else np.inf

        size = int(np.prod(parent.shape, dtype=np.int64))
        direction = rng.standard_normal(parent.shape)
        a_dir = float(np.sum(analytic * direction))
        n_dir = numeric_along(direction)
        scale = np.sqrt(max(size, 1))  # <vjp, v> sums `size` terms: scale the absolute tolerance with it
        directional_ok = abs(a_dir - n_dir) <= atol * scale + rtol * abs(n_dir) and np.isfinite(a_dir)

        indices = [np.unravel_index(int(k), parent.shape) for k in
                   (range(size) if size <= samples else rng.choice(size, size=samples, replace=False))]
        if not directional_ok:
            # localise: every element, as far as the budget allows (the sampled ones first)
            limit = max(len(indices), budget.left // 2)
            sampled = {tuple(int(k) for k in i) for i in indices}
            rest = (np.unravel_index(k, parent.shape) for k in range(size))
            extra = itertools.islice((i for i in rest if tuple(int(k) for k in i) not in sampled),
                                     max(0, limit - len(indices)))
            indices = indices + list(extra)
        elif budget.left < 2 * len(indices):
            indices = indices[: max(0, budget.left // 2)]
        bad, kinks = [], 0
        for i in indices:
            i = tuple(int(k) for k in i)
            n = element(i)
            a = float(analytic[i])
            over = excess(a, n)
            if over > 0:
                if at_kink(i):
                    kinks += 1
                    continue
                bad.append((over, i, a, n))
        if bad:
            report(bad)
        if not directional_ok and kinks and len(indices) == size:
            continue  # every element checked: the direction only crossed kinks
        if not directional_ok:
            raise fail(f"wrong gradient for {label}: along a random direction the vjp gives {a_dir:.10g} but "
                       f"finite differences give {n_dir:.10g} (no single checked element was wrong; the budget "
                       f"allowed {len(indices)} of {size})", parent=parent, parent_index=j,
                       analytic=a_dir, numeric=n_dir)
