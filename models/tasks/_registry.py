"""The list of tasks: name -> loader and what it is (source, license, size)."""
from __future__ import annotations

from typing import NamedTuple


class TaskInfo(NamedTuple):
    name: str
    kind: str          # "regression", "language-model", "classification", "tagging", "forecasting", "seq2seq"
    description: str
    source: str
    license: str
    size: str
    requires: str      # "" or the extra / package to install


_TASKS = {}


def task(name, kind, description, source, license, size, requires=""):
    """Register the decorated loader under ``name``."""
    def register(fn):
        _TASKS[name] = (fn, TaskInfo(name, kind, description, source, license, size, requires))
        return fn
    return register


def names():
    """The task names, sorted."""
    from . import generated, series, tagging, text  # noqa: F401  (registering)
    return sorted(_TASKS)


def describe(name):
    """The ``TaskInfo`` of a task (source, license, size, what it needs)."""
    names()
    if name not in _TASKS:
        raise ValueError(f"tasks: unknown task {name!r}; the tasks are {', '.join(sorted(_TASKS))}")
    return _TASKS[name][1]


def load(name, **options):
    """Call the task's loader, e.g. ``load("adding", n=1000, T=50, seed=0)``."""
    describe(name)
    return _TASKS[name][0](**options)
