"""The op table and the ``Op`` base class, with helpers shared by several ops."""
from __future__ import annotations

import warnings

import numpy as np

from ..errors import ShapeError, shape_str

OPS: dict[str, "Op"] = {}


def is_builtin(op):
    """Whether ``op`` (an Op instance) is one of tinygraph's own ops."""
    return type(op).__module__.startswith("tinygraph.")


def register(cls):
    """Class decorator: instantiate the op and add it to ``OPS`` under ``cls.name``.

    Re-running a notebook cell that defines and registers the same class again
    (same module and qualified name, e.g. ``__main__.Square``) replaces the
    earlier registration with a warning. Any other clash, and in particular
    one with a built-in op's name, is a ``ValueError``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Op)):
        raise TypeError(f"register: expected a subclass of tinygraph.Op, got {cls!r}")
    if not isinstance(cls.name, str) or not cls.name or cls.name == Op.name:
        raise ValueError(f"register: op class {cls.__qualname__} must set a class attribute 'name' "
                         f"(a non-empty string other than {Op.name!r})")
    existing = OPS.get(cls.name)
    if existing is not None:
        old = type(existing)
        if is_builtin(existing) or (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            where = "a built-in op" if is_builtin(existing) else f"{old.__module__}.{old.__qualname__}"
            raise ValueError(f"register: op name {cls.name!r} is already taken by {where}; "
                             f"give {cls.__module__}.{cls.__qualname__} another name")
        warnings.warn(f"register: op {cls.name!r} ({cls.__module__}.{cls.__qualname__}) registered again; "
                      f"the new definition replaces the old one", stacklevel=2)
    OPS[cls.name] = cls()
    return cls


def lookup(op):
    """The registered Op instance for ``op``: an op name, a registered Op subclass or an instance."""
    if isinstance(op, Op):
        return op
    if isinstance(op, type) and issubclass(op, Op):
        registered = OPS.get(op.name)
        if registered is None or type(registered) is not op:
            raise ValueError(f"apply: op class {op.__qualname__} is not registered; decorate it with "
                             f"@tinygraph.register")
        return registered
    if isinstance(op, str):
        if op not in OPS:
            raise ValueError(f"apply: no op named {op!r} is registered")
        return OPS[op]
    raise TypeError(f"apply: expected an op name, an Op subclass or an Op instance, got {type(op).__name__}")


class Op:
    """Base class of ops: a forward computation on numpy arrays and its vector-Jacobian product.

    Subclass it to define your own op, register it, and apply it to tensors::

        @tinygraph.register
        class Square(tinygraph.Op):
            name = "square"

            def forward(self, x):               # numpy in, numpy out
                return x * x

            def vjp(self, g, out, x):           # one gradient per input
                return (2 * x * g,)

        y = Square.apply(x)                     # or tinygraph.apply("square", x)

    ``forward(*xs, **attrs)`` receives the inputs' arrays (non-Tensor operands
    become constant tensors first) and keyword attributes; ``vjp(g, out, *xs,
    **attrs)`` receives the output gradient ``g`` (shape of ``out``), the
    forward output and the same inputs, and returns a tuple with one gradient
    per input (``None`` for an input that gets none). A gradient may have the
    broadcast shape of the output: the engine sums it back to the input's shape.
    Check it with ``tinygraph.gradcheck`` or ``tinygraph.check_graph``.
    """

    name = "op"
    kind = "custom"
    domain = "real"
    symbol = None  # short label for drawings, e.g. "+"
    check = None
    # How many tensors ``forward`` returns. With more than one, ``forward`` returns a tuple
    # of arrays, ``apply`` a tuple of Tensors (each a node with the op's inputs as parents),
    # and ``vjp(gs, outs, *xs)`` receives the tuples of output gradients (None for an output
    # that received none) and of output arrays.
    n_outputs = 1
    # True if ``vjp`` accepts a lazy output gradient (a ``ScatterSum``) as ``g``;
    # otherwise the engine materialises it first.
    lazy_grad = False

    def forward(self, *xs, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, g, out, *xs, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **attrs):
        """Apply this (registered) op to ``inputs``; returns the output Tensor."""
        from ..tensor import apply as apply_op

        return apply_op(lookup(cls), *inputs, **attrs)

    def __repr__(self):
        return f"<op {self.name}>"


def is_advanced_index(index):
    """Whether ``index`` uses numpy advanced (integer-array) indexing."""
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (np.ndarray, list)) for i in items)


def check_buffer(op_name, what, buf, shape, dtype):
    """An output buffer given to an op must be a writeable array of exactly the right shape and dtype."""
    if buf is None:
        return
    if not isinstance(buf, np.ndarray) or buf.shape != tuple(shape) or buf.dtype != dtype or not buf.flags.writeable:
        got = (f"{type(buf).__name__}" if not isinstance(buf, np.ndarray)
               else f"{shape_str(buf.shape)} {buf.dtype}{'' if buf.flags.writeable else ' (read-only)'}")
        raise ShapeError(f"{op_name}: {what} must be a writeable array of shape {shape_str(tuple(shape))} "
                         f"and dtype {dtype}, got {got}")
