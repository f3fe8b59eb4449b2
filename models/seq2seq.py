"""Encoder-decoder: the encoder's final state starts the decoder; optional attention."""
from __future__ import annotations

import numbers

import numpy as np

from tinygraph import concat, no_grad, stack
from tinygraph.config import instance_scope
from tinygraph.instance import Run
from tinygraph.nn import Linear, Module

from ._build import check_tokens, recurrent_layer, token_embedding
from ._cell import as_rng, check_size
from .attention import make_attention
from .recurrent import check_lengths


class Seq2Seq(Module):
    """Sequence-to-sequence model: ``encoder`` and ``decoder`` recurrent layers, optional attention.

    Parameters
    ----------
    src_vocab, tgt_vocab : int
        Source and target vocabulary sizes.
    hidden_size : int
    cell : {"lstm", "gru", "rnn"}
    attention : None, "dot" or "additive"
        Without attention the decoder sees the source only through the
        encoder's final state (a fixed-size bottleneck). With attention, each
        output step also reads a weighted average of all encoder states
        (Luong style: ``o_t = tanh([h_t, context_t] @ W_c)``, logits ``o_t @ W_out``).
    embed_size : int, optional (default ``hidden_size``)
    num_layers : int
    rng : None, int or numpy.random.Generator

    Templates (and drawing clusters): ``encoder``, ``decoder``, ``attention``.

    Attributes
    ----------
    last_attention : numpy array (T_out, B, S) or None
        The attention weights of the last ``forward`` or greedy ``decode`` call,
        one row per output step (for a heatmap).
    """

    def __init__(self, src_vocab, tgt_vocab, hidden_size, cell="lstm", attention=None, embed_size=None,
                 num_layers=1, fused=True, rng=None):
        super().__init__()
        kind = "Seq2Seq"
        self.src_vocab = check_size(kind, "src_vocab", src_vocab)
        self.tgt_vocab = check_size(kind, "tgt_vocab", tgt_vocab)
        self.hidden_size = H = check_size(kind, "hidden_size", hidden_size)
        rng = as_rng(rng)
        self.attention_kind = attention
        self.src_embed = token_embedding(kind, self.src_vocab, H, embed_size, rng)
        self.tgt_embed = token_embedding(kind, self.tgt_vocab, H, embed_size, rng)
        E = self.src_embed.embedding_dim
        self.encoder = recurrent_layer(kind, cell, E, H, num_layers, rng=rng, name="encoder", fused=fused)
        self.decoder = recurrent_layer(kind, cell, E, H, num_layers, rng=rng, name="decoder", fused=fused)
        self.attention = make_attention(attention, H, rng=rng)
        if self.attention is not None:
            self.combine = Linear(2 * H, H, rng=rng)
        self.out = Linear(H, self.tgt_vocab, rng=rng)
        object.__setattr__(self, "last_attention", None)

    # -- pieces ------------------------------------------------------------------------
    def encode(self, src, src_lengths=None):
        """``(encoder states (S, B, H), final state)``; the final state is each sequence's last valid one."""
        src = check_tokens("Seq2Seq", src, self.src_vocab, what="src")
        if src_lengths is not None:
            src_lengths = check_lengths("Seq2Seq", src_lengths, src.shape[0], src.shape[1])
        keys, state = self.encoder(self.src_embed(src), lengths=src_lengths)
        if self.attention is not None:
            mask = None if src_lengths is None else np.arange(src.shape[0])[:, None] < src_lengths[None, :]
            self.attention.set_mask(mask)
        return keys, state

    def _readout(self, h, keys, step=None, run=None):
        """Logits (B, V) and attention weights (B, S) or None for decoder states ``h`` (B, H).

        With ``run`` (one ``tinygraph.instance.Run`` per forward pass) the attention
        call is the instance ``("attention", step)`` of that run, so the graph counts
        and draws one attention step per decoder step (``attention t=step``); a
        plain template call would start a new run each time (attention has no state
        that links one call to the next).
        """
        if self.attention is None:
            return self.out(h), None
        if run is None:
            context, weights = self.attention(h, keys)
        else:
            with instance_scope(self.attention.template_name, step, run=run):
                context, weights = self.attention.forward(h, keys)
        o = self.combine(concat([h, context], axis=1)).tanh()
        return self.out(o), weights

    def forward(self, src, tgt_in, src_lengths=None, sampling=0.0, rng=None):
        """Teacher-forced logits.

        Parameters
        ----------
        src : int array (S, B)
        tgt_in : int array (T_out, B)
            The decoder's inputs: the target shifted right, starting with ``bos``.
        src_lengths : int array (B,), optional
        sampling : float in [0, 1]
            Scheduled sampling: at each step after the first, each sequence
            reads the model's own previous greedy prediction instead of the
            true token with this probability (0 = pure teacher forcing).
        rng : None, int or Generator (for ``sampling``)

        Returns
        -------
        logits : Tensor (T_out, B, tgt_vocab)
        """
        tgt_in = check_tokens("Seq2Seq", tgt_in, self.tgt_vocab, what="tgt_in")
        if not isinstance(sampling, numbers.Real) or not 0 <= sampling <= 1:
            raise ValueError(f"Seq2Seq: sampling must be a probability in [0, 1], got {sampling!r}")
        keys, state = self.encode(src, src_lengths)
        if tgt_in.shape[1] != keys.shape[1]:
            raise ValueError(f"Seq2Seq: src has batch size {keys.shape[1]} but tgt_in has {tgt_in.shape[1]}")
        if sampling == 0 and self.attention is None:
            hs, _ = self.decoder(self.tgt_embed(tgt_in), state)
            object.__setattr__(self, "last_attention", None)
            return self.out(hs)
        if sampling == 0:
            # the decoder's recurrence does not read the context (Luong), so it unrolls in one go
            hs, _ = self.decoder(self.tgt_embed(tgt_in), state)
            run = Run(self.attention.template_name, self.attention)
            steps = [self._readout(hs[t], keys, t, run) for t in range(tgt_in.shape[0])]
        else:
            rng, steps, previous = as_rng(rng), [], None
            run = None if self.attention is None else Run(self.attention.template_name, self.attention)
            for t in range(tgt_in.shape[0]):
                token = tgt_in[t]
                if previous is not None:
                    own = rng.random(token.shape[0]) < sampling
                    token = np.where(own, previous, token)
                h, state = self.decoder(self.tgt_embed(token[None]), state)
                steps.append(self._readout(h[0], keys, t, run))
                previous = steps[-1][0].data.argmax(axis=-1)
        weights = [w for _, w in steps]
        object.__setattr__(self, "last_attention",
                           None if weights[0] is None else np.stack([w.data for w in weights]))
        return stack([logits for logits, _ in steps], axis=0)

    # -- decoding ----------------------------------------------------------------------
    def decode(self, src, max_len, bos, eos, beam_size=1, src_lengths=None):
        """Translate without teacher forcing (under ``no_grad``).

        Parameters
        ----------
        src : int array (S, B)
        max_len : int
            Most tokens to produce per sequence.
        bos, eos : int
            Start token fed first; end token that stops a sequence (not included in the result).
        beam_size : int
            1 is greedy; k > 1 keeps the k best partial outputs by total
            log-probability (a finished hypothesis competes with its score at ``eos``).
        src_lengths : int array (B,), optional

        Returns
        -------
        list of B 1-D int64 arrays (without ``bos`` and ``eos``).
        """
        where = "Seq2Seq.decode"
        for name, value in (("max_len", max_len), ("beam_size", beam_size)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
        for name, value in (("bos", bos), ("eos", eos)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < self.tgt_vocab:
                raise ValueError(f"{where}: {name} must be a token id in [0, {self.tgt_vocab}), got {value!r}")
        src = check_tokens(where, src, self.src_vocab, what="src")
        with no_grad():
            if beam_size == 1:
                return self._greedy(src, max_len, bos, eos, src_lengths)
            out = []
            for b in range(src.shape[1]):
                lengths = None if src_lengths is None else [np.asarray(src_lengths)[b]]
                out.append(self._beam(src[:, b:b + 1], max_len, bos, eos, beam_size, lengths))
            return out

    def _greedy(self, src, max_len, bos, eos, src_lengths):
        keys, state = self.encode(src, src_lengths)
        B = src.shape[1]
        token = np.full(B, bos)
        tokens, done, weights = [], np.zeros(B, dtype=bool), []
        for _ in range(max_len):
            h, state = self.decoder(self.tgt_embed(token[None]), state)
            logits, w = self._readout(h[0], keys)
            token = logits.data.argmax(axis=-1)
            tokens.append(np.where(done, eos, token))
            if w is not None:
                weights.append(w.data)
            done |= token == eos
            if done.all():
                break
        object.__setattr__(self, "last_attention", np.stack(weights) if weights else None)
        tokens = np.stack(tokens, axis=1)
        result = []
        for row in tokens:
            stop = np.flatnonzero(row == eos)
            result.append(row[: stop[0] if stop.size else len(row)].astype(np.int64))
        return result

    def _beam(self, src, max_len, bos, eos, k, src_lengths):
        keys, state = self.encode(src, src_lengths)
        # hypotheses: (score, tokens, state); run the live ones as one batch
        live = [(0.0, [], state)]
        finished = []
        for _ in range(max_len):
            B = len(live)
            batch_state = _cat_states([s for _, _, s in live])
            tokens = np.array([hyp[-1] if hyp else bos for _, hyp, _ in live])
            h, new_state = self.decoder(self.tgt_embed(tokens[None]), batch_state)
            wide = keys if B == 1 else concat([keys] * B, axis=1)
            logits, _ = self._readout(h[0], wide)
            z = logits.data.astype(np.float64)
            logp = z - z.max(axis=1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
            candidates = []
            for i, (score, hyp, _) in enumerate(live):
                for tok in np.argsort(-logp[i])[:k]:
                    candidates.append((score + logp[i, tok], hyp + [int(tok)], i))
            candidates.sort(key=lambda c: -c[0])
            live = []
            for score, hyp, i in candidates:
                if hyp[-1] == eos:
                    finished.append((score, hyp[:-1]))
                else:
                    live.append((score, hyp, _pick_state(new_state, i)))
                if len(live) == k:
                    break
            if not live or (finished and max(f[0] for f in finished) >= live[0][0]):
                break  # log-probabilities only fall: no live hypothesis can beat the best finished one
        pool = finished or [(s, h) for s, h, _ in live]
        best = max(pool, key=lambda f: f[0])[1]
        return np.array(best, dtype=np.int64)


def _map_state(fn, state):
    if isinstance(state, (tuple, list)):
        return type(state)(_map_state(fn, s) for s in state)
    return fn(state)


def _cat_states(states):
    if len(states) == 1:
        return states[0]
    first = states[0]
    if isinstance(first, (tuple, list)):
        return type(first)(_cat_states([s[j] for s in states]) for j in range(len(first)))
    return concat(list(states), axis=0)


def _pick_state(state, i):
    return _map_state(lambda s: s[i:i + 1], state)
