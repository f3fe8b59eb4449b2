"""Shared pieces of the task models: picking a recurrent layer by name, checking token arrays."""
from __future__ import annotations

import numpy as np

from tinygraph import Tensor, tensor
from tinygraph.nn import Embedding

from ._cell import check_size, shape_text
from .recurrent import GRU, LSTM, RNN

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def recurrent_layer(owner, cell, input_size, hidden_size, num_layers=1, rng=None, name=None, fused=True):
    """``models.LSTM/GRU/RNN(input_size, hidden_size, ...)`` for ``cell`` in ``"lstm" | "gru" | "rnn"``.

    An LSTM gets ``forget_bias=1.0`` (``b_f`` starts at 1: the cell starts out remembering).
    """
    if not isinstance(cell, str) or cell.lower() not in CELLS:
        raise ValueError(f"{owner}: cell must be one of 'lstm', 'gru', 'rnn', got {cell!r}")
    cls = CELLS[cell.lower()]
    options = {"fused": fused}
    if cls is LSTM:
        options["forget_bias"] = 1.0  # start out remembering (Jozefowicz et al. 2015); the usual choice
    return cls(input_size, hidden_size, num_layers=num_layers, rng=rng, name=name, **options)


def token_embedding(owner, vocab_size, hidden_size, embed_size, rng):
    """``Embedding(vocab_size, embed_size)`` (``embed_size`` defaults to ``hidden_size``), its rows
    scaled by 0.3: unit-normal rows would saturate the gates at the start."""
    dim = check_size(owner, "embed_size", hidden_size if embed_size is None else embed_size)
    embed = Embedding(vocab_size, dim, rng=rng)
    embed.weight.data *= 0.3
    return embed


def input_layer(module, owner, tokens, size, hidden_size, embed_size, rng):
    """Set up what reads a model's input and return the recurrent layer's input size.

    With ``tokens`` the input is token ids: ``module.vocab_size = size`` and
    ``module.embed`` embeds them; otherwise the input is ``size`` features per
    step (``module.input_size = size``).
    """
    if tokens:
        module.vocab_size = size
        module.embed = token_embedding(owner, size, hidden_size, embed_size, rng)
        return module.embed.embedding_dim
    module.input_size = size
    return size


def check_tokens(owner, tokens, vocab_size, what="tokens", ndim=2):
    """``tokens`` as an integer array of ``ndim`` dimensions with entries in ``[0, vocab_size)``."""
    if isinstance(tokens, Tensor):
        raise TypeError(f"{owner}: {what} must be an integer numpy array, got a Tensor (tensors are float)")
    arr = np.asarray(tokens)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{owner}: {what} must be integer token ids, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        want = "(T, B)" if ndim == 2 else "(T,)"
        raise ValueError(f"{owner}: expected {what} of shape {want} (time-major), got shape {shape_text(arr.shape)}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = arr[(arr < 0) | (arr >= vocab_size)].flat[0]
        raise ValueError(f"{owner}: {what}: id {int(bad)} is outside the vocabulary 0 <= id < {vocab_size}")
    return arr


def check_features(owner, x, input_size, dtype):
    """``x`` as a (T, B, input_size) Tensor."""
    x = x if isinstance(x, Tensor) else tensor(np.asarray(x), dtype=dtype)
    if x.ndim != 3 or x.shape[2] != input_size:
        raise ValueError(f"{owner}: expected a time-major input of shape (T, B, {input_size}), "
                         f"got shape {shape_text(x.shape)}")
    return x


def last_layer(state, num_layers):
    """The last layer's state of a recurrent layer's ``final_state``."""
    return state if num_layers == 1 else state[-1]


def hidden_of(state):
    """``h`` of a layer state (``h`` or ``(h, c)``)."""
    return state[0] if isinstance(state, tuple) else state


def sample_logits(logits, temperature, top_k, rng):
    """One token id per row of ``logits`` (B, V) (numpy): greedy at temperature 0, else softmax sampling."""
    if temperature == 0:
        return logits.argmax(axis=-1)
    z = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k][:, None]
        z = np.where(z < kth, -np.inf, z)
    z = z - z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=-1, keepdims=True)
    u = rng.random(z.shape[0])[:, None]
    # inverse-CDF sampling: one uniform draw per row, so a seeded rng reproduces the tokens
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), z.shape[-1] - 1)
