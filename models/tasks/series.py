"""Real time series shipped in ``data/``: yearly sunspot numbers."""
from __future__ import annotations

import os

import numpy as np

from ._registry import task

DATA = os.path.join(os.path.dirname(__file__), "data")


@task("sunspots", "forecasting", "yearly sunspot numbers 1700-2008: predict next year's from the past",
      "NOAA National Geophysical Data Center, via statsmodels' dataset (data/sunspots.csv)",
      "public domain", "309 years (3 KB, shipped)")
def sunspots(split_year=1950):
    """Yearly sunspot numbers.

    Returns
    -------
    dict with ``years`` (309,) int, ``values`` (309,) float64, and ``train`` /
    ``test`` (the values before / from ``split_year`` on; the held-out span).
    """
    raw = np.loadtxt(os.path.join(DATA, "sunspots.csv"), delimiter=",", skiprows=1)
    years, values = raw[:, 0].astype(np.int64), raw[:, 1].astype(np.float64)
    cut = int(np.searchsorted(years, split_year))
    return {"years": years, "values": values, "train": values[:cut], "test": values[cut:], "split": cut}


def windows(series, length, start=None, stop=None):
    """Sliding windows for one-step-ahead forecasting.

    Parameters
    ----------
    series : 1-D array
    length : int
        Steps of history per window.
    start, stop : int, optional
        Only targets with index in ``[start, stop)`` (default: every target that has a full window).

    Returns
    -------
    x : (length, N, 1) time-major windows, y : (N,) the value after each window.
    """
    series = np.asarray(series, dtype=np.float64)
    start = length if start is None else max(start, length)
    stop = len(series) if stop is None else stop
    idx = np.arange(start, stop)
    x = np.stack([series[i - length:i] for i in idx], axis=1)[:, :, None]
    return x, series[idx]
