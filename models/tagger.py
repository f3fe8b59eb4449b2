"""Many-to-many aligned: one label per time step (e.g. part-of-speech tags), optionally bidirectional."""
from __future__ import annotations

import numpy as np

from tinygraph import concat
from tinygraph.nn import Linear, Module

from ._build import check_features, check_tokens, input_layer, recurrent_layer
from ._cell import as_rng, check_size
from .recurrent import check_lengths


def reverse_index(lengths, T):
    """(T, B) time indices that reverse each sequence within its length (padding stays in place).

    ``x[idx, arange(B)]`` is the batch with every sequence reversed; applying it
    twice gives back the original order.
    """
    t = np.arange(T)[:, None]
    L = np.asarray(lengths)[None, :]
    return np.where(t < L, L - 1 - t, t)


class SequenceTagger(Module):
    """A recurrent layer and a linear layer applied at every step: logits (T, B, num_tags).

    Parameters
    ----------
    vocab_size_or_input_size : int
        V for token inputs (``tokens=True``) or D for feature inputs.
    hidden_size : int
    num_tags : int
    cell : {"lstm", "gru", "rnn"}
    bidirectional : bool
        Add a second recurrent layer that reads each sequence backwards
        (within its length); its template is named ``"backward"`` (the forward
        one ``"forward"``), so a drawing shows two rows of clusters. The output
        layer reads ``[h_forward, h_backward]`` (2H).
    tokens : bool
    embed_size : int, optional
    num_layers : int
    rng : None, int or numpy.random.Generator

    Calling ``model(x, lengths=None)`` returns logits (T, B, num_tags); rows
    past a sequence's length are meaningless (mask them in the loss, e.g.
    ``cross_entropy(..., ignore_index=-1)`` with padded targets -1).
    """

    def __init__(self, vocab_size_or_input_size, hidden_size, num_tags, cell="lstm", bidirectional=False,
                 tokens=True, embed_size=None, num_layers=1, fused=True, rng=None):
        super().__init__()
        kind = type(self).__name__
        size = check_size(kind, "vocab_size_or_input_size", vocab_size_or_input_size)
        self.hidden_size = check_size(kind, "hidden_size", hidden_size)
        self.num_tags = check_size(kind, "num_tags", num_tags)
        self.tokens, self.bidirectional = bool(tokens), bool(bidirectional)
        rng = as_rng(rng)
        in_size = input_layer(self, kind, self.tokens, size, self.hidden_size, embed_size, rng)
        names = ("forward", "backward") if self.bidirectional else (None, None)
        self.rnn = recurrent_layer(kind, cell, in_size, self.hidden_size, num_layers, rng=rng, name=names[0],
                                   fused=fused)
        if self.bidirectional:
            self.rnn_backward = recurrent_layer(kind, cell, in_size, self.hidden_size, num_layers, rng=rng,
                                                name=names[1], fused=fused)
        self.out = Linear(self.hidden_size * (2 if self.bidirectional else 1), self.num_tags, rng=rng)

    def forward(self, x, lengths=None):
        """Logits (T, B, num_tags) for inputs (T, B) ints or (T, B, D) floats and optional lengths (B,)."""
        kind = type(self).__name__
        if self.tokens:
            x = check_tokens(kind, x, self.vocab_size)
        else:
            x = check_features(kind, x, self.input_size, self.out.W.dtype)
        T, B = x.shape[0], x.shape[1]
        embed = self.embed if self.tokens else (lambda v: v)
        hs, _ = self.rnn(embed(x), lengths=lengths)
        if self.bidirectional:
            full = np.full(B, T) if lengths is None else check_lengths(kind, lengths, T, B)
            idx, cols = reverse_index(full, T), np.arange(B)[None, :]
            back, _ = self.rnn_backward(embed(x[idx, cols]), lengths=lengths)
            hs = concat([hs, back[idx, cols]], axis=2)
        return self.out(hs)
