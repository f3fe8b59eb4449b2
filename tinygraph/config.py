"""The processing state of tinygraph: default dtype, grad mode, and the
template instance currently being recorded.

Kept in one small module so that nothing else hides global state. The state
is *per thread*: a ``no_grad()`` block, a ``default_dtype(...)`` block or a
template call in one thread never changes what another thread records.
``set_default_dtype`` also sets the default of threads that have not used
tinygraph yet (so a program that sets float64 once, first thing, gets it in
its worker threads too); the context managers change the calling thread only.
State is per thread, not per asyncio task: tasks that share a thread share it.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading

import numpy as np

from .instance import Instance, Run

_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


# What a thread starts with (``set_default_dtype`` updates it).
_INITIAL_DTYPE = [np.dtype(np.float32)]


class _State(threading.local):
    """Per-thread state: ``threading.local`` runs ``__init__`` once in every thread that touches it."""

    def __init__(self):
        self.default_dtype = _INITIAL_DTYPE[0]
        self.grad_enabled = True
        # The ``tinygraph.instance.Instance`` being recorded, or None.
        self.instance = None


STATE = _State()


class _Speed:
    """Process-wide switches of the speed layer (the textbook results do not depend on them).

    ``lazy_gradients``: keep some gradient sums pending (``tinygraph.autograd.accumulate``).
    Starts from the environment variable ``TINYGRAPH_LAZY_GRADIENTS`` (``0`` turns it off).
    """

    def __init__(self):
        flag = os.environ.get("TINYGRAPH_LAZY_GRADIENTS", "1").strip().lower()
        self.lazy_gradients = flag not in ("0", "false", "no", "off")


SPEED = _Speed()


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
    """Set the float dtype given to Python numbers, lists, integer arrays and new Parameters.

    It applies to the calling thread and to threads that have not used
    tinygraph yet; threads that have keep theirs (use ``default_dtype(...)``
    for a block).
    """
    dt = check_float_dtype(dtype, "set_default_dtype")
    STATE.default_dtype = dt
    _INITIAL_DTYPE[0] = dt


def get_default_dtype():
    """The current default float dtype (``numpy.float32`` unless set)."""
    return STATE.default_dtype


@contextlib.contextmanager
def default_dtype(dtype):
    """Context manager: use ``dtype`` as the default dtype inside the block."""
    dt = check_float_dtype(dtype, "default_dtype")
    previous = STATE.default_dtype
    STATE.default_dtype = dt
    try:
        yield
    finally:
        STATE.default_dtype = previous


def is_grad_enabled():
    """Whether operations currently record a graph."""
    return STATE.grad_enabled


class _GradMode:
    """Context manager and decorator that sets grad mode for its block (in the calling thread).

    Decorating a generator function sets the mode inside the generator's body,
    each time it runs (and restores the caller's mode at every ``yield``), the
    way a ``with`` block written inside the body would.
    """

    def __init__(self, enabled):
        self._enabled = enabled
        self._stacks = threading.local()  # one object may be entered in several threads at once

    def _previous(self):
        stack = getattr(self._stacks, "stack", None)
        if stack is None:
            stack = self._stacks.stack = []
        return stack

    def __enter__(self):
        self._previous().append(STATE.grad_enabled)
        STATE.grad_enabled = self._enabled
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._previous().pop()
        return False

    def __call__(self, fn):
        if not callable(fn):
            raise TypeError(f"no_grad/enable_grad: can decorate a function, got {type(fn).__name__}")
        enabled = self._enabled
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def generator(*args, **kwargs):
                return (yield from _run_generator(fn(*args, **kwargs), enabled))

            return generator

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _GradMode(enabled):
                return fn(*args, **kwargs)

        return wrapper


def _run_generator(gen, enabled):
    """Drive ``gen`` with grad mode ``enabled`` while its body runs, the caller's mode between yields."""
    try:
        with _GradMode(enabled):
            value = gen.send(None)
    except StopIteration as stop:
        return stop.value
    while True:
        try:
            sent = yield value
        except GeneratorExit:
            with _GradMode(enabled):
                gen.close()
            raise
        except BaseException as exc:
            try:
                with _GradMode(enabled):
                    value = gen.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                with _GradMode(enabled):
                    value = gen.send(sent)
            except StopIteration as stop:
                return stop.value


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
def instance_scope(template_name, index, run=None):
    """Tag every tensor made inside the block with one new instance, ``== (template_name, index)``.

    The instance belongs to ``run`` (a ``tinygraph.instance.Run``; a new run by
    default) and is nested in the instance being recorded, if any. Yields the
    ``Instance``.
    """
    previous = STATE.instance
    instance = Instance(run if run is not None else Run(template_name), index, previous)
    STATE.instance = instance
    try:
        yield instance
    finally:
        STATE.instance = previous
