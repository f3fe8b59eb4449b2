"""The unroll seam of the built-in cells: ``begin_unroll`` returns a per-unroll workspace
handed to each ``step``; the cell keeps no unroll state; ``cell.step`` by hand works."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.template import Workspace
from tinygraph.unrolling import flatten_state

D, H, B, T = 3, 4, 2, 5
KINDS = {"lstm": models.LSTMCell, "gru": models.GRUCell, "rnn": models.RNNCell}


def make(kind, **kw):
    with tg.default_dtype(np.float64):
        return KINDS[kind](D, H, rng=1, **kw)


def state_of(kind, cell, rng):
    if kind == "lstm":
        return tg.tensor(rng.normal(size=(B, H))), tg.tensor(rng.normal(size=(B, H)))
    return tg.tensor(rng.normal(size=(B, H)))


def values(state):
    return [s.data for s in flatten_state(state)]


@pytest.mark.parametrize("kind", KINDS)
def test_unroll_leaves_no_state_on_the_cell(kind):
    cell = make(kind)
    before = dict(vars(cell))
    xs = tg.tensor(np.random.default_rng(0).normal(size=(T, B, D)))
    out, _ = tg.unroll(cell, xs)
    out.sum().backward()
    after = dict(vars(cell))
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before if k != "_parameters")


@pytest.mark.parametrize("kind", KINDS)
def test_step_by_hand_is_forward_and_works_after_an_unroll(kind):
    cell = make(kind)
    rng = np.random.default_rng(2)
    x = tg.tensor(rng.normal(size=(B, D)))
    state = state_of(kind, cell, rng)
    tg.unroll(cell, tg.tensor(rng.normal(size=(T, B, D))))  # leaves nothing behind that step would read
    y, new = cell.step(x, state)
    y_ref, new_ref = cell.forward(x, state)
    np.testing.assert_allclose(y.data, y_ref.data, rtol=1e-12)
    for a, b in zip(values(new), values(new_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_two_unrolls_driven_by_hand_interleaved_each_use_their_own_workspace(kind):
    """Two workspaces of one cell, stepped alternately: each sequence gets exactly what a
    plain unroll gives (no shared step counter, weights or slots on the module)."""
    cell = make(kind)
    rng = np.random.default_rng(3)
    seqs = [tg.tensor(rng.normal(size=(T, B, D))) for _ in range(2)]
    spaces = [cell.begin_unroll(xs) for xs in seqs]
    assert all(isinstance(w, Workspace) for w in spaces)
    states = [cell.initial_state(B, np.float64) for _ in seqs]
    outs = [[], []]
    for t in range(T):
        for k in (0, 1):
            y, states[k] = cell.step(spaces[k].inputs[t], states[k], spaces[k])
            outs[k].append(y.data.copy())
    for w in spaces:
        cell.end_unroll(w)
    for k in (0, 1):
        ref, _ = tg.unroll(make(kind), seqs[k])
        np.testing.assert_allclose(np.stack(outs[k]), ref.data, rtol=1e-12, atol=1e-14)


def test_a_users_template_receives_its_workspace():
    seen = []

    class Counter(tg.Template):
        def initial_state(self, batch_size, dtype):
            return tg.tensor(np.zeros((batch_size, 1)))

        def begin_unroll(self, xs):
            w = Workspace(xs)
            w.steps = 0
            return w

        def step(self, x, state, workspace=None):
            workspace.steps += 1
            seen.append(workspace)
            new = state + x.sum(axis=1, keepdims=True)
            return new, new

        def end_unroll(self, workspace=None):
            seen.append(("end", workspace.steps))

    out, final = tg.unroll(Counter(), np.ones((3, 2, 2)))
    np.testing.assert_allclose(final.data, 6.0)
    assert seen[-1] == ("end", 3) and seen[0] is seen[1] is seen[2]
