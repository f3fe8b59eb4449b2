"""Many-to-one: one label per sequence, read from each sequence's last valid state (or pooled)."""
from __future__ import annotations

import numpy as np

from tinygraph import tensor, where
from tinygraph.nn import Linear, Module

from ._build import check_features, check_tokens, hidden_of, input_layer, last_layer, recurrent_layer
from ._cell import as_rng, check_size
from .recurrent import check_lengths

POOLS = ("last", "mean", "max")


class SequenceClassifier(Module):
    """A recurrent encoder followed by a linear layer on one summary vector per sequence.

    Parameters
    ----------
    vocab_size_or_input_size : int
        V (token ids in, ``tokens=True``) or D (feature vectors in, ``tokens=False``).
    hidden_size : int
    num_classes : int
    cell : {"lstm", "gru", "rnn"}
    tokens : bool
        Inputs are int token arrays (T, B) looked up in an embedding (default),
        or float feature arrays (T, B, D).
    embed_size : int, optional
        E for tokens (default ``hidden_size``).
    num_layers : int
    pool : {"last", "mean", "max"}
        The summary: the hidden state at each sequence's last valid step
        (default), or the mean / elementwise max of its valid hidden states.
    rng : None, int or numpy.random.Generator

    Calling ``model(x, lengths=None)`` returns logits (B, num_classes).
    """

    def __init__(self, vocab_size_or_input_size, hidden_size, num_classes, cell="lstm", tokens=True,
                 embed_size=None, num_layers=1, pool="last", fused=True, rng=None):
        super().__init__()
        kind = type(self).__name__
        size = check_size(kind, "vocab_size_or_input_size", vocab_size_or_input_size)
        self.hidden_size = check_size(kind, "hidden_size", hidden_size)
        self.num_classes = check_size(kind, "num_classes", num_classes)
        if pool not in POOLS:
            raise ValueError(f"{kind}: pool must be one of {POOLS}, got {pool!r}")
        self.pool, self.tokens = pool, bool(tokens)
        rng = as_rng(rng)
        in_size = input_layer(self, kind, self.tokens, size, self.hidden_size, embed_size, rng)
        self.rnn = recurrent_layer(kind, cell, in_size, self.hidden_size, num_layers, rng=rng, fused=fused)
        self.out = Linear(self.hidden_size, self.num_classes, rng=rng)

    def encode(self, x, lengths=None):
        """The recurrent layers over ``x``: ``(hidden states (T, B, H), final_state)``."""
        kind = type(self).__name__
        if self.tokens:
            x = self.embed(check_tokens(kind, x, self.vocab_size))
        else:
            x = check_features(kind, x, self.input_size, self.out.W.dtype)
        return self.rnn(x, lengths=lengths)

    def forward(self, x, lengths=None):
        """Logits (B, num_classes) for inputs (T, B) ints or (T, B, D) floats and optional lengths (B,)."""
        hs, final = self.encode(x, lengths)
        T, B = hs.shape[0], hs.shape[1]
        if lengths is None:
            lengths = np.full(B, T)
        lengths = check_lengths(type(self).__name__, lengths, T, B)
        if self.pool == "last":
            # masking holds each sequence's state after its last valid step
            summary = hidden_of(last_layer(final, self.rnn.num_layers))
        elif self.pool == "mean":
            scale = tensor((1.0 / lengths)[:, None], dtype=hs.dtype)
            summary = hs.sum(axis=0) * scale  # steps past a length are zero
        else:
            valid = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
            summary = where(valid, hs, -np.inf).max(axis=0)
        return self.out(summary)
