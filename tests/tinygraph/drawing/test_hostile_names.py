"""Hostile user strings (tensor, template and model names, titles) in every view, and ``dot``
failing or hanging: the drawing shows the text literally, ``dot`` never fails on it, and no
name can add markup or links to the SVG."""
import os
import shutil
import stat
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.drawing import DotError, render
from tinygraph.drawing.escape import dot_label, escape_dot, escape_html
from tinygraph.nn import Parameter

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")

INJECTION = '<<table><tr><td href="javascript:alert(1)">x</td></tr></table>>'
HOSTILE = [
    INJECTION,
    "ends in a backslash\\",
    "<script>alert(1)</script>",
    "nul\x00byte",
    "<eos>",
    '"quoted" \\N \\G \\l',
    "a'b&c;&amp;",
    "]; evil [label=x",
    "line\nbreak",
]
VIEWS = {
    "unrolled": {},
    "folded": {"folded": True},
    "compact": {"compact": True},
    "folded+compact": {"folded": True, "compact": True},
    "grads": {"grads": True},
    "grads+compact": {"grads": True, "compact": True},
}


class Cell(tg.Template):
    """A cell whose every tensor (and whose template name) carries the hostile name."""

    def __init__(self, name):
        super().__init__(name=name)
        rng = np.random.default_rng(0)
        self.W = Parameter(rng.normal(size=(3, 4)) * 0.5, name=name)
        self.U = Parameter(rng.normal(size=(4, 4)) * 0.5, name=name)
        self.label = name

    def initial_state(self, batch, dtype):
        return tg.tensor(np.zeros((batch, 4), dtype=dtype), name=self.label)

    def forward(self, x, h):
        h = (x @ self.W + h @ self.U).tanh()
        h.name = self.label
        return h, h


def hostile_loss(name, steps=3):
    cell = Cell(name)
    xs = tg.tensor(np.random.default_rng(1).normal(size=(steps, 2, 3)), name=name, requires_grad=True)
    outputs, _ = tg.unroll(cell, xs)
    outputs.name = name
    loss = (outputs ** 2).mean()
    loss.name = name
    loss.backward(retain_grads=True)
    return loss


def svg_texts_and_attributes(svg_bytes):
    root = ET.fromstring(svg_bytes)  # well-formed XML, or this raises
    texts, attributes, tags = [], [], []
    for element in root.iter():
        tags.append(element.tag.rsplit("}", 1)[-1])
        texts.append("".join(element.itertext()) if element.tag.endswith("text") else "")
        attributes.extend(element.attrib.items())
    return texts, attributes, tags


def test_escape_html_leaves_no_markup_and_no_control_characters():
    for name in HOSTILE:
        text = escape_html(name)
        assert not set(text) & set("<>\"'\x00\n")
        assert "&" not in text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").replace(
            "&quot;", "").replace("&#39;", "")
    assert escape_html("<eos>") == "&lt;eos&gt;"
    assert escape_html("a\x00b") == "a\u2400b"
    assert escape_html(3) == "3"


def test_dot_label_is_plain_only_for_harmless_text():
    assert dot_label("Elman t=0") == "Elman t=0" and dot_label("h, c (t-1)") == "h, c (t-1)"
    assert dot_label("]; evil [label=x") == "]; evil [label=x"  # harmless inside the quotes graphviz adds
    for name in HOSTILE[:-2] + HOSTILE[-1:]:
        label = dot_label(name)
        assert label.startswith("<") and label.endswith(">") and label[1:-1] == escape_dot(name)
    assert escape_dot("a\\G") == "a\\\\G" and escape_html("a\\G") == "a\\G"


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("name", HOSTILE, ids=[f"name{i}" for i in range(len(HOSTILE))])
def test_dot_source_carries_hostile_names_only_escaped(name, view):
    source = tg.draw(hostile_loss(name), title=name, **VIEWS[view]).source
    assert "\x00" not in source
    assert "javascript" not in source or 'href="javascript' not in source
    if any(c in name for c in "<>&\"'\n\x00"):
        assert name not in source  # never verbatim: only its escaped form
    if "\\" in name:  # backslashes appear doubled, only inside HTML-like labels
        assert not [line for line in source.splitlines() if "\\" in line and "=<" not in line]
        assert name.replace("\\", "\\\\").replace('"', "&quot;") in source


@needs_dot
@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("name", HOSTILE, ids=[f"name{i}" for i in range(len(HOSTILE))])
def test_svg_of_hostile_names_renders_literally_without_links(tmp_path, name, view):
    path = tmp_path / "g.svg"
    render(tg.draw(hostile_loss(name), title=name, **VIEWS[view]), path)  # dot must not fail
    texts, attributes, tags = svg_texts_and_attributes(path.read_bytes())
    assert "script" not in tags and "a" not in tags  # no element a name could have made
    assert not [v for k, v in attributes if "javascript" in v.lower()]
    assert not [k for k, _ in attributes if k.endswith("href")]
    # the text is drawn as written (control characters as visible symbols)
    shown = escape_html(name).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace(
        "&#39;", "'").replace("&amp;", "&")
    if view.endswith("compact") and view != "folded+compact":
        assert any(shown in t for t in texts)  # at least the title and the edge labels
    else:
        assert any(t == shown for t in texts), (shown, texts[:40])


@needs_dot
def test_eos_is_drawn_as_eos(tmp_path):
    x = tg.tensor(np.ones(2), requires_grad=True, name="<eos>")
    y = (x * 2).sum()
    render(tg.draw(y), tmp_path / "g.svg")
    texts, _, _ = svg_texts_and_attributes((tmp_path / "g.svg").read_bytes())
    assert "<eos>" in texts


def test_similar_model_names_get_different_clusters():
    from tinygraph import models

    a = models.RNN(3, 4, name="enc-1", rng=0)
    b = models.RNN(3, 4, name="enc_1", rng=1)
    xs = np.ones((2, 1, 3))
    out = a(xs)[0].sum() + b(xs)[0].sum()
    source = tg.draw(out).source
    clusters = [line.split()[1] for line in source.splitlines() if line.strip().startswith("subgraph cluster_enc")]
    assert len(clusters) == 4 and len(set(clusters)) == 4
    assert "enc-1 t=0" in source and "enc_1 t=0" in source
    folded = tg.draw(out, folded=True).source
    clusters = [line.split()[1] for line in folded.splitlines() if line.strip().startswith("subgraph cluster_enc")]
    assert len(clusters) == 2 and len(set(clusters)) == 2


def fake_dot(folder, script):
    path = folder / "dot"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def small_drawing():
    x = tg.tensor(np.ones(2), requires_grad=True, name="x")
    return tg.draw((x * 2).sum())


def test_a_hanging_dot_is_stopped_with_a_clear_error(tmp_path, monkeypatch, small_drawing):
    program = fake_dot(tmp_path, "sleep 60")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: program if name == "dot" else None)
    start = time.monotonic()
    with pytest.raises(DotError, match="did not finish within 1 s"):
        render(small_drawing, tmp_path / "g.svg", timeout=1)
    assert time.monotonic() - start < 20
    assert sorted(os.listdir(tmp_path)) == ["dot"]  # nothing written, no temporary file left


def test_a_failing_dot_is_a_clear_error_with_its_message(tmp_path, monkeypatch, small_drawing):
    program = fake_dot(tmp_path, "echo 'Error: syntax error in line 3' >&2; exit 3")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: program if name == "dot" else None)
    with pytest.raises(DotError, match=r"exit status 3.*syntax error in line 3"):
        render(small_drawing, tmp_path / "g.png")
    assert sorted(os.listdir(tmp_path)) == ["dot"]


def test_render_refuses_a_folder_and_a_bad_timeout(tmp_path, small_drawing):
    (tmp_path / "pic.svg").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        render(small_drawing, tmp_path / "pic.svg")
    with pytest.raises(ValueError, match="timeout"):
        render(small_drawing, tmp_path / "g.svg", timeout=-1)


def test_jupyter_display_with_a_failing_dot_shows_the_message_and_source(tmp_path, monkeypatch, small_drawing):
    program = fake_dot(tmp_path, "echo 'Error: broken' >&2; exit 2")
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: program if name == "dot" else None)
    bundle = small_drawing._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    assert "broken" in bundle["text/plain"] and small_drawing.source in bundle["text/plain"]


@pytest.mark.parametrize("name", HOSTILE, ids=[f"name{i}" for i in range(len(HOSTILE))])
def test_html_page_carries_hostile_names_only_escaped(tmp_path, name):
    """The interactive page (``save(drawing, "graph.html")``) must escape names with the same
    ``escape_html``; skipped until the page exists."""
    path = tmp_path / "graph.html"
    try:
        render(tg.draw(hostile_loss(name), title=name), path)
    except ValueError as exc:
        if "cannot tell the output format" in str(exc):
            pytest.skip("no HTML page yet (save to .html is not supported)")
        raise
    page = path.read_text(encoding="utf-8")
    assert "\x00" not in page
    assert 'href="javascript' not in page.lower() and "href='javascript" not in page.lower()
    for fragment in (INJECTION, "<script>alert(1)</script>", "<eos>"):
        if fragment in name:
            assert fragment not in page


@needs_dot
@pytest.mark.parametrize("view", ["unrolled", "folded", "compact", "grads"])
@pytest.mark.parametrize("name", [INJECTION, "<eos>", "nul\x00\\G"], ids=["injection", "eos", "nul-backslash"])
def test_model_names_are_escaped(tmp_path, name, view):
    from tinygraph import models

    model = models.LSTM(2, 3, name=name, rng=0, fused=False)
    out, _ = model(np.random.default_rng(0).normal(size=(2, 1, 2)))
    loss = (out ** 2).mean()
    loss.backward(retain_grads=True)
    path = tmp_path / "g.svg"
    render(tg.draw(loss, **VIEWS[view]), path)
    texts, attributes, tags = svg_texts_and_attributes(path.read_bytes())
    assert "a" not in tags and not [v for _, v in attributes if "javascript" in v.lower()]
    shown = name.replace("\x00", "\u2400")
    assert any(shown in t for t in texts)
