"""The Elman cell as a graph template."""
from __future__ import annotations

from tinygraph.tensor import apply

from ._cell import RecurrentCell, input_symbol, product
from ._fused_ops import RNNCellOp

_ACTIVATIONS = ("tanh", "relu")


class RNNCell(RecurrentCell):
    r"""Elman recurrent cell (one time step), a ``tinygraph.Template``.

    Reference semantics (row vectors, batch first)::

        h_t = act(x_t @ W_xh + h_{t-1} @ W_hh + b_h)

    with ``act`` = tanh or relu.

    Parameters
    ----------
    input_size : int
        D, features of ``x_t``.
    hidden_size : int
        H, size of the hidden state.
    nonlinearity : {"tanh", "relu"}
    fused : bool
        Under ``unroll``: project the inputs of all T steps with one matmul
        before the loop (default, fast: what training runs), or build the
        textbook graph, the equation above inside each step's instance
        (``fused=False``: the picture for reading the equations). Same values.
    name : str, optional
        Template name used in ``Tensor.instance`` (default ``"RNNCell"``).
    rng : None, int or numpy.random.Generator
        Source of the ``uniform(-1/sqrt(H), 1/sqrt(H))`` initial weights.

    Attributes
    ----------
    W_xh : Parameter (D, H)
    W_hh : Parameter (H, H)
    b_h : Parameter (H,)

    Notes
    -----
    ``forward(x, h)`` takes ``x`` of shape (B, D) and ``h`` of shape (B, H)
    and returns ``(h_t, h_t)`` (output and new state are the same tensor);
    it builds the textbook graph: ``x_t W_xh`` and ``h_{t-1} W_hh`` (two
    matmuls), their sum, ``+ b_h``, the activation ``h_t``. With
    ``fused=False`` every step of an unroll is exactly that. With the default
    ``fused=True``, under ``tinygraph.unroll`` the input projection of all T steps runs as one
    ``(T*B, D) @ (D, H)`` matmul before the loop (``begin_unroll``); each step
    is then the single ``rnn_cell`` op, ``act(p_t + h_{t-1} @ W_hh)``. Same
    equations, fewer and larger matmuls, one node per step.

    Workspace: under ``unroll`` the fused form keeps everything of one unroll
    on a ``FusedWorkspace`` (``begin_unroll`` returns it, each ``step``
    receives it): the projection, the T hidden states (one contiguous
    (T, B, H) block) and their pre-activation gradients, in arrays kept in the
    cell's ``buffers`` pool and reused by the next unroll of the same shape
    once no tensor of an earlier graph refers to them (see
    ``tinygraph.buffers``; ``release_buffers()`` frees them). Called by hand,
    ``step(x_t, h)`` is ``forward(x_t, h)``.
    """

    def __init__(self, input_size, hidden_size, nonlinearity="tanh", fused=True, name=None, rng=None):
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(f"RNNCell: nonlinearity must be one of {_ACTIVATIONS}, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, name=name, rng=rng, fused=fused)
        self.nonlinearity = nonlinearity
        D, H = self.input_size, self.hidden_size
        self.W_xh = self._uniform(D, H)
        self.W_hh = self._uniform(H, H)
        self.b_h = self._uniform(H)

    def _act(self, z):
        return z.tanh() if self.nonlinearity == "tanh" else z.relu()

    def forward(self, x, h):
        x = self.check_input(x)
        self.check_hidden(h, x.shape[0])
        z = product(x, self.W_xh, f"{input_symbol(x)} W_xh") + product(h, self.W_hh, "h_{t-1} W_hh")
        h_new = self._act(z + self.b_h)
        h_new.name = "h_t"
        return h_new, h_new

    # -- unroll hooks ---------------------------------------------------------------
    def initial_state(self, batch_size, dtype):
        return self.zeros(batch_size, dtype, name="h0")

    def begin_unroll(self, xs):
        if not self.fused:
            return self.textbook_inputs(xs)
        self.check_sequence(xs)
        return self.begin_fused_unroll(xs, self.W_xh, self.b_h, self.W_hh, step_blocks=1,
                                       grad_width=self.hidden_size)

    def step(self, p, h, workspace=None):
        if workspace is None:  # the textbook build, or a step called by hand
            return self.forward(p, h)
        self.check_hidden(h, p.shape[0])
        W_h = workspace.W_h
        h_new = apply(workspace.step_op(RNNCellOp, p, h, W_h), p, h, W_h, nonlinearity=self.nonlinearity)
        h_new.name = "h_t"
        return h_new, h_new

    def extra_repr(self):
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"
