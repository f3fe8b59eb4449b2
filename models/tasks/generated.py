"""Generated tasks (made from a seed): the adding problem, copy/recall, date formats."""
from __future__ import annotations

import datetime
import numbers

import numpy as np

from ._registry import task


def _check_int(where, name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{where}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


@task("adding", "regression",
      "the adding problem (Hochreiter & Schmidhuber 1997): sum the two marked numbers of a length-T sequence",
      "generated from a seed", "-", "any n; default T = 50")
def adding(n=1000, T=50, seed=0):
    """The adding problem.

    Each step has two features: a number in U(0, 1) and a marker, 1 at exactly
    two random positions (one in each half) and 0 elsewhere. The target is the
    sum of the two marked numbers. Predicting the mean (1.0) gives MSE 1/6 = 0.167.

    Returns
    -------
    x : float32 array (T, n, 2) (time-major)
    y : float32 array (n,)
    """
    n, T = _check_int("adding", "n", n), _check_int("adding", "T", T, low=2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, size=(T, n))
    marks = np.zeros((T, n))
    first = rng.integers(0, T // 2, size=n)
    second = rng.integers(T // 2, T, size=n)
    marks[first, np.arange(n)] = 1
    marks[second, np.arange(n)] = 1
    x = np.stack([values, marks], axis=2).astype(np.float32)
    return x, (values * marks).sum(axis=0).astype(np.float32)


@task("copy", "tagging",
      "copy/recall: read k symbols, wait through a delay of blanks, then write the k symbols back",
      "generated from a seed", "-", "any n; default k = 5 symbols of 8, delay 10")
def copy(n=1000, k=5, delay=10, symbols=8, seed=0):
    """Copy / recall memory task.

    Token ids: ``0..symbols-1`` are the symbols, ``symbols`` is the blank,
    ``symbols + 1`` the "write now" marker. Input: k symbols, ``delay``
    blanks, the marker, then k - 1 blanks; the targets are -1 (ignored)
    everywhere except the last k steps, which hold the k symbols.

    Returns
    -------
    x : int64 array (k + delay + k, n)
    y : int64 array (k + delay + k, n), -1 where nothing is asked
    """
    n, k = _check_int("copy", "n", n), _check_int("copy", "k", k)
    delay, symbols = _check_int("copy", "delay", delay, low=0), _check_int("copy", "symbols", symbols, low=2)
    rng = np.random.default_rng(seed)
    data = rng.integers(0, symbols, size=(k, n))
    blank, go = symbols, symbols + 1
    x = np.concatenate([data, np.full((delay, n), blank), np.full((1, n), go), np.full((k - 1, n), blank)])
    y = np.concatenate([np.full((k + delay, n), -1), data])
    return x.astype(np.int64), y.astype(np.int64)


DATE_FORMATS = ("%d %B %Y", "%B %d, %Y", "%d/%m/%Y", "%a %d %b %Y", "%A, %B %d, %Y", "%Y%m%d")
DATE_SOURCE_CHARS = " ,/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DATE_TARGET_CHARS = "-0123456789"
PAD, BOS, EOS = 0, 1, 2


@task("dates", "seq2seq", "date formats: 'Tuesday, March 04, 1997' -> '1997-03-04' (character level)",
      "generated from a seed (Python's datetime, C locale names)", "-", "any n; inputs 8-29 characters")
def dates(n=1000, seed=0, start_year=1900, end_year=2099):
    """Human-written dates to ISO 8601, one character per token.

    Token ids: 0 pad, 1 bos, 2 eos, then the characters (``source_chars`` /
    ``target_chars``). Targets are ``YYYY-MM-DD`` + eos (11 tokens).

    Returns
    -------
    dict with ``src`` (S, n) int64 padded with 0, ``src_lengths`` (n,),
    ``tgt_in`` (11, n) (bos + date), ``tgt_out`` (11, n) (date + eos),
    ``texts`` (list of the input strings), ``source_chars``, ``target_chars``.
    """
    n = _check_int("dates", "n", n)
    rng = np.random.default_rng(seed)
    first = datetime.date(start_year, 1, 1).toordinal()
    last = datetime.date(end_year, 12, 31).toordinal()
    days = rng.integers(first, last + 1, size=n)
    fmts = rng.integers(0, len(DATE_FORMATS), size=n)
    src_ids = {c: i + 3 for i, c in enumerate(DATE_SOURCE_CHARS)}
    tgt_ids = {c: i + 3 for i, c in enumerate(DATE_TARGET_CHARS)}
    texts, isos = [], []
    for d, f in zip(days, fmts):
        date = datetime.date.fromordinal(int(d))
        text = date.strftime(DATE_FORMATS[f])
        if rng.random() < 0.5:
            text = text.lower()
        texts.append(text)
        isos.append(date.isoformat())
    lengths = np.array([len(t) for t in texts])
    src = np.zeros((lengths.max(), n), dtype=np.int64)
    for b, t in enumerate(texts):
        src[: len(t), b] = [src_ids[c] for c in t]
    tgt = np.array([[tgt_ids[c] for c in iso] for iso in isos], dtype=np.int64).T  # (10, n)
    tgt_in = np.concatenate([np.full((1, n), BOS), tgt])
    tgt_out = np.concatenate([tgt, np.full((1, n), EOS)])
    return {"src": src, "src_lengths": lengths, "tgt_in": tgt_in, "tgt_out": tgt_out, "texts": texts,
            "source_chars": DATE_SOURCE_CHARS, "target_chars": DATE_TARGET_CHARS}
