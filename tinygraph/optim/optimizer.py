"""The Optimizer base: parameter bookkeeping, per-parameter state and its (de)serialisation.

A subclass lists its hyperparameters, validates them, and defines the update
of one parameter array in place. State is keyed by parameter *position* (its
index in the list given to the constructor), never by ``id()``, so a
state dict saved by one process loads into a freshly built model in another.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import mark_modified

from ..errors import shape_str
from ..tensor import Tensor


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_nonnegative(where, name, value):
    """Raise ValueError unless ``value`` is a finite real number >= 0."""
    if not _is_real(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value!r}")


def check_unit_interval(where, name, value):
    """Raise ValueError unless ``0 <= value < 1``."""
    if not _is_real(value) or not 0 <= value < 1:
        raise ValueError(f"{where}: {name} must be in [0, 1), got {value!r}")


def _param_label(i, p):
    return f"parameter {i}" + (f" ({p.name!r})" if p.name else "")


class Optimizer:
    """Base class of optimizers.

    Parameters
    ----------
    params : iterable of Tensor
        Leaf tensors with ``requires_grad=True`` (e.g. ``model.parameters()``),
        each given once. Their order defines the keys of ``state_dict()``.
    hyperparameters : dict
        Name to value; each becomes an attribute (``opt.lr = 1e-4`` changes
        the learning rate of later steps).

    Subclasses set ``hyperparameter_names`` and define ``_validate(h)`` and
    ``_update(i, p, g, state)``, which changes the array ``p`` in place.
    """

    hyperparameter_names = ()

    def __init__(self, params, hyperparameters):
        where = type(self).__name__
        if isinstance(params, Tensor):
            params = [params]
        elif not hasattr(params, "__iter__") or isinstance(params, (str, bytes, dict)):
            hint = "; pass model.parameters()" if hasattr(params, "parameters") else ""
            raise TypeError(f"{where}: params must be an iterable of Tensors, got {type(params).__name__}{hint}")
        params = list(params)
        if not params:
            raise ValueError(f"{where}: got an empty parameter list")
        seen = {}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{where}: params[{i}] is a {type(p).__name__}, expected a Tensor (e.g. a Parameter)")
            if not p.requires_grad or not p.is_leaf:
                raise ValueError(
                    f"{where}: {_param_label(i, p)} of shape {shape_str(p.shape)} cannot be optimized; "
                    f"expected a leaf tensor with requires_grad=True"
                )
            if id(p) in seen:
                raise ValueError(f"{where}: {_param_label(i, p)} is the same tensor as parameter {seen[id(p)]}; "
                                 f"each parameter must appear once")
            seen[id(p)] = i
        self.params = params
        self.state = [{} for _ in params]
        self._set_hyperparameters(hyperparameters)

    # -- hyperparameters ----------------------------------------------------------
    def _validate(self, h):
        """Raise ValueError if the hyperparameter dict ``h`` is not acceptable."""

    def _set_hyperparameters(self, h):
        self._validate(h)
        for name in self.hyperparameter_names:
            value = h[name]
            setattr(self, name, tuple(value) if isinstance(value, list) else value)

    @property
    def hyperparameters(self):
        """Dict of the current hyperparameters."""
        return {name: getattr(self, name) for name in self.hyperparameter_names}

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {inner})"

    # -- stepping ----------------------------------------------------------------
    def zero_grad(self):
        """Set every parameter's ``.grad`` to None."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient, in place (``p.data`` keeps its dtype and identity)."""
        self._validate(self.hyperparameters)  # catches e.g. ``opt.lr = -1`` set between steps
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if g.shape != p.shape:
                raise ValueError(
                    f"{type(self).__name__}.step: {_param_label(i, p)} has shape {shape_str(p.shape)} "
                    f"but its grad has shape {shape_str(g.shape)}"
                )
            self._update(i, p.data, g, self.state[i])
            # in place, so a graph built before this step can no longer be back-propagated
            mark_modified(p)

    def _update(self, i, p, g, state):
        raise NotImplementedError

    def _buffer(self, state, name, p):
        """The state array ``name`` of parameter ``p``, created as zeros of p's dtype on first use."""
        buf = state.get(name)
        if buf is None:
            buf = state[name] = np.zeros_like(p)
        return buf

    # -- state -------------------------------------------------------------------
    def state_dict(self):
        """A snapshot of the optimizer: a nested dict of numpy arrays and Python scalars.

        ``{"type": class name, "hyperparameters": {...}, "num_params": n,
        "state": {"0": {"step": int, <buffer>: ndarray, ...}, ...}}``; state is
        keyed by parameter position (as a string) and holds only parameters
        that have been stepped. Arrays are copies. ``tinygraph.save`` writes it.
        """
        state = {}
        for i, s in enumerate(self.state):
            if s:
                state[str(i)] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
        return {
            "type": type(self).__name__,
            "hyperparameters": self.hyperparameters,
            "num_params": len(self.params),
            "state": state,
        }

    def load_state_dict(self, state_dict):
        """Restore a snapshot from ``state_dict()`` (hyperparameters and per-parameter state).

        Everything is checked before anything changes: a different optimizer
        type, parameter count, unknown key or wrong-shape buffer is a
        ValueError naming it. Arrays are copied and cast to each parameter's dtype.
        """
        where = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict):
            raise TypeError(f"{where}: expected a dict from state_dict(), got {type(state_dict).__name__}")
        missing = [k for k in ("type", "hyperparameters", "num_params", "state") if k not in state_dict]
        if missing:
            raise ValueError(f"{where}: missing keys: {', '.join(missing)}")
        if state_dict["type"] != type(self).__name__:
            raise ValueError(f"{where}: the state dict is from a {state_dict['type']} optimizer, not a {type(self).__name__}")
        if state_dict["num_params"] != len(self.params):
            raise ValueError(
                f"{where}: the state dict is for {state_dict['num_params']} parameters, "
                f"this optimizer has {len(self.params)}"
            )
        hyper = dict(state_dict["hyperparameters"])
        unknown = sorted(set(hyper) - set(self.hyperparameter_names))
        absent = [k for k in self.hyperparameter_names if k not in hyper]
        if unknown or absent:
            raise ValueError(f"{where}: unexpected hyperparameters {unknown}, missing hyperparameters {absent}")
        self._validate(hyper)
        if not isinstance(state_dict["state"], dict):
            raise ValueError(f"{where}: 'state' must be a dict keyed by parameter position, got {type(state_dict['state']).__name__}")
        new_state = [{} for _ in self.params]
        for key, entry in state_dict["state"].items():
            if not (isinstance(key, str) and key.isdigit() and int(key) < len(self.params)):
                raise ValueError(f"{where}: state key {key!r} is not a parameter position 0..{len(self.params) - 1}")
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: state {key} must be a dict of buffers, got {type(entry).__name__}")
            i = int(key)
            p = self.params[i]
            for name, value in entry.items():
                if name == "step":
                    if isinstance(value, np.ndarray):  # tolerate a 0-d array written by other tools
                        value = value.item()
                    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                        raise ValueError(f"{where}: state {key}.step must be an int >= 0, got {value!r}")
                    new_state[i][name] = int(value)
                    continue
                arr = np.asarray(value)
                if arr.shape != p.shape:
                    raise ValueError(
                        f"{where}: state {key}.{name} has shape {shape_str(arr.shape)} but "
                        f"{_param_label(i, p)} has shape {shape_str(p.shape)}"
                    )
                new_state[i][name] = np.array(arr, dtype=p.dtype, copy=True)
        self._set_hyperparameters(hyper)
        self.state = new_state
        return self
