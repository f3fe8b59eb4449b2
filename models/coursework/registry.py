"""The exercises of each assignment, and running one check so that nothing escapes it.

An exercise is a function ``check(ns)`` registered with ``@exercise(assignment,
name)``: it reads the student's functions from the notebook's namespace ``ns``
(``need(ns, "rnn_backward")``), compares them with the reference and raises
``Wrong`` with a precise message when they disagree. ``run_exercise`` turns the
outcome into ``Feedback``: a missing function or a stub that still raises
``NotImplementedError`` is "not attempted"; any other exception raised by the
student's code is that exercise's failure, with the student's line.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass

from .feedback import FAILED, NOT_ATTEMPTED, PASSED, Feedback, NotAttempted, Wrong

ASSIGNMENTS: dict[str, list["Exercise"]] = {}
_HERE = os.path.dirname(os.path.abspath(__file__))


def _library_dirs():
    import numpy
    import tinygraph

    return tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (numpy, tinygraph)) + (
        os.path.dirname(_HERE) + os.sep,)


@dataclass
class Exercise:
    assignment: str
    name: str
    check: object
    points: float = 1.0
    hidden: bool = False


def exercise(assignment, name, points=1.0):
    """Decorator: register ``check(ns)`` as exercise ``name`` of ``assignment``."""
    def register(check):
        exercises = ASSIGNMENTS.setdefault(assignment, [])
        exercises[:] = [e for e in exercises if e.name != name]
        exercises.append(Exercise(assignment, name, check, points))
        return check
    return register


def load_all():
    """Import the assignment modules (each registers its exercises); returns ``ASSIGNMENTS``."""
    from . import ex01_autodiff, ex02_rnn, ex03_gradients, ex04_lstm, ex05_patterns  # noqa: F401 (they register)

    return ASSIGNMENTS


def exercises(assignment):
    """The exercises of ``assignment`` in order (a ValueError names the known assignments)."""
    load_all()
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"coursework: unknown assignment {assignment!r}; known: {', '.join(sorted(ASSIGNMENTS))}")
    return list(ASSIGNMENTS[assignment])


def need(ns, name):
    """The student's object ``name`` from the namespace, or NotAttempted."""
    value = ns.get(name)
    if value is None:
        raise NotAttempted(f"{name} is not defined")
    return value


def call(name, fn, *args, **kwargs):
    """Call the student's function; a stub's NotImplementedError means "not attempted"."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotAttempted(f"{name} still raises NotImplementedError({str(exc)!r})") from None


def _student_line(exc):
    library = _library_dirs()
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(library)]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (in {frame.name}, line {frame.lineno}: {frame.line.strip() if frame.line else '?'})"


def run_exercise(ex, ns):
    """Run one exercise's check on the namespace ``ns``; always returns ``Feedback``."""
    fb = Feedback(ex.name, PASSED, points=ex.points, max_points=ex.points, hidden=ex.hidden)
    try:
        ex.check(ns)
        return fb
    except NotAttempted as exc:
        fb.status, fb.message = NOT_ATTEMPTED, str(exc)
    except NotImplementedError as exc:
        fb.status, fb.message = NOT_ATTEMPTED, f"a stub still raises NotImplementedError({str(exc)!r})"
    except Wrong as exc:
        fb.status, fb.message = FAILED, str(exc)
    except AssertionError as exc:  # a hidden check written with plain asserts
        fb.status, fb.message = FAILED, str(exc) or "an assertion failed" + _student_line(exc)
    except Exception as exc:  # the student's code raised: this exercise fails, the others still run
        fb.status, fb.message = FAILED, f"raised {type(exc).__name__}: {exc}{_student_line(exc)}"
    fb.points = 0.0
    return fb
