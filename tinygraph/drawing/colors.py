"""Gradient norms as colours: a logarithmic scale, a colour map, and its legend.

Only numpy is used (no matplotlib), so gradient drawings work with the
engine's runtime dependencies alone.
"""
from __future__ import annotations

import math

import numpy as np

# viridis sampled at 0, 0.1, ..., 1: perceptually uniform, readable in grey
# scale and by colour-blind readers; dark means small, bright means large.
_VIRIDIS = np.array([
    (0x44, 0x01, 0x54), (0x48, 0x24, 0x75), (0x41, 0x44, 0x87), (0x35, 0x5f, 0x8d),
    (0x2a, 0x78, 0x8e), (0x21, 0x91, 0x8c), (0x22, 0xa8, 0x84), (0x44, 0xbf, 0x70),
    (0x7a, 0xd1, 0x51), (0xbd, 0xdf, 0x26), (0xfd, 0xe7, 0x25),
], dtype=float)

NO_GRAD_FILL = "#ffffff"
NONFINITE_FILL = "#e7298a"  # outside the map on purpose: an overflowed gradient must not look "large but fine"


def colormap(x):
    """The ``#rrggbb`` colour at position ``x`` in [0, 1] (clipped) of the map."""
    x = min(max(float(x), 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(x), len(_VIRIDIS) - 2)
    rgb = _VIRIDIS[i] + (x - i) * (_VIRIDIS[i + 1] - _VIRIDIS[i])
    return "#%02x%02x%02x" % tuple(int(round(c)) for c in rgb)


def text_color(fill):
    """Black or white, whichever reads better on ``fill`` (``#rrggbb``)."""
    r, g, b = (int(fill[k:k + 2], 16) / 255 for k in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "#ffffff"


def grad_norm(tensors):
    """Root-sum-square norm of the ``.grad`` of ``tensors`` (float64), or None if none has one.

    For one tensor it is ``||grad||``; for the copies a folded node stands
    for, it is the norm of their gradients taken together.
    """
    total, found = 0.0, False
    for t in tensors:
        g = t.grad
        if g is None:
            continue
        found = True
        g = np.asarray(g, dtype=np.float64)
        total += float(np.dot(g.ravel(), g.ravel()))
    return math.sqrt(total) if found else None


class LogScale:
    """Maps a norm to [0, 1] by ``log10``, between ``lo`` and ``hi`` (positive, finite)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = float(lo), float(hi)
        self._a = math.log10(self.lo)
        span = math.log10(self.hi) - self._a
        self._span = span if span > 0 else 1.0

    @classmethod
    def fit(cls, norms, grad_range=None):
        """A scale spanning the positive finite ``norms`` (or the given ``(lo, hi)``)."""
        if grad_range is not None:
            return cls(*grad_range)
        good = [n for n in norms if n is not None and n > 0 and math.isfinite(n)]
        if not good:
            return cls(1e-8, 1.0)
        lo, hi = min(good), max(good)
        if hi / lo < 10:  # widen a narrow range to one decade around it, so colours are not exaggerated
            mid = math.sqrt(lo * hi)
            lo, hi = min(lo, mid / math.sqrt(10)), max(hi, mid * math.sqrt(10))
        return cls(lo, hi)

    def position(self, norm):
        if norm <= 0:
            return 0.0
        return min(max((math.log10(norm) - self._a) / self._span, 0.0), 1.0)

    def fill(self, norm):
        """Fill colour for a norm (None: no gradient)."""
        if norm is None:
            return NO_GRAD_FILL
        if not math.isfinite(norm):
            return NONFINITE_FILL
        return colormap(self.position(norm))


def format_norm(norm):
    """Short text of a norm: ``3.2e-04``, ``0``, ``inf``, ``nan``."""
    if norm is None:
        return "none"
    if norm == 0:
        return "0"
    if not math.isfinite(norm):
        return str(norm)
    return f"{norm:.1e}"


def legend_html(scale, any_missing, any_nonfinite, cells=10):
    """An HTML-like Graphviz table: the colour bar with its end values, and swatches
    for tensors without a gradient and for non-finite norms."""
    bar = "".join(
        f'<td bgcolor="{colormap(i / (cells - 1))}" width="16" height="12"></td>' for i in range(cells)
    )
    half = cells // 2
    ticks = (f'<td colspan="{half}" align="left"><font point-size="9">{format_norm(scale.lo)}</font></td>'
             f'<td colspan="{cells - half}" align="right"><font point-size="9">{format_norm(scale.hi)}</font></td>')
    rows = [
        f'<tr><td colspan="{cells}" align="left"><font point-size="10"><b>gradient norm '
        f'‖∂L/∂x‖</b> (log scale)</font></td></tr>',
        f"<tr>{bar}</tr>",
        f"<tr>{ticks}</tr>",
    ]
    extra = []
    if any_missing:
        extra.append(f'<td bgcolor="{NO_GRAD_FILL}" border="1" width="16"></td>'
                     f'<td colspan="4" align="left"><font point-size="9">no gradient</font></td>')
    if any_nonfinite:
        extra.append(f'<td bgcolor="{NONFINITE_FILL}" width="16"></td>'
                     f'<td colspan="4" align="left"><font point-size="9">inf / nan</font></td>')
    for cell in extra:
        rows.append(f"<tr>{cell}</tr>")
    return ('<table border="0" cellborder="0" cellspacing="0" cellpadding="1">' + "".join(rows) + "</table>")
