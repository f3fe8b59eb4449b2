"""PyTorch interop: the same weights in ``torch.nn.RNN/LSTM/GRU`` (+ ``Linear``) and back.

torch is optional: it is imported only inside these functions. Layouts:
tinygraph keeps row vectors and one matrix per gate (``W_xi`` (D, H)), torch
keeps stacked gate blocks (``weight_ih_l0`` (4H, D), gate order i, f, g, o for
the LSTM and r, z, n for the GRU) and two biases per gate. tinygraph has one
bias per gate (plus ``b_hn`` inside the GRU's reset product, exactly torch's
``bias_hh`` of n), so ``to_torch`` writes ``bias_ih = b`` and ``bias_hh = 0``
(``b_hn`` for the GRU's n) and ``from_torch`` adds the two: weights round-trip
exactly, and outputs agree to float32 precision.
"""
from __future__ import annotations

import numpy as np

from .recurrent import GRU, LSTM, RNN

GATES = {"lstm": "ifgo", "gru": "rzn", "rnn": None}


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("models.to_torch/from_torch need PyTorch: pip install torch "
                          "(or pip install 'tinygraph[torch]')") from None
    return torch


def _kind(model):
    if isinstance(model, LSTM):
        return "lstm"
    if isinstance(model, GRU):
        return "gru"
    if isinstance(model, RNN):
        return "rnn"
    raise TypeError(f"to_torch: expected a models.RNN, LSTM or GRU, got {type(model).__name__}")


def torch_state_dict(model):
    """The torch-layout state dict (numpy arrays) of a ``models.RNN/LSTM/GRU``."""
    kind, H = _kind(model), model.hidden_size
    out = {}
    for layer, cell in enumerate(model.cells):
        gates = GATES[kind]
        if gates is None:
            w_ih, w_hh, b_ih, b_hh = cell.W_xh.data.T, cell.W_hh.data.T, cell.b_h.data, np.zeros(H, cell.b_h.dtype)
        else:
            w_ih = np.concatenate([getattr(cell, "W_x" + g).data.T for g in gates])
            w_hh = np.concatenate([getattr(cell, "W_h" + g).data.T for g in gates])
            b_ih = np.concatenate([getattr(cell, "b_" + g).data for g in gates])
            b_hh = np.zeros_like(b_ih)
            if kind == "gru":
                b_hh[2 * H:] = cell.b_hn.data
        for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih), ("bias_hh", b_hh)):
            out[f"{name}_l{layer}"] = np.ascontiguousarray(value)
    return out


def to_torch(model):
    """The equivalent PyTorch module with the same weights.

    Parameters
    ----------
    model : models.RNN, LSTM or GRU

    Returns
    -------
    ``torch.nn.RNN/LSTM/GRU`` (time-major, ``batch_first=False``, float dtype
    of the model); with an output layer, the pair ``(rnn, torch.nn.Linear)``
    where ``y = linear(rnn(x)[0])``.
    """
    torch = _torch()
    kind = _kind(model)
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(model._param_dtype())]
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    options = {"nonlinearity": model.cell.nonlinearity} if kind == "rnn" else {}
    rnn = cls(model.input_size, model.hidden_size, num_layers=model.num_layers, **options).to(dtype)
    with torch.no_grad():
        for name, value in torch_state_dict(model).items():
            getattr(rnn, name).copy_(torch.from_numpy(value.copy()))
    if model.output_size is None:
        return rnn
    linear = torch.nn.Linear(model.hidden_size, model.output_size).to(dtype)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(model.W_hy.data.T.copy()))
        linear.bias.copy_(torch.from_numpy(model.b_y.data.copy()))
    return rnn, linear


def from_torch(module, linear=None, kind=None, nonlinearity="tanh"):
    """A ``models.RNN/LSTM/GRU`` with the weights of a PyTorch module or state dict.

    Parameters
    ----------
    module : torch.nn.RNN / LSTM / GRU, or a state dict
        A state dict (``module.state_dict()``, torch tensors or numpy arrays,
        e.g. loaded from a file) needs keys ``weight_ih_l{k}``, ``weight_hh_l{k}``,
        ``bias_ih_l{k}``, ``bias_hh_l{k}``; the kind is read from the gate
        blocks (4H rows: LSTM, 3H: GRU, H: RNN) unless ``kind`` says it.
    linear : torch.nn.Linear or dict with ``weight``/``bias``, optional
        Becomes the output layer (``W_hy``, ``b_y``).
    kind : {"lstm", "gru", "rnn"}, optional
    nonlinearity : str
        For an RNN given as a state dict (a module knows its own).

    Returns
    -------
    models.RNN, LSTM or GRU (``float32`` or ``float64`` as the weights).
    """
    if hasattr(module, "state_dict") and hasattr(module, "hidden_size"):
        if getattr(module, "batch_first", False) or getattr(module, "bidirectional", False) \
                or getattr(module, "proj_size", 0):
            raise ValueError("from_torch: only unidirectional, time-major modules without proj_size map to "
                             "models.RNN/LSTM/GRU")
        if not getattr(module, "bias", True):
            raise ValueError("from_torch: modules built with bias=False are not supported")
        kind = type(module).__name__.lower()
        nonlinearity = getattr(module, "nonlinearity", nonlinearity)
        state = module.state_dict()
    elif isinstance(module, dict):
        state = module
    else:
        raise TypeError(f"from_torch: expected a torch.nn.RNN/LSTM/GRU or a state dict, got {type(module).__name__}")
    arrays = {k: _numpy(v) for k, v in state.items()}
    if "weight_ih_l0" not in arrays:
        raise ValueError(f"from_torch: the state dict has no 'weight_ih_l0' (keys: {sorted(arrays)[:6]})")
    H = arrays["weight_hh_l0"].shape[1]
    blocks = arrays["weight_ih_l0"].shape[0] // H
    if kind is None:
        kind = {4: "lstm", 3: "gru", 1: "rnn"}.get(blocks)
        if kind is None:
            raise ValueError(f"from_torch: weight_ih_l0 has {arrays['weight_ih_l0'].shape[0]} rows for hidden size "
                             f"{H}; expected 4H (LSTM), 3H (GRU) or H (RNN)")
    if kind not in GATES:
        raise ValueError(f"from_torch: kind must be 'lstm', 'gru' or 'rnn', got {kind!r}")
    layers = sum(1 for k in arrays if k.startswith("weight_ih_l"))
    D = arrays["weight_ih_l0"].shape[1]
    dtype = arrays["weight_ih_l0"].dtype
    out_size = None
    if linear is not None:
        lin = linear.state_dict() if hasattr(linear, "state_dict") else linear
        W, b = _numpy(lin["weight"]), _numpy(lin["bias"])
        out_size = W.shape[0]
    from tinygraph import default_dtype

    with default_dtype(dtype):
        if kind == "rnn":
            model = RNN(D, H, nonlinearity=nonlinearity, num_layers=layers, output_size=out_size)
        else:
            model = {"lstm": LSTM, "gru": GRU}[kind](D, H, num_layers=layers, output_size=out_size)
    for layer, cell in enumerate(model.cells):
        w_ih, w_hh = arrays[f"weight_ih_l{layer}"], arrays[f"weight_hh_l{layer}"]
        b_ih, b_hh = arrays[f"bias_ih_l{layer}"], arrays[f"bias_hh_l{layer}"]
        if kind == "rnn":
            cell.W_xh.data[...], cell.W_hh.data[...], cell.b_h.data[...] = w_ih.T, w_hh.T, b_ih + b_hh
            continue
        for j, g in enumerate(GATES[kind]):
            rows = slice(j * H, (j + 1) * H)
            getattr(cell, "W_x" + g).data[...] = w_ih[rows].T
            getattr(cell, "W_h" + g).data[...] = w_hh[rows].T
            if kind == "gru" and g == "n":
                cell.b_n.data[...] = b_ih[rows]
                cell.b_hn.data[...] = b_hh[rows]
            else:
                getattr(cell, "b_" + g).data[...] = b_ih[rows] + b_hh[rows]
    if out_size is not None:
        model.W_hy.data[...], model.b_y.data[...] = W.T, b
    return model


def _numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)
