"""The op table: every primitive op's forward and vector-Jacobian product, side by side.

An op is a class with

* ``forward(*xs, **attrs) -> ndarray``: the numpy computation;
* ``vjp(g, out, *xs, **attrs) -> tuple``: one gradient per input (``None`` for
  an input that gets none), given the output gradient ``g`` and the forward
  output ``out``. A gradient may have the *broadcast* shape of the output: the
  engine sums it back to the input's shape (``unbroadcast``) in one place and
  checks every edge's shape there;
* ``n_outputs`` (optional, default 1): an op with several outputs returns a
  tuple of arrays from ``forward``, ``apply`` returns a tuple of Tensors, and
  ``vjp(gs, outs, *xs)`` receives the tuples of output gradients (None for an
  output that got none) and output arrays;
* ``check(*xs, **attrs)`` (optional): validates operands before forward and
  raises a clear ``ValueError``/``TypeError`` naming the op and the shapes;
* ``saves`` (optional): the input positions (and ``"out"``) whose *values* the
  VJP reads. Backward raises ``ModifiedInPlaceError`` when one of them was
  modified after the node was made; without the attribute every input and the
  output count (docs/reliability.md).

Registering the class with ``@register`` puts it in ``OPS``. The tests read
``OPS`` and check every op's gradient against finite differences, and the
drawing reads ``OPS`` for labels, so adding an op is a one-place change.

Metadata read by the tests: ``kind`` (how to draw inputs: ``"unary"``,
``"binary"``, ``"reduce"``, ``"matmul"``, ``"reshape"``, ``"transpose"``,
``"index"``, ``"join"``, ``"softmax"``, ``"cross_entropy"``) and ``domain``
(``"real"``, ``"positive"``, ``"away_from_zero"``, ``"distinct"``) for inputs
where finite differences are valid.

The ops live in one module per family (``elementwise``, ``reduce``, ``matmul``,
``shape``, ``softmax``: the fused ``log_softmax`` and ``cross_entropy``; the fused recurrent cells' ops are custom ops of ``tinygraph.models``);
``lazy`` holds the deferred gradient sums the engine
understands, ``base`` the table itself.
"""
from .base import OPS, Op, check_buffer, is_advanced_index, is_builtin, lookup, register
from .lazy import LAZY_GRADIENTS, OuterSum, ScatterSum, dense, join_tiles

# Registration order is the order of ``OPS`` (the tests and the drawing read it).
from . import elementwise, reduce, matmul, shape, softmax  # noqa: E402,F401  (each module registers its ops)
from .reduce import normalize_axis  # noqa: E402

__all__ = [
    "OPS", "Op", "register", "lookup", "is_builtin", "check_buffer", "is_advanced_index",
    "LAZY_GRADIENTS", "OuterSum", "ScatterSum", "dense", "join_tiles", "normalize_axis",
]
