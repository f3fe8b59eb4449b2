"""The only process-wide state of tinygraph: default dtype, grad mode, and the
template instance currently being recorded.

Kept in one small module so that nothing else hides global state.
"""
from __future__ import annotations

import contextlib
import functools

import numpy as np

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


class _State:
    __slots__ = ("default_dtype", "grad_enabled", "instance")

    def __init__(self):
        self.default_dtype = np.dtype(np.float32)
        self.grad_enabled = True
        # (template_name, index) of the template call being recorded, or None.
        self.instance = None


STATE = _State()


def check_float_dtype(dtype, where):
    """Return ``np.dtype(dtype)`` if it is a float dtype tinygraph supports, else raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{where}: {dtype!r} is not a dtype; expected one of float16, float32, float64") from exc
    if dt not in _FLOAT_DTYPES:
        raise TypeError(
            f"{where}: dtype {dt} is not supported; tinygraph tensors are floating point "
            f"(float16, float32 or float64). Integer index arrays are passed as numpy arrays."
        )
    return dt


def set_default_dtype(dtype):
    """Set the float dtype given to Python numbers, lists, integer arrays and new Parameters."""
    STATE.default_dtype = check_float_dtype(dtype, "set_default_dtype")


def get_default_dtype():
    """The current default float dtype (``numpy.float32`` unless set)."""
    return STATE.default_dtype


@contextlib.contextmanager
def default_dtype(dtype):
    """Context manager: use ``dtype`` as the default dtype inside the block."""
    previous = STATE.default_dtype
    set_default_dtype(dtype)
    try:
        yield
    finally:
        STATE.default_dtype = previous


def is_grad_enabled():
    """Whether operations currently record a graph."""
    return STATE.grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode for its block."""

    def __init__(self, enabled):
        self._enabled = enabled
        self._previous = []

    def __enter__(self):
        self._previous.append(STATE.grad_enabled)
        STATE.grad_enabled = self._enabled
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._previous.pop()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(self._enabled):
                return fn(*args, **kwargs)

        return wrapper


def no_grad():
    """Context manager (or decorator): nothing inside records a graph.

    Results computed inside have ``requires_grad=False`` and no parents, so
    they hold no references to the graph that made them.
    """
    return _GradMode(False)


def enable_grad():
    """Context manager (or decorator): record graphs again inside a ``no_grad`` block."""
    return _GradMode(True)


@contextlib.contextmanager
def instance_scope(template_name, index):
    """Tag every tensor made inside the block with ``instance == (template_name, index)``."""
    previous = STATE.instance
    STATE.instance = (template_name, index)
    try:
        yield
    finally:
        STATE.instance = previous
