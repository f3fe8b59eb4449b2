"""The LSTM cell as a graph template."""
from __future__ import annotations

from tinygraph import concat
from tinygraph.tensor import apply

from ._cell import RecurrentCell, input_symbol, name_tensors as _name, product
from ._fused_ops import LSTMCellOp

# Order of the gates in the fused matrices: the three sigmoid gates first, so one
# sigmoid covers a contiguous block and one tanh the candidate block.
FUSED_ORDER = ("i", "f", "o", "g")


class LSTMCell(RecurrentCell):
    r"""Long short-term memory cell (one time step), a ``tinygraph.Template``.

    Reference semantics (row vectors, batch first; ``*`` is elementwise)::

        i_t = sigmoid(x_t @ W_xi + h_{t-1} @ W_hi + b_i)    input gate
        f_t = sigmoid(x_t @ W_xf + h_{t-1} @ W_hf + b_f)    forget gate
        g_t = tanh   (x_t @ W_xg + h_{t-1} @ W_hg + b_g)    candidate
        o_t = sigmoid(x_t @ W_xo + h_{t-1} @ W_ho + b_o)    output gate
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    Parameters
    ----------
    input_size : int
        D, features of ``x_t``.
    hidden_size : int
        H, size of ``h`` and ``c``.
    forget_bias : float, optional
        If given, ``b_f`` starts at this constant instead of a random draw
        (1.0 is the usual choice: the cell starts out remembering).
    fused : bool
        Under ``unroll``, run the fused form (default, fast: what training
        runs): the gate matrices concatenated once, all T input projections as
        one matmul and each step as the single ``lstm_cell`` op. Or, with
        ``fused=False``, the textbook graph: each step's instance holds the
        equations above as written, per gate a matmul pair, the bias add and
        the nonlinearity, then ``c_t`` and ``h_t``, and nothing is
        concatenated or projected outside the steps. Same values either way.
    name : str, optional
        Template name used in ``Tensor.instance`` (default ``"LSTMCell"``).
    rng : None, int or numpy.random.Generator
        Source of the ``uniform(-1/sqrt(H), 1/sqrt(H))`` initial weights.

    Attributes
    ----------
    W_xi, W_xf, W_xg, W_xo : Parameter (D, H)
    W_hi, W_hf, W_hg, W_ho : Parameter (H, H)
    b_i, b_f, b_g, b_o : Parameter (H,)

    Notes
    -----
    The state is the pair ``(h, c)``, each (B, H); ``forward(x, (h, c))``
    returns ``(h_t, (h_t, c_t))`` and computes each gate from its own
    matrices, exactly as written above (the textbook graph; every step of a
    ``fused=False`` unroll is exactly that). Under ``tinygraph.unroll`` with the
    default ``fused=True`` the same equations run fused: ``begin_unroll`` concatenates the gate matrices once
    (``W_x`` (D, 4H), ``W_h`` (H, 4H), ``b`` (4H,), gate order i, f, o, g) and
    projects all T inputs with one ``(T*B, D) @ (D, 4H)`` matmul; each step
    then runs a single ``h_{t-1} @ W_h``. The parameters stay per gate, and
    their gradients flow back through the concatenation.

    Workspace: under ``unroll`` the fused form keeps everything of one unroll
    on a ``FusedWorkspace`` (``begin_unroll`` returns it, each ``step``
    receives it; the cell itself holds no unroll state). Its big arrays come
    from the cell's ``buffers`` pool and are reused by the next unroll of the
    same shape once nothing refers to them (``tinygraph.buffers``);
    ``release_buffers()`` frees them. Called by hand, ``step(x_t, state)``
    (no workspace) is ``forward(x_t, state)``.
    """

    def __init__(self, input_size, hidden_size, forget_bias=None, fused=True, name=None, rng=None):
        super().__init__(input_size, hidden_size, name=name, rng=rng, fused=fused)
        D, H = self.input_size, self.hidden_size
        for gate in "ifgo":
            setattr(self, f"W_x{gate}", self._uniform(D, H))
        for gate in "ifgo":
            setattr(self, f"W_h{gate}", self._uniform(H, H))
        for gate in "ifgo":
            setattr(self, f"b_{gate}", self._uniform(H))
        if forget_bias is not None:
            self.b_f.data[...] = float(forget_bias)

    def forward(self, x, state):
        x = self.check_input(x)
        h, c = self._split_state(state, x.shape[0])
        x_name = input_symbol(x)

        def pre(gate):  # x_t W_xk + h_{t-1} W_hk + b_k
            return (product(x, getattr(self, f"W_x{gate}"), f"{x_name} W_x{gate}")
                    + product(h, getattr(self, f"W_h{gate}"), f"h_{{t-1}} W_h{gate}") + getattr(self, f"b_{gate}"))

        i = pre("i").sigmoid()
        f = pre("f").sigmoid()
        g = pre("g").tanh()
        o = pre("o").sigmoid()
        kept, written = f * c, i * g
        c_new = kept + written
        squashed = c_new.tanh()
        h_new = o * squashed
        _name(i=i, f=f, g=g, o=o, c_t=c_new, h_t=h_new)
        kept.name, written.name, squashed.name = "f c_{t-1}", "i g", "tanh(c_t)"
        return h_new, (h_new, c_new)

    def _split_state(self, state, batch):
        if not (isinstance(state, (tuple, list)) and len(state) == 2):
            raise ValueError(
                f"{self.template_name}: the state must be a pair (h, c) of (B, H) tensors, got {type(state).__name__}"
            )
        h, c = state
        self.check_hidden(h, batch, "h")
        self.check_hidden(c, batch, "c")
        return h, c

    # -- unroll hooks: the fused form of the same equations -------------------------
    def initial_state(self, batch_size, dtype):
        return self.zeros(batch_size, dtype, name="h0"), self.zeros(batch_size, dtype, name="c0")

    def fused_weights(self):
        """``(W_x (D,4H), W_h (H,4H), b (4H,))``: the gate parameters concatenated in
        the order i, f, o, g (graph nodes, so gradients reach the per-gate parameters)."""
        W_x = concat([getattr(self, f"W_x{k}") for k in FUSED_ORDER], axis=1)
        W_h = concat([getattr(self, f"W_h{k}") for k in FUSED_ORDER], axis=1)
        b = concat([getattr(self, f"b_{k}") for k in FUSED_ORDER], axis=0)
        return W_x, W_h, b

    def begin_unroll(self, xs):
        if not self.fused:
            return self.textbook_inputs(xs)
        self.check_sequence(xs)
        W_x, W_h, b = self.fused_weights()
        return self.begin_fused_unroll(xs, W_x, b, W_h, step_blocks=7)

    def step(self, p, state, workspace=None):
        if workspace is None:  # the textbook build, or a step called by hand
            return self.forward(p, state)
        h, c = self._split_state(state, p.shape[0])
        h_new, c_new = apply(workspace.step_op(LSTMCellOp, p, h, c, workspace.W_h), p, h, workspace.W_h, c)
        _name(c_t=c_new, h_t=h_new)
        return h_new, (h_new, c_new)
