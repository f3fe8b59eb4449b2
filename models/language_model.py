"""A character- or word-level language model: embedding -> recurrent layers -> output layer."""
from __future__ import annotations

import numbers

import numpy as np

from tinygraph import no_grad
from tinygraph.nn import Linear, Module

from ._build import check_tokens, recurrent_layer, sample_logits, token_embedding
from ._cell import as_rng, check_size


class LanguageModel(Module):
    """Next-token model ``p(x_{t+1} | x_1..x_t)``.

    Parameters
    ----------
    vocab_size : int
        V, number of token ids.
    hidden_size : int
        H, state size of every recurrent layer.
    cell : {"lstm", "gru", "rnn"}
        An LSTM starts with ``forget_bias=1.0``.
    embed_size : int, optional
        E, size of the token vectors (default ``hidden_size``).
    num_layers : int
    fused : bool
        Fused LSTM/GRU steps (fast, default) or the textbook graph (``False``, for pictures).
    rng : None, int or numpy.random.Generator
        Source of the initial weights.

    Attributes
    ----------
    embed : Embedding (V, E)
    rnn : models.LSTM / GRU / RNN (template names ``LSTMCell``... as usual)
    out : Linear (H, V)
    """

    def __init__(self, vocab_size, hidden_size, cell="lstm", embed_size=None, num_layers=1, fused=True, rng=None):
        super().__init__()
        self.vocab_size = check_size("LanguageModel", "vocab_size", vocab_size)
        self.hidden_size = check_size("LanguageModel", "hidden_size", hidden_size)
        self.cell_kind = str(cell).lower()
        rng = as_rng(rng, "LanguageModel")
        self.embed = token_embedding("LanguageModel", self.vocab_size, self.hidden_size, embed_size, rng)
        self.embed_size = self.embed.embedding_dim
        self.rnn = recurrent_layer("LanguageModel", cell, self.embed_size, self.hidden_size, num_layers, rng=rng,
                                   fused=fused)
        self.out = Linear(self.hidden_size, self.vocab_size, rng=rng)

    @property
    def num_layers(self):
        return self.rnn.num_layers

    def forward(self, tokens, state=None, lengths=None):
        """Logits of the next token at every position.

        Parameters
        ----------
        tokens : int array (T, B)
        state : optional initial state of ``rnn`` (default zeros)
        lengths : int array (B,), optional (see ``models.RNN``)

        Returns
        -------
        logits : Tensor (T, B, V)
        state : the recurrent layers' final state (carry it on for the next chunk)
        """
        tokens = check_tokens("LanguageModel", tokens, self.vocab_size)
        hs, state = self.rnn(self.embed(tokens), state, lengths=lengths)
        return self.out(hs), state

    def generate(self, prompt, steps, temperature=1.0, top_k=None, rng=None, stop=None):
        """Sample ``steps`` new tokens after ``prompt``.

        Runs under ``no_grad`` (no graph is recorded). The prompt warms up the
        state: all of it is read before the first new token is drawn.

        Parameters
        ----------
        prompt : 1-D int array (at least one token)
        steps : int
            Number of new tokens (fewer if ``stop`` is drawn).
        temperature : float >= 0
            Divides the logits; 0 is greedy (argmax).
        top_k : int, optional
            Sample only among the k most likely tokens.
        rng : None, int or numpy.random.Generator
            Same seed, same tokens.
        stop : int, optional
            A token id that ends generation (it is included as the last token).

        Returns
        -------
        numpy int64 array of the new tokens, shape (steps,) or shorter.
        """
        where = "LanguageModel.generate"
        prompt = check_tokens(where, prompt, self.vocab_size, what="prompt", ndim=1)
        if prompt.size == 0:
            raise ValueError(f"{where}: the prompt needs at least one token")
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ValueError(f"{where}: steps must be an integer >= 0, got {steps!r}")
        if not isinstance(temperature, numbers.Real) or not np.isfinite(temperature) or temperature < 0:
            raise ValueError(f"{where}: temperature must be a finite number >= 0, got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1):
            raise ValueError(f"{where}: top_k must be a positive integer or None, got {top_k!r}")
        rng = as_rng(rng, "LanguageModel.generate")
        out = []
        with no_grad():
            logits, state = self(prompt[:, None])
            last = logits.data[-1]
            for _ in range(int(steps)):
                token = int(sample_logits(last, temperature, top_k, rng)[0])
                out.append(token)
                if stop is not None and token == stop:
                    break
                logits, state = self(np.array([[token]]), state)
                last = logits.data[-1]
        return np.array(out, dtype=np.int64)

    def extra_repr(self):
        return (f"vocab_size={self.vocab_size}, hidden_size={self.hidden_size}, cell={self.cell_kind!r}, "
                f"embed_size={self.embed_size}, num_layers={self.num_layers}")
