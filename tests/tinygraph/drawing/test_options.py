"""Size limit, bad input, and speed of DOT generation."""
import time

import numpy as np
import pytest
from conftest import Elman, TinyLSTM, sequence

import tinygraph as tg
from tinygraph.drawing import DEFAULT_MAX_NODES, draw


def chain(n):
    x = tg.tensor(np.ones(2), requires_grad=True, name="x")
    y = x
    for _ in range(n - 1):
        y = y.tanh()
    return y


def test_default_limit_refuses_big_graphs_and_names_the_options():
    y = chain(DEFAULT_MAX_NODES + 10)
    with pytest.raises(ValueError) as info:
        draw(y)
    msg = str(info.value)
    assert "draw:" in msg and f"{DEFAULT_MAX_NODES + 10} nodes" in msg
    for option in ("compact=True", "folded=True", "max_nodes="):
        assert option in msg


def test_max_nodes_none_draws_anyway():
    y = chain(DEFAULT_MAX_NODES + 10)
    assert draw(y, max_nodes=None).source.count(" -> ") == DEFAULT_MAX_NODES + 9


def test_custom_limit_and_compact_escape():
    out, _ = tg.unroll(Elman(3, 4), sequence(30))
    loss = out.sum()
    with pytest.raises(ValueError, match=r"draw: the graph has \d+ nodes, more than max_nodes=50"):
        draw(loss, max_nodes=50)
    draw(loss, max_nodes=50, compact=True)
    draw(loss, max_nodes=50, folded=True)


def test_limit_message_after_compacting_mentions_it():
    out, _ = tg.unroll(Elman(3, 4), sequence(30))
    with pytest.raises(ValueError) as info:
        draw(out.sum(), max_nodes=10, compact=True)
    assert "after compacting" in str(info.value) and "folded=True" in str(info.value)
    assert "compact=True (" not in str(info.value)  # not suggested again


@pytest.mark.parametrize("bad", ["loss", 3.0, np.ones(2), None])
def test_roots_must_be_tensors(bad):
    with pytest.raises(TypeError, match=r"draw: root 0 is a \w+, expected a tinygraph Tensor"):
        draw(bad)


def test_no_roots():
    with pytest.raises(TypeError, match="draw: expected at least one root"):
        draw()


@pytest.mark.parametrize("kwargs, exc, pattern", [
    ({"folded": "yes"}, TypeError, "draw: folded must be True or False, got 'yes'"),
    ({"grads": 1}, TypeError, "draw: grads must be True or False"),
    ({"compact": None}, TypeError, "draw: compact must be True or False"),
    ({"max_nodes": 0}, ValueError, "draw: max_nodes must be a positive int or None, got 0"),
    ({"max_nodes": 2.5}, ValueError, "draw: max_nodes must be a positive int or None"),
    ({"rankdir": "BT"}, ValueError, r"draw: rankdir must be one of \('TB', 'LR'\), got 'BT'"),
    ({"title": 3}, TypeError, "draw: title must be a str"),
    ({"grad_range": (1, 0.5)}, ValueError, "draw: grad_range must satisfy 0 < lo < hi"),
    ({"grad_range": "ab"}, TypeError, "draw: grad_range must be a pair"),
])
def test_bad_options(elman_loss, kwargs, exc, pattern):
    loss, _, _ = elman_loss
    with pytest.raises(exc, match=pattern):
        draw(loss, **kwargs)


def test_unknown_option_is_a_type_error(elman_loss):
    loss, _, _ = elman_loss
    with pytest.raises(TypeError, match="draw.*unexpected keyword argument 'fold'"):
        draw(loss, fold=True)


def test_lr_and_title(elman_loss):
    loss, _, _ = elman_loss
    source = draw(loss, rankdir="LR", title="Elman & co").source
    assert "rankdir=LR" in source and "Elman &amp; co" in source


def test_three_step_lstm_is_instant():
    out, _ = tg.unroll(TinyLSTM(3, 4), sequence(3))
    loss = out.sum()
    loss.backward(retain_grads=True)
    start = time.perf_counter()
    for kwargs in ({}, {"folded": True}, {"compact": True}, {"grads": True}):
        draw(loss, **kwargs).source
    assert time.perf_counter() - start < 0.5


def test_five_hundred_nodes_well_under_a_second():
    out, _ = tg.unroll(TinyLSTM(3, 4), sequence(26))
    loss = out.sum()
    loss.backward(retain_grads=True)
    n = len(tg.Graph(loss))
    assert n >= 500
    start = time.perf_counter()
    draw(loss, grads=True).source
    assert time.perf_counter() - start < 0.5
