"""Folded (one copy per template, back edges) and compact (one box per instance) drawings."""
import re
from collections import Counter

from conftest import Elman, sequence
from drawing_helpers import Dot

import tinygraph as tg
from tinygraph.drawing import draw


def per_instance_nodes(graph, name, t):
    return [n for n in graph.nodes if n.instance == (name, t) and not isinstance(n, tg.nn.Parameter)]


def test_folded_has_one_cluster_per_template_with_the_folded_count(lstm_loss):
    loss, cell, _ = lstm_loss
    dot = Dot(draw(loss, folded=True).source)
    clusters = [c for c in dot.clusters if c != "cluster_parameters"]
    assert clusters == ["cluster_TinyLSTM"]
    label = dot.clusters["cluster_TinyLSTM"]["label"]
    assert "TinyLSTM" in label and "3 instances" in label and "t=0..2" in label


def test_folded_copy_has_one_node_per_node_of_an_instance(lstm_loss):
    loss, _, _ = lstm_loss
    graph = tg.Graph(loss)
    dot = Dot(draw(loss, folded=True).source)
    sizes = {len(per_instance_nodes(graph, "TinyLSTM", t)) for t in range(3)}
    assert len(sizes) == 1
    assert len(dot.clusters["cluster_TinyLSTM"]["nodes"]) == sizes.pop()


def test_folded_back_edges_carry_the_state(lstm_loss):
    loss, _, _ = lstm_loss
    dot = Dot(draw(loss, folded=True).source)
    inside = set(dot.clusters["cluster_TinyLSTM"]["nodes"])
    back = [(a, b, attrs) for a, b, attrs in dot.edges if "t-1" in attrs]
    # h feeds the concat, c feeds f * c: two recurrent paths
    assert len(back) == 2
    for a, b, attrs in back:
        assert a in inside and b in inside
        assert "constraint=false" in attrs
    sources = {re.search(r"<b>(\w+)</b>", dot.nodes[a]).group(1) for a, _, _ in back}
    assert sources == {"h", "c"}


def test_folded_parameters_once_and_per_step_slices_merged(lstm_loss):
    loss, cell, _ = lstm_loss
    dot = Dot(draw(loss, folded=True).source)
    params = dot.clusters["cluster_parameters"]["nodes"]
    assert len(params) == len(cell.parameters())
    assert "[t]" in dot.source and "[0]" not in dot.source


def test_folding_a_single_step_is_labelled_as_one_instance():
    out, _ = tg.unroll(Elman(3, 4), sequence(1))
    dot = Dot(draw(out.sum(), folded=True).source)
    assert "1 instance," in dot.clusters["cluster_Elman"]["label"]
    assert not [e for e in dot.edges if "t-1" in e[2]]


def test_folded_two_templates_two_clusters():
    enc, dec = Elman(3, 4, name="Encoder"), Elman(4, 4, name="Decoder", seed=5)
    hs, h = tg.unroll(enc, sequence(5))
    ys, _ = tg.unroll(dec, hs, h)
    dot = Dot(draw(ys.sum(), folded=True).source)
    assert set(dot.clusters) == {"cluster_parameters", "cluster_Encoder", "cluster_Decoder"}
    assert "5 instances" in dot.clusters["cluster_Encoder"]["label"]
    assert "5 instances" in dot.clusters["cluster_Decoder"]["label"]


def test_folded_size_does_not_grow_with_steps():
    sizes = []
    for steps in (3, 30):
        out, _ = tg.unroll(Elman(3, 4), sequence(steps))
        sizes.append(len(Dot(draw(out.sum(), folded=True).source).nodes))
    assert sizes[0] == sizes[1]


def test_compact_one_box_per_instance(elman_loss):
    loss, cell, _ = elman_loss
    dot = Dot(draw(loss, compact=True).source)
    blocks = {n: a for n, a in dot.nodes.items() if re.search(r"<b>Elman t=\d</b>", a)}
    assert len(blocks) == 4
    assert not [c for c in dot.clusters if c.startswith("cluster_Elman")]
    # state edges between consecutive boxes, labelled with the state's name
    state = [(a, b, attrs) for a, b, attrs in dot.edges if a in blocks and b in blocks]
    assert len(state) == 3 and all("label=h" in attrs for _, _, attrs in state)
    # each parameter once, with one edge per box using it
    W_hh = [n for n, a in dot.nodes.items() if "<b>W_hh</b>" in a]
    assert len(W_hh) == 1
    assert Counter(a for a, b, _ in dot.edges)[W_hh[0]] == 4


def test_compact_folded_is_one_box_with_a_self_loop(lstm_loss):
    loss, _, _ = lstm_loss
    dot = Dot(draw(loss, compact=True, folded=True).source)
    blocks = [n for n, a in dot.nodes.items() if "TinyLSTM (folded: 3 instances" in a]
    assert len(blocks) == 1
    loops = [attrs for a, b, attrs in dot.edges if a == b == blocks[0]]
    assert loops and "t-1" in loops[0]


def test_folded_initial_state_edges_are_marked_once_per_state(lstm_loss):
    loss, _, _ = lstm_loss
    dot = Dot(draw(loss, folded=True).source)
    h0 = next(n for n, a in dot.nodes.items() if "<b>h0</b>" in a)
    c0 = next(n for n, a in dot.nodes.items() if "<b>c0</b>" in a)
    init = [(a, b, attrs) for a, b, attrs in dot.edges if a in (h0, c0)]
    assert init and all("dashed" in attrs for _, _, attrs in init)
    labelled = [a for a, _, attrs in init if 'label="initial state"' in attrs]
    assert sorted(labelled) == sorted([h0, c0])
    assert "initial state (step 0)" in dot.source


def test_unrolled_has_no_initial_state_edges(lstm_loss):
    loss, _, _ = lstm_loss
    assert "initial state" not in draw(loss).source
