"""tinygraph.Template and tinygraph.unroll with a user's own cell."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph.nn import Parameter

T, B, D, H = 5, 2, 3, 4


class Leaky(tg.Template):
    """A user's cell: h_t = 0.5 * h_{t-1} + tanh(x_t @ W + b); output y_t = h_t * 2."""

    def __init__(self, name=None):
        super().__init__(name=name)
        rng = np.random.default_rng(0)
        self.W = Parameter(rng.normal(size=(D, H)))
        self.b = Parameter(rng.normal(size=H))
        self.calls = []

    def forward(self, x, h):
        h_new = 0.5 * h + (x @ self.W + self.b).tanh()
        return h_new * 2.0, h_new

    def initial_state(self, batch_size, dtype):
        return tg.tensor(np.zeros((batch_size, H), dtype=dtype))

    def begin_unroll(self, xs):
        self.calls.append("begin")
        return xs

    def end_unroll(self):
        self.calls.append("end")


def numpy_leaky(W, b, x, h):
    ys = []
    for t in range(x.shape[0]):
        h = 0.5 * h + np.tanh(x[t] @ W + b)
        ys.append(2 * h)
    return np.stack(ys), h


def test_user_template_unrolls_with_one_instance_per_step():
    cell = Leaky()
    x = np.random.default_rng(1).normal(size=(T, B, D))
    ys, h = tg.unroll(cell, x)
    want_ys, want_h = numpy_leaky(cell.W.data, cell.b.data, x, np.zeros((B, H)))
    np.testing.assert_allclose(ys.data, want_ys, rtol=1e-12)
    np.testing.assert_allclose(h.data, want_h, rtol=1e-12)
    assert ys.shape == (T, B, H)
    assert tg.Graph(ys).instances() == {"Leaky": T}
    assert cell.calls == ["begin", "end"]


def test_every_tensor_is_tagged_with_its_instance():
    cell = Leaky(name="Integrator")
    x = tg.tensor(np.ones((T, B, D)), requires_grad=True)
    ys, _ = tg.unroll(cell, x)
    graph = tg.Graph(ys)
    assert graph.instances() == {"Integrator": T}
    assert ys.instance is None and ys.op == "stack"  # made outside the steps
    assert cell.W.instance is None and x.instance is None
    for t, y in enumerate(ys.parents):
        assert y.instance == ("Integrator", t)
    groups = graph.by_instance()
    # steps 1.. have the same structure; step 0 reads the constant initial state,
    # so the constant operand of 0.5 * h0 is not part of the recorded graph
    sizes = {len(groups[("Integrator", t)]) for t in range(1, T)}
    assert len(sizes) == 1 and sizes.pop() > 3
    for t in range(T):
        for node in groups[("Integrator", t)]:
            assert node.instance == ("Integrator", t)
            if node.op == "matmul":
                assert node.parents[0].parents[0] is x  # x_t = xs[t], read inside step t
                assert node.parents[0].instance == ("Integrator", t)


def test_user_template_trains_like_a_builtin():
    cell = Leaky()
    rng = np.random.default_rng(2)
    x, G = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
    ys, _ = tg.unroll(cell, x)
    (ys * G).sum().backward()

    # finite differences on W of the numpy reference
    W, b = cell.W.data.copy(), cell.b.data.copy()
    numeric = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += 1e-6
        Wm[idx] -= 1e-6
        numeric[idx] = (np.sum(numpy_leaky(Wp, b, x, 0)[0] * G) - np.sum(numpy_leaky(Wm, b, x, 0)[0] * G)) / 2e-6
    np.testing.assert_allclose(cell.W.grad, numeric, rtol=1e-6, atol=1e-8)

    opt = tg.optim.SGD(cell.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        ys, _ = tg.unroll(cell, x)
        loss = ((ys - 0.1) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_user_template_draws_folded_and_unrolled():
    cell = Leaky()
    # random per-step inputs, small enough (B*D <= 16) that leaves were once matched by value
    ys, _ = tg.unroll(cell, np.random.default_rng(0).normal(size=(3, B, D)))
    unrolled = tg.draw(ys).source
    folded = tg.draw(ys, folded=True).source
    assert sum(f"cluster_Leaky_{t}" in unrolled for t in range(3)) == 3
    assert "Leaky" in folded and "cluster_Leaky_1" not in folded
    longer, _ = tg.unroll(cell, np.random.default_rng(1).normal(size=(6, B, D)))
    assert len(tg.draw(longer, folded=True, legend=False).source.splitlines()) == len(
        tg.draw(ys, folded=True, legend=False).source.splitlines())


def test_direct_calls_count_instance_indices():
    cell = Leaky()
    h = cell.initial_state(B, np.float64)
    x = tg.tensor(np.ones((B, D)))
    y0, h = cell(x, h)
    y1, h = cell(x, h)
    assert y0.instance == ("Leaky", 0) and y1.instance == ("Leaky", 1)
    assert tg.Graph(y1).instances() == {"Leaky": 2}


class Growing(Leaky):
    def forward(self, x, h):
        return h, tg.concat([h, h[:, :1]], axis=1)


def test_state_shape_change_is_a_value_error_naming_the_step_and_shapes():
    cell = Growing()
    with pytest.raises(ValueError) as info:
        tg.unroll(cell, np.ones((T, B, D)))
    message = str(info.value)
    assert "Growing" in message and "step 0" in message
    assert "(2, 5)" in message and "(2, 4)" in message
    assert cell.calls == ["begin", "end"]  # end_unroll runs even when a step fails


def test_bad_inputs_are_clear_errors():
    cell = Leaky()
    with pytest.raises(ValueError, match=r"at least 3 dimensions \(T, B, features...\), got shape \(5,3\)"):
        tg.unroll(cell, np.ones((T, D)))
    with pytest.raises(ValueError, match="no time steps"):
        tg.unroll(cell, np.ones((0, B, D)))
    with pytest.raises(TypeError, match="expected a tinygraph.Template"):
        tg.unroll(lambda x, h: (x, h), np.ones((T, B, D)))

    class NoInit(tg.Template):
        def forward(self, x, h):
            return x, h

    with pytest.raises(ValueError, match="NoInit defines no initial_state"):
        tg.unroll(NoInit(), np.ones((T, B, D)))

    class BadStep(Leaky):
        def forward(self, x, h):
            return h

    with pytest.raises(TypeError, match=r"must return \(output, new_state\)"):
        tg.unroll(BadStep(), np.ones((T, B, D)))


def test_tuple_states_and_explicit_initial_state():
    class Pair(Leaky):
        def forward(self, x, state):
            h, c = state
            c = c + x @ self.W
            return c.tanh(), (c.tanh(), c)

    cell = Pair()
    h0 = tg.tensor(np.zeros((B, H)))
    c0 = tg.tensor(np.full((B, H), 0.5), requires_grad=True)
    x = np.random.default_rng(3).normal(size=(T, B, D))
    ys, (h, c) = tg.unroll(cell, x, (h0, c0))
    np.testing.assert_allclose(c.data, 0.5 + np.einsum("tbd,dh->bh", x, cell.W.data), rtol=1e-12)
    c.sum().backward()
    np.testing.assert_allclose(c0.grad, np.ones((B, H)))


def test_template_knows_the_structure_of_one_instance():
    cell = Leaky()
    ys, h = tg.unroll(cell, np.ones((T, B, D)))
    s = cell.structure(ys)
    assert s.template_name == "Leaky" and s.index == 1
    assert all(n.instance == ("Leaky", 1) for n in s.nodes)
    # the only edge from step 0 into step 1 is the state h_0 read by 0.5 * h
    assert len(s.recurrent_edges) == 1
    producer, consumer = s.recurrent_edges[0]
    assert producer.instance == ("Leaky", 0) and producer is ys.parents[0].parents[0]
    assert consumer.op == "mul" and consumer in s.nodes
    with pytest.raises(ValueError, match="no instance of Other"):
        Leaky(name="Other").structure(ys)


def test_lstm_structure_has_two_recurrent_state_edges():
    from tinygraph import models  # noqa: F401  (tests may import both packages)

    model = models.LSTM(D, H, rng=0)
    out, _ = model(np.ones((T, B, D)))
    s = model.cell.structure(out)
    # the step's input x_proj[t] and the fused op's two outputs h_t and c_t (a multi-output op)
    assert sorted(n.op for n in s.nodes) == ["index", "lstm_cell", "lstm_cell"]
    # h_{t-1} and c_{t-1} flow into the step's lstm_cell (each of its two output nodes)
    assert len({id(p) for p, _ in s.recurrent_edges}) == 2
    assert {c.op for _, c in s.recurrent_edges} == {"lstm_cell"}


def test_an_unroll_continuing_a_state_counts_the_steps_on():
    cell = Leaky()
    xs = np.random.default_rng(1).normal(size=(T, B, D))
    first, h = tg.unroll(cell, xs)
    second, h2 = tg.unroll(cell, xs[:2], h)       # the same sequence, continued
    assert {n.instance for n in tg.Graph(second).nodes if n.instance} == {("Leaky", t) for t in range(T + 2)}
    assert tg.Graph(second).instances() == {"Leaky": T + 2}
    # a detached state starts a new graph, so counting starts again
    third, _ = tg.unroll(cell, xs[:2], h2.detach())
    assert tg.Graph(third).instances() == {"Leaky": 2}
    assert {n.instance[1] for n in tg.Graph(third).nodes if n.instance} == {0, 1}
    # one step per call (a decoder generating): steps 0, 1, 2
    state, seen = None, []
    for _ in range(3):
        y, state = tg.unroll(cell, xs[:1], state)
        seen.append(y.parents[0].instance)
    assert seen == [("Leaky", 0), ("Leaky", 1), ("Leaky", 2)]


def test_a_state_from_another_template_does_not_shift_the_steps():
    encoder, decoder = Leaky(name="encoder"), Leaky(name="decoder")
    xs = np.ones((T, B, D))
    _, h = tg.unroll(encoder, xs)
    out, _ = tg.unroll(decoder, xs[:3], h)
    assert tg.Graph(out).instances() == {"encoder": T, "decoder": 3}
    assert min(n.instance[1] for n in tg.Graph(out).nodes if n.instance and n.instance[0] == "decoder") == 0
