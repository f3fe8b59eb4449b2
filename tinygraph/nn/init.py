"""Initial values for Parameters: drawn in float64, then cast to the default dtype in force."""
from __future__ import annotations

import numbers

import numpy as np

from ..config import get_default_dtype


def make_rng(rng, where):
    """A ``numpy.random.Generator`` from ``None`` (fresh entropy), an int seed or a Generator."""
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"{where}: rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def uniform(shape, bound, rng):
    """Array of ``shape`` drawn from U(-bound, bound), in the default dtype."""
    return rng.uniform(-bound, bound, size=shape).astype(get_default_dtype())


def normal(shape, std, rng):
    """Array of ``shape`` drawn from N(0, std**2), in the default dtype."""
    return (rng.standard_normal(size=shape) * std).astype(get_default_dtype())
