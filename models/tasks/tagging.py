"""Part-of-speech tagging from a CoNLL-U treebank (Universal Dependencies format)."""
from __future__ import annotations

import os

import numpy as np

from ._registry import task

UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")
ENV = "TINYGRAPH_CONLLU"


def read_conllu(path):
    """Sentences of a CoNLL-U file as lists of ``(form, upos)`` pairs (multiword and empty nodes skipped)."""
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line:
                if current:
                    sentences.append(current)
                current = []
                continue
            if line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise ValueError(f"read_conllu: {path}:{number}: expected 10 tab-separated columns, got {len(cols)}")
            if "-" in cols[0] or "." in cols[0]:
                continue
            current.append((cols[1], cols[3]))
    if current:
        sentences.append(current)
    return sentences


@task("pos", "tagging", "part-of-speech tagging (UPOS) of the words of real sentences, from a CoNLL-U file",
      "a Universal Dependencies treebank you point to (path= or $TINYGRAPH_CONLLU); none is shipped yet",
      "that of the treebank (e.g. UD English-EWT: CC BY-SA 4.0)", "the treebank's",
      requires="a CoNLL-U file (path= or $TINYGRAPH_CONLLU)")
def pos(path=None, test_fraction=0.2, seed=0, min_count=2):
    """Word-level POS tagging data from a CoNLL-U treebank.

    Returns
    -------
    dict with ``x`` (T, N) word ids (0 = padding, 1 = unknown), ``y`` (T, N)
    tag ids (-1 at padding), ``lengths`` (N,), ``words``, ``tags`` (UPOS),
    index arrays ``train`` / ``test`` (seeded split of the sentences) and
    ``baseline``: the accuracy on ``test`` of tagging each word with its most
    frequent training tag (unknown words: the most frequent tag overall).
    """
    path = path or os.environ.get(ENV)
    if not path:
        raise FileNotFoundError(
            "pos: no treebank given. Pass path= (or set $TINYGRAPH_CONLLU) to a Universal Dependencies "
            "CoNLL-U file, e.g. en_ewt-ud-train.conllu from the UD English-EWT treebank (CC BY-SA 4.0)")
    sentences = read_conllu(path)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sentences))
    cut = int(len(order) * (1 - test_fraction))
    train, test = np.sort(order[:cut]), np.sort(order[cut:])
    counts = {}
    for i in train:
        for form, _ in sentences[i]:
            counts[form.lower()] = counts.get(form.lower(), 0) + 1
    words = ["<pad>", "<unk>"] + sorted(w for w, c in counts.items() if c >= min_count)
    word_id = {w: i for i, w in enumerate(words)}
    tag_id = {t: i for i, t in enumerate(UPOS)}
    T = max(len(s) for s in sentences)
    x = np.zeros((T, len(sentences)), dtype=np.int64)
    y = np.full((T, len(sentences)), -1, dtype=np.int64)
    for b, s in enumerate(sentences):
        x[: len(s), b] = [word_id.get(f.lower(), 1) for f, _ in s]
        y[: len(s), b] = [tag_id.get(t, tag_id["X"]) for _, t in s]
    # most-frequent-tag baseline from the training sentences
    table = np.zeros((len(words), len(UPOS)), dtype=np.int64)
    np.add.at(table, (x[:, train][y[:, train] >= 0], y[:, train][y[:, train] >= 0]), 1)
    overall = table.sum(axis=0).argmax()
    guess = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), overall)
    guess[1] = overall
    mask = y[:, test] >= 0
    baseline = float((guess[x[:, test][mask]] == y[:, test][mask]).mean())
    return {"x": x, "y": y, "lengths": np.array([len(s) for s in sentences]), "words": words, "tags": UPOS,
            "train": train, "test": test, "baseline": baseline}
