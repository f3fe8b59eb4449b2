"""Gradient norms over time: ``||dL/dh_t||`` per step, and a log-scale plot of them.

matplotlib is optional (``pip install tinygraph[plot]``) and imported only
when a plot is made.
"""
from __future__ import annotations

import os

import numpy as np

from ..tensor import Tensor

_FORMATS = ("png", "svg", "pdf")


def step_grad_norms(outputs):
    """``||dL/dh_t||`` for every step of an unrolled sequence, as a float64 array of length T.

    Parameters
    ----------
    outputs : Tensor of shape (T, ...) or sequence of Tensors
        The stacked per-step outputs returned by ``tinygraph.unroll`` (or a
        model), or the per-step tensors themselves. After
        ``loss.backward(retain_grads=True)`` each step tensor holds the *total*
        gradient reaching it: through the outputs and through later steps.

    Returns
    -------
    numpy.ndarray
        The norms; ``nan`` where a step has no gradient (e.g. it does not
        influence the loss).

    Raises
    ------
    TypeError
        If ``outputs`` is neither a Tensor nor a sequence of Tensors.
    ValueError
        If ``outputs`` is a Tensor that was not made by ``stack`` (so its steps
        cannot be told apart), or no step has a gradient.
    """
    if isinstance(outputs, Tensor):
        if outputs.op != "stack":
            raise ValueError(
                f"step_grad_norms: expected the stacked outputs of an unroll (made by 'stack'), got a tensor "
                f"made by {outputs.op!r}; pass the list of per-step tensors instead"
            )
        steps = outputs.parents
    elif isinstance(outputs, (list, tuple)) and all(isinstance(t, Tensor) for t in outputs):
        steps = outputs
    else:
        raise TypeError(f"step_grad_norms: expected a Tensor or a list of Tensors, got {type(outputs).__name__}")
    norms = np.array([np.nan if t.grad is None else float(np.linalg.norm(np.asarray(t.grad, np.float64)))
                      for t in steps])
    if np.all(np.isnan(norms)):
        raise ValueError("step_grad_norms: no step has a gradient; call loss.backward(retain_grads=True) first")
    return norms


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "tinygraph.drawing.plots needs matplotlib, which is not installed: pip install tinygraph[plot] "
            "(or pip install matplotlib)"
        ) from exc
    return plt


def plot_grad_norms(series, path=None, ax=None, title=None,
                    ylabel="gradient norm ‖∂L/∂h_t‖", xlabel="time step t"):
    """Plot gradient norms over time, one line per series, on a logarithmic y axis.

    Parameters
    ----------
    series : dict
        Label to norms: a sequence of numbers, or an unrolled model's outputs
        (anything ``step_grad_norms`` accepts).
    path : str, optional
        Save the figure there (``.png``, ``.svg`` or ``.pdf``), atomically.
    ax : matplotlib Axes, optional
        Draw into these axes instead of a new figure.
    title, ylabel, xlabel : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(series, dict) or not series:
        raise TypeError(f"plot_grad_norms: expected a non-empty dict of label -> norms, got {type(series).__name__}")
    fmt = None
    if path is not None:
        fmt = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
        if fmt not in _FORMATS:
            raise ValueError(f"plot_grad_norms: cannot save {os.fspath(path)!r}; expected a .png, .svg or .pdf path")
    plt = _pyplot()
    lines = {}
    for label, values in series.items():
        if isinstance(values, Tensor) or (isinstance(values, (list, tuple)) and values
                                          and isinstance(values[0], Tensor)):
            values = step_grad_norms(values)
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"plot_grad_norms: series {label!r} must be one-dimensional, got shape {arr.shape}")
        lines[label] = arr
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    else:
        fig = ax.figure
    for label, arr in lines.items():
        positive = np.where(arr > 0, arr, np.nan)  # a log axis cannot show 0
        ax.plot(np.arange(len(arr)), positive, marker="o", markersize=3, linewidth=1.6, label=str(label))
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(frameon=False)
    fig.tight_layout()
    if path is not None:
        _save_figure(fig, os.fspath(path), fmt)
    return fig


def _save_figure(fig, path, fmt):
    from .output import replace_atomically

    replace_atomically(path, lambda tmp: fig.savefig(tmp, format=fmt))


__all__ = ["step_grad_norms", "plot_grad_norms"]
