"""Ops that move data without arithmetic: reshape, transpose, indexing, concat, stack."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, TinygraphIndexError, shape_str
from .base import Op, register
from .indexing import normalize_index
from .lazy import ScatterSum, join_tiles


@register
class Reshape(Op):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    name = "reshape"
    kind = "reshape"

    def check(self, a, shape):
        try:
            np.empty(a.shape, dtype=np.bool_).reshape(shape)  # cheap: validates -1 and sizes
        except (ValueError, TypeError):
            hint = ""
            if a.size == 0 and -1 in tuple(shape):
                hint = ("; with 0 elements the -1 dimension cannot be inferred (an empty batch or "
                        "sequence? a batch size or length of 0 is not supported here)")
            raise ShapeError(
                f"reshape: cannot reshape a tensor of shape {shape_str(a.shape)} ({a.size} elements) "
                f"into shape {tuple(shape)}{hint}"
            ) from None

    def forward(self, a, shape):
        return a.reshape(shape)

    def vjp(self, g, out, a, shape):
        return (g.reshape(a.shape),)


@register
class Transpose(Op):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    name = "transpose"
    kind = "transpose"

    def check(self, a, axes):
        if sorted(axes) != list(range(a.ndim)):
            raise ShapeError(
                f"transpose: axes {tuple(axes)} are not a permutation of the {a.ndim} axes "
                f"of a tensor of shape {shape_str(a.shape)}"
            )

    def forward(self, a, axes):
        return np.transpose(a, axes)

    def vjp(self, g, out, a, axes):
        return (np.transpose(g, np.argsort(axes)),)


@register
class Index(Op):
    """``a[index]`` for basic slices and integer (or boolean) arrays.

    In backward, the gradient is scattered back with ``np.add.at``, so an
    element picked several times by repeated integer indices accumulates
    (through a lazy ``ScatterSum``: all reads of one tensor share one buffer).
    """
    saves = ()  # what the VJP reads (the engine checks these were not modified)

    name = "index"
    kind = "index"

    def check(self, a, index):
        if type(index) is int and a.ndim and -a.shape[0] <= index < a.shape[0]:
            return  # the common xs[t], in range: nothing more to check (once per time step)
        index = normalize_index(index)
        try:
            # a zero-stride stand-in of a's shape: numpy's own index checks, without touching a's data
            np.broadcast_to(np.False_, a.shape)[index]
        except IndexError as exc:
            raise TinygraphIndexError(
                f"index: index {_index_repr(index)} does not fit a tensor of shape "
                f"{shape_str(a.shape)}: {exc}"
            ) from None

    def forward(self, a, index):
        return a[index]

    def vjp(self, g, out, a, index):
        # Lazy, so that the T gradients of xs[0] ... xs[T-1] share one buffer. The index
        # is canonical already when it came through Tensor.__getitem__; normalising again
        # covers a direct ``apply("index", ...)`` (repeated picks must go through np.add.at).
        if type(index) is not int:
            index = normalize_index(index)
        return (ScatterSum(a.shape, g.dtype, index, g),)


def _index_repr(index):
    text = repr(index)
    return text if len(text) < 80 else text[:77] + "..."


class _Join(Op):
    saves = ()  # what the VJP reads (the engine checks these were not modified)
    kind = "join"

    def check(self, *xs, axis):
        if not xs:
            raise ValueError(f"{self.name}: needs at least one tensor, got an empty sequence")
        first = xs[0].shape
        ndim = len(first) + (1 if self.name == "stack" else 0)
        if not -ndim <= axis < ndim:
            raise ShapeError(f"{self.name}: axis {axis} is out of range for {ndim}-dimensional results")
        ax = axis % ndim
        for i, x in enumerate(xs):
            s = x.shape
            if self.name == "stack":
                ok = s == first
                what = "all tensors must have the same shape"
            else:
                ok = len(s) == len(first) and all(d == e for j, (d, e) in enumerate(zip(s, first)) if j != ax)
                what = f"all dimensions except axis {ax} must match"
            if not ok:
                raise ShapeError(
                    f"{self.name}: tensor {i} has shape {shape_str(s)} but tensor 0 has shape "
                    f"{shape_str(first)}; {what}"
                )


@register
class Concat(_Join):
    name = "concat"

    def forward(self, *xs, axis):
        return np.concatenate(xs, axis=axis)

    def vjp(self, g, out, *xs, axis):
        bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return tuple(np.split(g, bounds, axis=axis))


@register
class Stack(_Join):
    name = "stack"

    def forward(self, *xs, axis):
        if axis == 0 and len(xs) > 1 and xs[0].base is not None:
            # Slots of one buffer lying in order in memory (e.g. the per-step states an
            # unrolled cell wrote into its workspace): a read-only view, no copy.
            joined = join_tiles(xs)
            if joined is not None:
                return joined
        return np.stack(xs, axis=axis)

    def vjp(self, g, out, *xs, axis):
        return tuple(np.moveaxis(g, axis, 0))
