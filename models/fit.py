"""``models.fit``: the training loop every sequence-model script repeats, with checkpoints and exact resume."""
from __future__ import annotations

import collections.abc
import inspect
import math
import numbers
import os
import sys
import time

from tinygraph import Tensor, load, no_grad, save
from tinygraph.optim import clip_grad_norm_

from .history import History

CHECKPOINT_FORMAT = "tinygraph-fit-checkpoint"


def _positive_int_or_none(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"fit: {name} must be a positive integer or None, got {value!r}")
    return int(value)


def _epoch_source(batches):
    """A function epoch -> iterable of batches."""
    if callable(batches) and not hasattr(batches, "__iter__"):
        try:
            takes_epoch = len(inspect.signature(batches).parameters) >= 1
        except (TypeError, ValueError):
            takes_epoch = False
        return (lambda epoch: batches(epoch)) if takes_epoch else (lambda epoch: batches())
    if hasattr(batches, "__iter__"):
        if iter(batches) is batches:
            # a one-shot iterator cannot be re-iterated, so it is one epoch and cannot be resumed exactly
            return lambda epoch: batches if epoch == 0 else iter(())
        return lambda epoch: batches
    raise TypeError(f"fit: batches must be an iterable of batches or a callable returning one, "
                    f"got {type(batches).__name__}")


def _metrics(value):
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, numbers.Real):
        return {"loss": float(value)}
    if isinstance(value, dict):
        return {str(k): float(v.item() if isinstance(v, Tensor) else v) for k, v in value.items()}
    raise TypeError(f"fit: val(model) must return a number or a dict of metric name -> number, "
                    f"got {type(value).__name__}")


def _progress_bar(enabled, total, initial):
    if not enabled or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None  # quiet when not on a terminal (logs, CI, notebooks' captured output)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=True)


def fit(model, batches, loss_fn, optimizer, steps=None, epochs=None, max_norm=None, val=None, progress=True,
        checkpoint=None, val_every=None, checkpoint_every=None, patience=None, monitor=None, resume=True,
        extra=None, callback=None):
    """Train ``model``: for each batch, ``loss_fn(model, batch).backward()``, clip, ``optimizer.step()``.

    Parameters
    ----------
    model : tinygraph.nn.Module
    batches : iterable, or callable returning one
        Re-iterated each epoch. A callable that takes one argument receives
        the epoch number (0, 1, ...): make each epoch's order a function of it
        (e.g. ``rng = default_rng(seed + epoch)``) and a resumed run sees the
        same batches as an uninterrupted one.
    loss_fn : callable (model, batch) -> scalar Tensor
    optimizer : tinygraph.optim optimizer over ``model.parameters()``
    steps : int, optional
        Stop after this many optimizer steps (counting steps of earlier runs when resuming).
    epochs : int, optional
        Stop after this many passes over ``batches``. At least one of ``steps``/``epochs``.
    max_norm : float, optional
        Clip the gradient norm (``tinygraph.optim.clip_grad_norm_``) before each step.
    val : callable model -> float or dict, optional
        Validation metrics, run under ``no_grad`` every ``val_every`` steps and at the end.
    progress : bool
        A tqdm progress bar when stderr is a terminal and tqdm is installed (the
        ``progress`` extra); nothing otherwise.
    checkpoint : str or PathLike, optional
        ``.npz`` file written atomically every ``checkpoint_every`` steps (default
        ``val_every``) and at the end: weights, optimizer state, step, epoch,
        position in the epoch and the history. With ``resume=True`` an existing
        checkpoint is loaded first and training continues where it stopped: the
        same seed gives the same final weights as training straight through.
    val_every : int, optional
        Default: a tenth of ``steps`` (or once per epoch when only ``epochs`` is given).
    patience : int, optional
        Early stopping: stop after this many validation rounds without a new
        best (lowest) value of ``monitor``.
    monitor : str, optional
        The validation metric early stopping watches (default: the first one).
    extra : dict, optional
        Saved in the checkpoint under ``"extra"`` (e.g. the model's configuration).
    callback : callable (step, loss) -> None, optional

    Returns
    -------
    History
        ``loss`` per step, validation metrics, wall time. Ctrl-C stops training
        cleanly: the History so far is returned with ``stopped == "interrupted"``
        and the last checkpoint file is left intact.
    """
    steps = _positive_int_or_none("steps", steps)
    epochs = _positive_int_or_none("epochs", epochs)
    val_every = _positive_int_or_none("val_every", val_every)
    checkpoint_every = _positive_int_or_none("checkpoint_every", checkpoint_every)
    patience = _positive_int_or_none("patience", patience)
    if steps is None and epochs is None:
        raise ValueError("fit: give steps= or epochs= (or both) so training knows when to stop")
    if not callable(loss_fn):
        raise TypeError(f"fit: loss_fn must be a callable (model, batch) -> loss, got {type(loss_fn).__name__}")
    if val is not None and not callable(val):
        raise TypeError(f"fit: val must be a callable model -> metrics, got {type(val).__name__}")
    if not (callable(getattr(optimizer, "zero_grad", None)) and callable(getattr(optimizer, "step", None))):
        raise TypeError(f"fit: optimizer must be a tinygraph.optim optimizer (with zero_grad() and step()), "
                        f"got {type(optimizer).__name__}")
    owned = {id(q) for q in model.parameters()} if callable(getattr(model, "parameters", None)) else None
    held = getattr(optimizer, "params", None)
    if owned and held is not None and not any(id(q) in owned for q in held):
        raise ValueError("fit: the optimizer holds none of the model's parameters, so training would change "
                         "nothing; build it from model.parameters()")
    if patience is not None and val is None:
        raise ValueError("fit: patience= needs val= (early stopping watches the validation metric)")
    if checkpoint is not None and os.path.isdir(checkpoint):
        raise ValueError(f"fit: checkpoint {os.fspath(checkpoint)!r} is a directory; give a file path such as "
                         f"'{os.path.join(os.fspath(checkpoint), 'checkpoint.npz')}'")
    if max_norm is not None and (not isinstance(max_norm, numbers.Real) or not max_norm > 0):
        raise ValueError(f"fit: max_norm must be a positive number or None, got {max_norm!r}")
    source = _epoch_source(batches)
    if val_every is None and steps is not None:
        val_every = max(1, steps // 10)
    checkpoint_every = checkpoint_every or val_every

    history, step, epoch, position, elapsed = History(), 0, 0, 0, 0.0
    best, bad_rounds = None, 0
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        saved = load(checkpoint)
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"fit: {os.fspath(checkpoint)!r} is not a fit checkpoint (no format {CHECKPOINT_FORMAT!r})")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["fit"]
        step, epoch, position, elapsed = state["step"], state["epoch"], state["position"], state["elapsed"]
        history = History.from_dict(state["history"])
        history.stopped = None
        best, bad_rounds = state.get("best"), state.get("bad_rounds", 0)

    def write_checkpoint():
        if checkpoint is None:
            return
        save({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
              "fit": {"step": step, "epoch": epoch, "position": position, "elapsed": elapsed + clock(),
                      "history": history.to_dict(), "best": best, "bad_rounds": bad_rounds},
              "extra": extra or {}}, checkpoint)

    def validate():
        nonlocal best, bad_rounds
        with no_grad():
            metrics = _metrics(val(model))
        for name, value in metrics.items():
            history.val.setdefault(name, []).append((step, value))
        key = monitor or next(iter(metrics))
        if key not in metrics:
            raise ValueError(f"fit: monitor={monitor!r} is not one of the validation metrics {sorted(metrics)}")
        if best is None or metrics[key] < best:
            best, bad_rounds, history.best_step = metrics[key], 0, step
        else:
            bad_rounds += 1
        return metrics

    start = time.perf_counter()

    def clock():
        return time.perf_counter() - start

    def finished():
        return (steps is not None and step >= steps) or (epochs is not None and epoch >= epochs)

    bar = _progress_bar(progress, steps, step) if not finished() else None
    try:
        while not finished():
            seen = 0
            for batch in source(epoch):
                if seen < position:  # resuming: skip what the interrupted run already trained on
                    seen += 1
                    continue
                seen += 1
                optimizer.zero_grad()
                loss = loss_fn(model, batch)
                if not isinstance(loss, Tensor) or loss.size != 1:
                    raise TypeError(f"fit: loss_fn must return a one-element Tensor, got "
                                    f"{type(loss).__name__}{getattr(loss, 'shape', '')}")
                if not math.isfinite(loss.item()):
                    # stop before the backward pass: the weights and the last checkpoint stay finite
                    raise ValueError(f"fit: the loss is {loss.item()} at step {step + 1} (epoch {epoch}); the "
                                     f"weights are those after step {step}. Lower the learning rate, set "
                                     f"max_norm=, or check the batch")
                loss.backward()
                if max_norm is not None:
                    clip_grad_norm_(optimizer.params, max_norm, error_if_nonfinite=False)
                optimizer.step()
                step, position = step + 1, position + 1
                value = loss.item()
                history.loss.append(value)
                history.time.append(elapsed + clock())
                if callback is not None:
                    callback(step, value)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{value:.4f}", refresh=False)
                stop_early = False
                if val is not None and val_every and step % val_every == 0:
                    metrics = validate()
                    if bar is not None:
                        bar.set_postfix(loss=f"{value:.4f}", **{f"val_{k}": f"{v:.4f}" for k, v in metrics.items()})
                    stop_early = patience is not None and bad_rounds >= patience
                if stop_early:
                    history.stopped = "early_stopping"
                    write_checkpoint()
                    return history
                if checkpoint_every and step % checkpoint_every == 0:
                    write_checkpoint()
                if steps is not None and step >= steps:
                    break
            else:
                if seen == 0 and position == 0:
                    raise ValueError(f"fit: batches gave no batch in epoch {epoch}" + (
                        "; a generator or iterator is used up after one pass: give a list, or a function "
                        "of the epoch that returns the batches" if epoch > 0 and isinstance(batches, collections.abc.Iterator) else ""))
                epoch, position = epoch + 1, 0
                if val is not None and val_every is None:
                    validate()
                    if patience is not None and bad_rounds >= patience:
                        history.stopped = "early_stopping"
                        break
        if val is not None and (not history.val or next(iter(history.val.values()))[-1][0] != step):
            validate()
        write_checkpoint()
    except KeyboardInterrupt:
        history.stopped = "interrupted"
    finally:
        if bar is not None:
            bar.close()
    return history


def load_checkpoint(path):
    """The dict a ``fit`` checkpoint holds: ``model`` (state dict), ``optimizer``, ``fit`` (step, history, ...), ``extra``."""
    saved = load(path)
    if saved.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"load_checkpoint: {os.fspath(path)!r} is not a fit checkpoint")
    return saved


__all__ = ["fit", "History", "load_checkpoint"]
