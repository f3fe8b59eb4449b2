"""The op table and the ``Op`` base class, with helpers shared by several ops."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, shape_str

OPS: dict[str, "Op"] = {}


def register(cls):
    """Class decorator: instantiate the op and add it to ``OPS`` under ``cls.name``."""
    if cls.name in OPS:
        raise ValueError(f"op {cls.name!r} is registered twice")
    OPS[cls.name] = cls()
    return cls


class Op:
    name = "op"
    kind = "custom"
    domain = "real"
    symbol = None  # short label for drawings, e.g. "+"
    check = None
    # True if ``vjp`` accepts a lazy output gradient (a ``ScatterSum``) as ``g``;
    # otherwise the engine materialises it first.
    lazy_grad = False

    def forward(self, *xs, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, g, out, *xs, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

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
