"""Every op in the op table: gradient against central finite differences in float64,
on hypothesis-drawn shapes (broadcasting included), and forward against numpy."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygraph as tg
from op_cases import STRATEGIES
from tinygraph import models  # noqa: F401,E402  (the fused recurrent ops are custom ops registered by models)
from tinygraph.ops import OPS, OuterSum
from tinygraph.tensor import apply

OP_NAMES = sorted(OPS)


def test_every_op_kind_has_a_strategy():
    missing = {name: op.kind for name, op in OPS.items() if op.kind not in STRATEGIES}
    assert not missing, f"ops without an input strategy for the gradient tests: {missing}"


def test_the_gradient_tests_cover_the_fused_recurrent_ops_registered_by_models():
    assert {"rnn_cell", "lstm_cell", "gru_cell"} <= set(OP_NAMES)


def test_table_has_the_contract_ops():
    for name in ["add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "sigmoid", "relu",
                 "sum", "mean", "max", "matmul", "reshape", "transpose", "index", "concat", "stack"]:
        assert name in OPS


def _outputs(result):
    """The outputs of an op application as a tuple (a multi-output op returns several)."""
    return result if isinstance(result, tuple) else (result,)


def _check_op(op, arrays, attrs, data):
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=o.shape) for o in _outputs(apply(op, *arrays, **attrs))]

    def fn(*xs):
        total = None
        for o, w in zip(_outputs(apply(op, *xs, **attrs)), weights):
            total = (o * w).sum() if total is None else total + (o * w).sum()
        return total

    inputs = [tg.tensor(a, name=f"x{i}") for i, a in enumerate(arrays)]
    assert tg.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", OP_NAMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_gradient_matches_finite_differences(name, data):
    op = OPS[name]
    arrays, attrs = data.draw(STRATEGIES[op.kind](op))
    _check_op(op, arrays, attrs, data)


@pytest.mark.parametrize("name", OP_NAMES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_forward_keeps_float32_and_matches_float64(name, data):
    op = OPS[name]
    arrays, attrs = data.draw(STRATEGIES[op.kind](op))
    outs64 = _outputs(apply(op, *[tg.tensor(a) for a in arrays], **attrs))
    outs32 = _outputs(apply(op, *[tg.tensor(a.astype(np.float32)) for a in arrays], **attrs))
    for out32, out64 in zip(outs32, outs64):
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32.data, out64.data, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", OP_NAMES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_float32_gradients_stay_float32(name, data):
    op = OPS[name]
    arrays, attrs = data.draw(STRATEGIES[op.kind](op))
    xs = [tg.tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    outs = _outputs(apply(op, *xs, **attrs))
    tg.autograd.backward(list(outs), [np.ones(o.shape, dtype=np.float32) for o in outs])
    for x in xs:
        assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


def test_forward_matches_numpy_for_operators():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2, size=(3, 1, 4)), rng.uniform(0.5, 2, size=(2, 4))
    A, B = tg.tensor(a), tg.tensor(b)
    for got, want in [(A + B, a + b), (A - B, a - b), (A * B, a * b), (A / B, a / b), (A ** B, a ** b),
                      (-A, -a), (A.exp(), np.exp(a)), (A.log(), np.log(a)), (A.tanh(), np.tanh(a)),
                      (A.sigmoid(), 1 / (1 + np.exp(-a))), ((A - 1).relu(), np.maximum(a - 1, 0)),
                      (A.sum(axis=(0, 2)), a.sum(axis=(0, 2))), (A.mean(axis=-1, keepdims=True), a.mean(-1, keepdims=True)),
                      (A.max(axis=0), a.max(0)), (B @ B.T, b @ b.T), (A.reshape(4, 3), a.reshape(4, 3)),
                      (A.transpose(2, 0, 1), a.transpose(2, 0, 1)), (A.T, a.T), (A[1:, 0], a[1:, 0]),
                      (tg.concat([B, B], axis=1), np.concatenate([b, b], 1)), (tg.stack([B, B], 1), np.stack([b, b], 1))]:
        np.testing.assert_allclose(got.data, want, rtol=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    x = tg.tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4]), requires_grad=True)
    y = x.sigmoid()
    assert np.all(np.isfinite(y.data)) and y.data[0] == 0.0 and y.data[-1] == 1.0
    y.sum().backward()
    assert np.all(np.isfinite(x.grad))


def test_max_ties_split_the_gradient_evenly():
    x = tg.tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    y = tg.tensor(np.array([5.0, 5.0]), requires_grad=True)
    y.maximum(tg.tensor(np.array([5.0, 1.0]))).sum().backward()
    np.testing.assert_allclose(y.grad, [0.5, 1.0])


def test_repeated_integer_indices_accumulate():
    x = tg.tensor(np.arange(4.0), requires_grad=True)
    x[np.array([0, 2, 2, 2, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 0, 3, 1])


def test_pow_gradient_at_zero_base_is_finite():
    x = tg.tensor(np.array([0.0, 2.0]), requires_grad=True)
    p = tg.tensor(np.array([2.0, 3.0]), requires_grad=True)
    (x ** p).sum().backward()
    np.testing.assert_allclose(x.grad, [0.0, 12.0])
    np.testing.assert_allclose(p.grad, [0.0, 8 * np.log(2)])


# -- the deferred weight gradient (OuterSum) -------------------------------------------
def _shared_weight_loss(W, xs, extra):
    total = None
    for x in xs:
        term = ((x @ W).tanh()).sum()
        total = term if total is None else total + term
    return total + (W * extra).sum()


@pytest.mark.parametrize("max_rows", [OuterSum.MAX_ROWS, 5])
def test_weight_shared_by_many_matmuls_gets_the_summed_gradient(monkeypatch, max_rows):
    monkeypatch.setattr(OuterSum, "MAX_ROWS", max_rows)
    rng = np.random.default_rng(3)
    xs = [tg.tensor(rng.normal(size=(3, 4))) for _ in range(6)]
    extra = rng.normal(size=(4, 5))
    W = tg.tensor(rng.normal(size=(4, 5)), requires_grad=True)
    _shared_weight_loss(W, xs, extra).backward()
    expected = extra.copy()
    for x in xs:
        expected += x.data.T @ (1 - np.tanh(x.data @ W.data) ** 2)
    np.testing.assert_allclose(W.grad, expected, rtol=1e-12)
    assert tg.gradcheck(lambda W: _shared_weight_loss(W, xs, extra), [W])


def test_deferred_gradient_through_a_non_leaf_weight():
    rng = np.random.default_rng(4)
    a = tg.tensor(rng.normal(size=(3, 2)), requires_grad=True)
    b = tg.tensor(rng.normal(size=(3, 2)), requires_grad=True)
    xs = [tg.tensor(rng.normal(size=(2, 3))) for _ in range(3)]

    def fn(a, b):
        W = tg.concat([a, b], axis=1)  # a non-leaf weight shared by three matmuls
        return sum(((x @ W) ** 2).sum() for x in xs[1:]) + ((xs[0] @ W) ** 2).sum()

    assert tg.gradcheck(fn, [a, b])
