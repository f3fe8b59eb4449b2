"""Buffer reuse across training steps (Template.buffers, tinygraph.buffers.BufferPool).

The fused cells (RNN: ``rnn_cell``, LSTM: ``lstm_cell``, GRU: ``gru_cell``) write
their step outputs, pre-activation gradients and input projection into pooled
arrays that the next unroll reuses. These tests pin down, for each fused cell,
that reuse is never visible: anything kept from an earlier step (outputs,
states, activation blocks, retained gradients, input gradients, a graph still
alive) keeps its values, and gradients are the same as without reuse. The
op-level tests of each fused op are in tests/models/test_fused_ops.py,
tests/tinygraph/test_buffers_and_lazy_grads.py and tests/models/test_gru_fused.py.
"""
import gc
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.models.bptt import truncated_bptt

D, H, B, T = 3, 4, 2, 5


# -- the cells under test, and what differs between them ----------------------------------
@dataclass(frozen=True)
class Cell:
    model: Callable  # models.RNN, models.LSTM or models.GRU
    op: str  # the fused op of one step
    gates: int  # the input projection is (T*B, gates*H)
    gate_block: str  # what block ``block`` of a step's activations is (kept as a bare numpy view)
    states: Callable  # final state -> {name: tensor}
    initial: Callable  # a (B, H) tensor -> a state made of it
    block: int = 2  # which block of a step's private activations the gate-view test keeps

    def make(self, dtype=np.float64, **kw):
        with tg.default_dtype(dtype):
            return self.model(D, H, rng=3, **kw)

    def state_loss(self, final):
        """A loss term on the final state (c for the LSTM, whose h is already the last output)."""
        states = self.states(final)
        return states["c"].sum() if "c" in states else (states["h"] * states["h"]).sum()


LSTM = Cell(models.LSTM, "lstm_cell", 4, "input gate i",
            states=lambda final: {"h": final[0], "c": final[1]}, initial=lambda h0: (h0, h0))
GRU = Cell(models.GRU, "gru_cell", 3, "update gate z",
           states=lambda final: {"h": final}, initial=lambda h0: h0)
RNN = Cell(models.RNN, "rnn_cell", 1, "hidden state h",
           states=lambda final: {"h": final}, initial=lambda h0: h0, block=0)

each_cell = pytest.mark.parametrize("cell", [pytest.param(LSTM, id="lstm"), pytest.param(GRU, id="gru"),
                                             pytest.param(RNN, id="rnn")])


def run(cell, model, x, G=None, retain=False):
    """One training step: forward, loss against G, backward. Returns (outputs, final_state, loss)."""
    model.zero_grad()
    out, final = model(tg.tensor(x))
    G = np.ones(out.shape) if G is None else G
    loss = (out * G).sum() + cell.state_loss(final)
    loss.backward(retain_grads=retain)
    return out, final, loss


def grads_of(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def fresh_grads(cell, x, G, **kw):
    """The same step on a twin model that has never run (nothing to reuse)."""
    model = cell.make(**kw)
    run(cell, model, x, G)
    return grads_of(model)


# -- the fused cells -----------------------------------------------------------------------
@each_cell
def test_pool_reuses_arrays_once_the_graph_is_gone(cell):
    model = cell.make()
    rng = np.random.default_rng(0)
    run(cell, model, rng.normal(size=(T, B, D)))
    gc.collect()
    pool = model.cell.buffers
    arrays = {key: list(v) for key, v in {k: pool.arrays(k) for k in pool.keys()}.items()}
    assert set(arrays) == {"x_proj", "steps", "step_grads"}
    addresses = {key: v[0].ctypes.data for key, v in arrays.items()}
    del arrays
    for _ in range(3):
        run(cell, model, rng.normal(size=(T, B, D)))
    # nothing kept between steps: the same arrays served every step
    assert {key: [a.ctypes.data for a in v] for key, v in {k: pool.arrays(k) for k in pool.keys()}.items()} == \
        {key: [address] for key, address in addresses.items()}


@each_cell
def test_unfused_cell_keeps_no_pool(cell):
    model = cell.make(fused=False)
    run(cell, model, np.ones((T, B, D)))
    assert model.cell.buffers.nbytes == 0


@each_cell
def test_values_kept_from_an_earlier_step_are_not_overwritten(cell):
    model = cell.make()
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, D))
    out1, final1, loss1 = run(cell, model, x1, retain=True)
    graph = tg.Graph(loss1)
    steps = [n for n in graph.nodes if n.op == cell.op and n.name == "h_t"]  # (the LSTM op's c_t are its other outputs)
    proj = [n for n in graph.nodes if n.op == "matmul" and n.shape == (T * B, cell.gates * H)]
    assert len(steps) == T and len(proj) == 1
    kept = {"out": out1, **cell.states(final1), "h_2": steps[2], "proj": proj[0]}
    values = {k: t.data.copy() for k, t in kept.items()}
    grads = {k: t.grad.copy() for k, t in kept.items()}
    # only the tensors above are kept (not the loss, nor the graph)
    del graph, steps, proj, loss1, final1
    for _ in range(3):
        run(cell, model, x2, retain=True)
    for k, t in kept.items():
        np.testing.assert_array_equal(t.data, values[k], err_msg=k)
        np.testing.assert_array_equal(t.grad, grads[k], err_msg=k)


@each_cell
def test_a_kept_gate_view_alone_keeps_its_workspace(cell):
    model = cell.make()
    rng = np.random.default_rng(2)
    out, final, loss = run(cell, model, rng.normal(size=(T, B, D)))
    node = next(n for n in tg.Graph(loss).nodes if n.op == cell.op)
    gate = node.op_object.saved[cell.block]  # cell.gate_block of step 0, private to the op: a plain numpy view
    kept = gate.copy()
    del out, final, loss, node
    run(cell, model, rng.normal(size=(T, B, D)))
    np.testing.assert_array_equal(gate, kept, err_msg=cell.gate_block)


@each_cell
def test_a_kept_input_gradient_is_not_overwritten(cell):
    # x's gradient flows through the projection's gradient, which lives in the pooled (T, B, 4H) array
    model = cell.make()
    rng = np.random.default_rng(3)
    x1 = tg.tensor(rng.normal(size=(T, B, D)), requires_grad=True)
    out, _ = model(x1)
    out.sum().backward()
    kept = x1.grad.copy()
    for _ in range(2):
        x2 = tg.tensor(rng.normal(size=(T, B, D)), requires_grad=True)
        out, _ = model(x2)
        (3 * out).sum().backward()
    np.testing.assert_array_equal(x1.grad, kept)


@each_cell
def test_training_loop_that_holds_the_previous_loss_gets_right_gradients(cell):
    # the usual loop: `loss` of step k is alive while step k+1 builds its graph
    model = cell.make()
    rng = np.random.default_rng(4)
    loss = None
    for step in range(4):
        x, G = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
        previous = loss
        previous_value = None if previous is None else previous.item()
        _, _, loss = run(cell, model, x, G)
        got = grads_of(model)
        # the same as a fused twin that has never run (nothing reused), and as the unfused equations
        fresh, unfused = fresh_grads(cell, x, G), fresh_grads(cell, x, G, fused=False)
        for name, g in got.items():
            np.testing.assert_allclose(g, fresh[name], rtol=1e-12, atol=1e-12, err_msg=f"step {step} {name}")
            np.testing.assert_allclose(g, unfused[name], rtol=1e-10, atol=1e-12, err_msg=f"step {step} {name}")
        if previous is not None:
            assert previous.item() == previous_value
    assert all(len(v) <= model.cell.buffers.keep for v in [model.cell.buffers.arrays(k) for k in model.cell.buffers.keys()])


@each_cell
def test_two_sequences_in_one_graph_get_separate_workspaces(cell):
    model = cell.make()
    rng = np.random.default_rng(5)
    xa, xb = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, D))
    out_a, _ = model(tg.tensor(xa))
    out_b, _ = model(tg.tensor(xb))
    assert not np.shares_memory(out_a.data, out_b.data)
    (out_a.sum() + (2 * out_b).sum()).backward()
    got = grads_of(model)
    twin = cell.make(fused=False)
    (twin(tg.tensor(xa))[0].sum() + (2 * twin(tg.tensor(xb))[0]).sum()).backward()
    for name, g in grads_of(twin).items():
        np.testing.assert_allclose(got[name], g, rtol=1e-10, atol=1e-12, err_msg=name)


@each_cell
@pytest.mark.parametrize("T2", [3, T])  # T: workspaces of the same shape as the first unroll's, still in use
def test_continued_state_from_a_workspace_feeds_the_next_unroll(cell, T2):
    # the second unroll starts from a state living in the first unroll's workspace, in the same graph
    model, twin = cell.make(), cell.make(fused=False)
    rng = np.random.default_rng(6)
    x1, x2 = rng.normal(size=(T, B, D)), rng.normal(size=(T2, B, D))
    losses = []
    for m in (model, twin):
        o1, state = m(tg.tensor(x1))
        o2, state = m(tg.tensor(x2), state)
        losses.append((o1 * o1).sum() + o2.sum() + sum(s.sum() for s in cell.states(state).values()))
        losses[-1].backward()
    assert losses[0].item() == pytest.approx(losses[1].item(), rel=1e-12)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=name)


@each_cell
def test_backward_twice_on_one_graph_accumulates_the_same_gradient(cell):
    model = cell.make()
    x = np.random.default_rng(7).normal(size=(T, B, D))
    model.zero_grad()
    out, _ = model(tg.tensor(x))
    loss = (out * out).sum()
    loss.backward(retain_graph=True)  # a second backward must be asked for (BackwardTwiceError otherwise)
    once = grads_of(model)
    loss.backward()
    for name, g in grads_of(model).items():
        np.testing.assert_allclose(g, 2 * once[name], rtol=1e-12, err_msg=name)


@each_cell
def test_truncated_bptt_carries_state_living_in_a_workspace(cell):
    rng = np.random.default_rng(8)
    xs, targets = rng.normal(size=(12, B, D)), rng.normal(size=(12, B, H))

    def loss_fn(out, tgt):
        return ((out - tg.tensor(tgt)) ** 2).mean()

    a, b = cell.make(), cell.make(fused=False)
    opt_a, opt_b = tg.optim.SGD(a.parameters(), lr=0.1), tg.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(2):
        ra = truncated_bptt(a, xs, targets, loss_fn, k=4, optimizer=opt_a)
        rb = truncated_bptt(b, xs, targets, loss_fn, k=4, optimizer=opt_b)
        np.testing.assert_allclose(ra.losses, rb.losses, rtol=1e-12)
        for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
            np.testing.assert_allclose(pa.grad, pb.grad, rtol=1e-10, atol=1e-12, err_msg=name)


@each_cell
def test_float32_steps_and_release_buffers(cell):
    model = cell.make(np.float32)
    x = np.random.default_rng(9).normal(size=(T, B, D)).astype(np.float32)
    run(cell, model, x)
    g1 = grads_of(model)
    run(cell, model, x)
    for name, g in grads_of(model).items():
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, g1[name], err_msg=name)
    assert model.cell.buffers.nbytes > 0
    model.cell.release_buffers()
    assert model.cell.buffers.nbytes == 0
    run(cell, model, x)
    for name, g in grads_of(model).items():
        np.testing.assert_array_equal(g, g1[name], err_msg=name)


@each_cell
def test_changing_sequence_length_batch_and_state_dtype(cell):
    model = cell.make()
    rng = np.random.default_rng(10)
    for steps, batch in ((5, B), (3, B), (5, B + 1), (5, B)):
        x = rng.normal(size=(steps, batch, D))
        model.zero_grad()
        out, final = model(tg.tensor(x))
        assert out.shape == (steps, batch, H)
        out.sum().backward()
        want = cell.make(fused=False)
        want(tg.tensor(x))[0].sum().backward()
        for (name, p), q in zip(model.named_parameters(), want.parameters()):
            np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=name)
    # a float32 initial state with float64 weights: no buffer of the wrong dtype is used
    h0 = tg.tensor(np.zeros((B, H), np.float32))
    out, _ = model(tg.tensor(rng.normal(size=(T, B, D))), cell.initial(h0))
    assert out.dtype == np.float64


# -- the RNN cell's pooled input projection, kept by a node of an earlier graph ---------------
def test_rnn_projection_is_reused_only_when_nothing_refers_to_it():
    with tg.default_dtype(np.float64):
        model, twin = models.RNN(D, H, rng=3), models.RNN(D, H, rng=3)
    rng = np.random.default_rng(11)
    x1 = rng.normal(size=(T, B, D))
    out1, h1 = model(tg.tensor(x1))
    (out1.sum() + h1.sum()).backward()
    proj = next(n for n in tg.Graph(out1).nodes if n.op == "matmul" and n.shape == (T * B, H))
    kept, kept_out = proj.data.copy(), out1.data.copy()
    pool = model.cell.buffers
    assert pool.in_use(proj.data)
    for _ in range(3):  # proj (and the graph of out1) stay alive: new arrays each time
        x = rng.normal(size=(T, B, D))
        model.zero_grad()
        twin.zero_grad()
        out, h = model(tg.tensor(x))
        (out * out).sum().backward()
        out_t, _ = twin(tg.tensor(x))
        (out_t * out_t).sum().backward()
        for (name, p), q in zip(model.named_parameters(), twin.parameters()):
            np.testing.assert_allclose(p.grad, q.grad, rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_array_equal(proj.data, kept)
    np.testing.assert_array_equal(out1.data, kept_out)
    del proj, out1, h1, out, h
    gc.collect()
    arrays = pool.arrays("x_proj")
    assert len(arrays) <= pool.keep
    address = {a.ctypes.data for a in arrays}
    del arrays
    model(tg.tensor(x1))[0].sum().backward()
    assert {a.ctypes.data for a in pool.arrays("x_proj")} <= address
