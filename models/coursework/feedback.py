"""Feedback records and the helpers the checks share (comparisons that name what is wrong)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"


class Wrong(AssertionError):
    """Raised by a check: the student's answer is wrong; the message says where and why."""


class NotAttempted(Exception):
    """Raised by a check: a function the exercise asks for is missing or still a stub."""


@dataclass(repr=False)
class Feedback:
    """The outcome of one exercise.

    Attributes
    ----------
    exercise : str
        The exercise's name (e.g. ``"rnn_backward"``; ``"hidden: ..."`` for a teacher's hidden check).
    status : str
        ``"passed"``, ``"failed"`` or ``"not attempted"``.
    message : str
        What is wrong and where, with a hint; empty when passed.
    points, max_points : float
    """

    exercise: str
    status: str
    message: str = ""
    points: float = 0.0
    max_points: float = 1.0
    hidden: bool = False
    details: dict = field(default_factory=dict)

    @property
    def passed(self):
        return self.status == PASSED

    def __repr__(self):
        return str(self)

    def __str__(self):
        head = f"[{self.status}] {self.exercise}"
        if self.message.startswith(self.exercise + ":"):  # the message already names the function
            return f"[{self.status}] {self.message}"
        return head + (f": {self.message}" if self.message else "")

    def to_dict(self):
        return {"exercise": self.exercise, "status": self.status, "message": self.message,
                "points": self.points, "max_points": self.max_points, "hidden": self.hidden}


def rel_error(got, want):
    """Relative error ||got - want|| / max(||got||, ||want||) (0 when both are zero)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = max(float(np.linalg.norm(got)), float(np.linalg.norm(want)))
    if scale == 0.0:
        return 0.0
    err = float(np.linalg.norm(got - want)) / scale
    return err if np.isfinite(err) else np.inf


def as_array(value, what):
    """The student's value as a float64 array (a Tensor's data, a list, ...), or Wrong naming it."""
    data = getattr(value, "data", value)
    if isinstance(data, np.ndarray) or np.isscalar(data) or isinstance(data, (list, tuple)):
        try:
            return np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    raise Wrong(f"{what} should be an array, got {type(value).__name__}")


def same_shape(got, want, what):
    got = as_array(got, what)
    if got.shape != np.shape(want):
        raise Wrong(f"{what} has shape {got.shape}, expected {np.shape(want)}")
    return got


def close(got, want, tol=1e-6):
    return rel_error(got, want) <= tol


def fmt(err):
    return f"{err:.2g}" if err < 1e3 else "inf" if not np.isfinite(err) else f"{err:.3g}"


def steps_text(steps):
    """``[0, 1, 2, 3]`` -> ``"t=0..3"``; ``[1, 4]`` -> ``"t=1, 4"``."""
    steps = sorted(steps)
    if len(steps) > 2 and steps == list(range(steps[0], steps[-1] + 1)):
        return f"t={steps[0]}..{steps[-1]}"
    return "t=" + ", ".join(str(s) for s in steps)
