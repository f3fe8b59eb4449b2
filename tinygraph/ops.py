"""The op table: every primitive op's forward and vector-Jacobian product, side by side.

An op is a class with

* ``forward(*xs, **attrs) -> ndarray``: the numpy computation;
* ``vjp(g, out, *xs, **attrs) -> tuple``: one gradient per input (``None`` for
  an input that gets none), given the output gradient ``g`` and the forward
  output ``out``. A gradient may have the *broadcast* shape of the output: the
  engine sums it back to the input's shape (``unbroadcast``) in one place and
  checks every edge's shape there;
* ``check(*xs, **attrs)`` (optional): validates operands before forward and
  raises a clear ``ValueError``/``TypeError`` naming the op and the shapes.

Registering the class with ``@register`` puts it in ``OPS``. The tests read
``OPS`` and check every op's gradient against finite differences, and the
drawing reads ``OPS`` for labels, so adding an op is a one-place change.

Metadata read by the tests: ``kind`` (how to draw inputs: ``"unary"``,
``"binary"``, ``"reduce"``, ``"matmul"``, ``"reshape"``, ``"transpose"``,
``"index"``, ``"join"``) and ``domain`` (``"real"``, ``"positive"``,
``"away_from_zero"``, ``"distinct"``) for inputs where finite differences are
valid.
"""
from __future__ import annotations

import numpy as np

from .errors import ShapeError, TinygraphIndexError, shape_str

OPS: dict[str, "Op"] = {}


def register(cls):
    """Class decorator: instantiate the op and add it to ``OPS`` under ``cls.name``."""
    if cls.name in OPS:
        raise ValueError(f"op {cls.name!r} is registered twice")
    OPS[cls.name] = cls()
    return cls


class Op:
    name = "op"
    kind = "custom"
    domain = "real"
    symbol = None  # short label for drawings, e.g. "+"
    check = None
    # True if ``vjp`` accepts a lazy output gradient (a ``ScatterSum``) as ``g``;
    # otherwise the engine materialises it first.
    lazy_grad = False

    def forward(self, *xs, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, g, out, *xs, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"<op {self.name}>"


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
        if type(index) is np.ndarray and index.dtype.kind in "iu" and index.size >= 64 \
                and value.ndim > index.ndim and buffer.ndim > 1:
            _add_rows(buffer, index, value)
        elif _is_advanced(index):
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


# ---------------------------------------------------------------------------
# Elementwise ops
# ---------------------------------------------------------------------------
def _broadcast_check(name, a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ShapeError(
            f"{name}: operand shapes {shape_str(a.shape)} and {shape_str(b.shape)} "
            f"do not broadcast (numpy rules: trailing dimensions must be equal or 1)"
        ) from None


class _Binary(Op):
    kind = "binary"

    def check(self, a, b):
        # A plain-Python test of numpy's rule is far cheaper than np.broadcast_shapes
        # on the tiny shapes of a scalar-heavy graph.
        if a.shape != b.shape:
            for da, db in zip(a.shape[::-1], b.shape[::-1]):
                if da != db and da != 1 and db != 1:
                    _broadcast_check(self.name, a, b)


@register
class Add(_Binary):
    name, symbol = "add", "+"

    def forward(self, a, b):
        return a + b

    def vjp(self, g, out, a, b):
        return g, g


@register
class Sub(_Binary):
    name, symbol = "sub", "-"

    def forward(self, a, b):
        return a - b

    def vjp(self, g, out, a, b):
        return g, -g


@register
class Mul(_Binary):
    name, symbol = "mul", "*"

    def forward(self, a, b):
        return a * b

    def vjp(self, g, out, a, b):
        return g * b, g * a


@register
class Div(_Binary):
    name, symbol = "div", "/"
    domain = "away_from_zero"  # the divisor

    def forward(self, a, b):
        return a / b

    def vjp(self, g, out, a, b):
        gb = g / b
        return gb, -gb * out


@register
class Pow(_Binary):
    """``a ** b``. The gradient with respect to ``b`` is ``out * log(a)``, defined for ``a > 0``."""

    name, symbol = "pow", "**"
    domain = "positive"  # the base

    def forward(self, a, b):
        return a**b

    def vjp(self, g, out, a, b):
        ga = g * b * a ** (b - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            gb = g * out * np.log(a)
        # Where a == 0 the exponent's gradient is 0 * log(0): take the limit 0 for
        # positive exponents, as the other libraries do.
        if not np.all(np.isfinite(gb)):
            gb = np.where(a == 0, 0.0, gb).astype(out.dtype, copy=False)
        return ga, gb


@register
class Maximum(_Binary):
    """Elementwise maximum; at ties the gradient is split evenly between both inputs."""

    name = "maximum"
    domain = "distinct"

    def forward(self, a, b):
        return np.maximum(a, b)

    def vjp(self, g, out, a, b):
        wa = (a > b) + 0.5 * (a == b)
        return g * wa, g * (1.0 - wa)


class _Unary(Op):
    kind = "unary"


@register
class Neg(_Unary):
    name, symbol = "neg", "-"

    def forward(self, a):
        return -a

    def vjp(self, g, out, a):
        return (-g,)


@register
class Exp(_Unary):
    name = "exp"

    def forward(self, a):
        return np.exp(a)

    def vjp(self, g, out, a):
        return (g * out,)


@register
class Log(_Unary):
    name = "log"
    domain = "positive"

    def forward(self, a):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(a)

    def vjp(self, g, out, a):
        return (g / a,)


@register
class Tanh(_Unary):
    name = "tanh"

    def forward(self, a):
        return np.tanh(a)

    def vjp(self, g, out, a):
        return (g * (1.0 - out * out),)


@register
class Sigmoid(_Unary):
    name = "sigmoid"

    def forward(self, a):
        # 0.5 * (1 + tanh(a / 2)) equals 1 / (1 + exp(-a)) without overflow for large |a|.
        out = np.tanh(a * 0.5)
        out += 1.0
        out *= 0.5
        return out

    def vjp(self, g, out, a):
        return (g * out * (1.0 - out),)


@register
class Relu(_Unary):
    """``max(a, 0)``; the gradient at exactly 0 is taken as 0."""

    name = "relu"
    domain = "away_from_zero"

    def forward(self, a):
        return np.maximum(a, 0)

    def vjp(self, g, out, a):
        return (g * (a > 0),)


@register
class Abs(_Unary):
    """``|a|``; the gradient at exactly 0 is taken as 0."""

    name = "abs"
    domain = "away_from_zero"

    def forward(self, a):
        return np.abs(a)

    def vjp(self, g, out, a):
        return (g * np.sign(a),)


@register
class Sqrt(_Unary):
    name = "sqrt"
    domain = "positive"

    def forward(self, a):
        with np.errstate(invalid="ignore"):
            return np.sqrt(a)

    def vjp(self, g, out, a):
        return (g * 0.5 / out,)


# ---------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------
def normalize_axis(name, axis, ndim, shape):
    """Return ``axis`` as a sorted tuple of non-negative ints, or raise a clear error."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, (tuple, list)) or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"{name}: axis must be None, an int or a tuple of ints, got {axis!r}")
    axes = tuple(int(a) for a in axes)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(
                f"{name}: axis {a} is out of range for a tensor of shape {shape_str(shape)} "
                f"(expected -{ndim} <= axis < {ndim})"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{name}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def _expand_reduced(g, shape, axes, keepdims):
    """Broadcast a reduced gradient back to ``shape`` (a read-only view)."""
    if not keepdims and axes:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


class _Reduce(Op):
    kind = "reduce"

    def check(self, a, axis=None, keepdims=False):
        # The tensor method normalises axis first; this guards direct op calls.
        normalize_axis(self.name, axis, a.ndim, a.shape)


@register
class Sum(_Reduce):
    name, symbol = "sum", "Σ"

    def forward(self, a, axis=None, keepdims=False):
        return np.sum(a, axis=axis, keepdims=keepdims)

    def vjp(self, g, out, a, axis=None, keepdims=False):
        return (_expand_reduced(g, a.shape, axis, keepdims),)


@register
class Mean(_Reduce):
    name = "mean"

    def forward(self, a, axis=None, keepdims=False):
        return np.mean(a, axis=axis, keepdims=keepdims)

    def vjp(self, g, out, a, axis=None, keepdims=False):
        count = a.size // max(out.size, 1) if a.size else 1
        return (_expand_reduced(g / count, a.shape, axis, keepdims),)


@register
class Max(_Reduce):
    """Maximum over ``axis``. Where several elements tie for the maximum the
    gradient is split evenly between them (so it sums to the output gradient)."""

    name = "max"
    domain = "distinct"

    def check(self, a, axis=None, keepdims=False):
        super().check(a, axis, keepdims)
        if a.size == 0:
            raise ShapeError(f"max: cannot take the maximum of an empty tensor of shape {shape_str(a.shape)}")

    def forward(self, a, axis=None, keepdims=False):
        return np.max(a, axis=axis, keepdims=keepdims)

    def vjp(self, g, out, a, axis=None, keepdims=False):
        out_k = out if keepdims or not axis else np.expand_dims(out, axis)
        g_k = g if keepdims or not axis else np.expand_dims(g, axis)
        mask = (a == out_k).astype(a.dtype)
        mask /= mask.sum(axis=axis, keepdims=True)
        return (mask * g_k,)


# ---------------------------------------------------------------------------
# Matrix product
# ---------------------------------------------------------------------------
@register
class MatMul(Op):
    """``a @ b`` with numpy's matmul broadcasting (1-D operands included).

    Optional attribute ``buffer``: an array of the result's shape and dtype,
    owned exclusively by this node, that the product is written into (buffer
    reuse, see ``tinygraph.template.BufferPool``).
    """

    name, symbol = "matmul", "@"
    kind = "matmul"

    def check(self, a, b, buffer=None):
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(
                f"matmul: operands must have at least 1 dimension, got shapes "
                f"{shape_str(a.shape)} and {shape_str(b.shape)} (use * for scalars)"
            )
        k_a = a.shape[-1]
        k_b = b.shape[-2] if b.ndim >= 2 else b.shape[0]
        if k_a != k_b:
            raise ShapeError(
                f"matmul: shapes {shape_str(a.shape)} @ {shape_str(b.shape)} do not fit: "
                f"the last dimension of the left operand ({k_a}) must equal the "
                f"{'second-to-last' if b.ndim >= 2 else 'only'} dimension of the right operand ({k_b})"
            )
        if a.ndim > 2 and b.ndim > 2:
            try:
                np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            except ValueError:
                raise ShapeError(
                    f"matmul: batch dimensions of {shape_str(a.shape)} and {shape_str(b.shape)} "
                    f"do not broadcast ({shape_str(a.shape[:-2])} vs {shape_str(b.shape[:-2])})"
                ) from None
        if buffer is not None:
            _check_buffer("matmul", "buffer", buffer, _matmul_shape(a.shape, b.shape), np.result_type(a, b))

    def forward(self, a, b, buffer=None):
        if buffer is not None:
            return np.matmul(a, b, out=buffer)
        return a @ b

    def vjp(self, g, out, a, b, buffer=None):
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a
        if a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
            ga = (g[..., None, :] @ np.swapaxes(b, -1, -2))[..., 0, :]
            gb = a[:, None] * g[..., None, :]
            return ga, gb
        if b.ndim == 1:  # (..., m, k) @ (k,) -> (..., m)
            ga = g[..., :, None] * b
            gb = (np.swapaxes(a, -1, -2) @ g[..., :, None])[..., 0]
            return ga, gb
        ga = g @ np.swapaxes(b, -1, -2)
        if a.ndim == 2 and b.ndim == 2:
            return ga, OuterSum(a, g)
        return ga, np.swapaxes(a, -1, -2) @ g


def _matmul_shape(a, b):
    """The shape of ``a @ b`` for operand shapes that fit (checked before)."""
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        return tuple(b[:-2]) + (b[-1],)
    if len(b) == 1:
        return tuple(a[:-1])
    return tuple(np.broadcast_shapes(a[:-2], b[:-2])) + (a[-2], b[-1])


# ---------------------------------------------------------------------------
# Shape ops
# ---------------------------------------------------------------------------
@register
class Reshape(Op):
    name = "reshape"
    kind = "reshape"

    def check(self, a, shape):
        try:
            np.empty(a.shape, dtype=np.bool_).reshape(shape)  # cheap: validates -1 and sizes
        except (ValueError, TypeError):
            raise ShapeError(
                f"reshape: cannot reshape a tensor of shape {shape_str(a.shape)} ({a.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None

    def forward(self, a, shape):
        return a.reshape(shape)

    def vjp(self, g, out, a, shape):
        return (g.reshape(a.shape),)


@register
class Transpose(Op):
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


def _is_advanced(index):
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (np.ndarray, list)) for i in items)


@register
class Index(Op):
    """``a[index]`` for basic slices and integer (or boolean) arrays.

    In backward, the gradient is scattered back with ``np.add.at``, so an
    element picked several times by repeated integer indices accumulates
    (through a lazy ``ScatterSum``: all reads of one tensor share one buffer).
    """

    name = "index"
    kind = "index"

    def check(self, a, index):
        try:
            a[index] if a.size < 4096 else np.empty(a.shape, dtype=np.bool_)[index]
        except IndexError as exc:
            raise TinygraphIndexError(
                f"index: index {_index_repr(index)} does not fit a tensor of shape "
                f"{shape_str(a.shape)}: {exc}"
            ) from None

    def forward(self, a, index):
        return a[index]

    def vjp(self, g, out, a, index):
        # Lazy, so that the T gradients of xs[0] ... xs[T-1] share one buffer.
        return (ScatterSum(a.shape, g.dtype, index, g),)


def _index_repr(index):
    text = repr(index)
    return text if len(text) < 80 else text[:77] + "..."


class _Join(Op):
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


# ---------------------------------------------------------------------------
# Fused recurrent ops
#
# One LSTM step written with primitives is ~15 graph nodes; the Python cost per
# node then dominates small cells. This op is the same pointwise math as one
# node, with forward and VJP side by side like every other op.
# ---------------------------------------------------------------------------
@register
class LSTMCellOp(Op):
    """One LSTM step after the input projection, fused: ``h @ W_h`` and the gate math.

    Inputs: ``x_proj`` (..., 4H), the input's share of the gate pre-activations
    (typically ``x_t @ W_x + b``, all steps projected at once); ``h`` (..., K)
    and ``W_h`` (K, 4H), the previous hidden state and the hidden-to-gate
    matrix; ``c`` (..., H), the previous cell state. Gate order i, f, o, g.
    With ``z = x_proj + h @ W_h``::

        i, f, o = sigmoid(z[..., :H]), sigmoid(z[..., H:2H]), sigmoid(z[..., 2H:3H])
        g = tanh(z[..., 3H:])
        c_new = f * c + i * g
        h_new = o * tanh(c_new)

    The output (7, ..., H) stacks ``[h_new, c_new, i, f, o, g, tanh(c_new)]``
    along a new first axis (``out[0]`` is ``h_new``, ``out[1]`` is ``c_new``):
    the new state first, then the activations the backward pass needs (what
    BPTT must keep anyway). Each block is contiguous, so the pointwise math
    runs on whole arrays rather than column slices. Gradients into every part
    of the output are handled. The gradient of ``W_h`` is a deferred
    ``OuterSum`` like matmul's, so the T steps' terms are summed by one tall
    matmul.

    Optional attributes (buffer reuse, see ``tinygraph.template.BufferPool``):
    ``buffer``, an array of the output's shape and dtype that forward writes
    the output into, and ``grad_buffer``, an array of ``x_proj``'s gradient
    shape ((..., 4H)) that the VJP writes the gradient of the pre-activations
    into (and returns for ``x_proj``). The caller must own them exclusively
    for this node. Without them, fresh arrays are allocated.

    The VJP takes the output gradient lazily (``lazy_grad``): when only the
    ``h_new`` and ``c_new`` blocks receive gradients (the usual unrolled
    chain), it reads them from the pending pieces of the ``ScatterSum`` and
    never builds the mostly-zero (7, ..., H) gradient.
    """

    name = "lstm_cell"
    kind = "lstm"
    lazy_grad = True

    def check(self, x_proj, h, W_h, c, buffer=None, grad_buffer=None):
        ok = min(x_proj.ndim, h.ndim, c.ndim) >= 1 and W_h.ndim == 2
        ok = ok and x_proj.shape[-1] == W_h.shape[1] == 4 * c.shape[-1] and h.shape[-1] == W_h.shape[0]
        lead = x_proj.shape[:-1]
        if ok and not (x_proj.shape[:-1] == h.shape[:-1] == c.shape[:-1]):
            try:
                lead = np.broadcast_shapes(x_proj.shape[:-1], h.shape[:-1], c.shape[:-1])
            except ValueError:
                ok = False
        if not ok:
            raise ShapeError(
                f"lstm_cell: expected x_proj (..., 4H), h (..., K), W_h (K, 4H) and c (..., H) with "
                f"broadcastable leading dimensions, got {shape_str(x_proj.shape)}, {shape_str(h.shape)}, "
                f"{shape_str(W_h.shape)} and {shape_str(c.shape)}"
            )
        if buffer is not None or grad_buffer is not None:
            H = c.shape[-1]
            dtype = np.result_type(x_proj, h, W_h, c)
            _check_buffer("lstm_cell", "buffer", buffer, (7,) + tuple(lead) + (H,), dtype)
            _check_buffer("lstm_cell", "grad_buffer", grad_buffer, tuple(lead) + (4 * H,), dtype)

    def forward(self, x_proj, h, W_h, c, buffer=None, grad_buffer=None):
        H = c.shape[-1]
        z = h @ W_h
        if z.shape == x_proj.shape and z.dtype == np.result_type(z, x_proj):
            z += x_proj
        else:
            z = z + x_proj
        lead = z.shape[:-1] if z.shape[:-1] == c.shape[:-1] else np.broadcast_shapes(z.shape[:-1], c.shape[:-1])
        if z.shape[:-1] != lead:  # the gate axis leads, so line the other axes up first
            z = np.broadcast_to(z, lead + z.shape[-1:])
        out = buffer if buffer is not None else np.empty((7,) + lead + (H,), dtype=np.result_type(z, c))
        zg = _gate_major(z, H)  # (4, ..., H) view of z
        # sigmoid(a) = 0.5 * tanh(a / 2) + 0.5: tanh is cheaper than exp here, and never overflows
        s = out[2:5]
        np.multiply(zg[:3], 0.5, out=s)
        np.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        np.tanh(zg[3], out=out[5])
        i, f, o, cand, tc = out[2], out[3], out[4], out[5], out[6]
        c_new, h_new = out[1], out[0]
        np.multiply(f, c, out=c_new)
        np.multiply(i, cand, out=h_new)  # h_new's block as scratch for i * g
        c_new += h_new
        np.tanh(c_new, out=tc)
        np.multiply(o, tc, out=h_new)
        return out

    def vjp(self, g, out, x_proj, h, W_h, c, buffer=None, grad_buffer=None):
        H = c.shape[-1]
        i, f, o, cand, tc = out[2], out[3], out[4], out[5], out[6]
        g_h, g_c, g_rest = _lstm_output_grads(g, out)
        # dc: through h_new = o * tanh(c_new), plus direct uses of tanh(c_new) and c_new
        dc = g_h * o
        if g_rest is not None:
            dc += g_rest[6]
        sq = tc * tc
        np.subtract(1.0, sq, out=sq)
        dc *= sq
        if g_c is not None:
            dc += g_c
        lead = out.shape[1:-1]
        if grad_buffer is not None:
            dz = grad_buffer
        else:
            dz = np.empty(lead + (4 * H,), dtype=out.dtype)
        dzg = _gate_major(dz, H)
        ds = np.empty((3,) + lead + (H,), dtype=out.dtype)
        np.multiply(dc, cand, out=ds[0])
        np.multiply(dc, c, out=ds[1])
        np.multiply(g_h, tc, out=ds[2])
        if g_rest is not None:
            ds += g_rest[2:5]
        s = out[2:5]
        deriv = np.subtract(1.0, s)
        deriv *= s
        np.multiply(ds, deriv, out=dzg[:3])
        dg = dc * i
        if g_rest is not None:
            dg += g_rest[5]
        np.multiply(cand, cand, out=sq)
        np.subtract(1.0, sq, out=sq)
        np.multiply(dg, sq, out=dzg[3])
        if dz.ndim == 2:
            # (W_h @ dz.T).T, not dz @ W_h.T: the same numbers, but OpenBLAS runs the
            # (B, 4H) @ (4H, K) product with a transposed right operand ~1.5x slower
            dh = np.matmul(W_h, dz.T).T
        else:
            dh = dz @ W_h.T
        if h.ndim == 2 and dz.ndim == 2 and h.shape[0] == dz.shape[0]:
            dW = OuterSum(h, dz)
        else:
            hb = np.broadcast_to(h, dz.shape[:-1] + h.shape[-1:])
            dW = hb.reshape(-1, h.shape[-1]).T @ dz.reshape(-1, dz.shape[-1])
        dc *= f
        return dz, dh, dW, dc


def _gate_major(z, H):
    """The (..., 4H) array ``z`` as a (4, ..., H) view: ``[k]`` is gate k's block."""
    n = z.ndim
    return z.reshape(z.shape[:-1] + (4, H)).transpose((n - 1,) + tuple(range(n - 1)) + (n,))


def _check_buffer(op_name, what, buf, shape, dtype):
    """An output buffer given to an op must be a writeable array of exactly the right shape and dtype."""
    if buf is None:
        return
    if not isinstance(buf, np.ndarray) or buf.shape != tuple(shape) or buf.dtype != dtype or not buf.flags.writeable:
        got = (f"{type(buf).__name__}" if not isinstance(buf, np.ndarray)
               else f"{shape_str(buf.shape)} {buf.dtype}{'' if buf.flags.writeable else ' (read-only)'}")
        raise ShapeError(f"{op_name}: {what} must be a writeable array of shape {shape_str(tuple(shape))} "
                         f"and dtype {dtype}, got {got}")


def _lstm_output_grads(g, out):
    """Split the gradient of an ``lstm_cell`` output into ``(g_h, g_c, g_rest)``.

    ``g_rest`` is the dense (7, ..., H) gradient when blocks other than
    ``h_new = out[0]`` and ``c_new = out[1]`` may be non-zero, else None.
    ``g_c`` may be None (zero); ``g_h`` is an array (zeros if nothing reached ``h_new``).
    """
    pieces = g.pieces() if type(g) is ScatterSum else None
    if pieces is not None:
        g_h = g_c = None
        block_shape = out.shape[1:]
        for index, value in pieces:
            if type(index) is not int or index not in (0, 1) or value.shape != block_shape:
                break
            if index == 0:
                g_h = value if g_h is None else g_h + value
            else:
                g_c = value if g_c is None else g_c + value
        else:
            if g_h is None:
                g_h = np.zeros(block_shape, dtype=out.dtype)
            return g_h, g_c, None
    g = dense(g)
    return g[0], g[1], g
