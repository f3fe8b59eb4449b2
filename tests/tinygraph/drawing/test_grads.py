"""Gradient colouring: log-scale fills, a legend, and clear errors when gradients are missing."""
import math
import warnings

import numpy as np
import pytest
from drawing_helpers import Dot

import tinygraph as tg
from tinygraph.drawing import colors, draw


def fills(dot):
    return {n: dot.attr(n, "fillcolor") for n in dot.nodes}


def test_nodes_coloured_by_log_gradient_norm_with_legend(elman_loss):
    loss, cell, outputs = elman_loss
    loss.backward(retain_grads=True)
    graph = tg.Graph(loss)
    dot = Dot(draw(loss, grads=True).source)
    ids = {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}
    norms = {ids[id(t)]: colors.grad_norm([t]) for t in graph.nodes}
    scale = colors.LogScale.fit(list(norms.values()))
    for nid, norm in norms.items():
        if norm is not None and dot.attr(nid, "shape") != "plaintext":
            assert dot.attr(nid, "fillcolor") == scale.fill(norm), nid
            assert f"‖g‖ {colors.format_norm(norm)}" in dot.nodes[nid]
    assert "gradient norm" in dot.source and "log scale" in dot.source
    assert colors.format_norm(scale.lo) in dot.source and colors.format_norm(scale.hi) in dot.source
    assert len(set(fills(dot).values())) > 5


def test_nodes_without_gradient_are_white_and_listed_in_the_legend():
    x = tg.tensor(np.ones(3), requires_grad=True, name="x")
    k = tg.tensor(np.full(3, 2.0), name="k")  # no grad
    y = (x * k).sum()
    y.backward(retain_grads=True)
    graph = tg.Graph(y)
    dot = Dot(draw(y, grads=True).source)
    nid = f"n{[id(t) for t in graph.nodes].index(id(k))}"
    assert dot.attr(nid, "fillcolor") == colors.NO_GRAD_FILL
    assert "dashed" in dot.attr(nid, "style")
    assert "no gradient" in dot.source


def test_larger_norm_gets_a_brighter_colour():
    scale = colors.LogScale(1e-6, 1.0)
    assert scale.position(1e-6) == 0 and scale.position(1.0) == 1
    assert abs(scale.position(1e-3) - 0.5) < 1e-12
    assert scale.position(1e-9) == 0 and scale.position(10.0) == 1
    lum = [sum(int(scale.fill(v)[i:i + 2], 16) for i in (1, 3, 5)) for v in (1e-6, 1e-4, 1e-2, 1.0)]
    assert lum == sorted(lum)


def test_non_finite_gradients_get_their_own_colour():
    scale = colors.LogScale(1e-3, 1.0)
    assert scale.fill(math.inf) == colors.NONFINITE_FILL == scale.fill(math.nan)
    assert colors.NONFINITE_FILL not in {colors.colormap(i / 20) for i in range(21)}


def test_vanishing_gradient_visible_along_the_steps():
    """Loss on the last step only: earlier steps' h get smaller norms, hence darker fills."""
    from conftest import Elman, sequence

    cell = Elman(3, 4, seed=3)
    cell.W_hh.data *= 0.3
    outputs, h = tg.unroll(cell, sequence(6))
    loss = (h ** 2).sum()
    loss.backward(retain_grads=True)
    graph = tg.Graph(loss)
    dot = Dot(draw(loss, grads=True).source)
    ids = {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}
    hs = [n for n in graph.nodes if n.name == "h"]
    scale = colors.LogScale.fit([colors.grad_norm([t]) for t in graph.nodes])
    positions = [scale.position(colors.grad_norm([t])) for t in hs]
    assert positions == sorted(positions) and positions[0] < positions[-1] - 0.3
    assert [dot.attr(ids[id(t)], "fillcolor") for t in hs] == [scale.fill(colors.grad_norm([t])) for t in hs]


def test_grad_range_fixes_the_scale(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    source = draw(loss, grads=True, grad_range=(1e-8, 1e2)).source
    assert "1.0e-08" in source and "1.0e+02" in source


def test_folded_and_compact_grads(lstm_loss):
    loss, _, _ = lstm_loss
    loss.backward(retain_grads=True)
    folded = Dot(draw(loss, grads=True, folded=True).source)
    assert "gradient norm" in folded.source
    compact = Dot(draw(loss, grads=True, compact=True).source)
    boxes = [n for n, a in compact.nodes.items() if "TinyLSTM t=" in a]
    assert len(boxes) == 3 and all("‖∂L/∂out‖" in compact.nodes[b] for b in boxes)


def test_grads_without_backward_is_an_error(elman_loss):
    loss, _, _ = elman_loss
    with pytest.raises(ValueError, match=r"draw: grads=True.*backward\(retain_grads=True\)"):
        draw(loss, grads=True)


def test_grads_after_plain_backward_warns(elman_loss):
    loss, _, _ = elman_loss
    loss.backward()
    with pytest.warns(UserWarning, match="retain_grads=True"):
        draw(loss, grads=True)


def test_no_warning_with_retained_grads(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draw(loss, grads=True)


def test_exploded_gradient_is_flagged_in_node_and_legend():
    a = tg.tensor(np.ones(2), requires_grad=True, name="a")
    y = (a * 3).sum()
    y.backward(retain_grads=True)
    a.grad = np.array([np.inf, 1.0])
    graph = tg.Graph(y)
    dot = Dot(draw(y, grads=True).source)
    nid = f"n{[id(t) for t in graph.nodes].index(id(a))}"
    assert dot.attr(nid, "fillcolor") == colors.NONFINITE_FILL
    assert "‖g‖ inf" in dot.nodes[nid] and "inf / nan" in dot.source


def test_single_leaf_draws():
    dot = Dot(draw(tg.tensor([1.0, 2.0], name="v")).source)
    assert list(dot.nodes) == ["n0"] and not dot.edges
