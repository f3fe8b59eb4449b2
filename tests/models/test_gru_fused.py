"""The fused GRU: the gru_cell op's buffers and lazy output gradient, the graph it
makes under unroll, and buffer reuse across training steps (Template.buffers),
which must never be visible (like tests/models/test_buffer_reuse.py for the LSTM)."""
import gc

import numpy as np
import pytest

import tinygraph as tg
import models
from models.bptt import truncated_bptt
from tinygraph.errors import ShapeError
from tinygraph.ops import OPS, OuterSum, ScatterSum
from tinygraph.tensor import apply

GRU_CELL = OPS["gru_cell"]
D, H, B, T = 3, 4, 2, 5


def make_gru(dtype=np.float64, **kw):
    with tg.default_dtype(dtype):
        return models.GRU(D, H, rng=3, **kw)


def run(model, x, G=None, retain=False):
    """One training step: forward, loss against G, backward. Returns (outputs, final_state, loss)."""
    model.zero_grad()
    out, final = model(tg.tensor(x))
    G = np.ones(out.shape) if G is None else G
    loss = (out * G).sum() + (final * final).sum()
    loss.backward(retain_grads=retain)
    return out, final, loss


def grads_of(model):
    return {name: p.grad.copy() for name, p in model.named_parameters()}


def fresh_grads(x, G, **kw):
    """The same step on a twin model that has never run (nothing to reuse)."""
    model = make_gru(**kw)
    run(model, x, G)
    return grads_of(model)


# -- the op on its own -------------------------------------------------------------------
def gru_inputs(B=3, H=4, dtype=np.float64, seed=0):
    r = np.random.default_rng(seed)
    return (r.normal(size=(B, 3 * H)).astype(dtype), r.normal(size=(B, H)).astype(dtype),
            r.normal(size=(H, 3 * H)).astype(dtype), r.normal(size=(H,)).astype(dtype))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def test_gru_cell_forward_is_the_gru_equations():
    x_proj, h, W_h, b_hn = gru_inputs()
    Hs = h.shape[1]
    out = GRU_CELL.forward(x_proj, h, W_h, b_hn)
    a = h @ W_h
    r = sigmoid(x_proj[:, Hs:2 * Hs] + a[:, :Hs])
    z = sigmoid(x_proj[:, 2 * Hs:] + a[:, Hs:2 * Hs])
    hn = a[:, 2 * Hs:] + b_hn
    n = np.tanh(x_proj[:, :Hs] + r * hn)
    for k, want in enumerate([(1 - z) * n + z * h, r, z, n, hn]):
        np.testing.assert_allclose(out[k], want, rtol=1e-12, atol=1e-14, err_msg=str(k))


def test_gru_cell_writes_into_its_buffers_and_matches_fresh_arrays():
    arrays = gru_inputs()
    Bs, Hs = arrays[1].shape
    buffer, grad_buffer = np.full((5, Bs, Hs), np.nan), np.full((Bs, 4 * Hs), np.nan)
    xs = [tg.tensor(a, requires_grad=True) for a in arrays]
    ys = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = apply(GRU_CELL, *xs, buffer=buffer, grad_buffer=grad_buffer)
    ref = apply(GRU_CELL, *ys)
    assert out.data is buffer
    np.testing.assert_array_equal(out.data, ref.data)
    G = np.random.default_rng(1).normal(size=out.shape)
    out.backward(G)
    ref.backward(G)
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(x.grad, y.grad, rtol=1e-12)
    np.testing.assert_allclose(grad_buffer[:, :3 * Hs], xs[0].grad)


@pytest.mark.parametrize("what, bad, message", [
    ("buffer", np.empty((5, 3, 5)), r"buffer must be a writeable array of shape \(5,3,4\)"),
    ("buffer", np.empty((5, 3, 4), np.float32), r"dtype float64"),
    ("grad_buffer", np.empty((3, 12)), r"grad_buffer must be a writeable array of shape \(3,16\)"),
    ("buffer", "no", r"got str"),
])
def test_gru_cell_buffer_errors(what, bad, message):
    with pytest.raises(ShapeError, match=message):
        apply(GRU_CELL, *gru_inputs(), **{what: bad})


def test_gru_cell_read_only_buffer_is_refused():
    buf = np.empty((5, 3, 4))
    buf.flags.writeable = False
    with pytest.raises(ShapeError, match="read-only"):
        apply(GRU_CELL, *gru_inputs(), buffer=buf)


@pytest.mark.parametrize("shapes", [
    ((3, 12), (3, 5), (5, 12), (4,)),  # h of another size than the gates
    ((3, 12), (3, 4), (4, 12), (1, 4)),  # b_hn not (H,)
    ((3, 12), (2, 4), (4, 12), (4,)),  # batch sizes that do not broadcast
    ((3, 8), (3, 4), (4, 8), (4,)),  # 2H instead of 3H
])
def test_gru_cell_shape_errors_name_the_op_and_shapes(shapes):
    arrays = [tg.tensor(np.zeros(s)) for s in shapes]
    with pytest.raises(ShapeError, match=r"gru_cell: expected x_proj \(\.\.\., 3H\)"):
        apply(GRU_CELL, *arrays)


@pytest.mark.parametrize("blocks", [(0,), (0, 0), (1,), (0, 2), (0, 3, 4), (4,)])
def test_gru_cell_lazy_output_gradient_equals_the_dense_one(blocks):
    arrays = gru_inputs()
    out = GRU_CELL.forward(*arrays)
    r = np.random.default_rng(2)
    lazy = None
    dense = np.zeros(out.shape)
    for k in blocks:
        value = r.normal(size=out.shape[1:])
        piece = ScatterSum(out.shape, out.dtype, k, value)
        lazy = piece if lazy is None else lazy.add(piece)
        dense[k] += value
    got = GRU_CELL.vjp(lazy, out, *arrays)
    want = GRU_CELL.vjp(dense, out, *arrays)
    for a, b in zip(got, want):
        np.testing.assert_allclose(OuterSum.materialize(a) if type(a) is OuterSum else a,
                                   OuterSum.materialize(b) if type(b) is OuterSum else b, rtol=1e-12, atol=1e-15)


# -- the graph under unroll --------------------------------------------------------------
def test_fused_graph_is_one_gru_cell_per_step_tagged_and_named():
    model = make_gru()
    out, h = model(np.ones((T, B, D)))
    graph = tg.Graph(out, h)
    assert graph.ops()["gru_cell"] == T
    assert graph.instances() == {"GRUCell": T}
    steps = [n for n in graph.nodes if n.op == "gru_cell"]
    assert [n.instance for n in steps] == [("GRUCell", t) for t in range(T)]
    assert {n.name for n in steps} == {"[h r z n hn]"}
    assert h.name == "h"
    # the stacked output is the workspace's h block, not a copy
    assert np.shares_memory(out.data, steps[0].data)
    unfused = make_gru(fused=False)
    out2, _ = unfused(np.ones((T, B, D)))
    assert "gru_cell" not in tg.Graph(out2).ops()
    np.testing.assert_allclose(out.data, out2.data, rtol=1e-12)


def test_fused_and_unfused_float32_agree():
    x = np.random.default_rng(0).normal(size=(T, B, D)).astype(np.float32)
    G = np.random.default_rng(1).normal(size=(T, B, H)).astype(np.float32)
    a, b = make_gru(np.float32), make_gru(np.float32, fused=False)
    oa, _, _ = run(a, x, G)
    ob, _, _ = run(b, x, G)
    assert oa.dtype == np.float32
    np.testing.assert_allclose(oa.data, ob.data, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5, err_msg=name)


# -- buffer reuse ------------------------------------------------------------------------
def test_pool_reuses_arrays_once_the_graph_is_gone():
    model = make_gru()
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
    assert {key: [a.ctypes.data for a in v] for key, v in pool._arrays.items()} == \
        {key: [address] for key, address in addresses.items()}


def test_unfused_gru_keeps_no_pool():
    model = make_gru(fused=False)
    run(model, np.ones((T, B, D)))
    assert model.cell.buffers.nbytes == 0


def test_values_kept_from_an_earlier_step_are_not_overwritten():
    model = make_gru()
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, D))
    out1, h1, loss1 = run(model, x1, retain=True)
    graph = tg.Graph(loss1)
    steps = [n for n in graph.nodes if n.op == "gru_cell"]
    proj = [n for n in graph.nodes if n.op == "matmul" and n.shape == (T * B, 3 * H)]
    assert len(steps) == T and len(proj) == 1
    kept = {"out": out1, "h": h1, "gates": steps[2], "proj": proj[0]}
    values = {k: t.data.copy() for k, t in kept.items()}
    grads = {k: t.grad.copy() for k, t in kept.items()}
    del graph, steps, proj, loss1
    for _ in range(3):
        run(model, x2, retain=True)
    for k, t in kept.items():
        np.testing.assert_array_equal(t.data, values[k], err_msg=k)
        np.testing.assert_array_equal(t.grad, grads[k], err_msg=k)


def test_a_kept_gate_view_alone_keeps_its_workspace():
    model = make_gru()
    rng = np.random.default_rng(2)
    out, h, loss = run(model, rng.normal(size=(T, B, D)))
    node = next(n for n in tg.Graph(loss).nodes if n.op == "gru_cell")
    gate_z = node.data[2]  # the update gate block: a plain numpy view, no tensor
    kept = gate_z.copy()
    del out, h, loss, node
    run(model, rng.normal(size=(T, B, D)))
    np.testing.assert_array_equal(gate_z, kept)


def test_a_kept_input_gradient_is_not_overwritten():
    # x's gradient flows through the projection's gradient, which lives in the pooled (T, B, 4H) array
    model = make_gru()
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


def test_training_loop_that_holds_the_previous_loss_gets_right_gradients():
    model = make_gru()
    rng = np.random.default_rng(4)
    loss = None
    for step in range(4):
        x, G = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
        previous = loss
        previous_value = None if previous is None else previous.item()
        model.zero_grad()
        out, final = model(tg.tensor(x))
        loss = (out * G).sum() + final.sum()
        loss.backward()
        twin = make_gru(fused=False)
        out_t, final_t = twin(tg.tensor(x))
        ((out_t * G).sum() + final_t.sum()).backward()
        for (name, g), q in zip(grads_of(model).items(), twin.parameters()):
            np.testing.assert_allclose(g, q.grad, rtol=1e-10, atol=1e-12, err_msg=f"step {step} {name}")
        if previous is not None:
            assert previous.item() == previous_value
    assert all(len(v) <= model.cell.buffers.keep for v in model.cell.buffers._arrays.values())


def test_two_sequences_in_one_graph_get_separate_workspaces():
    model = make_gru()
    rng = np.random.default_rng(5)
    xa, xb = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, D))
    out_a, _ = model(tg.tensor(xa))
    out_b, _ = model(tg.tensor(xb))
    assert not np.shares_memory(out_a.data, out_b.data)
    (out_a.sum() + (2 * out_b).sum()).backward()
    got = grads_of(model)
    twin = make_gru(fused=False)
    (twin(tg.tensor(xa))[0].sum() + (2 * twin(tg.tensor(xb))[0]).sum()).backward()
    for name, g in grads_of(twin).items():
        np.testing.assert_allclose(got[name], g, rtol=1e-10, atol=1e-12)


def test_continued_state_from_a_workspace_feeds_the_next_unroll():
    # the second unroll starts from h living in the first unroll's workspace, in the same graph
    model, twin = make_gru(), make_gru(fused=False)
    rng = np.random.default_rng(6)
    x1, x2 = rng.normal(size=(T, B, D)), rng.normal(size=(3, B, D))
    losses = []
    for m in (model, twin):
        o1, h = m(tg.tensor(x1))
        o2, h = m(tg.tensor(x2), h)
        losses.append((o1 * o1).sum() + o2.sum() + h.sum())
        losses[-1].backward()
    assert losses[0].item() == pytest.approx(losses[1].item(), rel=1e-12)
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=name)


def test_backward_twice_on_one_graph_accumulates_the_same_gradient():
    model = make_gru()
    x = np.random.default_rng(7).normal(size=(T, B, D))
    model.zero_grad()
    out, _ = model(tg.tensor(x))
    loss = (out * out).sum()
    loss.backward()
    once = grads_of(model)
    loss.backward()
    for name, g in grads_of(model).items():
        np.testing.assert_allclose(g, 2 * once[name], rtol=1e-12)


def test_truncated_bptt_carries_state_living_in_a_workspace():
    rng = np.random.default_rng(8)
    xs, targets = rng.normal(size=(12, B, D)), rng.normal(size=(12, B, H))

    def loss_fn(out, tgt):
        return ((out - tg.tensor(tgt)) ** 2).mean()

    a, b = make_gru(), make_gru(fused=False)
    opt_a, opt_b = tg.optim.SGD(a.parameters(), lr=0.1), tg.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(2):
        ra = truncated_bptt(a, xs, targets, loss_fn, k=4, optimizer=opt_a)
        rb = truncated_bptt(b, xs, targets, loss_fn, k=4, optimizer=opt_b)
        np.testing.assert_allclose(ra.losses, rb.losses, rtol=1e-12)
        for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
            np.testing.assert_allclose(pa.grad, pb.grad, rtol=1e-10, atol=1e-12, err_msg=name)


def test_float32_steps_and_release_buffers():
    model = make_gru(np.float32)
    x = np.random.default_rng(9).normal(size=(T, B, D)).astype(np.float32)
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


def test_changing_sequence_length_batch_and_state_dtype():
    model = make_gru()
    rng = np.random.default_rng(10)
    for steps, batch in ((5, B), (3, B), (5, B + 1), (5, B)):
        x = rng.normal(size=(steps, batch, D))
        model.zero_grad()
        out, final = model(tg.tensor(x))
        assert out.shape == (steps, batch, H)
        out.sum().backward()
        want = make_gru(fused=False)
        want(tg.tensor(x))[0].sum().backward()
        for (name, p), q in zip(model.named_parameters(), want.parameters()):
            np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=name)
    # a float32 initial state with float64 weights: no buffer of the wrong dtype is used
    h0 = tg.tensor(np.zeros((B, H), np.float32))
    out, _ = model(tg.tensor(rng.normal(size=(T, B, D))), h0)
    assert out.dtype == np.float64


# -- the RNN cell's pooled input projection ----------------------------------------------
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
    arrays = list(pool._arrays["x_proj"])
    assert len(arrays) <= pool.keep
    address = {a.ctypes.data for a in arrays}
    del arrays
    model(tg.tensor(x1))[0].sum().backward()
    assert {a.ctypes.data for a in pool._arrays["x_proj"]} <= address
