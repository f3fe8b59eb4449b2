"""The unrolled drawing: clusters per instance, parameters once, edges as in the Graph."""
import re
from collections import Counter

import numpy as np
import pytest
from drawing_helpers import Dot

import tinygraph as tg
from tinygraph.drawing import draw


def ids(graph):
    return {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}


def test_returns_a_graphviz_digraph(elman_loss):
    import graphviz

    loss, _, _ = elman_loss
    assert isinstance(tg.draw(loss), graphviz.Digraph)


def test_one_cluster_per_instance_labelled_and_holding_exactly_its_nodes(elman_loss):
    loss, _, _ = elman_loss
    graph = tg.Graph(loss)
    dot = Dot(draw(loss).source)
    names = ids(graph)
    for t in range(4):
        cluster = dot.clusters[f"cluster_Elman_{t}"]
        assert cluster["label"] == f"Elman t={t}"
        expected = {names[id(n)] for n in graph.nodes
                    if n.instance == ("Elman", t) and not (n.op is None and n.requires_grad)}
        assert set(cluster["nodes"]) == expected and expected
    instance_clusters = [c for c in dot.clusters if c != "cluster_parameters"]
    assert len(instance_clusters) == 4


def test_clusters_appear_in_time_order(elman_loss):
    loss, _, _ = elman_loss
    source = draw(loss).source
    positions = [source.index(f"subgraph cluster_Elman_{t} ") for t in range(4)]
    assert positions == sorted(positions)


def test_each_parameter_drawn_exactly_once_in_the_parameter_cluster(elman_loss):
    loss, cell, _ = elman_loss
    graph = tg.Graph(loss)
    dot = Dot(draw(loss).source)
    names = ids(graph)
    params = cell.parameters()
    for p in params:
        nid = names[id(p)]
        assert nid in dot.nodes
        assert dot.cluster_of[nid] == "cluster_parameters"
        assert p.name in dot.nodes[nid]
        # used at every step: one node, several edges out of it
    uses = Counter(a for a, b, _ in dot.edges)
    assert uses[names[id(cell.W_hh)]] == 4
    assert set(dot.clusters["cluster_parameters"]["nodes"]) == {names[id(p)] for p in params}


def test_edges_agree_with_graph_edges(elman_loss):
    loss, _, _ = elman_loss
    graph = tg.Graph(loss)
    names = ids(graph)
    dot = Dot(draw(loss).source)
    expected = Counter((names[id(p)], names[id(c)]) for p, c in graph.edges())
    assert dot.edge_counter() == expected
    assert set(dot.nodes) == set(names.values())


def test_labels_name_shape_and_dtype(elman_loss):
    loss, _, outputs = elman_loss
    graph = tg.Graph(loss)
    names = ids(graph)
    dot = Dot(draw(loss).source)
    h = outputs.parents[2]  # h of step 2
    label = dot.nodes[names[id(h)]]
    assert "<b>h</b>" in label and "tanh" in label and "(2, 4)" in label and "float64" in label
    no_dtype = Dot(draw(loss, show_dtype=False).source)
    assert "float64" not in no_dtype.nodes[names[id(h)]]


def test_root_and_leaves_are_marked(elman_loss):
    loss, cell, _ = elman_loss
    graph = tg.Graph(loss)
    names = ids(graph)
    dot = Dot(draw(loss).source)
    assert dot.attr(names[id(loss)], "peripheries") == "2"
    assert sum(1 for n in dot.nodes if dot.attr(n, "peripheries") == "2") == 1
    xs = next(n for n in graph.leaves() if n.name == "xs")
    param_fill = dot.attr(names[id(cell.W_hh)], "fillcolor")
    input_fill = dot.attr(names[id(xs)], "fillcolor")
    op_fill = dot.attr(names[id(loss)], "fillcolor")
    assert len({param_fill, input_fill, op_fill}) == 3
    assert dot.attr(names[id(xs)], "shape") == "box"


def test_state_edges_are_highlighted_and_labelled_with_the_state_name(elman_loss):
    loss, _, outputs = elman_loss
    graph = tg.Graph(loss)
    names = ids(graph)
    dot = Dot(draw(loss).source)
    h0, h1 = outputs.parents[0], outputs.parents[1]
    consumers = [c for p, c in graph.edges() if p is h0 and c.instance == ("Elman", 1)]
    assert consumers
    attrs = [a for s, d, a in dot.edges if s == names[id(h0)] and d == names[id(consumers[0])]]
    assert attrs and "label=h" in attrs[0] and "penwidth" in attrs[0]
    # the layout constraint is kept: it is what puts step t after step t-1
    assert "constraint=false" not in attrs[0]
    assert h1.instance == ("Elman", 1)


def test_two_templates_get_their_own_clusters():
    from conftest import Elman, sequence

    enc, dec = Elman(3, 4, name="Encoder"), Elman(4, 4, name="Decoder", seed=5)
    hs, h = tg.unroll(enc, sequence(2))
    ys, _ = tg.unroll(dec, hs, h)
    loss = ys.sum()
    dot = Dot(draw(loss).source)
    for name in ("Encoder", "Decoder"):
        for t in range(2):
            assert dot.clusters[f"cluster_{name}_{t}"]["label"] == f"{name} t={t}"


def test_odd_template_names_give_valid_cluster_names():
    from conftest import Elman, sequence

    out, _ = tg.unroll(Elman(3, 4, name="my cell/v2"), sequence(2))
    dot = Dot(draw(out.sum()).source)
    assert "cluster_my_cell_v2_0" in dot.clusters
    assert dot.clusters["cluster_my_cell_v2_0"]["label"] == "my cell/v2 t=0"


def test_html_in_names_is_escaped():
    x = tg.tensor([1.0, 2.0], requires_grad=True, name="<x&y>")
    source = draw((x * 2).sum()).source
    assert "&lt;x&amp;y&gt;" in source


def test_constants_are_drawn_as_their_value():
    x = tg.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = (1 - x).sum()
    graph = tg.Graph(y)
    const = next(n for n in graph.leaves() if not n.requires_grad)
    dot = Dot(draw(y).source)
    assert dot.attr(ids(graph)[id(const)], "shape") == "plaintext"
    assert ">1<" in dot.nodes[ids(graph)[id(const)]]


def test_works_without_templates_and_with_several_roots():
    a = tg.tensor(np.ones((2, 2)), requires_grad=True, name="a")
    b = a.exp()
    c = a.tanh()
    dot = Dot(draw(b, c).source)
    assert len(dot.nodes) == 3
    assert not dot.clusters.keys() - {"cluster_parameters"}
    assert sum(1 for n in dot.nodes if dot.attr(n, "peripheries") == "2") == 2


def test_accepts_a_graph_and_a_list(elman_loss):
    loss, _, _ = elman_loss
    assert draw(tg.Graph(loss)).source == draw(loss).source == draw([loss]).source


def test_index_labels_show_the_index(elman_loss):
    loss, _, _ = elman_loss
    source = draw(loss).source
    assert re.search(r"<b>\[3\]</b>", source)


def test_key_explains_kinds_and_state_edges(elman_loss):
    loss, _, _ = elman_loss
    source = draw(loss).source
    for text in ("parameter", "input / leaf", "op result", "root (loss)", "state passed to the next step"):
        assert text in source
    assert "drawn back into the copy" in draw(loss, folded=True).source
    assert "root (loss)" not in draw(loss, legend=False).source
    with pytest.raises(TypeError, match="draw: legend must be True or False"):
        draw(loss, legend="no")


def test_no_state_entry_without_templates():
    x = tg.tensor([1.0], requires_grad=True, name="x")
    source = draw(x.exp()).source
    assert "root (loss)" in source and "state passed" not in source and "parameter<" not in source
