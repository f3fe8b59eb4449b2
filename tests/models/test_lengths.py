"""``lengths=`` on RNN/LSTM/GRU: a padded batch equals running each sequence alone.

Checked two ways, in float64: against per-sequence runs of the same model (outputs,
final states, parameter and input gradients), and against the independent numpy
BPTT of ``numpy_reference`` run on each truncated sequence (the padded batch's loss
is the sum of the per-sequence losses, so its gradients are the sum of theirs).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygraph as tg
from tinygraph import models
from tinygraph.unrolling import flatten_state
from numpy_reference import gru_forward_backward, lstm_forward_backward, rnn_forward_backward

D, H = 3, 4
KINDS = ["rnn", "lstm", "lstm_unfused", "gru", "gru_unfused"]


def build(kind, num_layers=1):
    fused = {} if kind == "rnn" else {"fused": not kind.endswith("_unfused")}
    cls = {"rnn": models.RNN, "lstm": models.LSTM, "gru": models.GRU}[kind.split("_")[0]]
    with tg.default_dtype(np.float64):
        return cls(D, H, num_layers=num_layers, rng=3, **fused)


def weighted_loss(out, final, G, G_state):
    loss = (out * G).sum()
    for s, g in zip(flatten_state(final), G_state):
        loss = loss + (s * g).sum()
    return loss


def grads(model):
    return {k: p.grad.copy() for k, p in model.named_parameters()}


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(KINDS), layers=st.integers(1, 2), data=st.data())
def test_padded_batch_equals_each_sequence_alone(kind, layers, data):
    T = data.draw(st.integers(1, 6), label="T")
    B = data.draw(st.integers(1, 4), label="B")
    lengths = np.array(data.draw(st.lists(st.integers(1, T), min_size=B, max_size=B), label="lengths"))
    with_state = data.draw(st.booleans(), label="with_state")
    rng = np.random.default_rng(T * 31 + B)
    model = build(kind, layers)
    n_parts = (2 if kind.startswith("lstm") else 1)
    x = rng.normal(size=(T, B, D))
    s0 = [[rng.normal(size=(B, H)) if with_state else np.zeros((B, H)) for _ in range(n_parts)]
          for _ in range(layers)]
    G = rng.normal(size=(T, B, H))
    G_state = [rng.normal(size=(B, H)) for _ in range(n_parts * layers)]

    def state_arg(rows):
        per_layer = [p[0][rows] if n_parts == 1 else tuple(q[rows] for q in p) for p in s0]
        return per_layer[0] if layers == 1 else per_layer

    xt = tg.tensor(x, requires_grad=True)
    out, final = model(xt, state_arg(slice(None)), lengths=lengths)
    weighted_loss(out, final, G, G_state).backward()
    batch_grads, batch_dx = grads(model), xt.grad.copy()
    finals = [s.data for s in flatten_state(final)]

    # padding never leaks: outputs past a length are exactly zero
    for b, L in enumerate(lengths):
        assert np.all(out.data[L:, b] == 0)

    model.zero_grad()
    dx_alone = np.zeros_like(x)
    for b, L in enumerate(lengths):
        xb = tg.tensor(x[:L, b:b + 1], requires_grad=True)
        ob, fb = model(xb, state_arg(slice(b, b + 1)))
        np.testing.assert_allclose(out.data[:L, b], ob.data[:, 0], rtol=1e-12, atol=1e-12)
        for whole, alone in zip(finals, flatten_state(fb)):
            np.testing.assert_allclose(whole[b], alone.data[0], rtol=1e-12, atol=1e-12)
        loss = weighted_loss(ob, fb, G[:L, b:b + 1], [g[b:b + 1] for g in G_state])
        loss.backward()
        dx_alone[:L, b] = xb.grad[:, 0]
    for k, g in grads(model).items():
        np.testing.assert_allclose(batch_grads[k], g, rtol=1e-10, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(batch_dx, dx_alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_lengths_against_numpy_bptt(kind):
    rng = np.random.default_rng(0)
    T, B = 7, 4
    lengths = np.array([7, 1, 4, 2])
    model = build(kind)
    base = kind.split("_")[0]
    n_parts = 2 if base == "lstm" else 1
    x = rng.normal(size=(T, B, D))
    G = rng.normal(size=(T, B, H))
    G_state = [rng.normal(size=(B, H)) for _ in range(n_parts)]
    out, final = model(x, lengths=lengths)
    weighted_loss(out, final, G, G_state).backward()

    p = {k: v.data for k, v in model.cell.named_parameters()}
    want = {k: np.zeros_like(v) for k, v in p.items()}
    for b, L in enumerate(lengths):
        xb, Gb = x[:L, b:b + 1], G[:L, b:b + 1]
        zeros = np.zeros((1, H))
        Gs = [g[b:b + 1] for g in G_state]
        if base == "rnn":
            o, f, gr, _, _ = rnn_forward_backward(p, xb, zeros, Gb, Gs[0])
            f = [f]
        elif base == "lstm":
            o, f, gr, _, _ = lstm_forward_backward(p, xb, zeros, zeros, Gb, *Gs)
        else:
            o, f, gr, _, _ = gru_forward_backward(p, xb, zeros, Gb, Gs[0])
            f = [f]
        np.testing.assert_allclose(out.data[:L, b], o[:, 0], rtol=1e-10, atol=1e-12)
        assert np.all(out.data[L:, b] == 0)
        for got, ref in zip(flatten_state(final), f):
            np.testing.assert_allclose(got.data[b], ref[0], rtol=1e-10, atol=1e-12)
        for k in want:
            want[k] += gr[k]
    for k, prm in model.cell.named_parameters():
        np.testing.assert_allclose(prm.grad, want[k], rtol=1e-9, atol=1e-12, err_msg=k)


def test_lengths_keep_the_instances_of_the_cell():
    model = build("lstm")
    out, _ = model(np.zeros((5, 2, D)), lengths=[5, 3])
    assert tg.Graph(out).instances() == {"LSTMCell": 5}


def test_masked_unroll_works_for_a_users_template():
    class Counter(tg.Template):
        def forward(self, x, h):
            return h + x, h + x

    out, final = models.masked_unroll(Counter(), np.ones((4, 3, 1)), tg.tensor(np.zeros((3, 1))), lengths=[4, 1, 2])
    assert final.data[:, 0].tolist() == [4, 1, 2]
    assert out.data[:, :, 0].T.tolist() == [[1, 2, 3, 4], [1, 0, 0, 0], [1, 2, 0, 0]]


@pytest.mark.parametrize("lengths, error, words", [
    ([3, 0], ValueError, "1 <= length <= T = 3"),
    ([3, 4], ValueError, "1 <= length <= T = 3"),
    ([3], ValueError, "shape (B,) = (2,)"),
    ([1.5, 2.0], TypeError, "integers"),
])
def test_bad_lengths_are_clear_errors(lengths, error, words):
    with pytest.raises(error, match="LSTM") as info:
        build("lstm")(np.zeros((3, 2, D)), lengths=lengths)
    assert words in str(info.value)
