"""The seed's sequence-modelling patterns, each trained on a toy task with the core API.

* many-to-one (an encoder for classification): is the sum of the sequence positive?
* many-to-many, aligned (sequence labelling): tag each step, is x_t larger than x_{t-1}?
* one-to-many (a decoder generating autoregressively): from one conditioning input
  (start, step), emit start, start + step, start + 2 step, ... feeding each prediction
  back in as the next input;
* encoder-decoder (sequence to sequence): read a sequence of tokens, emit it reversed;
  the encoder's final state initialises the decoder (the basic form, with its
  fixed-size bottleneck).

Every model is built from ``models.LSTM`` / ``models.GRU``, ``nn.Linear``,
``nn.Embedding`` and the functional losses; BPTT is ``loss.backward()`` on the
unrolled graph. The encoder-decoder graph is drawn in compact form (one box per
step) to ``out/seq2seq.svg`` (DOT source where Graphviz is not installed).

Run: ``python examples/sequence_patterns.py`` (about ten seconds; an optional argument,
an integer seed, changes the data and the initial weights). Accuracies and errors are
measured on a held-out batch of 1000 sequences.
"""
import os
import sys

import numpy as np

from tinygraph import models
import tinygraph as tg
from tinygraph import nn, optim
from tinygraph.drawing import dot_available, save
from tinygraph.nn import functional as F

OUT = "out"
EVAL = 1000  # sequences in the held-out batch every accuracy and error is measured on
SEED = 0
rng = np.random.default_rng(SEED)


def fit(parameters, loss_fn, steps, lr=0.02, max_norm=1.0):
    """Adam with gradient clipping; returns the mean loss of the first and the last 20 steps."""
    parameters = list(parameters)
    opt = optim.Adam(parameters, lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        optim.clip_grad_norm_(parameters, max_norm)
        opt.step()
        losses.append(loss.item())
    return float(np.mean(losses[:20])), float(np.mean(losses[-20:]))


# -- many-to-one ----------------------------------------------------------------------
class SumSign(nn.Module):
    """Encoder: an LSTM reads the sequence; its final hidden state is classified."""

    def __init__(self, hidden=16):
        super().__init__()
        self.encoder = models.LSTM(1, hidden, rng=10 * SEED + 1)
        self.head = nn.Linear(hidden, 2, rng=10 * SEED + 1)

    def forward(self, xs):
        _, (h_T, _) = self.encoder(xs)
        return self.head(h_T)  # (B, 2)


def many_to_one(steps=250, T=10, B=32):
    model = SumSign()

    def batch(size=B):
        xs = rng.normal(size=(T, size, 1))
        return xs, (xs.sum(axis=(0, 2)) > 0).astype(np.int64)

    def loss_fn():
        xs, labels = batch()
        return F.cross_entropy(model(xs), labels)

    first, last = fit(model.parameters(), loss_fn, steps)
    xs, labels = batch(EVAL)
    accuracy = float((model(xs).data.argmax(-1) == labels).mean())
    return {"loss": (first, last), "accuracy": accuracy}


# -- many-to-many, aligned ------------------------------------------------------------------
class Tagger(nn.Module):
    """A GRU over the sequence; each step's hidden state is tagged by one shared Linear."""

    def __init__(self, hidden=16):
        super().__init__()
        self.rnn = models.GRU(1, hidden, rng=10 * SEED + 2)
        self.head = nn.Linear(hidden, 2, rng=10 * SEED + 2)

    def forward(self, xs):
        hs, _ = self.rnn(xs)  # (T, B, H)
        return self.head(hs)  # (T, B, 2): class axis last


def many_to_many(steps=250, T=12, B=32):
    model = Tagger()

    def batch(size=B):
        xs = rng.normal(size=(T, size, 1))
        rising = np.zeros((T, size), dtype=np.int64)
        rising[1:] = xs[1:, :, 0] > xs[:-1, :, 0]
        return xs, rising

    def loss_fn():
        xs, tags = batch()
        return F.cross_entropy(model(xs)[1:], tags[1:])  # step 0 has no predecessor: not tagged

    first, last = fit(model.parameters(), loss_fn, steps)
    xs, tags = batch(EVAL)
    accuracy = float((model(xs).data.argmax(-1)[1:] == tags[1:]).mean())
    return {"loss": (first, last), "accuracy": accuracy}


# -- one-to-many -----------------------------------------------------------------------------
class Continuer(nn.Module):
    """A decoder conditioned on one input: ``(start, step)`` sets its initial state, and
    it emits ``start, start + step, start + 2 step, ...`` one value at a time, each
    prediction fed back in as the next input."""

    def __init__(self, hidden=24):
        super().__init__()
        self.condition = nn.Linear(2, hidden, rng=10 * SEED + 3)
        self.decoder = models.LSTM(1, hidden, output_size=1, rng=10 * SEED + 3)

    def initial_state(self, condition):
        h0 = self.condition(condition).tanh()
        return h0, tg.tensor(np.zeros(h0.shape, dtype=h0.dtype))

    def forward(self, inputs, condition):
        outputs, _ = self.decoder(inputs, self.initial_state(condition))
        return outputs

    def generate(self, condition, length):
        state = self.initial_state(condition)
        value = tg.tensor(condition.data[None, :, :1])  # the first value is the start
        out = [value.data[0, :, 0]]
        with tg.no_grad():
            for _ in range(length - 1):
                value, state = self.decoder(value, state)  # one step per call, continuing the state
                out.append(value.data[0, :, 0])
        return np.stack(out)


def one_to_many(steps=300, T=10, B=32):
    model = Continuer()

    def batch(size=B):
        start = rng.uniform(-1, 1, size=(size, 1))
        step = rng.uniform(-0.15, 0.15, size=(size, 1))
        seq = start + step * np.arange(T)[:, None, None]  # (T, B, 1)
        return tg.tensor(np.concatenate([start, step], axis=1)), seq

    def loss_fn():
        condition, seq = batch()
        return F.mse_loss(model(seq[:-1], condition), seq[1:])  # teacher forcing: true previous value in

    first, last = fit(model.parameters(), loss_fn, steps, lr=0.01)
    condition, seq = batch(EVAL)
    generated = model.generate(condition, T)
    error = float(np.abs(generated - seq[:, :, 0]).mean())
    constant = float(np.abs(seq[:, :, 0] - seq[:1, :, 0]).mean())  # error of repeating the start
    return {"loss": (first, last), "generation error": error, "repeat-start error": constant}


# -- encoder-decoder -------------------------------------------------------------------------
class Reverser(nn.Module):
    """Encoder-decoder: the encoder's final state initialises the decoder, which is fed the
    previous target token (teacher forcing) and predicts the next one."""

    def __init__(self, vocab=6, hidden=48, embed=12):
        super().__init__()
        self.start = vocab  # an extra token that starts decoding
        self.embed = nn.Embedding(vocab + 1, embed, rng=10 * SEED + 4)
        self.encoder = models.LSTM(embed, hidden, name="encoder", rng=10 * SEED + 4)
        self.decoder = models.LSTM(embed, hidden, output_size=vocab, name="decoder", rng=10 * SEED + 5)

    def forward(self, tokens, decoder_inputs):
        _, state = self.encoder(self.embed(tokens))
        logits, _ = self.decoder(self.embed(decoder_inputs), state)
        return logits  # (T_out, B, vocab)

    def greedy(self, tokens, length):
        _, state = self.encoder(self.embed(tokens))
        token = np.full((1, tokens.shape[1]), self.start)
        out = []
        with tg.no_grad():
            for _ in range(length):
                logits, state = self.decoder(self.embed(token), state)
                token = logits.data.argmax(-1)
                out.append(token[0])
        return np.stack(out)


def encoder_decoder(steps=500, T=4, B=32, vocab=6):
    model = Reverser(vocab)

    def batch(size=B):
        tokens = rng.integers(0, vocab, size=(T, size))
        target = tokens[::-1]
        decoder_inputs = np.concatenate([np.full((1, size), vocab), target[:-1]])
        return tokens, decoder_inputs, target

    def loss_fn():
        tokens, decoder_inputs, target = batch()
        return F.cross_entropy(model(tokens, decoder_inputs), target)

    first, last = fit(model.parameters(), loss_fn, steps, lr=0.01)
    tokens, decoder_inputs, target = batch(EVAL)
    accuracy = float((model.greedy(tokens, T) == target).mean())
    logits = model(tokens[:, :1], decoder_inputs[:, :1])
    loss = F.cross_entropy(logits, target[:, :1])
    loss.name = "loss"
    return {"loss": (first, last), "greedy token accuracy": accuracy,
            "chance": 1.0 / vocab}, tg.Graph(loss).instances(), loss


def main():
    results = {}
    print("many-to-one (sequence classification, LSTM encoder)")
    results["many-to-one"] = many_to_one()
    print("many-to-many, aligned (tagging every step, GRU)")
    results["many-to-many"] = many_to_many()
    print("one-to-many (autoregressive generation, LSTM decoder)")
    results["one-to-many"] = one_to_many()
    print("encoder-decoder (reverse a token sequence, LSTM encoder + LSTM decoder)")
    results["encoder-decoder"], instances, loss = encoder_decoder()
    print()
    for name, metrics in results.items():
        first, last = metrics.pop("loss")
        extra = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        print(f"{name:16s} loss {first:.3f} -> {last:.3f}; {extra}")
    print("encoder-decoder graph:", dict(instances))
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "seq2seq." + ("svg" if dot_available() else "dot"))
    save(tg.draw(loss, compact=True), path)
    print("wrote", path)
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1:  # python examples/sequence_patterns.py SEED: other data and initial weights
        SEED = int(sys.argv[1])
        rng = np.random.default_rng(SEED)
    # float64: training then follows the same path on every machine's BLAS kernel (set here,
    # not at import, so a script importing these models keeps its own default dtype)
    with tg.default_dtype(np.float64):
        main()
