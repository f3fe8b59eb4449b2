"""Recurrent layers: a cell template unrolled over a time-major sequence, optionally
stacked in layers and followed by an output layer."""
from __future__ import annotations

import math

import numpy as np

from tinygraph import Template, Tensor, get_default_dtype, tensor, unroll, where
from tinygraph.nn import Module, Parameter
from tinygraph.template import Workspace
from tinygraph.unrolling import flatten_state

from ._cell import as_rng, check_size, readout_per_step, shape_text
from .gru_cell import GRUCell
from .lstm_cell import LSTMCell
from .rnn_cell import RNNCell


def check_lengths(where, lengths, steps, batch):
    """``lengths`` as a (B,) int64 array with ``1 <= lengths[b] <= T``, or a ValueError/TypeError naming ``where``."""
    if isinstance(lengths, Tensor):
        raise TypeError(f"{where}: lengths must be an integer numpy array or list, got a Tensor")
    arr = np.asarray(lengths)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise TypeError(f"{where}: lengths must be integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"{where}: lengths must have shape (B,) = ({batch},), one length per sequence, "
                         f"got shape {shape_text(arr.shape)}")
    if arr.size and (arr.min() < 1 or arr.max() > steps):
        bad = arr[(arr < 1) | (arr > steps)][0]
        raise ValueError(f"{where}: every length must satisfy 1 <= length <= T = {steps}, got {int(bad)}")
    return arr.astype(np.int64)


class _MaskedSteps:
    """``per_step[t]`` of the wrapped template paired with ``t`` (what ``_Masked.step`` receives)."""

    def __init__(self, per_step):
        self.per_step = per_step

    def __getitem__(self, t):
        return self.per_step[t], t


class _Masked(Template):
    """A template run under a padding mask: step t keeps the previous state where ``t >= lengths[b]``.

    It carries the wrapped template's name, so its instances are the wrapped
    template's steps (same ``Tensor.instance``, same clusters in a drawing).
    """

    def __init__(self, template, lengths):
        super().__init__(name=template.template_name)
        object.__setattr__(self, "inner", template)  # not a submodule: no parameters of its own
        object.__setattr__(self, "lengths", lengths)

    def initial_state(self, batch_size, dtype):
        return self.inner.initial_state(batch_size, dtype)

    def begin_unroll(self, xs):
        inner = self.inner.begin_unroll(xs)
        workspace = Workspace(_MaskedSteps(inner.inputs if isinstance(inner, Workspace) else inner))
        workspace.inner = (inner,) if isinstance(inner, Workspace) else ()  # what the wrapped hooks receive
        return workspace

    def step(self, x_and_t, state, workspace=None):
        x, t = x_and_t
        output, new_state = self.inner.step(x, state, *workspace.inner)
        valid = (t < self.lengths)[:, None]  # (B, 1): which sequences still run at step t
        if valid.all():
            return output, new_state
        kept = [where(valid, new, old) for new, old in zip(flatten_state(new_state), flatten_state(state))]
        return where(valid, output, 0.0), _restructure(new_state, iter(kept))

    def end_unroll(self, workspace=None):
        self.inner.end_unroll(*workspace.inner)


def _restructure(like, items):
    """The tensors of ``items`` in the nested structure of ``like`` (inverse of ``flatten_state``)."""
    if isinstance(like, (tuple, list)):
        return type(like)(_restructure(part, items) for part in like)
    return next(items)


def masked_unroll(template, xs, state=None, lengths=None):
    """``tinygraph.unroll`` over a padded batch of variable-length sequences.

    Works for any template (the built-in cells and a user's own): at step
    ``t`` a sequence with ``lengths[b] <= t`` keeps its previous state
    (``where(t < lengths, new_state, state)``, so no gradient reaches the step's
    computation from the padding) and outputs zeros. The final state of each
    sequence is its state after its last valid step, and the outputs, final
    states and parameter gradients equal those of running each sequence alone.

    Parameters
    ----------
    template : tinygraph.Template
    xs : Tensor or array (T, B, features...)
    state : initial state or None (the template's ``initial_state``)
    lengths : array-like of ints (B,) or None (every sequence has length T)

    Returns
    -------
    outputs : Tensor (T, B, ...)
        Zero past each sequence's length.
    final_state
        Each sequence's state at its last valid step.
    """
    if lengths is None:
        return unroll(template, xs, state)
    shape = getattr(xs, "shape", np.shape(xs))
    if len(shape) < 3:
        return unroll(template, xs, state)  # unroll raises its own clear error
    lengths = check_lengths("masked_unroll", lengths, shape[0], shape[1])
    outputs, final = unroll(_Masked(template, lengths), xs, state)
    return outputs, final


class Recurrent(Module):
    """Base of ``RNN``, ``LSTM`` and ``GRU``: ``num_layers`` cells unrolled one after another.

    Parameters
    ----------
    input_size : int
        D, features per time step.
    hidden_size : int
        H, state size of every layer.
    num_layers : int
        Stacked layers; layer ``l > 0`` reads the hidden states of layer ``l - 1``.
    output_size : int, optional
        O. If given, an output layer ``y_t = h_t @ W_hy + b_y`` (``W_hy`` (H, O),
        ``b_y`` (O,)) is applied to the last layer's hidden states.
    rng : None, int or numpy.random.Generator
        Source of the initial weights (``uniform(-1/sqrt(H), 1/sqrt(H))``).
    name : str, optional
        Template name of the cells in ``Tensor.instance`` and drawings (default
        the cell class name, e.g. ``"LSTMCell"``; layers ``l > 0`` get
        ``"<name>_<l>"``). Give two models of one graph different names, e.g.
        ``"encoder"`` and ``"decoder"``.
    **cell_options
        Passed to every cell (e.g. ``nonlinearity`` or ``forget_bias``).

    Attributes
    ----------
    cell : the first layer's cell (``model.cell.W_hh``); further layers are
        ``cell_1``, ``cell_2``, ... (template names ``"<Cell>_1"``, ...), all in ``cells``.
    """

    cell_class = None
    state_parts = 1  # tensors per layer state: 1 for h, 2 for (h, c)

    def __init__(self, input_size, hidden_size, num_layers=1, output_size=None, rng=None, name=None,
                 batch_first=False, **cell_options):
        super().__init__()
        kind = type(self).__name__
        if not isinstance(batch_first, (bool, np.bool_)):
            raise TypeError(f"{kind}: batch_first must be True or False, got {batch_first!r}")
        # read by forward: inputs and outputs (B, T, ...) instead of time-major (T, B, ...)
        self.batch_first = bool(batch_first)
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"{kind}: name must be a non-empty string, got {name!r}")
        self.input_size = check_size(kind, "input_size", input_size)
        self.hidden_size = check_size(kind, "hidden_size", hidden_size)
        self.num_layers = check_size(kind, "num_layers", num_layers)
        rng = as_rng(rng)
        base = name or self.cell_class.__name__
        for layer in range(self.num_layers):
            cell = self.cell_class(
                self.input_size if layer == 0 else self.hidden_size, self.hidden_size,
                name=base if layer == 0 else f"{base}_{layer}", rng=rng, **cell_options,
            )
            setattr(self, "cell" if layer == 0 else f"cell_{layer}", cell)
            if name is not None:
                # display names only (drawings, messages): two named models in one graph stay
                # apart, e.g. encoder.W_hi and decoder.W_hi; state_dict keys do not change
                for param_name, param in cell.named_parameters():
                    param.name = f"{cell.template_name}.{param_name}"
        self.output_size = None if output_size is None else check_size(kind, "output_size", output_size)
        if self.output_size is not None:
            bound = 1.0 / math.sqrt(self.hidden_size)
            dtype = get_default_dtype()
            prefix = f"{name}." if name is not None else ""
            self.W_hy = Parameter(rng.uniform(-bound, bound, (self.hidden_size, self.output_size)).astype(dtype),
                                  name=prefix + "W_hy")
            self.b_y = Parameter(rng.uniform(-bound, bound, self.output_size).astype(dtype), name=prefix + "b_y")

    @property
    def cells(self):
        """The cells, bottom layer first."""
        return [self.cell] + [getattr(self, f"cell_{layer}") for layer in range(1, self.num_layers)]

    def forward(self, x, state=None, lengths=None):
        """Run the sequence.

        Parameters
        ----------
        x : Tensor or array (T, B, input_size)
            Time-major input: axis 0 is time. A batch-major array (B, T, D)
            has the same rank, so it cannot be told apart when B happens to
            be a valid T: build the model with ``batch_first=True`` for
            (B, T, D) inputs and (B, T, ...) outputs.
        state : optional
            Initial state: for one layer ``h0`` (B, H) (``(h0, c0)`` for the
            LSTM); for ``num_layers > 1`` a list with one such state per layer.
            Default zeros.
        lengths : array-like of ints (B,), optional
            Valid steps of each sequence of a padded batch (``1 <= lengths[b] <= T``).
            Outputs past a sequence's length are zero and its final state is
            its state at its last valid step, so the padded batch gives the
            same outputs, final states and parameter gradients as running each
            sequence alone (see ``masked_unroll``). With an output layer,
            ``y_t`` past the length is the bias ``b_y`` applied to a zero state;
            mask it in the loss.

        Returns
        -------
        outputs : Tensor (T, B, H), or (T, B, O) with an output layer
            The last layer's hidden states (or ``y_t``).
        final_state
            ``h_T`` (``(h_T, c_T)`` for the LSTM); for ``num_layers > 1`` a
            tuple with one final state per layer.
        """
        if self.batch_first:
            x = self._time_major(x)
        hs, final = self.forward_hidden(x, state, lengths=lengths)
        if self.output_size is None:
            y = hs
        elif not self.cell.fused:  # textbook build: y_t = h_t @ W_hy + b_y inside each step
            y = readout_per_step(hs, self.W_hy, self.b_y)
        else:
            T, B, H = hs.shape
            y = (hs.reshape(T * B, H) @ self.W_hy + self.b_y).reshape(T, B, self.output_size)
        return (y.transpose(1, 0, 2) if self.batch_first else y), final

    def _time_major(self, x):
        """A batch-major input (B, T, D) as time-major (T, B, D) (arrays are swapped
        without a graph node; a Tensor gets a transpose node)."""
        if isinstance(x, Tensor):
            if x.ndim != 3:
                raise ValueError(f"{type(self).__name__}: batch_first=True expects an input of shape "
                                 f"(B, T, input_size={self.input_size}), got shape {shape_text(x.shape)}")
            return x.transpose(1, 0, 2)
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__}: batch_first=True expects an input of shape "
                             f"(B, T, input_size={self.input_size}), got shape {shape_text(x.shape)}")
        return np.swapaxes(x, 0, 1)

    def forward_hidden(self, x, state=None, lengths=None):
        """Like ``forward`` but without the output layer: ``(hidden states (T, B, H), final_state)``."""
        x = self._check_input(x)
        states = self._check_state(state, x.shape[1])
        if lengths is not None:
            lengths = check_lengths(type(self).__name__, lengths, x.shape[0], x.shape[1])
        finals = []
        hs = x
        for cell, s in zip(self.cells, states):
            hs, s = unroll(cell, hs, s) if lengths is None else masked_unroll(cell, hs, s, lengths)
            finals.append(s)
        return hs, (finals[0] if self.num_layers == 1 else tuple(finals))

    # -- checks --------------------------------------------------------------------
    def _check_input(self, x):
        if not isinstance(x, Tensor):
            # like nn.Linear: plain arrays take the parameters' dtype, so a float64
            # numpy input does not silently turn a float32 model's graph into float64
            x = tensor(np.asarray(x), dtype=self._param_dtype(), name="x")
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: expected a time-major input of shape (T, B, input_size={self.input_size}), "
                f"got shape {shape_text(x.shape)}"
                + (" (a 2-D input is one time step or one sequence: add the missing axis)" if x.ndim == 2 else "")
            )
        if x.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: the input has no time steps (T = 0)")
        if x.shape[1] == 0:
            raise ValueError(f"{type(self).__name__}: the input has an empty batch (B = 0, shape "
                             f"{shape_text(x.shape)}); give at least one sequence")
        return x

    def _state_tensor(self, part, batch):
        if isinstance(part, Tensor):
            return part
        try:
            return tensor(np.asarray(part), dtype=self._param_dtype())
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{type(self).__name__}: expected the initial state as {self._expected_state(batch)}, "
                f"got something that is not an array ({exc})"
            ) from None

    def _param_dtype(self):
        return self.cells[0].parameters()[0].dtype

    def _expected_state(self, batch):
        one = f"({batch}, {self.hidden_size})"
        layer = one if self.state_parts == 1 else f"(h0, c0), each of shape {one}"
        if self.num_layers == 1:
            return layer
        return f"a list of {self.num_layers} per-layer states, each {layer}"

    def _check_state(self, state, batch):
        if state is None:
            return [None] * self.num_layers
        layers = [state] if self.num_layers == 1 else state
        if not isinstance(layers, (list, tuple)) or len(layers) != self.num_layers:
            raise ValueError(
                f"{type(self).__name__}: expected the initial state as {self._expected_state(batch)}, "
                f"got {type(state).__name__}"
            )
        out = []
        for layer_state in layers:
            parts = [layer_state] if self.state_parts == 1 else layer_state
            if self.state_parts > 1 and (not isinstance(parts, (list, tuple)) or len(parts) != self.state_parts):
                raise ValueError(
                    f"{type(self).__name__}: expected the initial state as {self._expected_state(batch)}, "
                    f"got {type(layer_state).__name__}"
                )
            parts = [self._state_tensor(p, batch) for p in parts]
            for p in parts:
                if p.shape != (batch, self.hidden_size):
                    raise ValueError(
                        f"{type(self).__name__}: expected the initial state as {self._expected_state(batch)}, "
                        f"got a tensor of shape {shape_text(p.shape)}"
                    )
            out.append(parts[0] if self.state_parts == 1 else tuple(parts))
        return out

    def extra_repr(self):
        text = f"input_size={self.input_size}, hidden_size={self.hidden_size}, num_layers={self.num_layers}"
        return text + (f", output_size={self.output_size}" if self.output_size is not None else "")


class RNN(Recurrent):
    """Elman RNN over a sequence: ``RNNCell`` unrolled (see ``Recurrent`` for the arguments).

    ``h_t = act(x_t @ W_xh + h_{t-1} @ W_hh + b_h)`` for ``t = 0..T-1`` and, with
    ``output_size``, ``y_t = h_t @ W_hy + b_y``. ``nonlinearity`` is ``"tanh"``
    (default) or ``"relu"``. ``fused=False`` builds the textbook graph (see ``RNNCell``).
    """

    cell_class = RNNCell

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", num_layers=1, output_size=None, rng=None,
                 name=None, fused=True, batch_first=False):
        super().__init__(input_size, hidden_size, num_layers=num_layers, output_size=output_size, rng=rng,
                         name=name, batch_first=batch_first, nonlinearity=nonlinearity, fused=fused)


class LSTM(Recurrent):
    """LSTM over a sequence: ``LSTMCell`` unrolled (see ``Recurrent`` and ``LSTMCell``).

    The state of a layer is ``(h, c)``; ``forget_bias`` initialises every
    layer's ``b_f`` to a constant; ``fused=False`` unrolls the gate math as
    primitive ops instead of the fused ``lstm_cell`` op.
    """

    cell_class = LSTMCell
    state_parts = 2

    def __init__(self, input_size, hidden_size, num_layers=1, output_size=None, forget_bias=None, fused=True,
                 rng=None, name=None, batch_first=False):
        super().__init__(input_size, hidden_size, num_layers=num_layers, output_size=output_size, rng=rng,
                         name=name, batch_first=batch_first, forget_bias=forget_bias, fused=fused)


class GRU(Recurrent):
    """GRU over a sequence: ``GRUCell`` unrolled (see ``Recurrent`` and ``GRUCell``).

    ``fused=False`` unrolls the gate math as primitive ops instead of the fused
    ``gru_cell`` op.
    """

    cell_class = GRUCell

    def __init__(self, input_size, hidden_size, num_layers=1, output_size=None, fused=True, rng=None, name=None,
                 batch_first=False):
        super().__init__(input_size, hidden_size, num_layers=num_layers, output_size=output_size, rng=rng,
                         name=name, batch_first=batch_first, fused=fused)
