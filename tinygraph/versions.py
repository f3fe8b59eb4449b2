"""Version stamps: catching a tensor modified in place after an op used it.

Every tensor gets a number from one process-wide counter when it is made
(``Tensor._seq``). Assigning to ``t.data`` stamps ``t._mutated`` with a fresh
number from the same counter and records it in ``VERSIONS.last``. A node that
used ``t`` was made before ``t`` was modified exactly when ``node._seq <
t._mutated``. Backward checks nodes only when ``node._seq < VERSIONS.last``
(something was modified after the node was made), so a training loop, which
modifies parameters *before* building the next graph, pays one integer
comparison per node.
"""
from __future__ import annotations

from .errors import ModifiedInPlaceError, shape_str


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


def label(tensor, fallback):
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
            what = (label(tensor, "the output") if i == "out" else label(tensor, f"input {i}"))
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
