"""Reverse-mode differentiation: an iterative topological walk over the graph.

No recursion anywhere, so chains of 10^5+ steps and graphs of millions of
nodes never touch Python's recursion limit. Each node's incoming gradient is
dropped as soon as the node has passed it on, so peak memory holds only the
gradients of the current "frontier" of the walk.
"""
from __future__ import annotations

from .config import SPEED
from .errors import BackwardTwiceError, shape_str
from .ops import LAZY_GRADIENTS, dense
from .leaf_grad import store_grad as _accumulate_into
from .versions import VERSIONS, check_versions, label as _label, mark_modified  # noqa: F401  (public here too)


def topological_order(roots, only_requires_grad=False):
    """Every tensor reachable from ``roots`` through ``.parents``, inputs before outputs.

    An iterative walk collects the reachable tensors; sorting them by creation
    order then gives a topological order, because a tensor's parents always
    exist before it does.
    """
    seen = set(roots)
    stack = list(roots)
    pop, push, add = stack.pop, stack.append, seen.add
    while stack:
        for parent in pop().parents:
            if parent not in seen and (parent.requires_grad or not only_requires_grad):
                add(parent)
                push(parent)
    return sorted(seen, key=_creation_order)


def _creation_order(tensor):
    return tensor._seq


def unbroadcast(grad, shape, op_name, input_index):
    """Sum ``grad`` over the axes numpy broadcasting added or stretched, back to ``shape``.

    Raises RuntimeError if ``grad`` cannot have come from broadcasting ``shape``:
    an op's VJP returned a wrong shape, which is a bug in that op.
    """
    extra = grad.ndim - len(shape)
    if extra < 0 or any(s != 1 and s != g for s, g in zip(shape, grad.shape[extra:])):
        raise RuntimeError(
            f"backward of op {op_name!r}: gradient for input {input_index} has shape "
            f"{shape_str(grad.shape)}, which does not reduce to the input's shape {shape_str(shape)}"
        )
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def accumulate(previous, grad):
    """The sum of two gradient terms of one tensor (``previous`` is None for the first term).

    The one place where gradients are added. The textbook rule is ``previous +
    grad``. The speed layer keeps some terms *lazy* (``tinygraph.ops.lazy``: a
    matmul's weight gradient as a pending ``a.T @ g``, an index's gradient as
    pending pieces) so that the T terms of a shared weight become one tall
    matmul; they are summed here too. With lazy gradients switched off
    (``tinygraph.config.SPEED.lazy_gradients = False``, or the environment
    variable ``TINYGRAPH_LAZY_GRADIENTS=0``) every term is made dense first.
    """
    if not SPEED.lazy_gradients:
        grad = dense(grad)
        return grad if previous is None else previous + grad
    if previous is None:
        return grad
    if type(previous) in LAZY_GRADIENTS:
        return previous.add(grad)
    if type(grad) in LAZY_GRADIENTS:
        return grad.add(previous)
    return previous + grad


def backward(roots, seeds, retain_grads=False, retain_graph=False):
    """Accumulate d(sum_i <roots[i], seeds[i]>)/d(leaf) into ``leaf.grad`` for every leaf
    with ``requires_grad``.

    Walks the graph once in reverse topological order: each node's gradient
    is complete when it is reached; its op's VJP turns it into one gradient per
    input, added (``accumulate``) to what that input already received.
    Non-leaf tensors keep their gradient in ``.grad`` when they were marked
    with ``retain_grad()`` or when ``retain_grads`` is true. A root
    back-propagated once cannot be back-propagated again unless every earlier
    call passed ``retain_graph=True`` (``BackwardTwiceError``); a VJP input
    modified after use raises ``ModifiedInPlaceError`` (``tinygraph.versions``).
    """
    for root in roots:
        if getattr(root, "_backwarded", False):
            raise BackwardTwiceError(
                f"backward: {_label(root, 'this tensor')} was already back-propagated; a second backward "
                f"would add the same gradients to every leaf's .grad again (doubling them). Build the "
                f"graph again (forward pass) for a new step, or pass retain_graph=True to the first "
                f"backward if you mean to accumulate twice."
            )
    order = topological_order(roots, only_requires_grad=True)
    last_modified = VERSIONS.last
    grads = {}
    for root, seed in zip(roots, seeds):
        grads[root] = accumulate(grads.get(root), seed)
    for node in reversed(order):
        grad = grads.pop(node, None)
        if grad is None:
            continue  # not downstream of a seeded root
        fn = node._fn
        if fn is None or node._retain or retain_grads:
            grad = dense(grad)
            _accumulate_into(node, grad)
            if fn is None:
                continue
        elif not fn.lazy_grad:
            grad = dense(grad)
        if node._seq < last_modified:
            check_versions(node)
        parents = node.parents
        if fn.n_outputs == 1:
            in_grads = fn.vjp(grad, node._data, *[p._data for p in parents], **node._attrs)
        else:
            in_grads = _multi_vjp(node, grad, grads, retain_grads)
        for position, (parent, pgrad) in enumerate(zip(parents, in_grads)):
            if pgrad is None or not parent.requires_grad:
                continue
            if pgrad.shape != parent._data.shape:
                if node._seq < last_modified:
                    check_versions(node, only=parent)
                pgrad = unbroadcast(dense(pgrad), parent._data.shape, fn.name, position)
            grads[parent] = accumulate(grads.get(parent), pgrad)
    if not retain_graph:
        for root in roots:
            root._backwarded = True


def _multi_vjp(node, grad, grads, retain_grads):
    """The VJP of a multi-output op, run once, from the first of its outputs that the reverse
    walk reaches: the outputs are made together, so every gradient of every output is
    complete by then. Takes the other outputs' gradients out of ``grads``."""
    fn, group = node._fn, node._group
    gs = []
    for other in group.tensors():
        g = grad if other is node else None if other is None else grads.pop(other, None)
        if g is not None and other is not node:
            g = g if fn.lazy_grad else dense(g)
            if other._retain or retain_grads:
                _accumulate_into(other, dense(g))
        gs.append(g)
    return fn.vjp(tuple(gs), group.arrays, *[p._data for p in node.parents], **node._attrs)
