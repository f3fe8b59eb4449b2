"""Property-based: RNN/LSTM/GRU on hypothesis-drawn sizes against the numpy BPTT reference.

Each example also runs the same model a second time on new data, so the
buffers the cells reuse between unrolls are exercised with their previous
contents still in them.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygraph import models
import tinygraph as tg
from numpy_reference import gru_forward_backward, lstm_forward_backward, rnn_forward_backward

TOL = dict(rtol=1e-9, atol=1e-9)
KINDS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_unfused", "gru"]


def build(kind, D, H, seed):
    with tg.default_dtype(np.float64):
        if kind.startswith("rnn"):
            return models.RNN(D, H, nonlinearity=kind.split("_")[1], rng=seed)
        if kind == "lstm_unfused":
            return models.LSTM(D, H, fused=False, rng=seed)
        return {"lstm": models.LSTM, "gru": models.GRU}[kind](D, H, rng=seed)


def reference(kind, params, x, state, G, G_state):
    if kind.startswith("rnn"):
        return rnn_forward_backward(params, x, state[0], G, G_state[0], kind.split("_")[1])
    if kind.startswith("lstm"):
        return lstm_forward_backward(params, x, state[0], state[1], G, G_state[0], G_state[1])
    return gru_forward_backward(params, x, state[0], G, G_state[0])


def run_and_compare(model, kind, rng, T, B, with_state):
    D, H = model.input_size, model.hidden_size
    n_state = 2 if kind.startswith("lstm") else 1
    x = rng.normal(size=(T, B, D))
    state0 = [rng.normal(size=(B, H)) if with_state else np.zeros((B, H)) for _ in range(n_state)]
    G = rng.normal(size=(T, B, H))
    G_state = [rng.normal(size=(B, H)) for _ in range(n_state)]

    xt = tg.tensor(x, requires_grad=True)
    st_ = [tg.tensor(s, requires_grad=True) for s in state0]
    given_state = None if not with_state else (st_[0] if n_state == 1 else tuple(st_))
    model.zero_grad()
    out, final = model(xt, given_state)
    finals = list(final) if isinstance(final, tuple) else [final]
    loss = (out * G).sum()
    for s, g in zip(finals, G_state):
        loss = loss + (s * g).sum()
    loss.backward()

    params = {name: p.data for name, p in model.cell.named_parameters()}
    r_out, r_final, r_grads, r_dx, r_dstate = reference(kind, params, x, state0, G, G_state)
    np.testing.assert_allclose(out.data, r_out, **TOL)
    r_finals = list(r_final) if isinstance(r_final, tuple) else [r_final]
    for got, want in zip(finals, r_finals):
        np.testing.assert_allclose(got.data, want, **TOL)
    for name, p in model.cell.named_parameters():
        np.testing.assert_allclose(p.grad, r_grads[name], err_msg=name, **TOL)
    np.testing.assert_allclose(xt.grad, r_dx, **TOL)
    if with_state:
        r_dstates = list(r_dstate) if isinstance(r_dstate, tuple) else [r_dstate]
        for s, want in zip(st_, r_dstates):
            np.testing.assert_allclose(s.grad, want, **TOL)
    return out


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(KINDS), T=st.integers(1, 7), B=st.integers(1, 4), D=st.integers(1, 5),
       H=st.integers(1, 6), with_state=st.booleans(), seed=st.integers(0, 2**16))
def test_models_match_numpy_bptt_on_drawn_sizes(kind, T, B, D, H, with_state, seed):
    rng = np.random.default_rng(seed)
    model = build(kind, D, H, seed)
    first = run_and_compare(model, kind, rng, T, B, with_state)
    kept = first.data.copy()
    second = run_and_compare(model, kind, rng, T, B, not with_state)
    np.testing.assert_array_equal(first.data, kept)  # a later unroll never writes into a live output
    del first, second
    run_and_compare(model, kind, rng, T, B, with_state)  # nothing refers to the old buffers: reused
    run_and_compare(model, kind, rng, max(1, T - 1), B, with_state)  # another length
