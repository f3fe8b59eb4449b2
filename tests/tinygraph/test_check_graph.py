"""``tinygraph.check_graph``: every node's VJP against finite differences, naming the first wrong node."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.ops import OPS


@pytest.fixture
def clean_ops():
    before = dict(OPS)
    yield
    OPS.clear()
    OPS.update(before)


def _sigmoid_op(wrong_deriv=False, wrong_at=None):
    """A user's sigmoid op; ``wrong_deriv`` uses tanh' (a typical mistake),
    ``wrong_at`` corrupts one element of the gradient only."""

    class MySigmoid(tg.Op):
        name = "my_sigmoid"

        def forward(self, x):
            return 1.0 / (1.0 + np.exp(-x))

        def vjp(self, g, out, x):
            if wrong_deriv:
                return (g * (1.0 - out * out),)
            grad = g * out * (1.0 - out)
            if wrong_at is not None:
                grad = grad.copy()
                grad[wrong_at] += 0.5
            return (grad,)

    return tg.register(MySigmoid)


class TinyLSTM(tg.Template):
    """A user's own LSTM cell template that uses a user's sigmoid op for the gates."""

    def __init__(self, D, H, sigmoid, rng):
        super().__init__(name="MyLSTM")
        self.sigmoid = sigmoid
        for k in "ifgo":
            setattr(self, f"W_x{k}", tg.nn.Parameter(rng.standard_normal((D, H)) * 0.5))
            setattr(self, f"W_h{k}", tg.nn.Parameter(rng.standard_normal((H, H)) * 0.5))

    def forward(self, x, state):
        h, c = state
        z = {k: x @ getattr(self, f"W_x{k}") + h @ getattr(self, f"W_h{k}") for k in "ifgo"}
        i, f, o = (self.sigmoid.apply(z[k]) for k in "ifo")
        g = z["g"].tanh()
        for name, t in dict(i=i, f=f, o=o, g=g).items():
            t.name = name
        c = f * c + i * g
        h = o * c.tanh()
        return h, (h, c)


def _unrolled_loss(sigmoid, T=4):
    rng = np.random.default_rng(0)
    with tg.default_dtype(np.float64):
        cell = TinyLSTM(3, 4, sigmoid, rng)
        xs = rng.standard_normal((T, 2, 3))
        zeros = tg.tensor(np.zeros((2, 4)))
        outs, _ = tg.unroll(cell, xs, (zeros, zeros))
        return (outs * outs).sum()


def test_a_correct_graph_passes_in_float32_and_float64():
    rng = np.random.default_rng(1)
    for dtype, fused in ((np.float32, True), (np.float64, False), (np.float64, True)):
        with tg.default_dtype(dtype):
            model = models.LSTM(3, 5, fused=fused)
            outs, (h, c) = model(rng.standard_normal((6, 2, 3)))
            loss = (outs * outs).sum() + (c * c).mean()
        assert tg.check_graph(loss) is True
    with tg.default_dtype(np.float64):
        rnn = models.RNN(2, 3)
        outs, h = rnn(rng.standard_normal((5, 2, 2)))
        assert tg.check_graph(outs.sum(), h) is True


def test_the_check_leaves_the_graph_untouched():
    """The check must not write into the graph's arrays (fused ops keep pooled output buffers)."""
    rng = np.random.default_rng(2)
    with tg.default_dtype(np.float64):
        model = models.LSTM(3, 4)
        x = rng.standard_normal((5, 2, 3))
        outs, _ = model(x)
        loss = (outs ** 2).sum()
        before = outs.data.copy()
        tg.check_graph(loss)
        np.testing.assert_array_equal(outs.data, before)
        loss.backward()
        grad = model.cell.W_hf.grad.copy()
    ref = models.LSTM(3, 4)
    ref.load_state_dict(model.state_dict())
    with tg.default_dtype(np.float64):
        model.zero_grad()
        outs, _ = model(x)
        (outs ** 2).sum().backward()
    np.testing.assert_allclose(model.cell.W_hf.grad, grad)


def test_a_wrong_user_op_is_named_with_its_template_instance_gate_and_step(clean_ops):
    good = _sigmoid_op()
    assert tg.check_graph(_unrolled_loss(good)) is True
    with pytest.warns(UserWarning, match="registered again"):
        bad = _sigmoid_op(wrong_deriv=True)
    loss = _unrolled_loss(bad, T=4)
    with pytest.raises(tg.GradcheckError) as info:
        tg.check_graph(loss)
    error = info.value
    message = str(error)
    # the first wrong node in backward order: the last step's output gate
    assert "my_sigmoid 'o' (MyLSTM t=3, o: my_sigmoid)" in message
    assert error.node.instance == ("MyLSTM", 3) and error.node.name == "o"
    assert error.parent_index == 0 and error.parent.op == "add"
    assert "parent 0 (add, shape (2,4))" in message
    # the worst element, with both values, and they really differ
    assert f"at index {error.index}" in message
    assert abs(error.analytic - error.numeric) > 1e-3
    assert f"vjp {error.analytic:.10g} vs finite differences {error.numeric:.10g}" in message


def test_a_mistake_in_one_element_is_found_by_the_directional_check(clean_ops):
    """Corrupting one element of a large parent: sampling 2 elements would miss it; the
    direction over the whole parent does not, and localisation finds the element."""
    bad = _sigmoid_op(wrong_at=(1, 7))
    x = tg.tensor(np.random.default_rng(3).standard_normal((3, 10)), requires_grad=True, name="x")
    y = bad.apply(x)
    y.name = "y"
    with pytest.raises(tg.GradcheckError) as info:
        tg.check_graph(y.sum(), samples=2)
    assert info.value.index == (1, 7)
    assert "my_sigmoid 'y'" in str(info.value) and "parent 0 'x'" in str(info.value)
    np.testing.assert_allclose(info.value.analytic - info.value.numeric, 0.5, atol=1e-6)


def test_the_first_wrong_node_in_backward_order_is_reported(clean_ops):
    bad = _sigmoid_op(wrong_deriv=True)
    with tg.default_dtype(np.float64):
        x = tg.tensor(np.array([0.3, -0.2]), requires_grad=True)
        a = bad.apply(x)
        a.name = "early"
        b = bad.apply(a * 2.0)
        b.name = "late"
    with pytest.raises(tg.GradcheckError, match="'late'"):
        tg.check_graph(b.sum())
    with pytest.raises(tg.GradcheckError, match="'early'"):
        tg.check_graph(a.sum())


def test_vjp_with_a_wrong_shape_or_count_is_a_clear_failure(clean_ops):
    class Bad(tg.Op):
        name = "bad_shape"

        def forward(self, x, y):
            return x * y

        def vjp(self, g, out, x, y):
            return (g * y,)  # one gradient for two inputs

    tg.register(Bad)
    x = tg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(tg.GradcheckError, match="one gradient per input"):
        tg.check_graph(Bad.apply(x, x).sum())

    class Wide(tg.Op):
        name = "bad_wide"

        def forward(self, x):
            return 2 * x

        def vjp(self, g, out, x):
            return (np.ones((4, 5)),)

    tg.register(Wide)
    with pytest.raises(tg.GradcheckError, match=r"shape \(4,5\)"):
        tg.check_graph(Wide.apply(x).sum())


def test_budget_stops_with_a_warning_and_bad_arguments_are_errors():
    with tg.default_dtype(np.float64):
        outs, _ = models.RNN(2, 3)(np.random.default_rng(0).standard_normal((6, 1, 2)))
    with pytest.warns(UserWarning, match="budget"):
        assert tg.check_graph(outs.sum(), budget=10)
    with pytest.raises(TypeError, match="root 0"):
        tg.check_graph(np.ones(3))
    with pytest.raises(ValueError, match="eps"):
        tg.check_graph(outs.sum(), eps=0)
    with pytest.raises(ValueError, match="at least one"):
        tg.check_graph()


def test_a_large_graph_is_checked_within_its_budget_quickly():
    import time

    with tg.default_dtype(np.float64):
        model = models.LSTM(16, 32, fused=False)
        outs, _ = model(np.random.default_rng(0).standard_normal((20, 8, 16)))
    start = time.perf_counter()
    assert tg.check_graph((outs ** 2).mean())
    assert time.perf_counter() - start < 30  # ~2 s here; sampling keeps big parents cheap


def test_kinks_are_not_wrong_vjps():
    """A relu RNN fed zeros has pre-activations exactly at relu's kink (0): central differences
    give 1/2 there and the VJP 0; both are defensible, so the element is skipped, not reported."""
    with tg.default_dtype(np.float64):
        for fused in (False, True):  # the kink inside a relu node, and inside the fused rnn_cell op
            rnn = models.RNN(2, 3, nonlinearity="relu", fused=fused)
            rnn.cell.b_h.data[...] = 0.0
            outputs, _ = rnn(np.zeros((4, 2, 2)))
            if not fused:
                pre = [n for n in tg.Graph(outputs).nodes if n.op == "relu"][0].parents[0]
                assert np.all(pre.data == 0)  # really at the kink
            else:
                assert tg.Graph(outputs).ops()["rnn_cell"] == 4 and np.all(outputs.data == 0)
            assert tg.check_graph((outputs * 3.0).sum())
        x = tg.tensor(np.array([1.0, 1.0, 0.5]), requires_grad=True)
        assert tg.check_graph(x.max())  # a tie between two maxima


def test_a_wrong_relu_away_from_its_kink_is_still_found(clean_ops):
    class BadRelu(tg.Op):
        name = "bad_relu"

        def forward(self, x):
            return np.maximum(x, 0.0)

        def vjp(self, g, out, x):
            return (g * (x < 0),)  # the wrong side

    tg.register(BadRelu)
    x = tg.tensor(np.array([[0.0, 1.5, -2.0, 0.7]]), requires_grad=True, name="x")
    with pytest.raises(tg.GradcheckError, match=r"bad_relu.*index \(0, [123]\)"):
        tg.check_graph(BadRelu.apply(x).sum())


def test_a_wrong_builtin_vjp_inside_the_models_lstm_is_named_with_step_and_gate(monkeypatch):
    """The DESIGN.md format, on the library's own LSTMCell: ``LSTMCell t=3, o: sigmoid``."""
    sigmoid = OPS["sigmoid"]
    monkeypatch.setattr(sigmoid, "vjp", lambda g, out, x: (g * (1.0 - out * out),), raising=False)
    rng = np.random.default_rng(5)
    with tg.default_dtype(np.float64):
        cell = models.LSTMCell(3, 4, fused=False, rng=0)
        state = (tg.tensor(np.zeros((2, 4))), tg.tensor(np.zeros((2, 4))))
        for t in range(4):
            h, state = cell(tg.tensor(rng.standard_normal((2, 3))), state)
    with pytest.raises(tg.GradcheckError) as info:
        tg.check_graph(h.sum())
    assert "sigmoid 'o' (LSTMCell t=3, o: sigmoid)" in str(info.value)
