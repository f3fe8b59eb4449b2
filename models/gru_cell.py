"""The GRU cell as a graph template."""
from __future__ import annotations

from tinygraph import concat
from tinygraph.tensor import apply

from ._cell import RecurrentCell, input_symbol, name_tensors as _name, product
from ._fused_ops import GRUCellOp



class GRUCell(RecurrentCell):
    r"""Gated recurrent unit (one time step), a ``tinygraph.Template``.

    Reference semantics (row vectors, batch first; ``*`` is elementwise)::

        r_t = sigmoid(x_t @ W_xr + h_{t-1} @ W_hr + b_r)             reset gate
        z_t = sigmoid(x_t @ W_xz + h_{t-1} @ W_hz + b_z)             update gate
        n_t = tanh(x_t @ W_xn + b_n + r_t * (h_{t-1} @ W_hn + b_hn))  candidate
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    This is the variant of cuDNN and PyTorch (the reset gate scales
    ``h @ W_hn + b_hn`` rather than ``h`` itself), which lets the three
    hidden-to-gate products run as one matmul.

    Parameters
    ----------
    input_size : int
        D, features of ``x_t``.
    hidden_size : int
        H, size of the hidden state.
    fused : bool
        Under ``unroll``, run the fused form (default, fast: what training
        runs; see Notes) or, with ``fused=False``, the textbook graph: each
        step's instance holds the equations above as written (per gate a
        matmul pair, the bias adds and the nonlinearity, then ``h_t``), and
        nothing is concatenated or projected outside the steps. Same values.
    name : str, optional
        Template name used in ``Tensor.instance`` (default ``"GRUCell"``).
    rng : None, int or numpy.random.Generator
        Source of the ``uniform(-1/sqrt(H), 1/sqrt(H))`` initial weights.

    Attributes
    ----------
    W_xr, W_xz, W_xn : Parameter (D, H)
    W_hr, W_hz, W_hn : Parameter (H, H)
    b_r, b_z, b_n, b_hn : Parameter (H,)

    Notes
    -----
    ``forward(x, h)`` takes ``x`` (B, D) and ``h`` (B, H) and returns
    ``(h_t, h_t)`` and builds the textbook graph (every step of a
    ``fused=False`` unroll is exactly that). Fused, under ``tinygraph.unroll``,
    ``begin_unroll`` concatenates the gate matrices once and projects all T
    inputs with one matmul (gate order n, r, z, so that the ``gru_cell`` op's
    pre-activation gradients for ``x_proj`` and ``W_h`` are two overlapping
    views of one (B, 4H) array); each step runs one ``gru_cell`` op with
    ``W_h`` of shape (H, 3H), gate order r, z, n.

    Workspace (fused): the steps write their outputs ``[h r z n hn]`` into the
    slots of the unroll's ``FusedWorkspace`` (``begin_unroll`` returns it, each
    ``step`` receives it; the cell holds no unroll state), whose arrays come
    from the cell's ``buffers`` pool (``tinygraph.buffers``;
    ``release_buffers()`` frees them). Called by hand, ``step(x_t, h)`` (no
    workspace) is ``forward(x_t, h)``.
    """

    def __init__(self, input_size, hidden_size, fused=True, name=None, rng=None):
        super().__init__(input_size, hidden_size, name=name, rng=rng, fused=fused)
        D, H = self.input_size, self.hidden_size
        for gate in "rzn":
            setattr(self, f"W_x{gate}", self._uniform(D, H))
        for gate in "rzn":
            setattr(self, f"W_h{gate}", self._uniform(H, H))
        for gate in "rzn":
            setattr(self, f"b_{gate}", self._uniform(H))
        self.b_hn = self._uniform(H)

    def forward(self, x, h):
        x = self.check_input(x)
        self.check_hidden(h, x.shape[0])
        x_name = input_symbol(x)

        def xw(gate):
            return product(x, getattr(self, f"W_x{gate}"), f"{x_name} W_x{gate}")

        def hw(gate):
            return product(h, getattr(self, f"W_h{gate}"), f"h_{{t-1}} W_h{gate}")

        r = (xw("r") + hw("r") + self.b_r).sigmoid()
        z = (xw("z") + hw("z") + self.b_z).sigmoid()
        n = (xw("n") + self.b_n + r * (hw("n") + self.b_hn)).tanh()
        new_part, old_part = (1.0 - z) * n, z * h
        h_new = new_part + old_part
        _name(r=r, z=z, n=n, h_t=h_new)
        new_part.name, old_part.name = "(1-z) n", "z h_{t-1}"
        return h_new, h_new

    # -- unroll hooks: the fused form of the same equations -------------------------
    def initial_state(self, batch_size, dtype):
        return self.zeros(batch_size, dtype, name="h0")

    def begin_unroll(self, xs):
        if not self.fused:
            return self.textbook_inputs(xs)
        self.check_sequence(xs)
        W_h = concat([self.W_hr, self.W_hz, self.W_hn], axis=1)
        # gate order n, r, z for the projected inputs (see gru_cell)
        W_x = concat([self.W_xn, self.W_xr, self.W_xz], axis=1)
        b = concat([self.b_n, self.b_r, self.b_z], axis=0)
        return self.begin_fused_unroll(xs, W_x, b, W_h, step_blocks=5)

    def step(self, p, h, workspace=None):
        if workspace is None:  # the textbook build, or a step called by hand
            return self.forward(p, h)
        self.check_hidden(h, p.shape[0])
        W_h = workspace.W_h
        h_new = apply(workspace.step_op(GRUCellOp, p, h, W_h, self.b_hn), p, h, W_h, self.b_hn)
        _name(h_t=h_new)
        return h_new, h_new
