"""Coursework: exercises that students fill in, and a grader that says where their work is wrong.

Each assignment (one notebook) has exercises; each exercise checks the
student's functions against the teacher's hand-written numpy reference and
names what is wrong: which gate, which time step, which parameter, the relative
error, and a hint.

>>> from tinygraph.models import coursework
>>> coursework.check("rnn_backward", globals())            # doctest: +SKIP
[failed] rnn_backward: dxs wrong at t=3 (T=5; ...); ... dh_next ...

From the shell: ``tinygraph grade submissions/ --out grades/`` (see docs/teaching.md).
"""
from .feedback import FAILED, NOT_ATTEMPTED, PASSED, Feedback, NotAttempted, Wrong, rel_error
from .grade import (
    all_passed,
    check,
    feedback_text,
    find_notebooks,
    grade_namespace,
    grade_notebook,
    grade_path,
    load_hidden_checks,
    notebook_assignment,
)
from .registry import ASSIGNMENTS, Exercise, exercise, exercises, load_all, need, run_exercise

__all__ = [
    "Feedback", "Wrong", "NotAttempted", "PASSED", "FAILED", "NOT_ATTEMPTED", "rel_error", "check",
    "grade_namespace", "grade_notebook", "grade_path", "find_notebooks", "feedback_text", "load_hidden_checks",
    "notebook_assignment", "all_passed", "ASSIGNMENTS", "Exercise", "exercise", "exercises", "load_all", "need",
    "run_exercise", "assignments",
]


def assignments():
    """The assignment names, in order."""
    return sorted(load_all())
