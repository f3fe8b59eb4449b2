"""The interactive page as a file: self-contained, escaped, written atomically, and from the CLI.
(What it does in a browser: test_html_browser.py.)"""
import json
import re
import shutil

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.cli import main
from tinygraph.drawing import html as page_module
from tinygraph.drawing import save
from tinygraph.drawing.output import GraphvizNotFoundError

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")


def small_graph(name="h_t"):
    W = tg.nn.Parameter(np.array([[0.5, -1.0], [2.0, 0.25]]), name="W")
    x = tg.tensor(np.arange(12.0).reshape(6, 2), name="x")
    h = (x @ W).tanh()
    h.name = name
    loss = (h ** 2).mean()
    loss.name = "loss"
    return loss, h, W


def page_data(text):
    m = re.search(r'<script type="application/json" id="tinygraph-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


@needs_dot
def test_page_is_self_contained(tmp_path):
    loss, _, _ = small_graph()
    loss.backward(retain_grads=True)
    path = tmp_path / "graph.html"
    assert save(tg.draw(loss), path) == str(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and text.count("<script") == 2
    # nothing to fetch: no external scripts, styles, fonts, images or links (the SVG namespace URIs are names)
    without_namespaces = re.sub(r'xmlns(:\w+)?="[^"]*"', "", text)
    assert not re.search(r"https?://|//[a-z]|@import|url\(|<link|src=", without_namespaces)
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically, no temporary left behind


@needs_dot
def test_node_details_values_and_gradients(tmp_path):
    loss, h, W = small_graph()
    graph = tg.Graph(loss)
    path = tmp_path / "before.html"
    save(tg.draw(loss), path)
    data = page_data(path.read_text(encoding="utf-8"))
    ids = {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}
    hd = data["nodes"][ids[id(h)]]
    assert (hd["title"], hd["op"], hd["shape"], hd["dtype"]) == ("h_t", "tanh", "(6, 2)", "float64")
    flat = h.data.ravel()  # 12 values: a summary
    assert hd["values"] == f"min {flat.min():.4g} · mean {flat.mean():.4g} · max {flat.max():.4g}"
    wd = data["nodes"][ids[id(W)]]
    assert wd["op"] == "parameter" and wd["values"] == "values [0.5, -1, 2, 0.25]"
    assert "grad" not in hd and data["grads"] is False
    # without gradients the walk is still the engine's order (what backward would process)
    assert data["walk"][0][0] == ids[id(loss)]

    loss.backward(retain_grads=True)
    save(tg.draw(loss), path)
    data = page_data(path.read_text(encoding="utf-8"))
    assert data["nodes"][ids[id(h)]]["grad"] == f"{np.linalg.norm(h.grad):.4g}"
    assert data["nodes"][ids[id(W)]]["grad"] == f"{np.linalg.norm(W.grad):.4g}"


@needs_dot
def test_user_strings_are_escaped(tmp_path):
    loss, _, _ = small_graph(name="</script><b>&x")
    path = tmp_path / "graph.html"
    save(tg.draw(loss, title="a <title> & more"), path)
    text = path.read_text(encoding="utf-8")
    assert "</script><b>" not in text.split("<script>")[0].split('id="tinygraph-data">')[1]
    assert "<title>a &lt;title&gt; &amp; more</title>" in text
    assert any(n.get("name") == "</script><b>&x" for n in page_data(text)["nodes"].values())


@needs_dot
def test_unrolled_steps_clusters_and_state_path(tmp_path):
    from tinygraph import models

    model = models.LSTM(2, 3, fused=False, rng=0)
    out, _ = model(np.ones((3, 1, 2)))
    path = tmp_path / "lstm.html"
    save(tg.draw((out ** 2).mean()), path)
    data = page_data(path.read_text(encoding="utf-8"))
    assert data["steps"] == [0, 1, 2]
    assert sorted(data["clusters"].items()) == [(f"cluster_LSTMCell_{t}", t) for t in range(3)]
    marked = {data["nodes"][n]["title"] for n in data["state"]}
    assert marked == {"h_t", "c_t"} and len(data["state"]) == 6


def test_page_without_dot_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(page_module, "dot_available", lambda: False)
    loss, _, _ = small_graph()
    with pytest.raises(GraphvizNotFoundError, match="interactive page needs the Graphviz 'dot'"):
        save(tg.draw(loss), tmp_path / "graph.html")
    assert not (tmp_path / "graph.html").exists()


def test_unknown_suffix_names_html(tmp_path):
    loss, _, _ = small_graph()
    with pytest.raises(ValueError, match=r"\.html"):
        save(tg.draw(loss), tmp_path / "graph.htm")


@needs_dot
@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_cli_writes_the_page_of_the_textbook_build(tmp_path, model, capsys):
    pytest.importorskip("tinygraph.models")
    out = tmp_path / "graph.html"
    assert main(["draw", "--model", model, "--steps", "2", "--out", str(out)]) == 0
    data = page_data(out.read_text(encoding="utf-8"))
    ops = {n["op"] for n in data["nodes"].values()}
    assert "@" in ops and not ops & {"reshape", "concat axis=0", "concat axis=1", "lstm_cell", "gru_cell"}
    assert data["grads"] is True and len(data["walk"]) > 10  # the page runs backward: norms and the walk
    assert data["steps"] == [0, 1]
