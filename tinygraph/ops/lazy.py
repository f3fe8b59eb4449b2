"""Lazy gradients: sums of gradient terms kept pending until the engine needs them."""
from __future__ import annotations

import numpy as np

from .base import is_advanced_index


def _address(a):
    """Address of an array's first element."""
    return a.ctypes.data


def _owner(a):
    """The ndarray that owns ``a``'s memory (``a`` itself if it owns it), or None."""
    base = a.base
    if base is None:
        return a
    return base if type(base) is np.ndarray and base.base is None else None


def join_tiles(arrays):
    """One read-only view over ``arrays`` stacked along a new first axis, without copying,
    or None.

    It exists when the arrays are equally shaped and strided views of one owner
    array lying at equal distances in memory, in order (e.g. the T slots
    ``buf[0] ... buf[T-1]`` of a buffer, or the blocks ``buf[t][:, :H]``).
    ``view[k]`` is then exactly ``arrays[k]``, element for element; the view keeps
    a reference to the owner (numpy checks that it stays inside it). Read-only,
    so a gradient or value shared this way cannot be modified through it.
    """
    if len(arrays) < 2:
        return None
    first = arrays[0]
    owner = first.base
    if owner is None or _owner(first) is not owner:
        return None
    shape, strides, dtype = first.shape, first.strides, first.dtype
    start = _address(first)
    step = _address(arrays[1]) - start
    if step <= 0:
        return None
    address = start
    for a in arrays[1:]:
        address += step
        if (a.base is not owner or a.shape != shape or a.strides != strides or a.dtype != dtype
                or _address(a) != address):
            return None
    try:
        view = np.ndarray((len(arrays),) + shape, dtype=dtype, buffer=owner, offset=start - _address(owner),
                          strides=(step,) + strides)
    except (ValueError, TypeError):
        return None
    view.flags.writeable = False
    return view


# ---------------------------------------------------------------------------
# Deferred weight gradients.
#
# The gradient of ``a @ W`` with respect to ``W`` is ``a.T @ g``. When ``W`` is
# shared by T time steps, the engine would run T small matmuls; instead the
# matmul VJP returns an ``OuterSum`` term and the engine concatenates the terms
# of all consumers and runs one ``(K, sum of rows) @ (sum of rows, N)`` matmul
# when the gradient of ``W`` is finally needed (BLAS is far faster on one
# tall product than on many small ones).
# ---------------------------------------------------------------------------
class OuterSum:
    """A lazily evaluated sum ``dense + sum_i lhs[i].T @ rhs[i]`` of 2-D matrices."""

    __slots__ = ("shape", "dense", "lhs", "rhs", "rows")

    # Above this many pending rows the terms are folded into ``dense``, so that a
    # very long unroll does not keep every step's gradient alive.
    MAX_ROWS = 1 << 12

    def __init__(self, lhs, rhs):
        self.shape = (lhs.shape[1], rhs.shape[1])
        self.dense = None
        self.lhs = [lhs]
        self.rhs = [rhs]
        self.rows = lhs.shape[0]

    def add(self, other):
        """Add an ndarray or another OuterSum into this one (in place); return self."""
        if type(other) is OuterSum:
            self.lhs.extend(other.lhs)
            self.rhs.extend(other.rhs)
            self.rows += other.rows
            if other.dense is not None:
                self._add_dense(other.dense)
        else:
            self._add_dense(dense(other))
        if self.rows > self.MAX_ROWS:
            self._add_dense(self._product())
            self.lhs, self.rhs, self.rows = [], [], 0
        return self

    def _add_dense(self, array):
        self.dense = array if self.dense is None else self.dense + array

    # The terms are concatenated in blocks of about this many rows: tall enough for
    # BLAS to run near its peak, small enough that the temporary copies are reused
    # heap memory instead of fresh pages (page faults cost more than the copies).
    BLOCK_ROWS = 512

    def _runs(self):
        """The terms as (lhs, rhs) pairs, where consecutive terms whose operands are
        adjacent slots of the same buffers (e.g. the T steps of an unrolled cell
        writing into one workspace) are joined into one tall pair of views."""
        lhs, rhs = self.lhs, self.rhs
        count = len(lhs)
        out = []
        start = 0
        while start < count:
            stop = start + 1
            # terms arrive in backward order (last step first): try the run reversed
            while stop < count and lhs[stop].shape == lhs[start].shape and rhs[stop].shape == rhs[start].shape \
                    and lhs[stop].base is not None and lhs[stop].base is lhs[start].base \
                    and rhs[stop].base is not None and rhs[stop].base is rhs[start].base:
                stop += 1
            if stop - start > 1:
                for order in (slice(start, stop), slice(stop - 1, start - 1 if start else None, -1)):
                    a, b = join_tiles(lhs[order]), join_tiles(rhs[order])
                    if a is not None and b is not None:
                        out.append((a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])))
                        break
                else:
                    out.extend(zip(lhs[start:stop], rhs[start:stop]))
            else:
                out.append((lhs[start], rhs[start]))
            start = stop
        return out

    def _product(self):
        if len(self.lhs) == 1:
            return self.lhs[0].T @ self.rhs[0]
        terms = self._runs()
        total = None
        start, count = 0, len(terms)
        while start < count:
            stop, rows = start + 1, terms[start][0].shape[0]
            while stop < count and rows + terms[stop][0].shape[0] <= self.BLOCK_ROWS:
                rows += terms[stop][0].shape[0]
                stop += 1
            if stop == start + 1:
                part = terms[start][0].T @ terms[start][1]
            else:
                part = (np.concatenate([a for a, _ in terms[start:stop]], axis=0).T
                        @ np.concatenate([b for _, b in terms[start:stop]], axis=0))
            if total is None:
                total = part
            else:
                total += part
            start = stop
        return total

    def materialize(self):
        """The dense ndarray this sum stands for."""
        if not self.lhs:
            return self.dense
        product = self._product()
        return product if self.dense is None else self.dense + product


class ScatterSum:
    """A lazily evaluated gradient ``zeros(shape)`` with pieces added at indices.

    The gradient of ``a[index]`` is zero except at ``index``. When a sequence
    ``xs`` of T steps is read as ``xs[0] ... xs[T-1]``, materialising a full
    ``zeros_like(xs)`` per step and summing them costs O(T^2); instead the
    index VJP returns this, and the engine adds all pieces into one buffer.

    The pieces stay pending (no buffer) while they are few, or while they are
    all views of one array (holding them then costs no memory). An op whose
    VJP accepts lazy gradients (``Op.lazy_grad``) can read the pieces
    directly (``pieces()``). When the pending pieces are the T slots ``0 ...
    T-1`` of one buffer, in memory order, materialising returns a read-only
    view of that buffer instead of a copy (see ``join_tiles``); ``add`` then
    copies before adding anything in.
    """

    __slots__ = ("shape", "dtype", "buffer", "pending", "owner", "owned")

    # More pending pieces than this, not all views of one array, are written into a buffer.
    MAX_PENDING = 4

    def __init__(self, shape, dtype, index, value):
        self.shape = shape
        self.dtype = dtype
        self.buffer = None
        self.pending = [(index, value)]
        self.owner = _owner(value) if value.base is not None else None
        self.owned = True

    @staticmethod
    def _write(buffer, index, value):
        rows = index[0] if type(index) is tuple and len(index) == 1 else index  # canonical form: (array,)
        if type(rows) is np.ndarray and rows.dtype.kind in "iu" and rows.size >= 64 \
                and value.ndim > rows.ndim and buffer.ndim > 1:
            _add_rows(buffer, rows, value)
        elif is_advanced_index(index):
            np.add.at(buffer, index, value)
        else:
            buffer[index] += value

    def pieces(self):
        """The pending ``(index, value)`` pieces, or None once materialised."""
        return self.pending

    def materialize(self):
        """The dense ndarray this sum stands for (read-only if it is a view of the pieces)."""
        if self.buffer is None:
            tiled = self._tiled()
            if tiled is not None:
                self.buffer, self.owned = tiled, False
            else:
                self.buffer = np.zeros(self.shape, dtype=self.dtype)
                for index, value in self.pending:
                    self._write(self.buffer, index, value)
            self.pending = None
        return self.buffer

    def _tiled(self):
        pending = self.pending
        count = self.shape[0] if self.shape else 0
        if self.owner is None or len(pending) != count or count < 2:
            return None
        values = [None] * count
        for index, value in pending:
            if type(index) is not int or value.dtype != self.dtype:
                return None
            if index < 0:
                index += count
            if values[index] is not None:
                return None
            values[index] = value
        return join_tiles(values)

    def _own_buffer(self):
        buffer = self.materialize()
        if not self.owned:
            self.buffer = buffer = np.array(buffer, copy=True)
            self.owned = True
        return buffer

    def add(self, other):
        """Add an ndarray or another lazy gradient into this one (in place); return self."""
        if self.buffer is None and type(other) is ScatterSum and other.buffer is None:
            for _, value in other.pending:
                if self.owner is not None and (value.base is None or _owner(value) is not self.owner):
                    self.owner = None
            self.pending.extend(other.pending)
            if self.owner is None and len(self.pending) > self.MAX_PENDING:
                self._own_buffer()
            return self
        buffer = self._own_buffer()
        if type(other) is ScatterSum and other.buffer is None:
            for index, value in other.pending:
                self._write(buffer, index, value)
        else:
            buffer += dense(other)
        return self


def _add_rows(buffer, index, value):
    """``np.add.at(buffer, index, value)`` for an integer array indexing the first axis
    (e.g. an embedding's gradient): sort the rows by index and sum each run with
    ``np.add.reduceat``, then add once per distinct row (several times faster)."""
    rows = index.reshape(-1)
    if rows.min() < 0:
        rows = np.where(rows < 0, rows + buffer.shape[0], rows)
    values = value.reshape((rows.size,) + buffer.shape[1:])
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    starts = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    buffer[rows[starts]] += np.add.reduceat(values[order], starts, axis=0)


LAZY_GRADIENTS = (OuterSum, ScatterSum)


def dense(grad):
    """An ndarray for a gradient that may be lazy (``OuterSum``, ``ScatterSum``)."""
    return grad.materialize() if type(grad) in LAZY_GRADIENTS else grad
