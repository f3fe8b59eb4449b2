"""What ``models.fit`` records: per-step loss, validation metrics, wall time; a loss-curve plot."""
from __future__ import annotations

import json
import os
import tempfile


class History:
    """The record of a training run.

    Attributes
    ----------
    loss : list of float
        Training loss after each optimizer step (``loss[i]`` is step ``i + 1``).
    time : list of float
        Wall-clock seconds since training started (summed over resumed runs), per step.
    val : dict of str -> list of (step, value)
        Validation metrics by name, each with the step it was measured after.
    stopped : str or None
        Why training ended early: ``"early_stopping"``, ``"interrupted"`` (Ctrl-C), or None.
    best_step : int or None
        The step with the best monitored validation value (early stopping).
    """

    def __init__(self, loss=None, time=None, val=None, stopped=None, best_step=None):
        self.loss = list(loss or [])
        self.time = list(time or [])
        self.val = {k: [tuple(p) for p in v] for k, v in (val or {}).items()}
        self.stopped = stopped
        self.best_step = best_step

    @property
    def steps(self):
        """Optimizer steps taken."""
        return len(self.loss)

    @property
    def interrupted(self):
        return self.stopped == "interrupted"

    def to_dict(self):
        """Plain lists and numbers (JSON-ready, and what checkpoints store)."""
        return {"loss": [float(v) for v in self.loss], "time": [float(v) for v in self.time],
                "val": {k: [[int(s), float(v)] for s, v in pts] for k, pts in self.val.items()},
                "stopped": self.stopped, "best_step": self.best_step}

    @classmethod
    def from_dict(cls, d):
        return cls(d.get("loss"), d.get("time"), d.get("val"), d.get("stopped"), d.get("best_step"))

    def save_json(self, path):
        """Write ``to_dict()`` as JSON, atomically."""
        write_atomic(path, json.dumps(self.to_dict(), indent=1).encode())

    def plot(self, path, smooth=None, title=None):
        """Write the loss curve (and validation metrics) as a PNG (needs matplotlib: the ``plot`` extra).

        Parameters
        ----------
        path : str or PathLike (``.png``; written atomically)
        smooth : int, optional
            Also draw a running mean over this many steps (default: about 2% of the steps).
        title : str, optional
        """
        if os.path.isdir(path):
            raise ValueError(f"History.plot: {os.fspath(path)!r} is a folder; give a file name ending in .png")
        if not os.fspath(path).lower().endswith(".png"):
            raise ValueError(f"History.plot: writes a PNG, so the path must end in .png, got {os.fspath(path)!r}")
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("History.plot needs matplotlib: pip install 'tinygraph[plot]'") from None
        import numpy as np

        fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
        steps = np.arange(1, len(self.loss) + 1)
        if len(self.loss):
            ax.plot(steps, self.loss, color="#9ecae1", lw=0.8, label="training loss (per step)")
            k = smooth or max(1, len(self.loss) // 50)
            if k > 1 and len(self.loss) > k:
                running = np.convolve(self.loss, np.ones(k) / k, mode="valid")
                ax.plot(steps[k - 1:], running, color="#08519c", lw=1.6, label=f"running mean ({k} steps)")
        for i, (name, pts) in enumerate(sorted(self.val.items())):
            if pts:
                s, v = zip(*pts)
                ax.plot(s, v, "o-", ms=3, color=["#d94801", "#238b45", "#6a51a3", "#cb181d"][i % 4],
                        label=f"validation {name}")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        if title:
            ax.set_title(title)
        if self.time:
            ax.text(0.99, 0.97, f"{self.steps} steps, {self.time[-1]:.0f} s", transform=ax.transAxes,
                    ha="right", va="top", fontsize=8, color="0.4")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1, 0.9))
        fig.tight_layout()
        folder = os.path.dirname(os.path.abspath(os.fspath(path)))
        fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
        os.close(fd)
        _ordinary_mode(tmp)
        try:
            fig.savefig(tmp, format="png")
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        finally:
            plt.close(fig)
        return path

    def __repr__(self):
        last = f", last loss {self.loss[-1]:.4g}" if self.loss else ""
        val = "".join(f", val {k} {v[-1][1]:.4g}" for k, v in self.val.items() if v)
        stop = f", stopped: {self.stopped}" if self.stopped else ""
        return f"History({self.steps} steps{last}{val}{stop})"


def write_atomic(path, data):
    """Write bytes to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    _ordinary_mode(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _ordinary_mode(path):
    """Give a mkstemp file (mode 0600) the mode a plain ``open`` would: 0666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
