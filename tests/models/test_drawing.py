"""Pictures of BPTT on the real graph: the seed's sum over steps, the path of one term, the
truncation cut; the builder behind ``tinygraph draw --model``."""
import re
import shutil

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.models.drawing import build_model_graph, draw_bptt_sum, draw_truncated_bptt, path_between

T = 4


def rnn_with_step_losses(seed=0):
    model = models.RNN(2, 3, fused=False, rng=seed)
    x = np.random.default_rng(seed).normal(size=(T, 1, 2))
    hs, _ = model(x, tg.tensor(np.full((1, 3), 0.5, dtype=np.float32), name="h0"))
    step_losses = []
    for t, h in enumerate(models.step_outputs(hs)):
        L = (h ** 2).sum()
        L.name = f"L_{t}"
        step_losses.append(L)
    loss = step_losses[0]
    for L in step_losses[1:]:
        loss = loss + L
    loss.name = "loss"
    return model, loss, step_losses


def test_bptt_sum_has_one_bar_per_step_summing_to_the_gradient():
    model, loss, _ = rnn_with_step_losses()
    terms = models.grad_contributions(loss, model.cell.W_hh)
    # draw_bptt_sum runs its own backward (grad_contributions replaces loss.backward(), which
    # runs once per graph): draw the same model and data built again
    model, loss, _ = rnn_with_step_losses()
    W = model.cell.W_hh
    source = draw_bptt_sum(loss, W).source
    norms = [float(np.linalg.norm(c.grad)) for c in terms]
    for t, norm in enumerate(norms):
        # the bar sits in step t's cluster (DOT re-opens the cluster) and says the term's norm
        block = re.search(rf"subgraph cluster_RNNCell_{t} \{{\s*term{t} \[label=<(.*?)\n", source)
        assert block and f"term t={t}: ‖∂L/∂W_hh‖ = {norm:.2e}" in block.group(1)
    widths = [int(w) for w in re.findall(r'bgcolor="#c77c2a" width="(\d+)"', source)]
    assert len(widths) == T and widths[int(np.argmax(norms))] == 110  # bars to scale with the largest
    assert f"‖sum‖ = {np.linalg.norm(W.grad):.2e}" in source
    np.testing.assert_allclose(sum(c.grad for c in terms), W.grad, rtol=1e-5)
    assert source.count("-> bptt_sum") == T


def test_the_path_from_a_later_loss_back_to_step_k_is_highlighted():
    model, loss, step_losses = rnn_with_step_losses()
    graph = tg.Graph(loss)
    use = next(n for n in graph.nodes if n.instance == ("RNNCell", 1) and n.op == "matmul"
               and n.parents[1] is model.cell.W_hh)
    on_path = path_between(graph, step_losses[3], use)
    # use at step 1 -> h_1 -> h_2 -> h_3 -> L_3: steps 1, 2, 3 and the loss of step 3, nothing of step 0
    assert {n.instance for n in on_path} == {("RNNCell", 1), ("RNNCell", 2), ("RNNCell", 3), None}
    assert on_path[0] is use and on_path[-1] is step_losses[3]
    assert [n.name for n in on_path if n.name == "h_t"] == ["h_t"] * 3
    source = draw_bptt_sum(loss, model.cell.W_hh, path=(step_losses[3], 1)).source
    ids = {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}
    outlined = set(re.findall(r"^\s*(n\d+) \[color=\"#ff4f00\" penwidth=3\]", source, re.M))
    assert outlined == {ids[id(n)] for n in on_path}
    edges = set(re.findall(r"^\s*(n\d+) -> (n\d+) .*\[color=\"#ff4f00\" penwidth=3\]$", source, re.M))
    assert {(a, b) for a, b in edges if a == ids[id(model.cell.W_hh)]} == {(ids[id(model.cell.W_hh)], ids[id(use)])}
    assert all(a in outlined or a == ids[id(model.cell.W_hh)] for a, b in edges)
    # a loss before step k does not depend on it
    with pytest.raises(ValueError, match="does not depend"):
        draw_bptt_sum(loss, model.cell.W_hh, path=(step_losses[0], 1))
    with pytest.raises(ValueError, match="no use of W_hh at step 9"):
        draw_bptt_sum(loss, model.cell.W_hh, path=(step_losses[3], 9))


def test_truncated_bptt_drawing_shows_the_cut_and_counts_on():
    model = models.LSTM(2, 3, fused=False, rng=0)
    g = draw_truncated_bptt(model, np.random.default_rng(0).normal(size=(5, 1, 2)), 2)
    source = g.source
    assert all(f"cluster_LSTMCell_{t} " in source for t in range(5))  # t = 0..4 across the chunks
    cuts = re.findall(r"(n\d+) -> (n\d+) \[label=\"✂ detach: no gradient\"", source)
    assert len(cuts) == 4  # h and c, after chunks 1 and 2 (the last chunk's state feeds nothing)
    assert "h_t (detached)" in source and "c_t (detached)" in source
    assert source.count("loss (chunk") == 3  # one loss per chunk, each back-propagated on its own
    # the detached states are leaves outside every step, with no gradient (drawn dashed)
    for _, new in cuts:
        assert re.search(rf"^\t{new} \[label=<.*(detached).*style=\"filled,rounded,dashed\"", source, re.M)
    with pytest.raises(ValueError, match="k \\(steps per chunk\\)"):
        draw_truncated_bptt(model, np.zeros((4, 1, 2)), 0)


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_builder_draws_the_textbook_build_unless_fused(model):
    textbook = tg.Graph(build_model_graph(model, 2)).ops()
    fused = tg.Graph(build_model_graph(model, 2, fused=True)).ops()
    assert "concat" not in textbook and "reshape" not in textbook
    assert "concat" in fused


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_pictures_render(tmp_path):
    model, loss, step_losses = rnn_with_step_losses()
    from tinygraph.drawing import save

    save(draw_bptt_sum(loss, model.cell.W_hh, path=(step_losses[3], 1)), tmp_path / "sum.svg")
    save(draw_truncated_bptt(models.RNN(2, 3, fused=False, rng=0), np.zeros((4, 1, 2)), 2), tmp_path / "cut.svg")
    assert (tmp_path / "sum.svg").stat().st_size > 1000 and (tmp_path / "cut.svg").stat().st_size > 1000


def test_bptt_sum_escapes_the_weights_name_and_checks_the_path_before_backward():
    model, loss, step_losses = rnn_with_step_losses()
    W = model.cell.W_hh
    W.name = '<b>W</b><script>alert(1)</script>'
    with pytest.raises(ValueError, match="no use of"):
        draw_bptt_sum(loss, W, path=(step_losses[3], 9))
    assert W.grad is None  # the refused call ran no backward, so the graph can still be drawn
    source = draw_bptt_sum(loss, W).source
    assert "<script>" not in source and "&lt;script&gt;" in source
