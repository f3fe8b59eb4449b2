"""argparse value types shared by every ``tinygraph`` subcommand, so that a bad flag is
a usage error that names it (``--steps: expected a positive integer, got 0``), never a
traceback from deep inside, and every command words it the same way."""
from __future__ import annotations

import argparse
import math


def _number(text, kind, what):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text):
    """An integer >= 1."""
    value = _number(text, int, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text):
    """An integer >= 0."""
    value = _number(text, int, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def seed(text):
    """A random seed: an integer in [0, 2**63) (numpy's generators take no negative seeds)."""
    value = non_negative_int(text)
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed below 2**63, got {value}")
    return value


def non_negative_float(text):
    """A finite number >= 0."""
    value = _number(text, float, "a number >= 0")
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def positive_float(text):
    """A finite number > 0."""
    value = _number(text, float, "a positive number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text}")
    return value
