"""Reverse-mode differentiation: an iterative topological walk over the graph.

No recursion anywhere, so chains of 10^5+ steps and graphs of millions of
nodes never touch Python's recursion limit. Each node's incoming gradient is
dropped as soon as the node has passed it on, so peak memory holds only the
gradients of the current "frontier" of the walk.
"""
from __future__ import annotations

import numpy as np

from .errors import BackwardTwiceError, ModifiedInPlaceError, shape_str
from .ops import LAZY_GRADIENTS, dense as _dense


# -----------------------------------------------------------------------------
# Version stamps
#
# Every tensor gets a number from one process-wide counter when it is made
# (``Tensor._seq``). Assigning to ``t.data`` stamps ``t._mutated`` with a fresh
# number from the same counter and records it in ``VERSIONS.last``. A node that
# used ``t`` was made before ``t`` was modified exactly when ``node._seq <
# t._mutated``. Backward checks nodes only when ``node._seq < VERSIONS.last``
# (something was modified after the node was made), so a training loop, which
# modifies parameters *before* building the next graph, pays one integer
# comparison per node.
# -----------------------------------------------------------------------------
class _Versions:
    __slots__ = ("last",)

    def __init__(self):
        self.last = -1


VERSIONS = _Versions()

# Ops whose output is (or may be) a view of their first input's memory: an
# in-place change of the input changes the output too.
_VIEW_OPS = frozenset(("reshape", "transpose", "index", "stack"))


def mark_modified(tensor):
    """Record that ``tensor``'s values changed (called by the ``Tensor.data`` setter)."""
    from .tensor import _next_seq

    stamp = _next_seq()
    tensor._mutated = stamp
    if stamp > VERSIONS.last:  # (another thread may have stamped a later one meanwhile)
        VERSIONS.last = stamp


def _stamp(tensor):
    """The latest modification stamp of ``tensor`` or of the memory it views (-1 if none)."""
    stamp = getattr(tensor, "_mutated", -1)
    steps = 0
    while tensor._fn is not None and tensor._fn.name in _VIEW_OPS and tensor._data.base is not None \
            and steps < 10_000:
        steps += 1
        for parent in tensor.parents:
            s = getattr(parent, "_mutated", -1)
            if s > stamp:
                stamp = s
        tensor = tensor.parents[0]
    return stamp


def _label(tensor, fallback):
    if tensor.name is not None:
        return f"tensor {tensor.name!r} {shape_str(tensor.shape)}"
    if tensor._fn is None:
        return f"{fallback} (a leaf of shape {shape_str(tensor.shape)})"
    return f"{fallback} (the output of op {tensor._fn.name!r}, shape {shape_str(tensor.shape)})"


def check_versions(node, only=None):
    """Raise ``ModifiedInPlaceError`` if an input (or the output) whose values the VJP of
    ``node`` reads was modified after ``node`` was made. ``only``: check just that parent,
    whatever the op reads (used when its shape no longer fits the gradient)."""
    fn = node._fn
    seq = node._seq
    saves = getattr(fn, "saves", None)
    if only is not None:
        suspects = [(node.parents.index(only), only)]
    else:
        suspects = [(i, p) for i, p in enumerate(node.parents) if saves is None or i in saves]
        if saves is None or "out" in saves:
            suspects.append(("out", node))
    for i, tensor in suspects:
        if _stamp(tensor) > seq:
            what = (_label(tensor, "the output") if i == "out" else _label(tensor, f"input {i}"))
            where = f" of the {node.instance[0]} instance at t={node.instance[1]}" if _has_instance(node) else ""
            raise ModifiedInPlaceError(
                f"backward: {what} was modified (its .data assigned, e.g. by an optimizer step) after "
                f"op {fn.name!r}{where} used it, and that op's gradient needs the old values. Call "
                f"backward before changing it (zero_grad, forward, backward, step), or run the forward "
                f"pass again."
            )


def _has_instance(node):
    try:
        name, index = node.instance
        return True
    except (TypeError, ValueError):
        return False


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


def backward(roots, seeds, retain_grads=False, retain_graph=False):
    """Accumulate d(sum_i <roots[i], seeds[i]>)/d(leaf) into ``leaf.grad`` for every leaf
    with ``requires_grad``.

    Non-leaf tensors keep their gradient in ``.grad`` when they were marked
    with ``retain_grad()`` or when ``retain_grads`` is true.

    A root back-propagated once cannot be back-propagated again (its gradients
    would be added a second time) unless every earlier call passed
    ``retain_graph=True``: ``BackwardTwiceError``. A VJP input modified after
    use raises ``ModifiedInPlaceError`` (see ``check_versions``).
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
        if node._seq < last_modified:
            check_versions(node)
        parents = node.parents
        in_grads = fn.vjp(grad, node._data, *[p._data for p in parents], **node._attrs)
        for parent, pgrad in zip(parents, in_grads):
            if pgrad is None or not parent.requires_grad:
                continue
            if pgrad.shape != parent._data.shape:
                if node._seq < last_modified:
                    check_versions(node, only=parent)
                pgrad = unbroadcast(_dense(pgrad), parent._data.shape, fn.name, parents.index(parent))
            previous = grads.get(parent)
            if previous is None:
                grads[parent] = pgrad
            elif type(previous) in LAZY_GRADIENTS:
                previous.add(pgrad)
            elif type(pgrad) in LAZY_GRADIENTS:
                grads[parent] = pgrad.add(previous)
            else:
                grads[parent] = previous + pgrad
    if not retain_graph:
        for root in roots:
            root._backwarded = True


def _accumulate_into(node, grad):
    existing = node.grad
    if existing is None:
        # A copy: ``grad`` may be a read-only broadcast view or shared with another edge.
        node.grad = np.array(grad, dtype=node._data.dtype, copy=True)
        return
    if existing.__class__ is not np.ndarray or existing.shape != node._data.shape \
            or existing.dtype.kind != "f" or not existing.flags.writeable:
        _bad_existing_grad(node, existing)
    existing += grad


def _bad_existing_grad(node, existing):
    what = _label(node, "a leaf")
    if not isinstance(existing, np.ndarray):
        raise TypeError(f"backward: {what} has .grad of type {type(existing).__name__}; expected None or a "
                        f"float numpy array of shape {shape_str(node.shape)} to accumulate into")
    if existing.shape != node._data.shape:
        raise ValueError(f"backward: {what} has a .grad of shape {shape_str(existing.shape)} set before "
                         f"backward; gradients accumulate into .grad, which must have the tensor's shape "
                         f"{shape_str(node.shape)} (or be None)")
    if existing.dtype.kind != "f":
        raise TypeError(f"backward: {what} has a .grad of dtype {existing.dtype} set before backward; "
                        f"expected a float array (or None) to accumulate into")
    raise ValueError(f"backward: {what} has a read-only .grad array; set .grad = None (or a writeable "
                     f"copy) before backward")
