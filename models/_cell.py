"""What every recurrent cell shares: sizes, initialisation, and input/state checks."""
from __future__ import annotations

import math
import numbers

import numpy as np

from tinygraph import Template, Tensor, concat, get_default_dtype, stack, tensor
from tinygraph.config import STATE
from tinygraph.nn import Parameter
from tinygraph.ops import OPS
from tinygraph.tensor import apply

_MATMUL = OPS["matmul"]


def check_size(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def as_rng(rng):
    """``rng`` as a ``numpy.random.Generator`` (None, a seed, or a Generator)."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


class RecurrentCell(Template):
    """Base of the built-in cells: a Template with ``input_size`` and ``hidden_size``.

    Parameters are drawn from ``uniform(-1/sqrt(H), 1/sqrt(H))`` in the default
    dtype in force at construction. Subclasses define ``forward`` (the
    reference equations, one call = one time step) and may override the
    unroll hooks to run a fused version of the same equations.
    """

    def __init__(self, input_size, hidden_size, name=None, rng=None, fused=True):
        super().__init__(name=name)
        kind = type(self).__name__
        if not isinstance(fused, (bool, np.bool_)):
            raise TypeError(f"{kind}: fused must be True or False, got {fused!r}")
        self.fused = bool(fused)
        self.input_size = check_size(kind, "input_size", input_size)
        self.hidden_size = check_size(kind, "hidden_size", hidden_size)
        object.__setattr__(self, "_rng", as_rng(rng))
        self.clear_unroll()

    def _uniform(self, *shape):
        bound = 1.0 / math.sqrt(self.hidden_size)
        data = self._rng.uniform(-bound, bound, size=shape).astype(get_default_dtype())
        return Parameter(data)

    # -- checks (a wrong shape is a ValueError naming what was expected) ----------
    def check_input(self, x, where="forward"):
        x = x if isinstance(x, Tensor) else tensor(np.asarray(x), dtype=self.parameters()[0].dtype)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{self.template_name}.{where}: expected an input x_t of shape (B, input_size={self.input_size}), "
                f"got shape {shape_text(x.shape)}"
            )
        return x

    def check_sequence(self, xs, where="unroll"):
        if xs.ndim != 3 or xs.shape[2] != self.input_size:
            raise ValueError(
                f"{self.template_name}.{where}: expected a time-major input of shape "
                f"(T, B, input_size={self.input_size}), got shape {shape_text(xs.shape)}"
            )
        if xs.shape[0] == 0 or xs.shape[1] == 0:
            raise ValueError(f"{self.template_name}.{where}: the input of shape {shape_text(xs.shape)} has "
                             f"{'no time steps (T = 0)' if xs.shape[0] == 0 else 'an empty batch (B = 0)'}; "
                             f"give at least one step of one sequence")

    def check_hidden(self, h, batch, what="h"):
        if not isinstance(h, Tensor):
            raise TypeError(f"{self.template_name}: the state {what} must be a Tensor, got {type(h).__name__}")
        if h.shape != (batch, self.hidden_size):
            raise ValueError(
                f"{self.template_name}: expected state {what} of shape (B, hidden_size) = "
                f"({batch}, {self.hidden_size}), got shape {shape_text(h.shape)}"
            )

    # -- the textbook build (fused=False): the equations as written, inside each step ---
    def textbook_inputs(self, xs):
        """What the textbook build's step ``t`` reads: ``xs[t]`` (``unroll`` selects it), or,
        when ``xs`` is the stack of the per-step outputs of the layer below, those tensors
        themselves, so that a stacked layer's step reads ``h_t`` of the layer below
        directly (no stack-and-select between the layers; the same values)."""
        self.check_sequence(xs)
        parents = xs.parents
        if (xs.op == "stack" and xs.attrs.get("axis") == 0 and len(parents) == xs.shape[0]
                and all(isinstance(p, Tensor) and p.shape == xs.shape[1:] for p in parents)):
            return list(parents)
        return xs

    def project_pooled(self, xs, W_x, b):
        """``project_sequence`` into a (T*B, G) array from the cell's buffer pool."""
        dtype = np.result_type(xs.dtype, W_x.dtype)
        buffer = self.buffers.get("x_proj", (xs.shape[0] * xs.shape[1], W_x.shape[1]), dtype)
        return project_sequence(xs, W_x, b, buffer=buffer)

    # -- the workspaces of a fused cell's unroll (LSTM, GRU) --------------------------
    def begin_fused_unroll(self, xs, W_x, b, step_blocks):
        """The pooled workspaces of a fused cell's unroll; returns the projected inputs.

        Projects all T inputs with one matmul into a pooled (T*B, G) array, and
        takes from the pool the (step_blocks, T, B, H) array the T steps' fused
        op writes its outputs into and the (T, B, 4H) array for their
        pre-activation gradients; ``step_buffers`` hands out step t's slots.
        """
        T, B = xs.shape[0], xs.shape[1]
        H = self.hidden_size
        dtype = np.result_type(xs.dtype, W_x.dtype)
        object.__setattr__(self, "_steps", self.buffers.get("steps", (step_blocks, T, B, H), dtype))
        object.__setattr__(self, "_step_grads", self.buffers.get("step_grads", (T, B, 4 * H), dtype))
        object.__setattr__(self, "_t", 0)
        return self.project_pooled(xs, W_x, b)

    def step_buffers(self, *operands):
        """``buffer=``/``grad_buffer=`` attributes for the next step's fused op: slot t of the
        workspaces, or none (fresh arrays) when the operands do not match them (e.g. a
        state of another dtype, or a step run outside ``unroll``)."""
        steps, t = self._steps, self._t
        if (steps is None or t >= steps.shape[1] or steps.shape[2] != operands[0].shape[0]
                or any(x.data.dtype != steps.dtype for x in operands)):
            return {}
        object.__setattr__(self, "_t", t + 1)
        return {"buffer": steps[:, t], "grad_buffer": self._step_grads[t]}

    def end_unroll(self):
        self.clear_unroll()

    def clear_unroll(self):
        """Drop the unroll's cached weights and workspaces (the graph's tensors hold the ones they use)."""
        object.__setattr__(self, "_W_h", None)
        object.__setattr__(self, "_steps", None)
        object.__setattr__(self, "_step_grads", None)
        object.__setattr__(self, "_t", 0)

    def zeros(self, batch_size, dtype, name=None):
        return tensor(np.zeros((batch_size, self.hidden_size), dtype=dtype or get_default_dtype()), name=name)

    def extra_repr(self):
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}"


def input_symbol(x):
    """The symbol of a step's input in tensor names: its name, or ``x_t`` for an unnamed
    input, e.g. the per-step selection ``xs[t]`` that ``unroll`` makes (named here: it is the
    seed's x_t; a selection from an input that needs no gradient is a leaf of its own)."""
    if x.name is None and (x.op == "index" or x.op is None):
        x.name = "x_t"
    return x.name or "x_t"


def product(a, W, name):
    """``a @ W`` named ``name`` (e.g. ``x_t W_xh``): one matmul of the equations."""
    out = a @ W
    out.name = name
    return out


class _SameInstance:
    """Record the tensors made inside the block in the template instance of ``tensor``
    (the very instance, so a drawing puts them in that step's cluster)."""

    def __init__(self, tensor):
        self.instance = tensor.instance

    def __enter__(self):
        self.previous = STATE.instance
        STATE.instance = self.instance

    def __exit__(self, *exc):
        STATE.instance = self.previous


def readout_per_step(hs, W_hy, b_y):
    """The output layer of the textbook build: ``y_t = h_t @ W_hy + b_y`` inside step t.

    ``hs`` is the stack of the top layer's ``h_t``; each ``y_t`` is computed from
    its ``h_t`` within that step's instance, and the ``y_t`` are stacked to
    (T, B, O). No reshape: the picture shows the seed's equation once per step.
    """
    steps = hs.parents if hs.op == "stack" and hs.attrs.get("axis") == 0 else [hs[t] for t in range(hs.shape[0])]
    ys = []
    for h in steps:
        with _SameInstance(h):
            y = product(h, W_hy, f"{h.name or 'h_t'} W_hy") + b_y
            y.name = "y_t"
        ys.append(y)
    return stack(ys, axis=0)


def name_tensors(**tensors):
    """Give each tensor of a step its symbol from the equations (``h``, ``c``,
    gate names), so drawings and ``Graph`` listings label the nodes with them."""
    for symbol, t in tensors.items():
        t.name = symbol


def project_sequence(xs, W_x, b, buffer=None):
    """``xs @ W_x + b`` for all T steps as ONE matmul: (T, B, D) -> (T, B, G).

    The bias rides along as an extra row of ``W_x`` against a column of ones,
    so the (T*B, G) result is allocated once instead of once for the product
    and again for the sum. ``buffer``, a (T*B, G) array the caller owns
    exclusively for this graph node, receives the product instead of a new array.
    """
    T, B, D = xs.shape
    ones = np.ones((T * B, 1), dtype=xs.dtype)
    augmented = concat([xs.reshape(T * B, D), ones], axis=1)
    augmented.name = "[x 1]"  # the inputs of all steps, a column of ones for the bias
    weights = concat([W_x, b.reshape(1, -1)], axis=0)
    if buffer is not None and buffer.dtype == np.result_type(augmented.dtype, weights.dtype):
        return apply(_MATMUL, augmented, weights, buffer=buffer).reshape(T, B, -1)
    return (augmented @ weights).reshape(T, B, -1)
