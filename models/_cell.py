"""What every recurrent cell shares: sizes, initialisation, and input/state checks."""
from __future__ import annotations

import math
import numbers

import numpy as np

from tinygraph import Template, Tensor, concat, get_default_dtype, stack, tensor
from tinygraph.template import Workspace
from tinygraph.config import STATE
from tinygraph.nn import Parameter
from tinygraph.ops import OPS
from tinygraph.tensor import apply

_MATMUL = OPS["matmul"]


def check_size(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def as_rng(rng, where="rng"):
    """``rng`` as a ``numpy.random.Generator`` (None, a seed, or a Generator)."""
    if isinstance(rng, np.random.Generator):
        return rng
    try:
        if isinstance(rng, (bool, float, str, bytes)):
            raise TypeError(type(rng).__name__)
        return np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: rng must be None, a non-negative integer seed or a numpy.random.Generator, "
                        f"got {rng!r}") from None


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

    def project_pooled(self, xs, W_x, b, workspace):
        """``project_sequence`` into a (T*B, G) array from the cell's buffer pool, leased to ``workspace``."""
        dtype = np.result_type(xs.dtype, W_x.dtype)
        buffer = self.buffers.get("x_proj", (xs.shape[0] * xs.shape[1], W_x.shape[1]), dtype, workspace)
        return project_sequence(xs, W_x, b, buffer=buffer, lease=workspace)

    # -- the workspace of a fused cell's unroll (RNN, LSTM, GRU) -----------------------------
    def begin_fused_unroll(self, xs, W_x, b, W_h, step_blocks, grad_width=None):
        """The ``FusedWorkspace`` of one fused unroll (see there); its ``inputs`` are the
        T inputs projected with one matmul into a pooled (T*B, G) array. ``grad_width``:
        the width of a step's pre-activation gradient (default 4H)."""
        T, B = xs.shape[0], xs.shape[1]
        H = self.hidden_size
        dtype = np.result_type(xs.dtype, W_x.dtype)
        ws = FusedWorkspace(W_h)
        ws.steps = self.buffers.get("steps", (step_blocks, T, B, H), dtype, ws)
        ws.step_grads = self.buffers.get("step_grads", (T, B, grad_width or 4 * H), dtype, ws)
        ws.inputs = self.project_pooled(xs, W_x, b, ws)
        return ws

    def end_unroll(self, workspace=None):
        if workspace is not None:
            # the projection node's op holds the workspace (its lease): dropping the inputs breaks
            # the cycle workspace -> inputs -> projection -> op -> workspace, so the lease ends
            # with the graph instead of waiting for the garbage collector
            workspace.inputs = None

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


class FusedWorkspace(Workspace):
    """One fused unroll's state (a ``tinygraph.template.Workspace``): the projected
    inputs, the concatenated recurrent matrix ``W_h``, and two pooled arrays that the
    T steps' fused ops own slot by slot: ``steps`` (blocks, T, B, H) for their outputs
    (so the T hidden states are one contiguous (T, B, H) block, which the stacked
    output and the ``W_h`` gradient use without copying) and ``step_grads``
    (T, B, G) for their pre-activation gradients. The arrays are leased to this
    object (``tinygraph.buffers``); every step's op keeps it alive."""

    def __init__(self, W_h):
        super().__init__(None)
        self.W_h = W_h
        self.steps = self.step_grads = None
        self.t = 0

    def step_op(self, op_class, *operands):
        """The op for the next step: an instance of ``op_class`` for that node, owning slot t
        of the arrays, or allocating its own when the operands do not fit them (e.g. a
        state of another dtype or batch size)."""
        steps, t = self.steps, self.t
        dtype = steps.dtype
        if t >= steps.shape[1] or steps.shape[2] != operands[0].shape[0] or any(
                [x._data.dtype != dtype for x in operands]):
            return op_class(per_node=True)
        self.t = t + 1
        return op_class(out=steps[:, t], grad=self.step_grads[t], lease=self)


class _ProjectInto(type(_MATMUL)):
    """The matmul ``[x 1] @ [W_x; b]`` writing into a pooled array it owns (one node)."""

    def __init__(self, out, lease):
        self.out, self.lease = out, lease

    def forward(self, a, b):
        if self.out.shape == (a.shape[0], b.shape[1]) and self.out.dtype == np.result_type(a, b):
            return np.matmul(a, b, out=self.out)
        return a @ b


def project_sequence(xs, W_x, b, buffer=None, lease=None):
    """``xs @ W_x + b`` for all T steps as ONE matmul: (T, B, D) -> (T, B, G).

    The bias rides along as an extra row of ``W_x`` against a column of ones,
    so the (T*B, G) result is allocated once instead of once for the product
    and again for the sum. ``buffer``, a (T*B, G) array the caller owns
    exclusively for this graph node, receives the product instead of a new
    array; the node keeps ``lease`` alive (see ``tinygraph.buffers``).
    """
    T, B, D = xs.shape
    ones = np.ones((T * B, 1), dtype=xs.dtype)
    augmented = concat([xs.reshape(T * B, D), ones], axis=1)
    augmented.name = "[x 1]"  # the inputs of all steps, a column of ones for the bias
    weights = concat([W_x, b.reshape(1, -1)], axis=0)
    if buffer is not None and buffer.dtype == np.result_type(augmented.dtype, weights.dtype):
        return apply(_ProjectInto(buffer, lease), augmented, weights).reshape(T, B, -1)
    return (augmented @ weights).reshape(T, B, -1)
