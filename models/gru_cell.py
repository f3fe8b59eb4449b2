"""The GRU cell as a graph template."""
from __future__ import annotations

from tinygraph import concat

from ._cell import RecurrentCell, name_tensors as _name, project_sequence


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
    ``(h_t, h_t)``. Under ``tinygraph.unroll``, ``begin_unroll`` concatenates
    the gate matrices once (order r, z, n) and projects all T inputs with one
    matmul; each step runs one ``h_{t-1} @ W_h`` with ``W_h`` of shape (H, 3H).
    """

    def __init__(self, input_size, hidden_size, name=None, rng=None):
        super().__init__(input_size, hidden_size, name=name, rng=rng)
        D, H = self.input_size, self.hidden_size
        for gate in "rzn":
            setattr(self, f"W_x{gate}", self._uniform(D, H))
        for gate in "rzn":
            setattr(self, f"W_h{gate}", self._uniform(H, H))
        for gate in "rzn":
            setattr(self, f"b_{gate}", self._uniform(H))
        self.b_hn = self._uniform(H)
        object.__setattr__(self, "_W_h", None)

    def forward(self, x, h):
        x = self.check_input(x)
        self.check_hidden(h, x.shape[0])
        r = (x @ self.W_xr + h @ self.W_hr + self.b_r).sigmoid()
        z = (x @ self.W_xz + h @ self.W_hz + self.b_z).sigmoid()
        n = (x @ self.W_xn + self.b_n + r * (h @ self.W_hn + self.b_hn)).tanh()
        h_new = (1.0 - z) * n + z * h
        _name(r=r, z=z, n=n, h=h_new)
        return h_new, h_new

    # -- unroll hooks: the fused form of the same equations -------------------------
    def initial_state(self, batch_size, dtype):
        return self.zeros(batch_size, dtype, name="h0")

    def begin_unroll(self, xs):
        self.check_sequence(xs)
        W_x = concat([self.W_xr, self.W_xz, self.W_xn], axis=1)
        b = concat([self.b_r, self.b_z, self.b_n], axis=0)
        object.__setattr__(self, "_W_h", concat([self.W_hr, self.W_hz, self.W_hn], axis=1))
        return project_sequence(xs, W_x, b)

    def step(self, p, h):
        self.check_hidden(h, p.shape[0])
        H = self.hidden_size
        a = h @ self._W_h
        rz = (p[:, : 2 * H] + a[:, : 2 * H]).sigmoid()
        r, z = rz[:, :H], rz[:, H:]
        n = (p[:, 2 * H:] + r * (a[:, 2 * H:] + self.b_hn)).tanh()
        h_new = n + z * (h - n)
        _name(r=r, z=z, n=n, h=h_new)
        return h_new, h_new

    def end_unroll(self):
        object.__setattr__(self, "_W_h", None)
