"""Buffer reuse across training steps (Template.buffers, tinygraph.template.BufferPool).

The fused LSTM writes its step outputs, pre-activation gradients and input
projection into pooled arrays that the next unroll reuses. These tests pin
down that reuse is never visible: anything kept from an earlier step (outputs,
states, gate blocks, retained gradients, a graph still alive) keeps its
values, and gradients are the same as without reuse.
"""
import gc

import numpy as np
import pytest

import tinygraph as tg
import models
from models.bptt import truncated_bptt
from tinygraph.template import BufferPool

D, H, B, T = 3, 4, 2, 5


def make_lstm(dtype=np.float64, **kw):
    with tg.default_dtype(dtype):
        return models.LSTM(D, H, rng=3, **kw)


def run(model, x, G=None, retain=False):
    """One training step: forward, loss against G, backward. Returns (outputs, final_state, loss)."""
    model.zero_grad()
    out, final = model(tg.tensor(x))
    G = np.ones(out.shape) if G is None else G
    loss = (out * G).sum() + final[1].sum()
    loss.backward(retain_grads=retain)
    return out, final, loss


def grads_of(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def fresh_grads(x, G):
    """The same step on a twin model that has never run (nothing to reuse)."""
    model = make_lstm()
    run(model, x, G)
    return grads_of(model)


def test_pool_reuses_arrays_once_the_graph_is_gone():
    model = make_lstm()
    rng = np.random.default_rng(0)
    run(model, rng.normal(size=(T, B, D)))
    gc.collect()
    pool = model.cell.buffers
    arrays = {key: list(v) for key, v in pool._arrays.items()}
    assert set(arrays) == {"x_proj", "steps", "step_grads"}
    addresses = {key: v[0].ctypes.data for key, v in arrays.items()}
    del arrays
    for _ in range(3):
        run(model, rng.normal(size=(T, B, D)))
    # nothing kept between steps: the same arrays served every step
    assert {key: [a.ctypes.data for a in v] for key, v in pool._arrays.items()} == \
        {key: [address] for key, address in addresses.items()}


def test_values_kept_from_an_earlier_step_are_not_overwritten():
    model = make_lstm()
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, D))
    out1, (h1, c1), loss1 = run(model, x1, retain=True)
    graph = tg.Graph(loss1)
    steps = [n for n in graph.nodes if n.op == "lstm_cell"]
    proj = [n for n in graph.nodes if n.op == "matmul" and n.shape == (T * B, 4 * H)]
    assert len(steps) == T and len(proj) == 1
    kept = {"out": out1, "h": h1, "c": c1, "gates": steps[2], "proj": proj[0]}
    values = {k: t.data.copy() for k, t in kept.items()}
    grads = {k: t.grad.copy() for k, t in kept.items()}
    # only the tensors above are kept (not the loss, nor the graph)
    del graph, steps, proj, loss1
    for _ in range(3):
        run(model, x2, retain=True)
    for k, t in kept.items():
        np.testing.assert_array_equal(t.data, values[k], err_msg=k)
        np.testing.assert_array_equal(t.grad, grads[k], err_msg=k)


def test_a_kept_gate_view_alone_keeps_its_workspace():
    model = make_lstm()
    rng = np.random.default_rng(2)
    out, (h, c), loss = run(model, rng.normal(size=(T, B, D)))
    node = next(n for n in tg.Graph(loss).nodes if n.op == "lstm_cell")
    gate_i = node.data[2]  # the input gate block: a plain numpy view, no tensor
    kept = gate_i.copy()
    del out, h, c, loss, node
    run(model, rng.normal(size=(T, B, D)))
    np.testing.assert_array_equal(gate_i, kept)


def test_training_loop_that_holds_the_previous_loss_gets_right_gradients():
    # the usual loop: `loss` of step k is alive while step k+1 builds its graph
    model = make_lstm()
    rng = np.random.default_rng(3)
    loss = None
    for step in range(4):
        x, G = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
        previous = loss
        previous_value = None if previous is None else previous.item()
        model.zero_grad()
        out, final = model(tg.tensor(x))
        loss = (out * G).sum() + final[1].sum()
        loss.backward()
        want = fresh_grads(x, G)
        for name, g in grads_of(model).items():
            np.testing.assert_allclose(g, want[name], rtol=1e-12, atol=1e-12, err_msg=f"step {step} {name}")
        if previous is not None:
            assert previous.item() == previous_value
    assert all(len(v) <= model.cell.buffers.keep for v in model.cell.buffers._arrays.values())


def test_two_sequences_in_one_graph_get_separate_workspaces():
    model = make_lstm()
    rng = np.random.default_rng(4)
    xa, xb = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, D))
    out_a, _ = model(tg.tensor(xa))
    out_b, _ = model(tg.tensor(xb))
    assert not np.shares_memory(out_a.data, out_b.data)
    loss = out_a.sum() + (2 * out_b).sum()
    loss.backward()
    got = grads_of(model)
    twin = make_lstm(fused=False)
    (twin(tg.tensor(xa))[0].sum() + (2 * twin(tg.tensor(xb))[0]).sum()).backward()
    for name, g in grads_of(twin).items():
        np.testing.assert_allclose(got[name], g, rtol=1e-10, atol=1e-12)


def test_backward_twice_on_one_graph_accumulates_the_same_gradient():
    model = make_lstm()
    x = np.random.default_rng(5).normal(size=(T, B, D))
    model.zero_grad()
    out, _ = model(tg.tensor(x))
    loss = (out * out).sum()
    loss.backward()
    once = grads_of(model)
    loss.backward()
    for name, g in grads_of(model).items():
        np.testing.assert_allclose(g, 2 * once[name], rtol=1e-12)


def test_truncated_bptt_carries_state_living_in_a_workspace():
    rng = np.random.default_rng(6)
    xs, targets = rng.normal(size=(12, B, D)), rng.normal(size=(12, B, H))

    def loss_fn(out, tgt):
        return ((out - tg.tensor(tgt)) ** 2).mean()

    a, b = make_lstm(), make_lstm(fused=False)
    opt_a, opt_b = tg.optim.SGD(a.parameters(), lr=0.1), tg.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(2):
        ra = truncated_bptt(a, xs, targets, loss_fn, k=4, optimizer=opt_a)
        rb = truncated_bptt(b, xs, targets, loss_fn, k=4, optimizer=opt_b)
        np.testing.assert_allclose(ra.losses, rb.losses, rtol=1e-12)
        for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
            np.testing.assert_allclose(pa.grad, pb.grad, rtol=1e-10, atol=1e-12, err_msg=name)


def test_float32_steps_and_release_buffers():
    model = make_lstm(np.float32)
    x = np.random.default_rng(7).normal(size=(T, B, D)).astype(np.float32)
    run(model, x)
    g1 = grads_of(model)
    run(model, x)
    for name, g in grads_of(model).items():
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, g1[name])
    assert model.cell.buffers.nbytes > 0
    model.cell.release_buffers()
    assert model.cell.buffers.nbytes == 0
    run(model, x)
    for name, g in grads_of(model).items():
        np.testing.assert_array_equal(g, g1[name])


def test_changing_sequence_length_and_state_dtype():
    model = make_lstm()
    rng = np.random.default_rng(8)
    for steps in (5, 3, 5):
        x = rng.normal(size=(steps, B, D))
        model.zero_grad()
        out, final = model(tg.tensor(x))
        assert out.shape == (steps, B, H)
        out.sum().backward()
        want = make_lstm(fused=False)
        want(tg.tensor(x))[0].sum().backward()
        for (name, p), q in zip(model.named_parameters(), want.parameters()):
            np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=name)
    # a float32 initial state with float64 weights: no buffer of the wrong dtype is used
    h0 = tg.tensor(np.zeros((B, H), np.float32))
    out, _ = model(tg.tensor(rng.normal(size=(T, B, D))), (h0, h0))
    assert out.dtype == np.float64


# -- BufferPool on its own -------------------------------------------------------------
def test_buffer_pool_hands_out_only_unreferenced_arrays():
    pool = BufferPool(keep=2)
    a = pool.get("k", (3, 4), np.float32)
    assert pool.in_use(a)  # the local variable `a`
    b = pool.get("k", (3, 4), np.float32)
    assert b is not a
    del b
    view = a[1:, :2]
    del a
    c = pool.get("k", (3, 4), np.float32)  # the first one is still seen through `view`
    assert not np.shares_memory(c, view)
    holder = {"attr": c}
    del c
    d = pool.get("k", (3, 4), np.float32)  # both referenced: a new one, the pool keeps 2
    assert not np.shares_memory(d, view) and not np.shares_memory(d, holder["attr"])
    assert len(pool._arrays["k"]) == 2
    del d, holder, view
    e = pool.get("k", (3, 4), np.float32)
    assert e.shape == (3, 4) and e.dtype == np.float32
    assert pool.get("k", (5,), np.float64).shape == (5,)
    pool.clear()
    assert pool.nbytes == 0
    with pytest.raises(ValueError):
        pool.in_use(e)
