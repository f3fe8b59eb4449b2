"""Named, seeded, offline tasks for sequence models; each returns numpy arrays.

``names()`` lists them, ``describe(name)`` gives the source, license and size,
``load(name, **options)`` returns the data. Nothing downloads at run time: the
generated tasks are made from a seed, the real data ships in this package
(``data/``) or comes from a declared package (the ``tasks`` extra).
"""
from __future__ import annotations

from ._registry import TaskInfo, describe, load, names
from .generated import adding, copy, dates
from .series import sunspots, windows
from .text import CharVocab, shakespeare, shakespeare_genre
from .tagging import pos, read_conllu

__all__ = ["names", "describe", "load", "TaskInfo", "adding", "copy", "dates", "sunspots", "windows",
           "shakespeare", "shakespeare_genre", "CharVocab", "pos", "read_conllu"]
