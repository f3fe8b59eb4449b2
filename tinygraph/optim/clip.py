"""Gradient clipping, in place on ``.grad``."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..tensor import Tensor


def _tensors(params, where):
    if isinstance(params, Tensor):
        return [params]
    if not hasattr(params, "__iter__") or isinstance(params, (str, bytes, dict)):
        hint = "; pass model.parameters()" if hasattr(params, "parameters") else ""
        raise TypeError(f"{where}: params must be a Tensor or an iterable of Tensors, got {type(params).__name__}{hint}")
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: params[{i}] is a {type(p).__name__}, expected a Tensor")
    return params


def clip_grad_norm_(params, max_norm, norm_type=2.0, error_if_nonfinite=True):
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The norm is taken over all gradients as if concatenated into one vector
    (computed in float64, so float32 gradients do not overflow when squared).
    If it exceeds ``max_norm``, every ``.grad`` is multiplied in place by
    ``max_norm / (total_norm + 1e-6)``. Parameters without a gradient are skipped.

    Parameters
    ----------
    params : Tensor or iterable of Tensor
    max_norm : float > 0
    norm_type : float >= 1 or ``inf``
    error_if_nonfinite : bool
        If the norm is nan or inf: raise ValueError (default), or else warn
        (RuntimeWarning), leave the gradients unchanged and return the
        non-finite norm so the caller can skip the step.

    Returns
    -------
    float
        The total norm before clipping.
    """
    where = "clip_grad_norm_"
    params = _tensors(params, where)
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm > 0:
        raise ValueError(f"{where}: max_norm must be a number > 0, got {max_norm!r}")
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real) or not norm_type >= 1:
        raise ValueError(f"{where}: norm_type must be a number >= 1 or inf, got {norm_type!r}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isinf(norm_type):
            total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
        else:
            per = [np.linalg.norm(g.ravel().astype(np.float64), ord=norm_type) for g in grads]
            total = float(np.linalg.norm(np.array(per), ord=norm_type))
    if not math.isfinite(total):
        bad = [f"{i}" + (f" ({p.name!r})" if p.name else "") for i, p in enumerate(params)
               if p.grad is not None and not np.all(np.isfinite(p.grad))]
        message = (f"{where}: the total gradient norm is {total} (non-finite gradients in parameters "
                   f"{', '.join(bad)}); clipping cannot fix this")
        if error_if_nonfinite:
            raise ValueError(message + "; pass error_if_nonfinite=False to get the norm back instead")
        warnings.warn(message + "; the gradients were left unchanged", RuntimeWarning, stacklevel=2)
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g *= coef
    return total


def clip_grad_value_(params, clip_value):
    """Clip every gradient element to ``[-clip_value, clip_value]``, in place.

    Parameters
    ----------
    params : Tensor or iterable of Tensor
    clip_value : float > 0
    """
    where = "clip_grad_value_"
    params = _tensors(params, where)
    if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real) or not clip_value > 0:
        raise ValueError(f"{where}: clip_value must be a number > 0, got {clip_value!r}")
    for p in params:
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)
