"""Modules: containers of Parameters and sub-Modules with a ``forward``."""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ..autograd import mark_modified
from ..errors import shape_str
from ..tensor import Tensor, as_float_array


class Parameter(Tensor):
    """A leaf tensor with ``requires_grad=True`` that Modules register automatically.

    A numpy float array keeps its dtype; anything else takes the default dtype
    in force when the Parameter is created.
    """

    __slots__ = ()

    def __init__(self, data, name=None, dtype=None):
        if isinstance(data, Tensor):
            data = data.data.copy()
        super().__init__(as_float_array(data, dtype, "Parameter"), requires_grad=True, name=name)
        # Parameters belong to no template instance even when created inside one.
        self.instance = None

    def __repr__(self):
        return f"Parameter(shape={tuple(self.shape)}, dtype={self.dtype}" + (f", name={self.name!r})" if self.name else ")")


class LoadResult(NamedTuple):
    """What ``Module.load_state_dict`` did not match (PyTorch's ``missing_keys``/``unexpected_keys``)."""

    missing_keys: list
    unexpected_keys: list


class Module:
    """Base class of layers and models.

    A subclass assigns Parameters and sub-Modules as attributes in ``__init__``
    (they register automatically, in assignment order) and defines
    ``forward(...)``; calling the module calls ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def _registries(self):
        try:
            return self.__dict__["_parameters"], self.__dict__["_modules"]
        except KeyError:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            ) from None

    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Module)) or name in self.__dict__.get("_parameters", ()) \
                or name in self.__dict__.get("_modules", ()):
            params, modules = self._registries()
            params.pop(name, None)
            modules.pop(name, None)
            if isinstance(value, Parameter):
                if value.name is None:
                    value.name = name
                params[name] = value
            elif isinstance(value, Module):
                modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal -------------------------------------------------------------
    def named_modules(self, prefix=""):
        """Yield ``(dotted_name, module)`` for this module and every sub-module (iteratively)."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = list(module._modules.items())
            for child_name, child in reversed(children):
                stack.append((f"{name}.{child_name}" if name else child_name, child))

    def modules(self):
        return [m for _, m in self.named_modules()]

    def children(self):
        return list(self._modules.values())

    def named_parameters(self):
        """Yield ``(dotted_name, Parameter)`` pairs, e.g. ``("cell.W_hh", W_hh)``; each Parameter once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, param in module._parameters.items():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{prefix}.{name}" if prefix else name), param

    def parameters(self):
        """List of all Parameters (each once)."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        """Set every parameter's ``.grad`` to None."""
        for p in self.parameters():
            p.grad = None

    def num_parameters(self):
        return int(sum(p.size for p in self.parameters()))

    # -- modes -------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (affects e.g. Dropout) on this module and all sub-modules."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # -- state -------------------------------------------------------------------
    def state_dict(self):
        """``OrderedDict`` of parameter name to a copy of its numpy array."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into the parameters (in place, keeping each parameter's dtype).

        Raises ValueError naming every missing or unexpected key (when ``strict``)
        and every key whose shape differs, before changing anything.

        Returns
        -------
        LoadResult(missing_keys, unexpected_keys)
            The keys of the model the state did not have and the keys of the
            state the model does not have (both empty when ``strict``).
        """
        if not hasattr(state, "keys"):
            raise TypeError(f"load_state_dict: expected a dict of arrays, got {type(state).__name__}")
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(map(str, unexpected)))
        arrays = {}
        for key, p in params.items():
            if key not in state:
                continue
            value = state[key]
            try:
                value = value.data if isinstance(value, Tensor) else np.asarray(value)
            except (ValueError, TypeError) as exc:
                problems.append(f"{key}: cannot be made into an array ({exc})")
                continue
            if value.shape != p.shape:
                problems.append(f"{key}: shape {shape_str(value.shape)} in the state dict, "
                                f"{shape_str(p.shape)} in the model")
            elif value.dtype.kind not in "fiu":
                problems.append(f"{key}: dtype {value.dtype} is not numeric")
            else:
                arrays[key] = value
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for key, value in arrays.items():
            params[key].data[...] = value
            mark_modified(params[key])  # a graph built with the old values must not back-propagate
        return LoadResult(missing, unexpected)

    # -- display -------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, p in self._parameters.items():
            lines.append(f"  ({name}): Parameter{tuple(p.shape)}")
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        if len(lines) == 1:
            return lines[0] + ")"
        return "\n".join(lines) + "\n)"


class ModuleList(Module):
    """A list of Modules, registered as sub-modules named ``0``, ``1``, ..."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.append: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ModuleList(list(self._modules.values())[i])
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

