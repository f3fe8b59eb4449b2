"""How numpy treats a Tensor: tinygraph's numpy-interop policy.

A numpy function or ufunc called with a Tensor does one of three things, and
never returns a silently wrong result (such as an object array of 0-d tensors):

1. **It runs the tinygraph op.** Where tinygraph has the operation, numpy
   dispatches to it (``__array_ufunc__`` / ``__array_function__``, as MyGrad
   does): the result is a Tensor on the graph and gradients flow. That covers the
   arithmetic ufuncs (``np.add``, ``np.multiply``, ``np.matmul``, ``np.exp``,
   ``np.tanh``, ``np.maximum``, ...; so ``ndarray + t``, ``ndarray @ t`` and
   ``np.float32(2) * t`` are Tensors) and ``np.sum``, ``np.mean``, ``np.max``,
   ``np.min``, ``np.reshape``, ``np.transpose``, ``np.squeeze``,
   ``np.expand_dims``, ``np.concatenate``, ``np.stack``, ``np.where``,
   ``np.clip`` and ``np.dot`` (see ``DIFFERENTIABLE_UFUNCS`` and
   ``DIFFERENTIABLE_FUNCTIONS``). Only the arguments tinygraph's op supports are
   accepted (``axis``, ``keepdims``, ...); ``out=``, ``dtype=`` and the like are
   a TypeError, since a Tensor cannot be written into a numpy array.
2. **It reads the value** where the answer is not differentiable anyway:
   comparisons (``np.less``, ``np.isfinite``, ...) give boolean arrays like
   ``t < 0`` does; ``np.shape``, ``np.ndim``, ``np.size``, ``np.allclose``,
   ``np.isclose``, ``np.array_equal``, ``np.argmax``, ``np.argmin``,
   ``np.any``, ``np.all`` and ``np.nonzero`` return what they return for
   ``t.numpy()``. ``np.asarray(t)`` and ``np.array(t)`` are the explicit way
   out of the graph: they give the value (``t.numpy()``, no gradient).
3. **It refuses** with a TypeError that names the numpy function and says what
   to use instead: the tinygraph op (a Tensor method or ``tinygraph.*``) to
   stay on the graph, or ``t.numpy()`` for the plain value.

``==`` and ``!=`` between two Tensors are identity (tensors are dict keys);
between a Tensor and a numpy array (either side) they are a TypeError, not a silent
``False``: compare values with ``t.numpy() == a``.
"""
from __future__ import annotations

import numpy as np

from .ops import OPS
from .tensor import Tensor, apply, concat, stack, where

_NO_VALUE = getattr(np, "_NoValue", None)

# numpy ufunc -> tinygraph op name (called with the same operands)
DIFFERENTIABLE_UFUNCS = {
    np.add: "add", np.subtract: "sub", np.multiply: "mul", np.true_divide: "div", np.power: "pow",
    np.matmul: "matmul", np.negative: "neg", np.exp: "exp", np.log: "log",
    np.tanh: "tanh", np.sqrt: "sqrt", np.absolute: "abs", np.maximum: "maximum", np.minimum: "minimum",
}
_UFUNC_OPS = {ufunc: OPS[name] for ufunc, name in DIFFERENTIABLE_UFUNCS.items()}
# ufuncs whose answer is not differentiable: computed on the values, plain numpy results
VALUE_UFUNCS = frozenset({np.less, np.less_equal, np.greater, np.greater_equal, np.isfinite, np.isnan,
                          np.isinf, np.signbit})
# the Tensor's own spelling of a numpy ufunc, for the refusal message
_TENSOR_SPELLING = {"sin": "no sin op yet: write a tinygraph.Op", "square": "t ** 2",
                    "reciprocal": "1 / t", "log1p": "(1 + t).log()", "expm1": "t.exp() - 1"}


def _given(value):
    return value is not None and value is not _NO_VALUE


def _value(x):
    """``x`` with every Tensor (also inside lists and tuples) replaced by its numpy value."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(_value(v) for v in x)
    return x


def holds_tensor(seq):
    """Whether a (nested) list or tuple holds a Tensor."""
    stack_ = [seq]
    while stack_:
        for item in stack_.pop():
            if isinstance(item, Tensor):
                return True
            if isinstance(item, (list, tuple)):
                stack_.append(item)
    return False


def _refuse(name, extra=""):
    raise TypeError(
        f"numpy.{name} on a tinygraph Tensor: {extra + '; ' if extra else ''}"
        f"use the tinygraph op (a Tensor method or tinygraph.*) to stay on the graph, "
        f"or t.numpy() for the plain value (no gradient)"
    )


def _refuse_args(name, **given):
    bad = [k for k, v in given.items() if _given(v)]
    if bad:
        _refuse(name, f"the argument{'s' if len(bad) > 1 else ''} {', '.join(bad)} {'are' if len(bad) > 1 else 'is'} "
                      f"not supported (a Tensor result cannot be written into or cast like a numpy array)")


# -----------------------------------------------------------------------------
# conversion: np.asarray(t), np.array(t)
# -----------------------------------------------------------------------------
def to_array(t, dtype=None, copy=None):
    """The value of ``t`` as an ndarray (``np.asarray(t)``): the same array as ``t.numpy()``."""
    data = t.data
    if dtype is not None and np.dtype(dtype) != data.dtype:
        if copy is False:
            raise ValueError(f"numpy.asarray: a Tensor of dtype {data.dtype} cannot become dtype "
                             f"{np.dtype(dtype)} without a copy (copy=False)")
        return data.astype(dtype)
    return data.copy() if copy else data


# -----------------------------------------------------------------------------
# ufuncs
# -----------------------------------------------------------------------------
def array_ufunc(ufunc, method, inputs, kwargs):
    """``Tensor.__array_ufunc__``: run the tinygraph op, read the value, or refuse."""
    if not kwargs and method == "__call__":  # the common case, ``ndarray + t``: straight to the op
        op = _UFUNC_OPS.get(ufunc)
        if op is not None:
            return apply(op, *inputs)
    name = ufunc.__name__
    if ufunc in (np.equal, np.not_equal):
        # ``t == t2`` is identity (tensors are dict keys); against an array that would be a
        # silent False, so say how to compare values instead
        raise TypeError(f"numpy.{name}: == and != between a Tensor and a numpy array are not elementwise "
                        f"(a Tensor's == is identity); compare the values, e.g. t.numpy() == a")
    out = kwargs.get("out")
    if any(isinstance(o, Tensor) for o in (out or ())):
        _refuse(name, "out= cannot be a Tensor (tensors are never modified in place)")
    if ufunc in VALUE_UFUNCS and method == "__call__":
        return ufunc(*_value(inputs), **kwargs)
    op = DIFFERENTIABLE_UFUNCS.get(ufunc)
    if ufunc is np.positive and method == "__call__" and not kwargs:
        return inputs[0]
    if ufunc is np.square and method == "__call__" and not kwargs:
        return apply(OPS["pow"], inputs[0], 2)
    if op is None:
        _refuse(name, _TENSOR_SPELLING.get(name, "tinygraph has no such op"))
    if method != "__call__":
        hint = {"reduce": "t.sum(axis)/t.max(axis)", "accumulate": "a loop or concat"}.get(method, "the op itself")
        _refuse(f"{name}.{method}", f"ufunc method {method!r} is not supported (try {hint})")
    if out is not None:
        _refuse(name, "out= is not supported: a Tensor result cannot be written into a numpy array "
                      "(for a += t write a = a + t)")
    _refuse_args(name, **{k: v for k, v in kwargs.items() if k != "out"})
    return apply(OPS[op], *inputs)


# -----------------------------------------------------------------------------
# functions
# -----------------------------------------------------------------------------
def _as_tensor(x, name):
    if isinstance(x, Tensor):
        return x
    _refuse(name, f"expected a Tensor as the first argument, got {type(x).__name__}")


def _keepdims(keepdims):
    return bool(keepdims) if _given(keepdims) else False


def _sum_like(method):  # np.sum / np.mean (a, axis, dtype, out, keepdims, ...)
    def handler(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
        _refuse_args(method, dtype=dtype, out=out, **rest)
        return getattr(_as_tensor(a, method), method)(axis=axis, keepdims=_keepdims(keepdims))
    return handler


def _max_like(method):  # np.max / np.min (a, axis, out, keepdims, initial, where)
    def handler(a, axis=None, out=None, keepdims=False, **rest):
        _refuse_args(method, out=out, **rest)
        return getattr(_as_tensor(a, method), method)(axis=axis, keepdims=_keepdims(keepdims))
    return handler


def _reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    if order != "C":
        _refuse("reshape", f"order={order!r} is not supported (tinygraph reshapes in C order)")
    _refuse_args("reshape", copy=copy)
    shape = shape if shape is not None else newshape
    return _as_tensor(a, "reshape").reshape(shape)


def _transpose(a, axes=None):
    a = _as_tensor(a, "transpose")
    return a.transpose() if axes is None else a.transpose(axes)


def _squeeze(a, axis=None):
    a = _as_tensor(a, "squeeze")
    return a.reshape(np.squeeze(np.empty(a.shape, dtype=np.bool_), axis=axis).shape)


def _expand_dims(a, axis):
    a = _as_tensor(a, "expand_dims")
    return a.reshape(np.expand_dims(np.empty(a.shape, dtype=np.bool_), axis).shape)


def _concatenate(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _refuse_args("concatenate", out=out, dtype=dtype, casting=casting)
    return concat(list(arrays), axis=axis)


def _stack(arrays, axis=0, out=None, *, dtype=None, casting=None):
    _refuse_args("stack", out=out, dtype=dtype, casting=casting)
    return stack(list(arrays), axis=axis)


def _where(condition, x=_NO_VALUE, y=_NO_VALUE):
    if not _given(x) and not _given(y):
        return np.where(_value(condition))  # the indices: a value read
    if not (_given(x) and _given(y)):
        raise ValueError("numpy.where: give both x and y, or neither")
    return where(condition, x, y)


def _clip(a, a_min=_NO_VALUE, a_max=_NO_VALUE, out=None, *, min=_NO_VALUE, max=_NO_VALUE, **rest):
    _refuse_args("clip", out=out, **rest)
    lo = a_min if _given(a_min) else (min if _given(min) else None)
    hi = a_max if _given(a_max) else (max if _given(max) else None)
    if isinstance(lo, (Tensor, np.ndarray)) or isinstance(hi, (Tensor, np.ndarray)):
        _refuse("clip", "bounds must be numbers (use tinygraph.maximum / tinygraph.minimum for array bounds)")
    return _as_tensor(a, "clip").clip(lo, hi)


def _dot(a, b, out=None):
    _refuse_args("dot", out=out)
    ndims = [np.ndim(_value(x)) for x in (a, b)]
    if 0 in ndims:
        return apply(OPS["mul"], a, b)
    if max(ndims) > 2:
        _refuse("dot", "for arrays of more than 2 dimensions use @ (numpy's dot and matmul differ there)")
    return apply(OPS["matmul"], a, b)


DIFFERENTIABLE_FUNCTIONS = {
    np.sum: _sum_like("sum"), np.mean: _sum_like("mean"), np.max: _max_like("max"),
    np.min: _max_like("min"), np.amax: _max_like("max"), np.amin: _max_like("min"),
    np.reshape: _reshape, np.transpose: _transpose, np.squeeze: _squeeze, np.expand_dims: _expand_dims,
    np.concatenate: _concatenate, np.stack: _stack, np.where: _where, np.clip: _clip, np.dot: _dot,
}
# not differentiable by nature: computed on the values
VALUE_FUNCTIONS = frozenset({np.shape, np.ndim, np.size, np.allclose, np.isclose, np.array_equal,
                             np.array_equiv, np.argmax, np.argmin, np.any, np.all, np.nonzero,
                             np.count_nonzero, np.result_type})
_FUNCTION_HINTS = {"linalg.norm": "e.g. (t ** 2).sum().sqrt()", "prod": "tinygraph has no prod op",
                   "copy": "t.detach() (a leaf sharing the value) or tinygraph.tensor(t) (a copy)",
                   "round": "not differentiable", "sort": "not differentiable"}


def array_function(func, types, args, kwargs):
    """``Tensor.__array_function__``: run the tinygraph op, read the value, or refuse."""
    if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented  # another library's array type: let it decide
    handler = DIFFERENTIABLE_FUNCTIONS.get(func)
    if handler is not None:
        return handler(*args, **kwargs)
    if func in VALUE_FUNCTIONS:
        return func(*_value(args), **{k: _value(v) for k, v in kwargs.items()})
    module = func.__module__ or "numpy"
    name = f"linalg.{func.__name__}" if module.startswith("numpy.linalg") else func.__name__
    _refuse(name, _FUNCTION_HINTS.get(name, "tinygraph has no such op"))
