"""Check analytic gradients against central finite differences, in float64."""
from __future__ import annotations

import numpy as np

from .config import default_dtype
from .errors import GradcheckError
from .tensor import Tensor


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Compare the gradient of ``fn(*inputs)`` from backward with finite differences.

    Every Tensor in ``inputs`` is copied to float64 with ``requires_grad=True``
    (whatever its dtype); other inputs are passed through unchanged. ``fn`` runs
    with float64 as the default dtype and must return a one-element Tensor.
    For each element ``x[i]`` the numeric derivative is
    ``(fn(x[i] + eps) - fn(x[i] - eps)) / (2 * eps)``, and it must satisfy
    ``|analytic - numeric| <= atol + rtol * |numeric|``.

    Returns
    -------
    True

    Raises
    ------
    GradcheckError (an AssertionError)
        On the input with the largest violation, naming it (by ``name`` or by
        position) and the index of its worst element, with both values.
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = list(inputs)
    if not any(isinstance(x, Tensor) for x in inputs):
        raise TypeError("gradcheck: inputs must contain at least one Tensor")
    with default_dtype(np.float64):
        xs = [
            Tensor(np.array(x.data, dtype=np.float64), requires_grad=True, name=x.name) if isinstance(x, Tensor) else x
            for x in inputs
        ]

        def evaluate():
            out = fn(*xs)
            if not isinstance(out, Tensor):
                raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
            if out.data.size != 1:
                raise ValueError(f"gradcheck: fn must return a one-element Tensor, got shape {out.shape}")
            return out

        out = evaluate()
        for x in xs:
            if isinstance(x, Tensor):
                x.grad = None
        if out.requires_grad:
            out.backward()
        for position, x in enumerate(xs):
            if not isinstance(x, Tensor):
                continue
            analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
            numeric = np.zeros_like(x.data)
            flat = x.data.reshape(-1)  # a view: perturbing it perturbs x
            num_flat = numeric.reshape(-1)
            for i in range(flat.size):
                original = flat[i]
                flat[i] = original + eps
                plus = evaluate().item()
                flat[i] = original - eps
                minus = evaluate().item()
                flat[i] = original
                num_flat[i] = (plus - minus) / (2 * eps)
            excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
            finite = np.isfinite(excess)  # NaN/inf in either gradient is a failure too, never a pass
            over = finite & (excess > 0)
            if over.any() or not finite.all():
                # the worst finite violation first; a non-finite element otherwise
                worst_flat = np.where(finite, excess, -np.inf) if over.any() else ~finite
                flat_worst = int(np.argmax(worst_flat))
                worst = tuple(int(i) for i in np.unravel_index(flat_worst, x.shape))
                label = f"input {position}" + (f" ({x.name!r})" if x.name else "")
                hint = ""
                if not np.isfinite(numeric[worst]):
                    hint = " (the numeric derivative is not finite: is fn defined within eps of this point?)"
                elif not np.isfinite(analytic[worst]):
                    hint = " (the analytic gradient is not finite)"
                raise GradcheckError(
                    f"gradcheck: gradient mismatch for {label} of shape {x.shape} at index {worst}: "
                    f"analytic {float(analytic[worst]):.10g} vs numeric {float(numeric[worst]):.10g} "
                    f"(atol={atol}, rtol={rtol}){hint}"
                )
    return True
