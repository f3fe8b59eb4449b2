"""RNN, LSTM and GRU against an independent numpy forward + BPTT, in float64 to 1e-10."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from numpy_reference import gru_forward_backward, lstm_forward_backward, rnn_forward_backward

D, H, B = 3, 4, 2
TOL = dict(rtol=1e-10, atol=1e-10)


def build(kind, **kwargs):
    if kind.endswith("_unfused"):
        kind, kwargs = kind[: -len("_unfused")], dict(kwargs, fused=False)
    with tg.default_dtype(np.float64):
        if kind.startswith("rnn"):
            return models.RNN(D, H, nonlinearity=kind.split("_")[1], rng=1, **kwargs)
        return {"lstm": models.LSTM, "gru": models.GRU}[kind](D, H, rng=1, **kwargs)


def params_of(cell):
    return {name: p.data for name, p in cell.named_parameters()}


def reference(kind, p, x, state, G, G_state):
    if kind.startswith("rnn"):
        out, final, grads, dx, dstate = rnn_forward_backward(p, x, state, G, G_state, kind.split("_")[1])
    elif kind == "lstm":
        out, final, grads, dx, dstate = lstm_forward_backward(p, x, *state, G, *G_state)
    else:
        out, final, grads, dx, dstate = gru_forward_backward(p, x, state, G, G_state)
    return out, final, grads, dx, dstate


def parts(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "rnn_tanh_unfused", "lstm", "lstm_unfused", "gru",
                                  "gru_unfused"])
@pytest.mark.parametrize("T", [1, 50])
@pytest.mark.parametrize("with_state", [False, True])
def test_unrolled_model_matches_numpy_bptt(kind, T, with_state):
    rng = np.random.default_rng(T + 7 * with_state)
    model = build(kind)
    fused_op = {"lstm": "lstm_cell", "gru": "gru_cell", "rnn_tanh": "rnn_cell", "rnn_relu": "rnn_cell"}.get(kind)
    kind = kind.replace("_unfused", "")
    x = rng.normal(size=(T, B, D))
    n_state = 2 if kind == "lstm" else 1
    state0 = [rng.normal(size=(B, H)) if with_state else np.zeros((B, H)) for _ in range(n_state)]
    G = rng.normal(size=(T, B, H))
    G_state = [rng.normal(size=(B, H)) for _ in range(n_state)]

    xt = tg.tensor(x, requires_grad=True)
    st = [tg.tensor(s, requires_grad=True) for s in state0]
    given = None if not with_state else (st[0] if n_state == 1 else tuple(st))
    out, final = model(xt, given)
    loss = (out * G).sum()
    for s, g in zip(parts(final), G_state):
        loss = loss + (s * g).sum()
    loss.backward()
    ops = tg.Graph(loss).ops()
    # one rnn_cell / gru_cell node per step; the lstm_cell op has two outputs per step (h_t and c_t)
    per_step = 2 if fused_op == "lstm_cell" else 1
    assert ops["lstm_cell"] + ops["gru_cell"] + ops["rnn_cell"] == (per_step * T if fused_op else 0)
    if fused_op:
        assert ops[fused_op] == per_step * T

    ref_state = state0[0] if n_state == 1 else tuple(state0)
    ref_G_state = G_state[0] if n_state == 1 else tuple(G_state)
    r_out, r_final, r_grads, r_dx, r_dstate = reference(kind, params_of(model.cell), x, ref_state, G, ref_G_state)

    np.testing.assert_allclose(out.data, r_out, **TOL)
    for got, want in zip(parts(final), parts(r_final)):
        np.testing.assert_allclose(got.data, want, **TOL)
    for name, p in model.cell.named_parameters():
        np.testing.assert_allclose(p.grad, r_grads[name], err_msg=name, **TOL)
    np.testing.assert_allclose(xt.grad, r_dx, **TOL)
    if with_state:
        for s, want in zip(st, parts(r_dstate)):
            np.testing.assert_allclose(s.grad, want, **TOL)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_direct_cell_calls_match_numpy_bptt(kind):
    """Calling the cell step by step (the per-gate reference path, no fusion)."""
    T = 6
    rng = np.random.default_rng(3)
    cell = build(kind).cell
    x = rng.normal(size=(T, B, D))
    G = rng.normal(size=(T, B, H))
    n_state = 2 if kind == "lstm" else 1
    state0 = [rng.normal(size=(B, H)) for _ in range(n_state)]
    G_state = [np.zeros((B, H)) for _ in range(n_state)]
    state = tuple(tg.tensor(s) for s in state0) if n_state == 2 else tg.tensor(state0[0])
    loss = 0.0
    for t in range(T):
        y, state = cell(tg.tensor(x[t]), state)
        loss = loss + (y * G[t]).sum()
    loss.backward()
    ref_state = tuple(state0) if n_state == 2 else state0[0]
    ref_G = tuple(G_state) if n_state == 2 else G_state[0]
    _, r_final, r_grads, _, _ = reference(kind, params_of(cell), x, ref_state, G, ref_G)
    for got, want in zip(parts(state), parts(r_final)):
        np.testing.assert_allclose(got.data, want, **TOL)
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(p.grad, r_grads[name], err_msg=name, **TOL)


@pytest.mark.parametrize("fused", [True, False])
def test_two_layer_gru_with_output_layer_matches_composed_reference(fused):
    T = 7
    rng = np.random.default_rng(9)
    model = build("gru", num_layers=2, output_size=5, fused=fused)
    x = rng.normal(size=(T, B, D))
    Gy = rng.normal(size=(T, B, 5))
    G_final = [rng.normal(size=(B, H)) for _ in range(2)]
    y, final = model(x)
    loss = (y * Gy).sum() + (final[0] * G_final[0]).sum() + (final[1] * G_final[1]).sum()
    loss.backward()

    zeros = np.zeros((B, H))
    p0, p1 = params_of(model.cell), params_of(model.cell_1)
    W_hy = model.W_hy.data
    h1, f1, _, _, _ = gru_forward_backward(p0, x, zeros, np.zeros((T, B, H)), zeros)
    h2, f2, g1, dx1, _ = gru_forward_backward(p1, h1, zeros, Gy @ W_hy.T, G_final[1])
    _, _, g0, _, _ = gru_forward_backward(p0, x, zeros, dx1, G_final[0])
    np.testing.assert_allclose(y.data, h2 @ W_hy + model.b_y.data, **TOL)
    np.testing.assert_allclose(final[0].data, f1, **TOL)
    np.testing.assert_allclose(final[1].data, f2, **TOL)
    for name, p in model.cell_1.named_parameters():
        np.testing.assert_allclose(p.grad, g1[name], err_msg=name, **TOL)
    for name, p in model.cell.named_parameters():
        np.testing.assert_allclose(p.grad, g0[name], err_msg=name, **TOL)


def test_output_layer_and_two_layers_match_composed_reference():
    T = 7
    rng = np.random.default_rng(5)
    model = build("lstm", num_layers=2, output_size=5)
    x = rng.normal(size=(T, B, D))
    Gy = rng.normal(size=(T, B, 5))
    y, final = model(x)
    (y * Gy).sum().backward()

    zeros = np.zeros((B, H))
    p0, p1 = params_of(model.cell), params_of(model.cell_1)
    W_hy, b_y = model.W_hy.data, model.b_y.data
    # forward through both layers to get h^(2), then the output layer's gradient
    h1, f1, _, _, _ = lstm_forward_backward(p0, x, zeros, zeros, np.zeros((T, B, H)), zeros, zeros)
    h2, f2, _, _, _ = lstm_forward_backward(p1, h1, zeros, zeros, np.zeros((T, B, H)), zeros, zeros)
    np.testing.assert_allclose(y.data, h2 @ W_hy + b_y, **TOL)
    np.testing.assert_allclose(model.W_hy.grad, np.einsum("tbh,tbo->ho", h2, Gy), **TOL)
    np.testing.assert_allclose(model.b_y.grad, Gy.sum(axis=(0, 1)), **TOL)
    # backward: layer 2 gets dL/dh2, and passes dL/dh1 (its dx) to layer 1
    _, _, g1, dx1, _ = lstm_forward_backward(p1, h1, zeros, zeros, Gy @ W_hy.T, zeros, zeros)
    _, _, g0, _, _ = lstm_forward_backward(p0, x, zeros, zeros, dx1, zeros, zeros)
    for name, p in model.cell_1.named_parameters():
        np.testing.assert_allclose(p.grad, g1[name], err_msg=name, **TOL)
    for name, p in model.cell.named_parameters():
        np.testing.assert_allclose(p.grad, g0[name], err_msg=name, **TOL)
    assert len(final) == 2
    np.testing.assert_allclose(final[1][0].data, f2[0], **TOL)
    np.testing.assert_allclose(final[0][1].data, f1[1], **TOL)


def _bind(modules_params, tensors):
    """Make the cell compute with ``tensors`` in place of its parameters (for gradcheck)."""
    for (module, name), t in zip(modules_params, tensors):
        module._parameters[name] = t
        object.__setattr__(module, name, t)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "lstm_unfused", "gru", "gru_unfused"])
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_finite_differences(kind, fused):
    T = 4
    rng = np.random.default_rng(11)
    model = build(kind)
    cell = model.cell
    slots = [(cell, name) for name, _ in cell.named_parameters()]
    params = [tg.tensor(p.data.copy(), name=name) for name, p in cell.named_parameters()]
    x = tg.tensor(rng.normal(size=(T, B, D)), name="x")
    G = rng.normal(size=(T, B, H))

    def loss(x, *ps):
        _bind(slots, ps)
        if fused:
            out, _ = model(x)
            return (out * G).sum()
        state = cell.initial_state(B, np.float64)
        total = 0.0
        for t in range(T):
            y, state = cell(x[t], state)
            total = total + (y * G[t]).sum()
        return total

    assert tg.gradcheck(loss, [x] + params, eps=1e-6, atol=1e-7, rtol=1e-5)
