"""The Tensor: a numpy array, the op that made it, and the tensors it was made from."""
from __future__ import annotations

import itertools
import math
import numbers


import numpy as np

from . import autograd
from .config import STATE, check_float_dtype
from .errors import ShapeError, shape_str
from .ops import OPS, normalize_axis
from .ops.indexing import normalize_index

_ADD, _SUB, _MUL, _DIV, _POW = OPS["add"], OPS["sub"], OPS["mul"], OPS["div"], OPS["pow"]
_MATMUL, _NEG, _INDEX = OPS["matmul"], OPS["neg"], OPS["index"]
_NO_ATTRS = {}
# Creation order is a topological order (a tensor's parents always exist before it),
# so backward sorts the reachable nodes by this counter instead of a two-phase DFS.
_next_seq = itertools.count().__next__
_PY_SCALARS = (float, int)
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _check_flag(value, where, what):
    """``value`` as a bool if it is one (Python or numpy); anything else is a TypeError
    (``requires_grad="no"`` must not silently mean True)."""
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{where}: {what} must be True or False, got {type(value).__name__} {value!r}")


class Tensor:
    """A node of the computation graph.

    Attributes
    ----------
    data : numpy.ndarray
        The value (a float array).
    grad : numpy.ndarray or None
        The accumulated gradient of whatever was back-propagated, for leaves
        with ``requires_grad`` (and retained non-leaf tensors).
    requires_grad : bool
        Whether gradients flow to this tensor.
    name : str or None
        A label, shown in drawings and error messages.
    op : str or None
        The name of the op that made this tensor (``None`` for a leaf).
    parents : tuple of Tensor
        The op's inputs (empty for a leaf).
    instance : tinygraph.instance.Instance or None
        The template call that made this tensor (see ``tinygraph.Template``).
        It compares equal to ``(template_name, index)`` for reading, but has
        identity: two calls with the same name and index are two instances.

    Notes
    -----
    numpy functions and ufuncs that have a tinygraph op run it: ``np.sum(t)``,
    ``np.exp(t)``, ``np.reshape(t, ...)``, ``ndarray + t`` and ``ndarray @ t``
    are Tensors on the graph. Comparisons and queries such as ``np.shape`` or
    ``np.allclose`` read the value, ``np.asarray(t)`` is the value (like
    ``t.numpy()``), and any other numpy call is a ``TypeError`` saying what to
    use instead (``tinygraph/numpy_protocol.py`` has the policy).
    """

    __slots__ = ("_data", "grad", "requires_grad", "name", "_fn", "parents", "_attrs", "instance", "_retain",
                 "_seq", "__weakref__",
                 # set only when needed (read with getattr): the stamp of the last assignment
                 # to ``.data`` (see ``data``), and the mark of a root already back-propagated
                 "_mutated", "_backwarded",
                 # set only on the outputs of a multi-output op: their ``OutputGroup``
                 "_group")
    # -- numpy interop (the policy and its tables: tinygraph/numpy_protocol.py) ---------
    # numpy functions and ufuncs run the tinygraph op (``np.exp(t)``, ``ndarray + t`` and
    # ``np.sum(t)`` are Tensors on the graph), read the value where nothing is
    # differentiable (comparisons, np.shape), or raise a TypeError saying what to use;
    # np.asarray(t) is the value. Never an object array of 0-d tensors.
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _numpy_protocol.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _numpy_protocol.array_function(func, types, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        return _numpy_protocol.to_array(self, dtype, copy)

    def __init__(self, data, requires_grad=False, name=None, dtype=None):
        self._data = as_float_array(data, dtype, "tensor")
        self.grad = None
        self.requires_grad = _check_flag(requires_grad, "tensor", "requires_grad")
        self.name = name
        self._fn = None
        self.parents = ()
        self._attrs = _NO_ATTRS
        self.instance = STATE.instance
        self._retain = False
        self._seq = _next_seq()

    # -- basic properties ---------------------------------------------------
    @property
    def data(self):
        """The value, a numpy float array.

        Assigning to ``.data`` (``t.data = a``, and augmented assignments such as
        ``t.data -= lr * g``, which is what the optimizers do) marks the tensor as
        modified: a later ``backward`` through a node that used the old value and
        whose gradient needs it raises instead of using the new value. Writes
        *through* the array (``t.data[0] = 1``) are not seen; see docs/reliability.md.
        """
        return self._data

    @data.setter
    def data(self, value):
        if value.__class__ is not np.ndarray or value.dtype not in _FLOAT_DTYPES:
            value = as_float_array(value, None, "data")
        self._data = value
        autograd.mark_modified(self)

    # Pickling (and copy/deepcopy) go through these: an unpickled tensor gets a fresh
    # place in this process's creation order (which backward sorts by), never the
    # number it had in the process that pickled it.
    def __getstate__(self):
        state = {}
        for slot in ("_data", "grad", "requires_grad", "name", "_fn", "parents", "_attrs", "instance", "_retain"):
            state[slot] = getattr(self, slot)
        state["_group"] = getattr(self, "_group", None)  # the outputs of a multi-output op stay one group
        return state

    def __setstate__(self, state):
        for slot, value in state.items():
            object.__setattr__(self, slot, value)
        self._seq = _next_seq()

    @property
    def op(self):
        """Name of the op that made this tensor, ``None`` for a leaf."""
        return None if self._fn is None else self._fn.name

    @property
    def attrs(self):
        """The op's non-tensor arguments (e.g. ``axis``), as a dict."""
        return dict(self._attrs)

    @property
    def op_object(self):
        """The registered ``tinygraph.Op`` that made this tensor (``None`` for a leaf).

        With ``attrs`` it gives the node's vector-Jacobian product:
        ``t.op_object.vjp(g, t.data, *[p.data for p in t.parents], **t.attrs)``.
        """
        return self._fn

    @property
    def retains_grad(self):
        """Whether backward keeps this non-leaf tensor's gradient in ``.grad`` (``retain_grad``)."""
        return self._retain

    @property
    def is_leaf(self):
        return self._fn is None

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        return self.data.size

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def numpy(self):
        """The value as a numpy array (the same array as ``.data``, not a copy).

        Values the graph shares without copying (e.g. the stacked per-step
        outputs of an unrolled LSTM, a view over the steps' workspace) are
        read-only: ``.numpy().copy()`` gives an array to modify.
        """
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python float."""
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a Python float, got shape {shape_str(self.shape)}")
        return float(self.data.reshape(()))

    def detach(self):
        """A new leaf sharing this tensor's data (no copy), cut off from the graph."""
        return Tensor._leaf(self._data, False, self.name)

    def retain_grad(self, retain=True):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward (``retain=False``
        undoes it). Returns self."""
        self._retain = bool(retain)
        return self

    def zero_grad(self):
        self.grad = None

    def __repr__(self):
        parts = [np.array2string(self.data, precision=4, threshold=20, prefix="tensor(")]
        if self._fn is not None:
            parts.append(f"op={self._fn.name}")
        elif self.requires_grad:
            parts.append("requires_grad=True")
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        if self.data.dtype != STATE.default_dtype:
            parts.append(f"dtype={self.data.dtype}")
        return "tensor(" + ", ".join(parts) + ")"

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {shape_str(self.shape)} is ambiguous")
        return bool(self.data)

    # -- backward -----------------------------------------------------------
    def backward(self, grad=None, retain_grads=False, retain_graph=False):
        """Back-propagate from this tensor; gradients accumulate into ``.grad`` of leaves.

        Parameters
        ----------
        grad : array-like or Tensor, optional
            The gradient of the final objective with respect to this tensor,
            same shape. Omit it only for a one-element tensor (seeded with 1).
        retain_grads : bool
            Also keep the gradient of every intermediate tensor in its ``.grad``
            (used to read gradient flow, e.g. ``||dL/dh_t||``, or to draw it).
        retain_graph : bool
            Allow another ``backward`` from this tensor later. Without it a
            second call raises ``BackwardTwiceError`` instead of silently adding
            the same gradients again (as PyTorch does).

        Raises
        ------
        BackwardTwiceError
            This tensor was already back-propagated (without ``retain_graph``).
        ModifiedInPlaceError
            A tensor whose values a gradient needs had its ``.data`` assigned
            after the forward pass used it (e.g. ``opt.step()`` between forward
            and backward); the message names it.
        """
        if not self.requires_grad:
            raise ValueError(
                "backward: this tensor does not require grad (no input with requires_grad=True "
                "led to it, or it was computed under no_grad())"
            )
        if grad is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward: a tensor of shape {shape_str(self.shape)} needs an explicit grad "
                    f"of the same shape; only one-element tensors are seeded with 1"
                )
            seed = np.ones(self.shape, dtype=self.dtype)
        else:
            seed = grad.data if isinstance(grad, Tensor) else _as_array("backward", "grad", grad)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {shape_str(seed.shape)} but the tensor has shape "
                    f"{shape_str(self.shape)}; they must be equal"
                )
            if seed.dtype.kind not in "biuf":
                raise TypeError(
                    f"backward: grad must hold real numbers, got an array of dtype {seed.dtype}"
                )
            if not np.issubdtype(seed.dtype, np.floating):
                seed = seed.astype(self.dtype)
        autograd.backward([self], [seed], retain_grads=retain_grads, retain_graph=_check_flag(
            retain_graph, "backward", "retain_graph"))

    # -- constructors for the engine -------------------------------------------
    @classmethod
    def _leaf(cls, data, requires_grad, name):
        t = cls.__new__(cls)
        t._data = data
        t.grad = None
        t.requires_grad = requires_grad
        t.name = name
        t._fn = None
        t.parents = ()
        t._attrs = _NO_ATTRS
        t.instance = STATE.instance
        t._retain = False
        t._seq = _next_seq()
        return t

    # -- operators -----------------------------------------------------------
    def __add__(self, other):
        return apply(_ADD, self, other)

    def __radd__(self, other):
        return apply(_ADD, other, self)

    def __sub__(self, other):
        return apply(_SUB, self, other)

    def __rsub__(self, other):
        return apply(_SUB, other, self)

    def __mul__(self, other):
        return apply(_MUL, self, other)

    def __rmul__(self, other):
        return apply(_MUL, other, self)

    def __truediv__(self, other):
        return apply(_DIV, self, other)

    def __rtruediv__(self, other):
        return apply(_DIV, other, self)

    def __pow__(self, other):
        return apply(_POW, self, other)

    def __rpow__(self, other):
        return apply(_POW, other, self)

    def __matmul__(self, other):
        return apply(_MATMUL, self, other)

    def __rmatmul__(self, other):
        return apply(_MATMUL, other, self)

    def __neg__(self):
        return apply(_NEG, self)

    def __pos__(self):
        return self

    # Comparisons give plain boolean arrays: they are not differentiable.
    # (== and != keep identity semantics so tensors can be dict keys.)
    def __lt__(self, other):
        return self.data < _value(other)

    def __le__(self, other):
        return self.data <= _value(other)

    def __gt__(self, other):
        return self.data > _value(other)

    def __ge__(self, other):
        return self.data >= _value(other)

    __hash__ = object.__hash__

    def __getitem__(self, index):
        return apply(_INDEX, self, index=normalize_index(index))

    # -- methods ---------------------------------------------------------------
    def exp(self):
        return apply(OPS["exp"], self)

    def log(self):
        return apply(OPS["log"], self)

    def tanh(self):
        return apply(OPS["tanh"], self)

    def sigmoid(self):
        return apply(OPS["sigmoid"], self)

    def relu(self):
        return apply(OPS["relu"], self)

    def abs(self):
        return apply(OPS["abs"], self)

    def sqrt(self):
        return apply(OPS["sqrt"], self)

    def maximum(self, other):
        return apply(OPS["maximum"], self, other)

    def minimum(self, other):
        return apply(OPS["minimum"], self, other)

    def clip(self, lo=None, hi=None):
        """Values limited to ``[lo, hi]`` (either may be None); the gradient is 0 where clipped."""
        if lo is None and hi is None:
            raise ValueError("clip: give lo, hi or both")
        for bound in (lo, hi):
            if bound is not None and (not isinstance(bound, numbers.Real) or isinstance(bound, (bool, np.bool_))):
                raise TypeError(f"clip: bounds must be real numbers, got {type(bound).__name__}")
            if bound is not None and math.isnan(bound):
                raise ValueError("clip: a bound is nan; give a number or None (no bound)")
        return apply(OPS["clip"], self, lo=None if lo is None else float(lo), hi=None if hi is None else float(hi))

    def sum(self, axis=None, keepdims=False):
        return self._reduce("sum", axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return self._reduce("mean", axis, keepdims)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``; tied maxima share the gradient evenly."""
        return self._reduce("max", axis, keepdims)

    def min(self, axis=None, keepdims=False):
        """Minimum over ``axis``; tied minima share the gradient evenly."""
        return self._reduce("min", axis, keepdims)

    def _reduce(self, name, axis, keepdims):
        axes = normalize_axis(name, axis, self.ndim, self.shape)
        return apply(OPS[name], self, axis=axes, keepdims=bool(keepdims))

    def reshape(self, *shape):
        """``reshape(2, 3)`` or ``reshape((2, 3))``; one dimension may be -1."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise TypeError(f"reshape: the shape must be integers, got {shape!r}") from None
        if shape == self.shape:
            return self
        return apply(OPS["reshape"], self, shape=shape)

    def transpose(self, *axes):
        """Permute axes; with no argument, reverse them (like numpy)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            axes = tuple(range(self.ndim - 1, -1, -1))
        if not all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) for a in axes):
            raise TypeError(f"transpose: axes must be integers, got {axes!r}")
        if any(not -self.ndim <= a < self.ndim for a in axes):
            raise ShapeError(
                f"transpose: axes {tuple(int(a) for a in axes)} out of range for a tensor of shape "
                f"{shape_str(self.shape)}; expected a permutation of {tuple(range(self.ndim))} "
                f"(negative axes count from the end)"
            )
        return apply(OPS["transpose"], self, axes=tuple(int(a) % self.ndim for a in axes))

    @property
    def T(self):
        """The tensor with its axes reversed."""
        return self.transpose()


def _as_array(where, what, value):
    """``np.asarray(value)``, with a clear error for ragged or non-numeric nested lists."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {what} cannot be made into an array ({exc})") from None


def _value(x):
    return x.data if isinstance(x, Tensor) else x


# -----------------------------------------------------------------------------
# Converting inputs
# -----------------------------------------------------------------------------
def as_float_array(data, dtype, where):
    """Convert ``data`` to a float ndarray following tinygraph's dtype policy.

    A float numpy array keeps its dtype; Python numbers, lists, bool and integer
    arrays take the default dtype; ``dtype`` overrides both. Strings, objects and
    complex values are a TypeError.
    """
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = check_float_dtype(dtype, where)
    if isinstance(data, np.ndarray):
        kind = data.dtype.kind
        if kind == "f":
            if dtype is None and data.dtype not in _FLOAT_DTYPES:
                raise TypeError(
                    f"{where}: arrays of dtype {data.dtype} are not supported; tinygraph tensors are "
                    f"float16, float32 or float64 (convert with .astype(np.float64), or pass dtype=)"
                )
            return data if dtype is None or data.dtype == dtype else data.astype(dtype)
        if kind in "iub":
            return data.astype(dtype or STATE.default_dtype)
        raise TypeError(
            f"{where}: cannot make a tensor from an array of dtype {data.dtype}; "
            f"expected real numbers (float, int or bool)"
        )
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"{where}: cannot make a tensor from {type(data).__name__} {data!r}; expected numbers")
    if isinstance(data, complex):
        raise TypeError(f"{where}: complex values are not supported ({data!r})")
    if isinstance(data, (list, tuple)) and _numpy_protocol.holds_tensor(data):
        raise TypeError(f"{where}: got a list holding Tensors; use tinygraph.stack or tinygraph.concat to "
                        f"combine tensors on the graph, or .numpy() of each for plain values")
    try:
        arr = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{where}: cannot make a tensor from a ragged nested sequence: {exc}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(
            f"{where}: cannot make a tensor from {type(data).__name__} with element dtype {arr.dtype}; "
            f"expected real numbers"
        )
    if arr.dtype.kind == "f" and not isinstance(data, (list, tuple, numbers.Number)):
        # numpy scalars such as np.float64(1.0) keep their dtype, like arrays
        if dtype is None and arr.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{where}: values of dtype {arr.dtype} are not supported; tinygraph tensors are "
                            f"float16, float32 or float64")
        return arr if dtype is None else arr.astype(dtype)
    if arr.dtype.kind == "f" and arr.dtype not in _FLOAT_DTYPES and dtype is None:
        raise TypeError(f"{where}: values of dtype {arr.dtype} are not supported; tinygraph tensors are "
                        f"float16, float32 or float64")
    return arr.astype(dtype or STATE.default_dtype)


def tensor(data, requires_grad=False, name=None, dtype=None):
    """Make a leaf Tensor.

    Parameters
    ----------
    data : array-like
        A float numpy array keeps its dtype; Python numbers and lists, integer
        and bool arrays take the default dtype (``get_default_dtype()``).
    requires_grad : bool
        Accumulate gradients into ``.grad`` during backward.
    name : str, optional
        A label for drawings and error messages.
    dtype : float dtype, optional
        Convert to this dtype.

    Notes
    -----
    The new tensor always owns a fresh copy of the values (like
    ``torch.tensor``): changing ``data`` afterwards never changes the tensor, and
    the reverse. ``Tensor(array)`` wraps an array without copying, and
    ``t.detach()`` and ``t.numpy()`` share ``t``'s memory (docs/reliability.md).
    """
    source = data.data if isinstance(data, Tensor) else data
    t = Tensor(source, requires_grad=requires_grad, name=name, dtype=dtype)
    if t._data is source or (isinstance(source, np.ndarray) and t._data.base is not None
                             and np.may_share_memory(t._data, source)):
        t._data = t._data.copy()
    return t


def _as_operand(x, like_dtype, op_name):
    """An op's non-Tensor operand as a constant leaf. Numbers and integer arrays take the
    dtype of the tensor operand, so ``float32_tensor * 2`` stays float32."""
    if isinstance(x, Tensor):
        return x
    if type(x) in _PY_SCALARS:
        if -60000 < x < 60000:  # fits every float dtype (float16 included)
            return Tensor._leaf(np.array(x, dtype=like_dtype), False, None)
        return Tensor._leaf(_big_scalar(x, like_dtype, op_name), False, None)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return Tensor._leaf(x, False, None)
    if isinstance(x, (numbers.Number, np.bool_, np.ndarray, list, tuple)) and not isinstance(x, (complex, np.complexfloating)):
        return Tensor._leaf(as_float_array(x, like_dtype, op_name), False, None)
    raise TypeError(
        f"{op_name}: unsupported operand of type {type(x).__name__}; "
        f"expected a Tensor, a numpy array or a Python number"
    )


def _big_scalar(x, dtype, op_name):
    """A large (or nan/inf) Python number as a 0-d array of ``dtype``; a finite number too
    large for ``dtype`` is a ValueError (numpy would overflow to inf or raise OverflowError)."""
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            value = np.array(float(x), dtype=dtype)
        except OverflowError:  # an int beyond the float64 range
            value = None
    if value is None or (not np.isfinite(value) and math.isfinite(float(x) if value is not None else 0.0)):
        what = f"an int of {len(str(abs(x)))} digits" if isinstance(x, int) else repr(x)
        raise ValueError(f"{op_name}: the Python number ({what}) is too large for a {np.dtype(dtype)} "
                         f"tensor (largest {np.finfo(dtype).max:.4g})")
    return value


# -----------------------------------------------------------------------------
# Applying an op
# -----------------------------------------------------------------------------
def apply(fn, *inputs, **attrs):
    """Run op ``fn`` on ``inputs`` and, if any input requires grad, record the result
    as a graph node (``op``, ``parents``, ``instance``).

    Non-Tensor operands (numbers, arrays) become constant leaves; Python numbers
    and integer arrays take the dtype of the first Tensor operand.
    """
    for x in inputs:
        if not isinstance(x, Tensor):
            inputs = _convert_operands(fn, inputs)
            break
    arrays = [x._data for x in inputs]
    if fn.check is not None:
        fn.check(*arrays, **attrs)
    try:
        out = fn.forward(*arrays, **attrs)
    except (ValueError, IndexError) as exc:
        shapes = " and ".join(shape_str(a.shape) for a in arrays)
        raise ShapeError(f"{fn.name}: failed on inputs of shape {shapes}: {exc}") from None
    if fn.n_outputs != 1:
        return _apply_multi(fn, inputs, attrs, out)
    if out.__class__ is not np.ndarray:
        out = np.asarray(out)  # reductions to a scalar return numpy scalars
    return record(fn, inputs, attrs, out)


def record(fn, inputs, attrs, out):
    """The Tensor holding ``out``, computed by op ``fn`` from the Tensors ``inputs``: a graph
    node (``op``, ``parents``, ``instance``) if grad mode is on and an input requires grad."""
    t = _new_tensor(Tensor)
    t._data = out
    t.grad = None
    t.name = None
    t.instance = STATE.instance
    t._retain = False
    t._seq = _next_seq()
    if STATE.grad_enabled:
        for x in inputs:
            if x.requires_grad:
                t.requires_grad = True
                t._fn = fn
                t.parents = inputs
                t._attrs = attrs
                return t
    t.requires_grad = False
    t._fn = None
    t.parents = ()
    t._attrs = _NO_ATTRS
    return t


_new_tensor = Tensor.__new__


def _convert_operands(fn, inputs):
    like = STATE.default_dtype
    for x in inputs:
        if isinstance(x, Tensor):
            like = x.data.dtype
            break
    return tuple([_as_operand(x, like, fn.name) for x in inputs])


def concat(tensors, axis=0):
    """Join tensors along an existing ``axis`` (like ``numpy.concatenate``)."""
    tensors = _sequence_operands("concat", tensors)
    return apply(OPS["concat"], *tensors, axis=_check_axis_arg("concat", axis))


def stack(tensors, axis=0):
    """Join same-shape tensors along a new ``axis`` (like ``numpy.stack``).

    The result is a new array, like ``numpy.stack``'s. One exception: when the
    tensors are the consecutive per-step slots of an engine workspace that no
    tensor exposes as its ``.data`` (the outputs of an unrolled fused cell), the
    result is a read-only view of that workspace instead of a copy.
    """
    tensors = _sequence_operands("stack", tensors)
    t = apply(OPS["stack"], *tensors, axis=_check_axis_arg("stack", axis))
    out = t._data
    if out.base is not None and not out.flags.writeable and _exposed(tensors, out.base):
        t._data = out.copy()  # the rows of a user's tensor: never alias (or freeze) its memory
    return t


_VIEW_OPS = frozenset(("index", "reshape", "transpose"))


def _exposed(tensors, owner):
    """Whether ``owner`` is the ``.data`` of a tensor reached from ``tensors`` through view ops."""
    for x in tensors:
        for _ in range(1000):
            if x._data is owner:
                return True
            if x._fn is None or x._fn.name not in _VIEW_OPS:
                break
            x = x.parents[0]
    return False


def _check_axis_arg(where, axis):
    """``axis`` as an int; floats, strings and bools are a TypeError (``int(1.7)`` would silently be 1)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{where}: axis must be an int, got {type(axis).__name__} {axis!r}")
    return int(axis)


def _sequence_operands(name, tensors):
    if isinstance(tensors, (Tensor, np.ndarray)):
        raise TypeError(f"{name}: expected a list or tuple of tensors, got a single {type(tensors).__name__}")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{name}: needs at least one tensor, got an empty sequence")
    like = next((t.dtype for t in tensors if isinstance(t, Tensor)), STATE.default_dtype)
    return [_as_operand(t, like, name) for t in tensors]


def maximum(a, b):
    """Elementwise maximum of two tensors (ties split the gradient evenly)."""
    return apply(OPS["maximum"], a, b)


def minimum(a, b):
    """Elementwise minimum of two tensors (ties split the gradient evenly)."""
    return apply(OPS["minimum"], a, b)


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b``, with numpy broadcasting.

    Parameters
    ----------
    cond : boolean numpy array (or a Tensor, whose data is used; not differentiated)
    a, b : Tensor, array or number

    Gradients flow to ``a`` where ``cond`` holds and to ``b`` elsewhere; a
    value in the branch not taken (even inf or nan) never reaches the result.
    """
    if isinstance(cond, Tensor):
        cond = cond.data
    cond = np.asarray(cond)  # the op checks that it is boolean and broadcasts
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = tensor(a)
    return apply(OPS["where"], a, b, cond=cond)


from . import numpy_protocol as _numpy_protocol  # noqa: E402  (it builds on Tensor and apply above)
from .multi_output import apply_multi as _apply_multi  # noqa: E402  (likewise)
