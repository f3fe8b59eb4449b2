"""tinygraph: a reverse-mode autodiff engine on numpy whose computation graph
is an object you can inspect and draw; recurrent cells are graph templates."""
from ._version import __version__
from .config import (
    default_dtype,
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
)
from .errors import GradcheckError, ShapeError
from .tensor import Tensor, concat, maximum, minimum, stack, tensor, where
from .graph import Graph
from .gradcheck import gradcheck
from .check import check_graph
from .ops import OPS, Op, register
from .ops import lookup as _lookup_op
from .tensor import apply as _apply_op


def apply(op, *inputs, **attrs):
    """Apply ``op`` (a registered op's name, its ``Op`` subclass or an instance) to ``inputs``.

    Non-Tensor operands (numbers, arrays) become constant tensors. Returns the
    output Tensor, recorded in the graph when an input requires grad.
    """
    return _apply_op(_lookup_op(op), *inputs, **attrs)


from . import nn
from . import optim
from .serialization import load, save
from .template import Template
from .unrolling import unroll
from .drawing import draw

__all__ = [
    "__version__", "Tensor", "tensor", "concat", "stack", "maximum", "minimum", "where", "no_grad", "enable_grad",
    "is_grad_enabled", "set_default_dtype", "get_default_dtype", "default_dtype", "Graph", "gradcheck",
    "GradcheckError", "ShapeError", "OPS", "Op", "register", "apply", "nn", "Template", "unroll", "optim", "save", "load", "draw",
    "check_graph",
]
