"""Layers: Linear, Embedding, Dropout, Sequential and activation modules."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import shape_str
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter


def _check_size(where, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


class Linear(Module):
    """Affine map ``y = x @ W + b`` (row-vector convention).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Include ``b`` (default True).
    rng : None, int or numpy.random.Generator
        Source of the initial values.

    Attributes
    ----------
    W : Parameter, shape (in_features, out_features)
    b : Parameter, shape (out_features,), or None without bias
        Both start uniform in ``(-1/sqrt(in_features), 1/sqrt(in_features))``
        and take the default dtype in force at construction.

    Shapes
    ------
    ``x`` of shape ``(..., in_features)`` gives ``(..., out_features)``.
    A numpy array ``x`` is converted to the parameters' dtype; a Tensor is used as is.
    """

    def __init__(self, in_features, out_features, bias=True, rng=None):
        super().__init__()
        self.in_features = _check_size("Linear", "in_features", in_features)
        self.out_features = _check_size("Linear", "out_features", out_features)
        rng = init.make_rng(rng, "Linear")
        bound = 1.0 / math.sqrt(self.in_features)
        self.W = Parameter(init.uniform((self.in_features, self.out_features), bound, rng))
        self.b = Parameter(init.uniform((self.out_features,), bound, rng)) if bias else None

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = F._as_tensor(x, "Linear", "input", dtype=self.W.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}): input of shape {shape_str(x.shape)} "
                f"does not fit; expected shape (..., {self.in_features})"
            )
        y = x @ self.W
        return y if self.b is None else y + self.b

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.b is not None}"


class Embedding(Module):
    """A lookup table: row ``i`` of ``weight`` is the vector of token ``i``.

    Parameters
    ----------
    num_embeddings : int
        Number of rows (vocabulary size).
    embedding_dim : int
    rng : None, int or numpy.random.Generator

    Attributes
    ----------
    weight : Parameter, shape (num_embeddings, embedding_dim)
        Starts standard normal, in the default dtype.

    Shapes
    ------
    An integer index array of any shape ``S`` gives ``S + (embedding_dim,)``.
    Rows picked several times accumulate their gradients.
    """

    def __init__(self, num_embeddings, embedding_dim, rng=None):
        super().__init__()
        self.num_embeddings = _check_size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _check_size("Embedding", "embedding_dim", embedding_dim)
        rng = init.make_rng(rng, "Embedding")
        self.weight = Parameter(init.normal((self.num_embeddings, self.embedding_dim), 1.0, rng))

    def forward(self, indices):
        where = f"Embedding({self.num_embeddings}, {self.embedding_dim})"
        if isinstance(indices, Tensor):
            raise TypeError(
                f"{where}: indices must be an integer numpy array, got a Tensor of dtype {indices.dtype} "
                f"(tensors are float; pass e.g. np.array(ids))"
            )
        idx = np.asarray(indices)
        if idx.dtype == np.bool_ or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"{where}: indices must be integers, got dtype {idx.dtype} of shape {shape_str(idx.shape)}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            bad = idx[(idx < 0) | (idx >= self.num_embeddings)].flat[0]
            raise ValueError(
                f"{where}: index {bad} is out of range; expected 0 <= index < {self.num_embeddings}"
            )
        return self.weight[idx]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class Dropout(Module):
    """During training, zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    In eval mode (``module.eval()``) it is the identity.

    Parameters
    ----------
    p : float in [0, 1]
    rng : None, int or numpy.random.Generator
        Source of the masks (seed it for reproducible runs).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        F._check_probability("Dropout", p)
        self.p = float(p)
        self.rng = init.make_rng(rng, "Dropout")

    def forward(self, x):
        return F.dropout(x, self.p, training=self.training, rng=self.rng)

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Modules applied one after another; sub-modules are named ``0``, ``1``, ...

    Example: ``Sequential(Linear(2, 8), Tanh(), Linear(8, 1))``.
    """

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, expected a Module")
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))


class Tanh(Module):
    """Elementwise ``tanh`` as a module (for ``Sequential``)."""

    def forward(self, x):
        return F.tanh(x)


class ReLU(Module):
    """Elementwise ``max(x, 0)`` as a module (for ``Sequential``)."""

    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    """Elementwise sigmoid as a module (for ``Sequential``)."""

    def forward(self, x):
        return F.sigmoid(x)
