"""Reverse-mode differentiation: an iterative topological walk over the graph.

No recursion anywhere, so chains of 10^5+ steps and graphs of millions of
nodes never touch Python's recursion limit. Each node's incoming gradient is
dropped as soon as the node has passed it on, so peak memory holds only the
gradients of the current "frontier" of the walk.
"""
from __future__ import annotations

import numpy as np

from .errors import shape_str
from .ops import LAZY_GRADIENTS, dense as _dense


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


def backward(roots, seeds, retain_grads=False):
    """Accumulate d(sum_i <roots[i], seeds[i]>)/d(leaf) into ``leaf.grad`` for every leaf
    with ``requires_grad``.

    Non-leaf tensors keep their gradient in ``.grad`` when they were marked
    with ``retain_grad()`` or when ``retain_grads`` is true.
    """
    order = topological_order(roots, only_requires_grad=True)
    grads = {}
    for root, seed in zip(roots, seeds):
        grads[root] = grads[root] + seed if root in grads else seed
    pop = grads.pop
    for node in reversed(order):
        grad = pop(node, None)
        if grad is None:
            continue  # not downstream of a seeded root
        fn = node._fn
        if fn is None or node._retain or retain_grads:
            if type(grad) in LAZY_GRADIENTS:
                grad = grad.materialize()
            _accumulate_into(node, grad)
            if fn is None:
                continue
        elif type(grad) in LAZY_GRADIENTS and not fn.lazy_grad:
            grad = grad.materialize()
        parents = node.parents
        in_grads = fn.vjp(grad, node.data, *[p.data for p in parents], **node._attrs)
        for parent, pgrad in zip(parents, in_grads):
            if pgrad is None or not parent.requires_grad:
                continue
            if pgrad.shape != parent.data.shape:
                pgrad = unbroadcast(_dense(pgrad), parent.data.shape, fn.name, parents.index(parent))
            previous = grads.get(parent)
            if previous is None:
                grads[parent] = pgrad
            elif type(previous) in LAZY_GRADIENTS:
                previous.add(pgrad)
            elif type(pgrad) in LAZY_GRADIENTS:
                grads[parent] = pgrad.add(previous)
            else:
                grads[parent] = previous + pgrad


def _accumulate_into(node, grad):
    if node.grad is None:
        # A copy: ``grad`` may be a read-only broadcast view or shared with another edge.
        node.grad = np.array(grad, dtype=node.data.dtype, copy=True)
    else:
        node.grad += grad
