"""Training recipes behind ``tinygraph train TASK``: model, batches, loss, metrics and baseline per task.

Each recipe turns a task of ``models.tasks`` into what ``models.fit`` needs and
knows how to judge the result against the task's simple baseline. The CLI
(``models.commands``) only parses arguments, runs ``fit`` and writes files.
"""
from __future__ import annotations

import numpy as np

import tinygraph as tg
from tinygraph.nn import functional as F

from . import tasks
from ._build import recurrent_layer
from .classifier import SequenceClassifier
from .language_model import LanguageModel
from .seq2seq import Seq2Seq
from .tagger import SequenceTagger


class Recipe:
    """Base: subclasses set ``task`` and ``defaults`` and define the hooks."""

    task = None
    defaults = {}
    generative = False

    def __init__(self, config):
        self.config = dict(self.defaults, **{k: v for k, v in config.items() if v is not None})
        self.seed = int(self.config.get("seed", 0))

    # hooks --------------------------------------------------------------------------
    def load(self):
        """Read or generate the data (called once before training)."""

    def build(self, fused=True):
        raise NotImplementedError

    def batches(self, epoch):
        raise NotImplementedError

    def loss(self, model, batch):
        raise NotImplementedError

    def validate(self, model):
        """Cheap metrics run during training (dict name -> float; lower is better for the first)."""
        raise NotImplementedError

    def evaluate(self, model):
        """Final metrics, with the baseline, for metrics.json."""
        return self.validate(model)

    def samples(self, model):
        """Text showing what the model does (generative tasks), or None."""
        return None

    def slice_roots(self, model):
        """Roots of a small unrolled slice to draw (built with a textbook ``fused=False`` copy)."""
        raise NotImplementedError

    def extra(self):
        """What ``tinygraph sample`` needs besides the weights (saved in the checkpoint)."""
        return {"task": self.task, "config": {k: v for k, v in self.config.items() if v is not None}}

    def textbook_copy(self, model):
        copy = self.build(fused=False)
        copy.load_state_dict(model.state_dict())
        return copy


def _rng(seed, epoch):
    return np.random.default_rng([seed, epoch])


def _cell_kwargs(config):
    return dict(cell=config["cell"], num_layers=config["layers"])


# ---------------------------------------------------------------------------------------
class Shakespeare(Recipe):
    task = "shakespeare"
    defaults = dict(cell="lstm", hidden=128, layers=1, steps=300, lr=0.005, batch=32, seq=64, max_norm=1.0,
                    val_every=50)
    generative = True

    def load(self):
        self.data = tasks.shakespeare()
        self.vocab = self.data["vocab"]
        rng = np.random.default_rng(12345)
        val = self.data["val"]
        starts = rng.integers(0, len(val) - 129, size=64)
        self.val_windows = np.stack([val[s:s + 129] for s in starts], axis=1)  # fixed (129, 64) slices

    def build(self, fused=True):
        c = self.config
        return LanguageModel(len(self.vocab), c["hidden"], embed_size=min(64, c["hidden"]), fused=fused,
                             rng=self.seed, **_cell_kwargs(c))

    def batches(self, epoch):
        c, train = self.config, self.data["train"]
        rng = _rng(self.seed, epoch)
        for _ in range(100):
            starts = rng.integers(0, len(train) - c["seq"] - 1, size=c["batch"])
            yield np.stack([train[s:s + c["seq"] + 1] for s in starts], axis=1)

    def loss(self, model, batch):
        logits, _ = model(batch[:-1])
        return F.cross_entropy(logits, batch[1:])

    def validate(self, model):
        return {"loss": self.loss(model, self.val_windows).item()}

    def evaluate(self, model, streams=64, chunk=256):
        """Loss in nats/char over the whole held-out play, read as 64 parallel streams with the state carried."""
        val = self.data["val"]
        n = (len(val) - 1) // streams
        x = val[: n * streams].reshape(streams, n).T
        y = val[1: n * streams + 1].reshape(streams, n).T
        total, count, state = 0.0, 0, None
        with tg.no_grad():
            for s in range(0, n, chunk):
                logits, state = model(x[s:s + chunk], state)
                total += F.cross_entropy(logits, y[s:s + chunk], reduction="sum").item()
                count += y[s:s + chunk].size
        unigram = np.bincount(self.data["train"], minlength=len(self.vocab)) + 1.0
        unigram /= unigram.sum()
        return {"val_loss_nats_per_char": total / count, "held_out_play": self.data["held_out"],
                "val_chars": int(count), "baseline_unigram_nats_per_char": float(-np.log(unigram[val]).mean())}

    def samples(self, model, prompt="ROMEO:\n", steps=600, temperature=0.8):
        ids = model.generate(self.vocab.encode(prompt), steps, temperature=temperature, rng=self.seed)
        return prompt + self.vocab.decode(ids)

    def slice_roots(self, model):
        copy = self.textbook_copy(model)
        text = self.vocab.encode("To be")[:, None]
        logits, _ = copy(text[:-1])
        return [F.cross_entropy(logits, text[1:])]

    def extra(self):
        return dict(super().extra(), vocab=self.vocab.chars)


# ---------------------------------------------------------------------------------------
class Adding(Recipe):
    task = "adding"
    defaults = dict(cell="lstm", hidden=32, layers=1, steps=1000, lr=0.01, batch=32, T=50, max_norm=1.0,
                    val_every=50)

    def load(self):
        self.val_x, self.val_y = tasks.adding(n=500, T=self.config["T"], seed=10_000 + self.seed)

    def build(self, fused=True):
        c = self.config
        layer = recurrent_layer("adding", c["cell"], 2, c["hidden"], c["layers"], rng=self.seed, fused=fused)
        return SequenceRegressor(layer, rng=self.seed)

    def batches(self, epoch):
        c = self.config
        for i in range(100):
            yield tasks.adding(n=c["batch"], T=c["T"], seed=[self.seed, epoch, i])

    def loss(self, model, batch):
        x, y = batch
        return F.mse_loss(model(x), y)

    def validate(self, model):
        return {"mse": self.loss(model, (self.val_x, self.val_y)).item()}

    def evaluate(self, model):
        mse = self.validate(model)["mse"]
        return {"val_mse": mse, "baseline_mse_predict_mean": float(((self.val_y - 1.0) ** 2).mean()),
                "T": self.config["T"]}

    def slice_roots(self, model):
        copy = self.textbook_copy(model)
        x, y = tasks.adding(n=1, T=3, seed=0)
        return [F.mse_loss(copy(x), y)]


class SequenceRegressor(tg.nn.Module):
    """Many-to-one regression: a recurrent layer whose last hidden state goes through a Linear
    to one number (the adding problem, forecasting)."""

    def __init__(self, layer, rng=None):
        super().__init__()
        self.rnn = layer
        self.out = tg.nn.Linear(layer.hidden_size, 1, rng=rng)

    def forward(self, x, lengths=None):
        hs, _ = self.rnn(x, lengths=lengths)
        return self.out(hs[-1]).reshape(-1)


# ---------------------------------------------------------------------------------------
class Sunspots(Recipe):
    task = "sunspots"
    defaults = dict(cell="gru", hidden=32, layers=1, steps=600, lr=0.005, batch=32, window=20, max_norm=1.0,
                    val_every=50)
    scale = 100.0

    def load(self):
        d = tasks.sunspots()
        self.series = d["values"] / self.scale
        self.split = d["split"]
        w = self.config["window"]
        self.train_x, self.train_y = tasks.windows(self.series, w, stop=self.split)
        self.test_x, self.test_y = tasks.windows(self.series, w, start=self.split)

    def build(self, fused=True):
        c = self.config
        return SequenceRegressor(recurrent_layer("sunspots", c["cell"], 1, c["hidden"], c["layers"], rng=self.seed,
                                          fused=fused), rng=self.seed)

    def batches(self, epoch):
        rng = _rng(self.seed, epoch)
        order = rng.permutation(self.train_y.size)
        b = self.config["batch"]
        for s in range(0, len(order) - b + 1, b):
            idx = order[s:s + b]
            yield self.train_x[:, idx], self.train_y[idx]

    def loss(self, model, batch):
        x, y = batch
        return F.mse_loss(model(x), y)

    def validate(self, model):
        return {"test_mse": self.loss(model, (self.test_x, self.test_y)).item()}

    def evaluate(self, model):
        mse = self.validate(model)["test_mse"]
        persistence = float(((self.test_x[-1, :, 0] - self.test_y) ** 2).mean())
        s2 = self.scale ** 2
        return {"test_mse": mse * s2, "persistence_mse": persistence * s2,
                "improvement_over_persistence": 1 - mse / persistence,
                "test_years": f"{1700 + self.split}-2008"}

    def slice_roots(self, model):
        copy = self.textbook_copy(model)
        return [F.mse_loss(copy(self.test_x[-3:, :1]), self.test_y[:1])]


# ---------------------------------------------------------------------------------------
class Copy(Recipe):
    task = "copy"
    defaults = dict(cell="lstm", hidden=64, layers=1, steps=400, lr=0.01, batch=32, k=5, delay=10,
                    max_norm=1.0, val_every=50)

    def load(self):
        c = self.config
        self.val = tasks.copy(n=500, k=c["k"], delay=c["delay"], seed=10_000 + self.seed)

    def build(self, fused=True):
        c = self.config
        return SequenceTagger(10, c["hidden"], 8, fused=fused, rng=self.seed, **_cell_kwargs(c))

    def batches(self, epoch):
        c = self.config
        for i in range(100):
            yield tasks.copy(n=c["batch"], k=c["k"], delay=c["delay"], seed=[self.seed, epoch, i])

    def loss(self, model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y, ignore_index=-1)

    def validate(self, model):
        x, y = self.val
        logits = model(x)
        mask = y >= 0
        return {"loss": F.cross_entropy(logits, y, ignore_index=-1).item(),
                "recall_accuracy": float((logits.data.argmax(-1)[mask] == y[mask]).mean())}

    def evaluate(self, model):
        m = self.validate(model)
        return {"recall_accuracy": m["recall_accuracy"], "chance": 1 / 8, "delay": self.config["delay"]}

    def slice_roots(self, model):
        copy = self.textbook_copy(model)
        x, y = tasks.copy(n=1, k=1, delay=1, seed=0)
        return [F.cross_entropy(copy(x), y, ignore_index=-1)]


# ---------------------------------------------------------------------------------------
class Dates(Recipe):
    task = "dates"
    defaults = dict(cell="gru", hidden=64, layers=1, steps=600, lr=0.01, batch=32, attention="dot",
                    max_norm=1.0, val_every=100)
    generative = True

    def load(self):
        self.train = tasks.dates(n=20000, seed=self.seed)
        self.test = tasks.dates(n=500, seed=10_000 + self.seed)
        self.src_vocab = len(tasks.generated.DATE_SOURCE_CHARS) + 3
        self.tgt_vocab = len(tasks.generated.DATE_TARGET_CHARS) + 3

    def build(self, fused=True):
        c = self.config
        attention = None if c["attention"] in (None, "none") else c["attention"]
        return Seq2Seq(self.src_vocab, self.tgt_vocab, c["hidden"], attention=attention, fused=fused,
                       rng=self.seed, **_cell_kwargs(c))

    def _subset(self, d, idx):
        L = d["src_lengths"][idx]
        return d["src"][: L.max(), idx], L, d["tgt_in"][:, idx], d["tgt_out"][:, idx]

    def batches(self, epoch):
        rng = _rng(self.seed, epoch)
        order = rng.permutation(len(self.train["texts"]))
        b = self.config["batch"]
        for s in range(0, len(order) - b + 1, b):
            yield self._subset(self.train, order[s:s + b])

    def loss(self, model, batch):
        src, L, tgt_in, tgt_out = batch
        return F.cross_entropy(model(src, tgt_in, src_lengths=L), tgt_out)

    def predict(self, model, d):
        out = model.decode(d["src"], max_len=12, bos=tasks.generated.BOS, eos=tasks.generated.EOS,
                           src_lengths=d["src_lengths"])
        want = d["tgt_out"][:-1].T
        return np.array([len(o) == 10 and np.array_equal(o, w) for o, w in zip(out, want)]), out

    def validate(self, model):
        ok, _ = self.predict(model, self.test)
        return {"error_rate": 1 - float(ok.mean())}

    def evaluate(self, model):
        ok, _ = self.predict(model, self.test)
        L = self.test["src_lengths"]
        by_length = {}
        for lo in range(8, 32, 4):
            sel = (L >= lo) & (L < lo + 4)
            if sel.any():
                by_length[f"{lo}-{lo + 3}"] = float(ok[sel].mean())
        return {"exact_match": float(ok.mean()), "exact_match_by_input_length": by_length,
                "attention": self.config["attention"]}

    def samples(self, model):
        _, out = self.predict(model, self.test)
        chars = tasks.generated.DATE_TARGET_CHARS
        lines = [f"{t!r:>32} -> {''.join(chars[i - 3] if i >= 3 else '?' for i in o)}"
                 for t, o in zip(self.test["texts"][:20], out[:20])]
        return "\n".join(lines) + "\n"

    def slice_roots(self, model):
        copy = self.textbook_copy(model)
        src, L, tgt_in, tgt_out = self._subset(self.test, np.array([0]))
        src, tgt_in, tgt_out = src[:3], tgt_in[:2], tgt_out[:2]
        return [F.cross_entropy(copy(src, tgt_in), tgt_out)]


# ---------------------------------------------------------------------------------------
class Genre(Recipe):
    task = "shakespeare-genre"
    defaults = dict(cell="gru", hidden=64, layers=1, steps=300, lr=0.005, batch=32, max_norm=1.0, val_every=100,
                    max_len=100)

    def load(self):
        self.data = tasks.shakespeare_genre(max_len=self.config["max_len"], seed=self.seed)
        # a seeded random 1000 of the held-out speeches (the test indices are sorted by play)
        self.test_idx = np.random.default_rng(self.seed).permutation(self.data["test"])[:1000]

    def build(self, fused=True):
        c = self.config
        return SequenceClassifier(len(self.data["vocab"]), c["hidden"], len(self.data["genres"]), pool="mean",
                                  fused=fused, rng=self.seed, embed_size=32, **_cell_kwargs(c))

    def _subset(self, idx):
        d = self.data
        L = d["lengths"][idx]
        return d["x"][: L.max(), idx], L, d["y"][idx]

    def batches(self, epoch):
        order = _rng(self.seed, epoch).permutation(self.data["train"])
        b = self.config["batch"]
        for s in range(0, len(order) - b + 1, b):
            yield self._subset(order[s:s + b])

    def loss(self, model, batch):
        x, L, y = batch
        return F.cross_entropy(model(x, lengths=L), y)

    def validate(self, model):
        x, L, y = self._subset(self.test_idx)
        logits = model(x, lengths=L)
        return {"loss": F.cross_entropy(logits, y).item(), "accuracy": float((logits.data.argmax(-1) == y).mean())}

    def evaluate(self, model):
        m = self.validate(model)
        y = self.data["y"]
        majority = np.bincount(y[self.data["train"]]).argmax()
        return {"test_accuracy": m["accuracy"], "majority_class_accuracy": float((y[self.test_idx] == majority).mean()),
                "test_speeches": int(len(self.test_idx))}

    def slice_roots(self, model):
        copy = self.textbook_copy(model)
        x, L, y = self._subset(self.test_idx[:1])
        return [F.cross_entropy(copy(x[:3], lengths=np.minimum(L, 3)), y)]


# ---------------------------------------------------------------------------------------
class POS(Recipe):
    task = "pos"
    defaults = dict(cell="lstm", hidden=64, layers=1, steps=400, lr=0.01, batch=32, max_norm=1.0, val_every=100,
                    data=None)

    def load(self):
        self.data = tasks.pos(path=self.config.get("data"), seed=self.seed)

    def build(self, fused=True):
        c = self.config
        return SequenceTagger(len(self.data["words"]), c["hidden"], len(self.data["tags"]), bidirectional=True,
                              fused=fused, rng=self.seed, **_cell_kwargs(c))

    def _subset(self, idx):
        d = self.data
        L = d["lengths"][idx]
        return d["x"][: L.max(), idx], L, d["y"][: L.max(), idx]

    def batches(self, epoch):
        order = _rng(self.seed, epoch).permutation(self.data["train"])
        b = self.config["batch"]
        for s in range(0, len(order) - b + 1, b):
            yield self._subset(order[s:s + b])

    def loss(self, model, batch):
        x, L, y = batch
        return F.cross_entropy(model(x, lengths=L), y, ignore_index=-1)

    def validate(self, model):
        x, L, y = self._subset(self.data["test"])
        logits = model(x, lengths=L)
        mask = y >= 0
        return {"loss": F.cross_entropy(logits, y, ignore_index=-1).item(),
                "accuracy": float((logits.data.argmax(-1)[mask] == y[mask]).mean())}

    def evaluate(self, model):
        return {"test_accuracy": self.validate(model)["accuracy"],
                "most_frequent_tag_baseline": self.data["baseline"]}

    def slice_roots(self, model):
        copy = self.textbook_copy(model)
        x, L, y = self._subset(self.data["test"][:1])
        return [F.cross_entropy(copy(x[:3], lengths=np.minimum(L, 3)), y[:3], ignore_index=-1)]


RECIPES = {r.task: r for r in (Shakespeare, Adding, Sunspots, Copy, Dates, Genre, POS)}


def recipe(task, config):
    if task not in RECIPES:
        raise ValueError(f"train: no training recipe for task {task!r}; trainable tasks: {', '.join(sorted(RECIPES))}")
    return RECIPES[task](config)
