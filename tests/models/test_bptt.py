"""BPTT tools against independent numpy computations."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from numpy_reference import rnn_forward_backward

D, H, B = 3, 4, 2
TOL = dict(rtol=1e-10, atol=1e-10)


def rnn(scale=None, nonlinearity="tanh"):
    with tg.default_dtype(np.float64):
        model = models.RNN(D, H, nonlinearity=nonlinearity, rng=0)
    if scale is not None:
        model.cell.W_hh.data[...] = scale * np.eye(H)
    return model


def params_of(cell):
    return {name: p.data for name, p in cell.named_parameters()}


def weighted_sum(G):
    return lambda out, targets: (out * targets).sum() if G is None else (out * G).sum()


def test_truncated_bptt_sums_chunk_gradients_with_detached_state():
    T, k = 10, 4
    rng = np.random.default_rng(0)
    model = rnn()
    x = rng.normal(size=(T, B, D))
    G = rng.normal(size=(T, B, H))
    result = models.truncated_bptt(model, x, G, lambda out, g: (out * g).sum(), k)

    # reference: each chunk starts from the previous chunk's final h, gradients stop there
    p = params_of(model.cell)
    h = np.zeros((B, H))
    want = {name: np.zeros_like(v) for name, v in p.items()}
    losses = []
    for s in range(0, T, k):
        out, h_next, grads, _, _ = rnn_forward_backward(p, x[s:s + k], h, G[s:s + k], np.zeros((B, H)))
        losses.append(float((out * G[s:s + k]).sum()))
        for name in want:
            want[name] += grads[name]
        h = h_next
    assert len(result.losses) == 3
    np.testing.assert_allclose(result.losses, losses, **TOL)
    for name, param in model.cell.named_parameters():
        np.testing.assert_allclose(param.grad, want[name], err_msg=name, **TOL)
    np.testing.assert_allclose(result.state.data, h, **TOL)
    assert result.state.parents == () and not result.state.requires_grad

    # and the truncated gradient really differs from full BPTT's
    _, _, full, _, _ = rnn_forward_backward(p, x, np.zeros((B, H)), G, np.zeros((B, H)))
    assert not np.allclose(full["W_hh"], want["W_hh"])


def test_truncated_bptt_with_k_equal_T_is_full_bptt():
    T = 6
    rng = np.random.default_rng(1)
    model = rnn()
    x, G = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
    models.truncated_bptt(model, x, G, lambda out, g: (out * g).sum(), k=T)
    _, _, full, _, _ = rnn_forward_backward(params_of(model.cell), x, np.zeros((B, H)), G, np.zeros((B, H)))
    for name, param in model.cell.named_parameters():
        np.testing.assert_allclose(param.grad, full[name], err_msg=name, **TOL)


def test_truncated_bptt_lstm_with_optimizer_and_clipping_runs_and_learns():
    """float64. The last epoch's mean loss is 0.026 of the first's under OPENBLAS_CORETYPE=
    Prescott, Sandybridge, Haswell, Zen and the default (identical to 4 digits), and 0.007-0.035
    for ten other data/initialisation seeds; the bound, 0.2, leaves a wide margin."""
    rng = np.random.default_rng(2)
    with tg.default_dtype(np.float64):
        model = models.LSTM(1, 8, output_size=1, rng=0)
    x = rng.normal(size=(60, 4, 1))
    y = np.roll(x, 1, axis=0)  # predict the previous input: needs one step of memory
    opt = tg.optim.Adam(model.parameters(), lr=0.05)

    def mse(out, target):
        return ((out - target) ** 2).mean()

    first = models.truncated_bptt(model, x, y, mse, k=10, optimizer=opt, max_norm=1.0)
    for _ in range(15):
        last = models.truncated_bptt(model, x, y, mse, k=10, optimizer=opt, max_norm=1.0)
    assert len(first.losses) == 6 and all(np.isfinite(first.grad_norms))
    assert np.mean(last.losses) < 0.2 * np.mean(first.losses)
    h, c = last.state
    assert h.shape == c.shape == (4, 8) and not h.requires_grad


def test_train_step_clips_the_joint_norm_before_the_update():
    rng = np.random.default_rng(3)
    model = rnn(nonlinearity="tanh")
    x, G = rng.normal(size=(5, B, D)), 100 * rng.normal(size=(5, B, H))
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    _, _, grads, _, _ = rnn_forward_backward(params_of(model.cell), x, np.zeros((B, H)), G, np.zeros((B, H)))
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    lr, max_norm = 0.1, 0.5
    result = models.train_step(model, x, G, lambda out, g: (out * g).sum(),
                               optimizer=tg.optim.SGD(model.parameters(), lr=lr), max_norm=max_norm)
    assert result.grad_norm == pytest.approx(norm, rel=1e-10)
    assert norm > max_norm
    scale = max_norm / (norm + 1e-6)
    for name, p in model.cell.named_parameters():
        np.testing.assert_allclose(p.data, before["cell." + name] - lr * scale * grads[name], **TOL)


def test_grad_norms_through_time_match_the_numpy_recursion():
    T = 8
    rng = np.random.default_rng(4)
    model = rnn()
    x, G = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
    out, _ = model(x)
    hs = models.step_outputs(out)
    assert len(hs) == T and hs[0].instance == ("RNNCell", 0)
    norms = models.grad_norms_through_time((out * G).sum(), hs)

    p = params_of(model.cell)
    h_seq = [np.zeros((B, H))]
    for t in range(T):
        h_seq.append(np.tanh(x[t] @ p["W_xh"] + h_seq[-1] @ p["W_hh"] + p["b_h"]))
    dh_next, want = np.zeros((B, H)), np.zeros(T)
    for t in reversed(range(T)):
        dh = G[t] + dh_next  # dL/dh_t = dL_t/dh_t + dL/dh_{t+1} dh_{t+1}/dh_t
        want[t] = np.linalg.norm(dh)
        dh_next = (dh * (1 - h_seq[t + 1] ** 2)) @ p["W_hh"].T
    np.testing.assert_allclose(norms, want, **TOL)
    assert model.cell.W_hh.grad is not None  # parameters got their gradients too


def test_step_outputs_through_an_output_layer_finds_the_hidden_states():
    with tg.default_dtype(np.float64):
        model = models.GRU(D, H, output_size=2, rng=0)
    y, final = model(np.ones((5, B, D)))
    hs = models.step_outputs(y)
    assert len(hs) == 5 and hs[-1] is final
    with pytest.raises(ValueError, match="no stacked template outputs"):
        models.step_outputs(tg.tensor(np.ones(3), requires_grad=True) * 2)


def _jacobian_product_norms(p, x):
    """||dh_T/dh_t||_F (batch mean) of a tanh RNN from the explicit product of Jacobians."""
    T = x.shape[0]
    hs = [np.zeros((B, H))]
    for t in range(T):
        hs.append(np.tanh(x[t] @ p["W_xh"] + hs[-1] @ p["W_hh"] + p["b_h"]))
    out = np.zeros(T)
    for b in range(B):
        J = np.eye(H)  # dh_T/dh_T
        for t in reversed(range(T)):  # t indexes hs[t + 1]
            out[t] += np.linalg.norm(J) / B
            # dh_{t+1}/dh_t [i, j] = (1 - h_{t+1}[i]^2) W_hh[j, i]  (row-vector convention)
            J = J @ ((1 - hs[t + 1][b] ** 2)[:, None] * p["W_hh"].T)
    return out


@pytest.mark.parametrize("scale", [0.3, 2.5])
def test_jacobian_norms_match_the_product_of_jacobians(scale):
    T = 12
    rng = np.random.default_rng(5)
    model = rnn()
    model.cell.W_hh.data[...] = scale * rng.normal(size=(H, H)) / np.sqrt(H)
    x = rng.normal(size=(T, B, D))
    out, h_T = model(x)
    hs = models.step_outputs(out)
    model.cell.W_hh.grad = sentinel = np.full((H, H), 7.0)
    norms = models.jacobian_norms(h_T, hs)
    np.testing.assert_allclose(norms, _jacobian_product_norms(params_of(model.cell), x), rtol=1e-9, atol=1e-12)
    assert norms[-1] == pytest.approx(np.sqrt(H))
    assert model.cell.W_hh.grad is sentinel  # restored


def test_jacobian_norms_show_vanishing_and_exploding_gradients():
    T = 20
    x = np.full((T, B, D), 0.5)
    small = rnn(scale=0.3)
    out, h_T = small(x)
    vanishing = models.jacobian_norms(h_T, models.step_outputs(out))
    assert vanishing[0] < 1e-8 * vanishing[-1]
    assert np.all(np.diff(vanishing) > 0)  # the further back, the smaller

    big = rnn(scale=1.5, nonlinearity="relu")
    big.cell.W_xh.data[...] = 1.0
    out, h_T = big(x)
    exploding = models.jacobian_norms(h_T, models.step_outputs(out))
    assert exploding[0] > 1e3 * exploding[-1]


def test_bad_arguments_are_clear_errors():
    model = rnn()
    x = np.zeros((4, B, D))
    loss = weighted_sum(np.ones((4, B, H)))
    with pytest.raises(ValueError, match="k .* positive integer"):
        models.truncated_bptt(model, x, None, loss, k=0)
    with pytest.raises(ValueError, match=r"truncated_bptt: xs must be time-major \(T, B, ...\), got shape \(4\)"):
        models.truncated_bptt(model, np.zeros(4), None, loss, k=2)
    with pytest.raises(ValueError, match=r"RNN: expected a time-major input of shape \(T, B, input_size=3\)"):
        models.truncated_bptt(model, np.zeros((4, D)), None, loss, k=2)
    with pytest.raises(ValueError, match="targets have 3 steps but xs has T = 4"):
        models.truncated_bptt(model, x, np.zeros((3, B, H)), loss, k=2)
    with pytest.raises(ValueError, match="one-element Tensor"):
        models.train_step(model, x, None, lambda out: out)
    with pytest.raises(ValueError, match=r"h_T must be a \(B, H\) Tensor"):
        models.jacobian_norms(tg.tensor(np.zeros(3)), [])
    with pytest.raises(TypeError, match="detach_state"):
        models.detach_state(3)


def test_truncated_bptt_keeps_a_float32_model_in_float32():
    model = models.LSTM(3, 4, rng=0)
    seen = []

    def loss_fn(outputs, targets):
        seen.append(outputs.dtype)
        return ((outputs - targets) ** 2).mean()

    xs = np.random.default_rng(0).normal(size=(7, 2, 3))  # float64 data
    ys = np.zeros((7, 2, 4), dtype=np.float32)
    result = models.truncated_bptt(model, xs, ys, loss_fn, k=3)
    assert seen == [np.float32] * 3 and len(result.losses) == 3


def test_jacobian_norms_puts_back_the_states_gradients_and_retain_marks():
    model = models.RNN(2, 3, rng=0)
    outputs, h_T = model(np.ones((4, 1, 2)))
    hs = models.step_outputs(outputs)
    hs[1].retain_grad()
    (outputs ** 2).sum().backward(retain_grads=False)
    before = hs[1].grad.copy()
    models.jacobian_norms(h_T, hs)
    np.testing.assert_array_equal(hs[1].grad, before)
    assert hs[1]._retain and not hs[2]._retain and hs[2].grad is None


def test_grad_contributions_are_the_per_step_terms_of_bptt():
    with tg.default_dtype(np.float64):
        rnn = models.RNN(2, 3, output_size=1, rng=0)
        xs = np.random.default_rng(0).normal(size=(5, 2, 2))
        ys, _ = rnn(xs)
        loss = (ys ** 2).sum()
        terms = models.grad_contributions(loss, rnn.cell.W_hh)
    assert [t.instance for t in terms] == [("RNNCell", t) for t in range(5)]
    np.testing.assert_allclose(sum(t.grad for t in terms), rnn.cell.W_hh.grad, rtol=1e-12, atol=1e-14)
    # the textbook recursion, by hand: term t is h_{t-1}^T (dL/dh_t * tanh')
    Wxh, Whh, bh = rnn.cell.W_xh.data, rnn.cell.W_hh.data, rnn.cell.b_h.data
    Why, by = rnn.W_hy.data, rnn.b_y.data
    hs = [np.zeros((2, 3))]
    for t in range(5):
        hs.append(np.tanh(xs[t] @ Wxh + hs[-1] @ Whh + bh))
    dh_next, expected = np.zeros((2, 3)), [None] * 5
    for t in reversed(range(5)):
        dh = 2 * (hs[t + 1] @ Why + by) @ Why.T + dh_next
        da = dh * (1 - hs[t + 1] ** 2)
        expected[t] = hs[t].T @ da
        dh_next = da @ Whh.T
    for term, want in zip(terms, expected):
        np.testing.assert_allclose(term.grad, want, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cls, name", [(models.LSTM, "W_hf"), (models.GRU, "W_hz")])
def test_grad_contributions_see_through_the_fused_cells_concatenation(cls, name):
    xs = np.random.default_rng(1).normal(size=(4, 2, 3))
    per_step = {}
    for fused in (True, False):
        with tg.default_dtype(np.float64):
            model = cls(3, 2, fused=fused, rng=0)
            outputs, _ = model(xs)
            terms = models.grad_contributions((outputs ** 2).sum(), getattr(model.cell, name))
        assert [t.instance[1] for t in terms] == [0, 1, 2, 3]
        np.testing.assert_allclose(sum(t.grad for t in terms), getattr(model.cell, name).grad, atol=1e-14)
        per_step[fused] = [t.grad for t in terms]
    for a, b in zip(per_step[True], per_step[False]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-14)


def test_grad_contributions_errors_and_restored_marks():
    rnn = models.RNN(2, 3, rng=0)
    outputs, _ = rnn(np.ones((3, 1, 2)))
    loss = (outputs ** 2).sum()
    with pytest.raises(ValueError, match="not an input of any node"):
        models.grad_contributions(loss, tg.tensor(np.ones(2), name="stray"))
    terms = models.grad_contributions(loss, rnn.cell.W_hh)
    assert all(not t.node._retain and t.node.grad is None for t in terms)
