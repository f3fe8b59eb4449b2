"""Attention over encoder states, as graph templates (one instance per decoder step)."""
from __future__ import annotations

import math

import numpy as np

from tinygraph import Template, get_default_dtype, where
from tinygraph.nn import Parameter
from tinygraph.nn.functional import softmax

from ._cell import as_rng, check_size


class Attention(Template):
    """Base: ``forward(query, keys) -> (context, weights)``.

    ``keys`` are the encoder's hidden states (S, B, H) and ``query`` the decoder's
    state (B, H) at one output step. ``weights`` (B, S) is a softmax over the S
    source positions (zero at padded positions when ``set_mask`` gave a mask),
    and ``context = sum_s weights[:, s] * keys[s]`` (B, H).
    """

    def __init__(self, name="attention"):
        super().__init__(name=name)
        object.__setattr__(self, "_mask", None)

    def set_mask(self, mask):
        """(S, B) boolean array of valid source positions, or None (all valid)."""
        object.__setattr__(self, "_mask", None if mask is None else np.asarray(mask, dtype=bool))

    def scores(self, query, keys):
        raise NotImplementedError

    def forward(self, query, keys):
        scores = self.scores(query, keys)  # (S, B)
        if self._mask is not None:
            scores = where(self._mask, scores, -1e30)  # a padded position gets weight exp(-1e30) = 0
        weights = softmax(scores, axis=0)
        weights.name = "attention weights"
        context = (weights.reshape(*weights.shape, 1) * keys).sum(axis=0)
        context.name = "context"
        return context, weights.T


class DotAttention(Attention):
    """Luong's dot score: ``score_s = keys[s] . query`` (no parameters)."""

    def scores(self, query, keys):
        return (keys * query).sum(axis=2)


class AdditiveAttention(Attention):
    """Bahdanau's additive score: ``score_s = v . tanh(keys[s] @ W_k + query @ W_q)``.

    Parameters ``W_k (H, A)``, ``W_q (H, A)``, ``v (A,)`` with A = ``attention_size``.
    """

    def __init__(self, hidden_size, attention_size=None, rng=None, name="attention"):
        super().__init__(name=name)
        H = check_size("AdditiveAttention", "hidden_size", hidden_size)
        A = check_size("AdditiveAttention", "attention_size", attention_size or hidden_size)
        rng, dtype, bound = as_rng(rng), get_default_dtype(), 1.0 / math.sqrt(H)
        self.W_k = Parameter(rng.uniform(-bound, bound, (H, A)).astype(dtype))
        self.W_q = Parameter(rng.uniform(-bound, bound, (H, A)).astype(dtype))
        self.v = Parameter(rng.uniform(-bound, bound, A).astype(dtype))

    def scores(self, query, keys):
        return ((keys @ self.W_k + query @ self.W_q).tanh() * self.v).sum(axis=2)


def make_attention(kind, hidden_size, rng=None):
    if kind is None:
        return None
    if kind == "dot":
        return DotAttention()
    if kind == "additive":
        return AdditiveAttention(hidden_size, rng=rng)
    raise ValueError(f"Seq2Seq: attention must be None, 'dot' or 'additive', got {kind!r}")
