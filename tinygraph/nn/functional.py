"""Activations and losses as functions of Tensors, built on the engine's ops.

Everything here is built from ops in ``tinygraph.ops``, so gradients come from
the generic backward pass. ``log_softmax`` and ``cross_entropy`` are one fused
node each (the ``log_softmax`` and ``cross_entropy`` ops, ``tinygraph/ops/softmax.py``);
the others are composed from primitive ops. Numerical stability comes from
subtracting a *detached* maximum: ``log(sum(exp(x)))`` equals
``m + log(sum(exp(x - m)))`` for any constant ``m``, so treating ``m`` as a
constant leaves the gradient exact while keeping ``exp`` from overflowing
(logits of magnitude 1e4 are fine).
"""
from __future__ import annotations

import numpy as np

from ..errors import shape_str
from ..ops import OPS
from ..ops.softmax import CrossEntropy
from ..tensor import Tensor, apply, tensor
from ..tensor import where as _where

_REDUCTIONS = ("mean", "sum", "none")
_LOG_SOFTMAX = OPS["log_softmax"]


def _as_tensor(x, where, what, dtype=None):
    """``x`` itself if it is a Tensor, else a constant Tensor of ``x`` (in ``dtype`` if given)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, list, tuple, int, float, np.number)):
        return tensor(x, dtype=dtype)
    raise TypeError(f"{where}: {what} must be a Tensor or a numpy array, got {type(x).__name__}")


def _check_axis(where, axis, ndim):
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{where}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{where}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % ndim


def _check_reduction(where, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where}: reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")


def _prediction_and_target(where, prediction, target, reduction, names):
    """Both as Tensors of one shape; a plain-array target takes the prediction's dtype
    (so a float32 model's loss stays float32). Broadcasting is refused: a ``(B,)`` target
    against a ``(B, 1)`` prediction would silently give a ``(B, B)`` loss."""
    prediction = _as_tensor(prediction, where, names[0])
    target = _as_tensor(target, where, names[1], dtype=prediction.dtype)
    _check_reduction(where, reduction)
    if prediction.shape != target.shape:
        raise ValueError(
            f"{where}: {names[0]} of shape {shape_str(prediction.shape)} and {names[1]} of shape "
            f"{shape_str(target.shape)} differ; expected equal shapes"
        )
    return prediction, target


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _mask_array(where, mask, shape):
    """``mask`` as a boolean array of ``shape``.

    The mask's axes line up with the *leading* axes of ``shape`` (time-major
    convention: a ``(T, B)`` mask for ``(T, B, O)`` outputs); missing trailing
    axes are added with size 1, then numpy broadcasting applies. Values must be
    booleans or 0/1 numbers.
    """
    if mask is None:
        return None
    if isinstance(mask, Tensor):
        mask = mask.data
    try:
        m = np.asarray(mask)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{where}: mask cannot be made into an array ({exc})") from None
    if m.dtype != np.bool_:
        if m.dtype.kind not in "iuf":
            raise TypeError(f"{where}: mask must be a boolean or 0/1 numeric array, got dtype {m.dtype}")
        if m.size and not np.all((m == 0) | (m == 1)):
            raise ValueError(f"{where}: a numeric mask must hold only 0 and 1 (1 keeps a position)")
        m = m != 0
    if m.ndim > len(shape):
        raise ValueError(f"{where}: mask of shape {shape_str(m.shape)} has more axes than the "
                         f"positions it masks {shape_str(shape)}")
    m = m.reshape(m.shape + (1,) * (len(shape) - m.ndim))
    try:
        return np.broadcast_to(m, shape)
    except ValueError:
        raise ValueError(f"{where}: mask of shape {shape_str(np.shape(mask))} does not fit positions of shape "
                         f"{shape_str(shape)}; its axes line up with the leading axes (e.g. a (T, B) mask "
                         f"for (T, B, ...) values), and each must be 1 or equal") from None


def _shift_by_max(x, axis):
    # The max is a constant (detached): the results below do not depend on it
    # mathematically, so its (zero) gradient need not flow.
    m = x.data.max(axis=axis, keepdims=True)
    return x - m


def softmax(x, axis=-1):
    """Softmax along ``axis``: ``exp(x) / sum(exp(x))``, computed without overflow.

    Parameters
    ----------
    x : Tensor, shape (..., C, ...)
    axis : int
        The axis to normalise over (default: the last).

    Returns
    -------
    Tensor of the same shape as ``x``, non-negative, summing to 1 along ``axis``.
    """
    x = _as_tensor(x, "softmax", "x")
    if x.ndim == 0:
        raise ValueError("softmax: x must have at least one dimension, got a 0-d tensor")
    axis = _check_axis("softmax", axis, x.ndim)
    _check_classes("softmax", x, axis)
    e = _shift_by_max(x, axis).exp()
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """Logarithm of the softmax along ``axis``: ``x - logsumexp(x)``, stable for large ``|x|``.

    Parameters
    ----------
    x : Tensor, shape (..., C, ...)
    axis : int
        The axis to normalise over (default: the last).

    Returns
    -------
    Tensor of the same shape as ``x`` (all entries <= 0): one ``log_softmax`` node,
    whose VJP is ``g - softmax(x) * sum(g, axis)``.
    """
    x = _as_tensor(x, "log_softmax", "x")
    if x.ndim == 0:
        raise ValueError("log_softmax: x must have at least one dimension, got a 0-d tensor")
    axis = _check_axis("log_softmax", axis, x.ndim)
    _check_classes("log_softmax", x, axis)
    return apply(_LOG_SOFTMAX, x, axis=axis)


def _check_classes(where, x, axis):
    if x.shape[axis] == 0:
        raise ValueError(f"{where}: x of shape {shape_str(x.shape)} has no classes along axis {axis}; "
                         f"a softmax needs at least one")


def cross_entropy(logits, targets, ignore_index=None, reduction="mean", mask=None):
    """Cross-entropy between unnormalised class scores and integer class targets.

    The class axis is the **last** axis of ``logits`` (row-vector convention:
    ``(B, C)`` for a batch, ``(T, B, C)`` for a time-major sequence).

    Parameters
    ----------
    logits : Tensor, shape (..., C)
        Unnormalised log-probabilities.
    targets : integer numpy array, shape (...)
        Class indices in ``[0, C)``, with the leading shape of ``logits``.
        Entries equal to ``ignore_index`` contribute nothing.
    ignore_index : int, optional
        A target value to skip (e.g. padding).
    reduction : {"mean", "sum", "none"}
        ``"mean"`` averages over the kept positions (those neither ignored nor
        masked out; 0 if none is kept), ``"sum"`` adds them, ``"none"``
        returns the per-target losses (shape (...), 0 at dropped positions).
    mask : boolean or 0/1 array, optional
        Which positions count (True/1 keeps one), e.g. the valid steps of a
        padded batch of sequences. Its axes line up with the *leading* axes of
        ``targets`` (a ``(T,)`` mask drops whole time steps of ``(T, B)``
        targets) and broadcast from there. Combines with ``ignore_index``.

    Returns
    -------
    Tensor: a scalar, or shape (...) for ``reduction="none"``.
    """
    where = "cross_entropy"
    logits = _as_tensor(logits, where, "logits")
    _check_reduction(where, reduction)
    if logits.ndim == 0:
        raise ValueError(f"{where}: logits must have shape (..., C), got a 0-d tensor")
    if isinstance(targets, Tensor):
        raise TypeError(
            f"{where}: targets must be an integer numpy array of class indices, got a Tensor of dtype "
            f"{targets.dtype} (tensors are float)"
        )
    targets = np.asarray(targets)
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"{where}: targets must be integer class indices, got dtype {targets.dtype}")
    if ignore_index is not None and (isinstance(ignore_index, (bool, np.bool_))
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"{where}: ignore_index must be an int (a class index to skip) or None, "
                        f"got {type(ignore_index).__name__} {ignore_index!r}")
    lead, num_classes = logits.shape[:-1], logits.shape[-1]
    if num_classes == 0:
        raise ValueError(f"{where}: logits of shape {shape_str(logits.shape)} have no classes (last axis 0)")
    if targets.shape != lead:
        raise ValueError(
            f"{where}: targets of shape {shape_str(targets.shape)} do not match logits of shape "
            f"{shape_str(logits.shape)}; expected targets of shape {shape_str(lead)} (logits without the class axis)"
        )
    keep = np.ones(targets.shape, dtype=bool) if ignore_index is None else targets != ignore_index
    kept = _mask_array(where, mask, lead)
    if kept is not None:
        keep = keep & kept
    picked = targets[keep]
    if picked.size and (picked.min() < 0 or picked.max() >= num_classes):
        bad = picked[(picked < 0) | (picked >= num_classes)][0]
        raise ValueError(f"{where}: target {bad} is out of range for {num_classes} classes (expected 0 <= target < {num_classes})")

    # one fused node: per row logsumexp(x) - x[target]; a dropped row's logits are never
    # read, so an inf or nan there (e.g. padding garbage) reaches neither the loss nor any gradient
    dropped = ignore_index is not None or mask is not None
    op = CrossEntropy(per_node=True)  # keeps its forward's softmax for the VJP
    # the VJP reads the targets: a copy, so a caller reusing its array cannot change the gradient
    return apply(op, logits, targets=targets.copy(), keep=np.asarray(keep) if dropped else None,
                 reduction=reduction)


def mse_loss(input, target, reduction="mean", mask=None):
    """Mean squared error ``(input - target) ** 2``.

    Parameters
    ----------
    input : Tensor, shape (...)
    target : Tensor or numpy array, same shape as ``input``
        An array is converted to the dtype of ``input``. Shapes must be equal: broadcasting is refused because a ``(B,)``
        target against a ``(B, 1)`` prediction silently gives a ``(B, B)`` loss.
    reduction : {"mean", "sum", "none"}
        With a mask, ``"mean"`` divides the sum of the kept squared errors by
        the number of kept *elements* of ``input`` (a ``(T, B)`` mask over
        ``(T, B, O)`` outputs keeping k positions counts ``k * O``; 0 if none is
        kept), so an all-True mask gives the plain mean.
    mask : boolean or 0/1 array, optional
        Which elements count (True/1 keeps one). Its axes line up with the
        *leading* axes of ``input`` (e.g. ``(T, B)`` valid steps for ``(T, B,
        O)`` outputs) and broadcast from there. Masked-out elements contribute
        nothing to the loss or the gradient, even if they hold inf or nan.

    Returns
    -------
    Tensor: a scalar, or the shape of ``input`` for ``reduction="none"`` (0 where masked out).
    """
    input, target = _prediction_and_target("mse_loss", input, target, reduction, ("input", "target"))
    diff = input - target
    if mask is None:
        return _reduce(diff * diff, reduction)
    keep = _mask_array("mse_loss", mask, input.shape)
    # mask the difference, not its square: sub's gradient never multiplies by the values,
    # so a nan in a dropped target reaches no gradient
    diff = _where(keep, diff, np.zeros((), dtype=input.dtype))
    sq = diff * diff
    if reduction == "none":
        return sq
    total = sq.sum()
    if reduction == "sum":
        return total
    return total / max(int(keep.sum()), 1)


def softplus(x):
    """``log(1 + exp(x))`` elementwise, without overflow for large ``|x|``.

    Parameters
    ----------
    x : Tensor, shape (...)

    Returns
    -------
    Tensor of the same shape.
    """
    x = _as_tensor(x, "softplus", "x")
    # logsumexp of (0, x) shifted by the detached m = max(x, 0): exact gradient sigmoid(x).
    m = np.maximum(x.data, 0)
    return ((x - m).exp() + np.exp(-m)).log() + m


def binary_cross_entropy_with_logits(logits, targets, reduction="mean"):
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in ``[0, 1]``.

    Computed as ``softplus(logits) - logits * targets``, which equals
    ``-(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))`` without ever forming
    ``log(0)``.

    Parameters
    ----------
    logits : Tensor, shape (...)
    targets : Tensor or numpy array, same shape, values in [0, 1]
        An array is converted to the dtype of ``logits``.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor: a scalar, or the shape of ``logits`` for ``reduction="none"``.
    """
    where = "binary_cross_entropy_with_logits"
    logits, targets = _prediction_and_target(where, logits, targets, reduction, ("logits", "targets"))
    t = targets.data
    if t.size and (np.nanmin(t) < 0 or np.nanmax(t) > 1 or np.isnan(t).any()):
        raise ValueError(f"{where}: targets must lie in [0, 1], got values in [{t.min()}, {t.max()}]")
    return _reduce(softplus(logits) - logits * targets, reduction)


def dropout(x, p=0.5, training=True, rng=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Parameters
    ----------
    x : Tensor, shape (...)
    p : float in [0, 1]
    training : bool
        When false, return ``x`` unchanged.
    rng : numpy.random.Generator, optional
        Source of the mask (a fresh default generator if omitted).

    Returns
    -------
    Tensor of the same shape (``x`` itself when inactive).
    """
    _check_probability("dropout", p)
    x = _as_tensor(x, "dropout", "x")
    if not training or p == 0:
        return x
    if p == 1:
        return x * np.zeros(x.shape, dtype=x.dtype)
    rng = np.random.default_rng() if rng is None else rng
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask


def _check_probability(where, p):
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0 <= p <= 1:
        raise ValueError(f"{where}: p must be a probability in [0, 1], got {p!r}")


def relu(x):
    """``max(x, 0)`` elementwise."""
    return _as_tensor(x, "relu", "x").relu()


def tanh(x):
    """Hyperbolic tangent elementwise."""
    return _as_tensor(x, "tanh", "x").tanh()


def sigmoid(x):
    """``1 / (1 + exp(-x))`` elementwise (stable)."""
    return _as_tensor(x, "sigmoid", "x").sigmoid()
