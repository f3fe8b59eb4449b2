"""The graphs ``tinygraph draw --model rnn|lstm|gru`` draws.

``tinygraph`` never imports ``models``; the command finds this builder through
the ``tinygraph.draw_models`` entry point that ``setup.cfg`` declares.
"""
from __future__ import annotations

import numpy as np

import tinygraph as tg

from .recurrent import GRU, LSTM, RNN

MODELS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def build_model_graph(model, steps, input_size=2, hidden_size=3, batch=1, seed=0, grads=False, fused=False):
    """Build ``models.<RNN|LSTM|GRU>`` and its loss over ``steps`` random steps; returns the loss.

    The loss is the mean of the outputs squared. The model is the textbook
    build (``fused=False``: the seed's equations inside each step, every gate
    its own node) unless ``fused``, which gives the fast build that training
    runs (the inputs of all steps projected before the loop; for the LSTM and
    GRU one fused op per step), with the same values. With ``grads``, backward
    has run with every intermediate gradient kept, for a gradient-coloured drawing.
    """
    if model not in MODELS:
        raise ValueError(f"build_model_graph: model must be one of {sorted(MODELS)}, got {model!r}")
    net = MODELS[model](input_size, hidden_size, rng=seed, fused=bool(fused))
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.normal(size=(steps, batch, input_size)).astype(tg.get_default_dtype()), name="x")
    outputs, _ = net(x)
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    if grads:
        loss.backward(retain_grads=True)
    return loss
