"""Rendering to files (with Graphviz dot), and behaviour when dot is not installed."""
import os
import shutil

import graphviz
import pytest

import tinygraph as tg
from tinygraph.drawing import GraphvizNotFoundError, dot_available, render, save, source

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed")
MAGIC = {".svg": b"<?xml", ".png": b"\x89PNG", ".pdf": b"%PDF"}


@pytest.fixture
def no_dot(monkeypatch):
    """Simulate a machine without Graphviz: shutil.which finds nothing and the graphviz
    package's subprocess call fails like it does when the executable is missing."""
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real_which(name, *a, **k))

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Digraph, "pipe", missing)


@needs_dot
@pytest.mark.parametrize("ext", [".svg", ".png", ".pdf"])
def test_render_picture_formats(tmp_path, elman_loss, ext):
    loss, _, _ = elman_loss
    path = tmp_path / f"graph{ext}"
    assert render(tg.draw(loss), path) == str(path)
    assert path.read_bytes().startswith(MAGIC[ext])
    assert os.listdir(tmp_path) == [path.name]  # the temporary file was renamed, not left behind


@needs_dot
def test_svg_contains_the_labels(tmp_path, elman_loss):
    loss, _, _ = elman_loss
    path = save(tg.draw(loss, folded=True), tmp_path / "folded.svg")
    text = open(path, encoding="utf-8").read()
    assert "Elman (folded: 4 instances" in text and "W_hh" in text
    assert "t&#45;1" in text  # Graphviz writes "-" as &#45; in SVG text


@needs_dot
def test_render_replaces_an_existing_file(tmp_path, elman_loss):
    loss, _, _ = elman_loss
    path = tmp_path / "g.svg"
    path.write_text("old")
    render(tg.draw(loss), path)
    assert path.read_bytes().startswith(b"<?xml")


@needs_dot
def test_jupyter_display_is_svg(elman_loss):
    loss, _, _ = elman_loss
    bundle = tg.draw(loss)._repr_mimebundle_()
    assert "image/svg+xml" in bundle and "<svg" in bundle["image/svg+xml"]


def test_dot_source_needs_no_graphviz(tmp_path, elman_loss, no_dot):
    loss, _, _ = elman_loss
    g = tg.draw(loss)
    assert not dot_available()
    path = render(g, tmp_path / "graph.dot")
    assert open(path, encoding="utf-8").read() == g.source == source(g)
    assert g.source.startswith("digraph")


def test_picture_without_dot_raises_with_install_hint_and_writes_dot(tmp_path, elman_loss, no_dot):
    loss, _, _ = elman_loss
    with pytest.raises(GraphvizNotFoundError) as info:
        render(tg.draw(loss), tmp_path / "graph.svg")
    msg = str(info.value)
    for hint in ("apt-get install graphviz", "brew install graphviz", "conda install graphviz"):
        assert hint in msg
    assert "graph.svg" in msg and "graph.dot" in msg
    assert sorted(os.listdir(tmp_path)) == ["graph.dot"]
    assert (tmp_path / "graph.dot").read_text(encoding="utf-8").startswith("digraph")


def test_no_fallback_when_asked(tmp_path, elman_loss, no_dot):
    loss, _, _ = elman_loss
    with pytest.raises(GraphvizNotFoundError):
        render(tg.draw(loss), tmp_path / "graph.png", dot_fallback=False)
    assert os.listdir(tmp_path) == []


def test_backend_failure_even_if_which_finds_dot(tmp_path, elman_loss, monkeypatch):
    """A broken install (dot on PATH but not runnable) gets the same clear error."""
    broken = tmp_path / "bin" / "dot"  # found on PATH, but cannot be run
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(broken))
    loss, _, _ = elman_loss
    with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
        render(tg.draw(loss), tmp_path / "graph.pdf")


def test_jupyter_display_without_dot_shows_source(elman_loss, no_dot):
    loss, _, _ = elman_loss
    g = tg.draw(loss)
    bundle = g._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    assert g.source in bundle["text/plain"] and "apt-get install graphviz" in bundle["text/plain"]


@pytest.mark.parametrize("name", ["graph.jpg", "graph", "graph.SVGZ"])
def test_unknown_extension(tmp_path, elman_loss, name):
    loss, _, _ = elman_loss
    with pytest.raises(ValueError, match=r"render: cannot tell the output format .* expected one of \.svg"):
        render(tg.draw(loss), tmp_path / name)
    assert os.listdir(tmp_path) == []


def test_render_needs_a_digraph(tmp_path):
    with pytest.raises(TypeError, match="render: expected the graphviz.Digraph returned by tinygraph.draw, got str"):
        render("digraph {}", tmp_path / "g.svg")


def test_uppercase_extension_is_accepted(tmp_path, elman_loss):
    loss, _, _ = elman_loss
    path = render(tg.draw(loss), tmp_path / "G.DOT")
    assert open(path).read().startswith("digraph")


@needs_dot
def test_png_dpi(tmp_path, elman_loss):
    import struct

    loss, _, _ = elman_loss
    g = tg.draw(loss)
    widths = []
    for dpi in (None, 192):
        path = render(g, tmp_path / f"g{dpi}.png", dpi=dpi)
        widths.append(struct.unpack(">I", open(path, "rb").read()[16:20])[0])
    assert widths[1] > 1.8 * widths[0]
    assert "dpi" not in g.source  # the drawing itself is not changed


@pytest.mark.parametrize("dpi", [0, -5, "high", True])
def test_bad_dpi(tmp_path, elman_loss, dpi):
    loss, _, _ = elman_loss
    with pytest.raises(ValueError, match="render: dpi must be a positive number"):
        render(tg.draw(loss), tmp_path / "g.png", dpi=dpi)


def test_written_files_get_ordinary_permissions(tmp_path, elman_loss):
    loss, _, _ = elman_loss
    umask = os.umask(0o022)
    try:
        path = render(tg.draw(loss), tmp_path / "g.dot")
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644  # not mkstemp's 0o600
