"""backward_frames / save_animation: the backward pass, one drawing per node the walk processes."""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from drawing_helpers import Dot

import tinygraph as tg
from tinygraph.autograd import topological_order
from tinygraph.drawing import GraphvizNotFoundError, backward_frames, save_animation
from tinygraph.drawing.dot import HIGHLIGHT, PENDING_FILL

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")


def _processed(loss):
    return [t for t in reversed(topological_order([loss], only_requires_grad=True)) if t.grad is not None]


def _coloured(dot):
    """Nodes painted with a gradient colour (not grey "not reached yet", not white "no gradient", not constants)."""
    return {n for n in dot.nodes if dot.attr(n, "fillcolor") not in (None, PENDING_FILL, "#ffffff")}


def _highlighted(dot):
    return [n for n in dot.nodes if dot.attr(n, "penwidth") == "4"]


def _label_shape(dot, node):
    """A node's label without its colours: what decides its size."""
    return re.sub(r'color="#[0-9a-fA-F]{6}"', "", dot.attr(node, "label"))


def test_one_frame_per_node_that_gets_a_gradient(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    order = _processed(loss)
    frames = backward_frames(loss)
    assert len(frames) == len(order) > 10
    for k, frame in enumerate(frames, start=1):
        assert len(_coloured(Dot(frame.source))) == k
        assert f"backward step <b>{k}</b>/{len(order)}" in frame.source


def test_highlight_follows_the_engines_order(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    graph = tg.Graph(loss)
    node_id = {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}
    order = _processed(loss)
    frames = [Dot(f.source) for f in backward_frames(loss)]
    assert [_highlighted(d) for d in frames] == [[node_id[id(t)]] for t in order]
    assert order[0] is loss and order[-1].op is None  # the loss first, a leaf last
    # the highlighted node is the one coloured last; the edges into it (towards its inputs) are orange
    for k, dot in enumerate(frames[1:], start=1):
        assert _coloured(dot) - _coloured(frames[k - 1]) == set(_highlighted(dot))
    current = _highlighted(frames[3])[0]
    orange = {(a, b) for a, b, attrs in frames[3].edges if HIGHLIGHT in attrs}
    assert orange and all(b == current for _, b in orange)
    # the caption names the tensor and its step, the earliest step after the later ones
    captions = [re.search(r"∂L/∂\(([^)]*)\)", f.source).group(1) for f in frames]
    assert captions[0] == "loss"
    steps = [int(m) for c in captions for m in re.findall(r"t=(\d+)", c)]
    assert steps == sorted(steps, reverse=True) and steps[0] == 3 and steps[-1] == 0


def test_frames_keep_labels_and_colour_scale(lstm_loss):
    loss, _, _ = lstm_loss
    loss.backward(retain_grads=True)
    frames = [Dot(f.source) for f in backward_frames(loss)]
    first, last = frames[0], frames[-1]
    for dot in frames:
        assert list(dot.nodes) == list(first.nodes)
        assert {n: _label_shape(dot, n) for n in dot.nodes} == {n: _label_shape(first, n) for n in first.nodes}
        assert dot.edge_counter() == first.edge_counter()
        # a node, once coloured, has the colour it has at the end (one fixed scale)
        assert all(dot.attr(n, "fillcolor") == last.attr(n, "fillcolor") for n in _coloured(dot))
    # the last frame is coloured exactly like draw(grads=True)
    full = Dot(tg.draw(loss, grads=True).source)
    assert {n: last.attr(n, "fillcolor") for n in last.nodes} == {n: full.attr(n, "fillcolor") for n in full.nodes}
    ticks = {tuple(re.findall(r'point-size="9">([0-9.e+-]+)<', d.source)) for d in frames}
    assert len(ticks) == 1 and len(ticks.pop()) == 2  # the colour bar's two ends, the same in every frame


def test_grad_range_is_used_in_every_frame(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    for frame in backward_frames(loss, grad_range=(1e-4, 10.0)):
        assert ">1.0e-04<" in frame.source and ">1.0e+01<" in frame.source


@needs_dot
@pytest.mark.parametrize("compact", [False, True])
def test_graphviz_lays_out_every_frame_identically(elman_loss, compact):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frames = backward_frames(loss, compact=compact, title="layout")
    layouts = set()
    for frame in frames[:: max(1, len(frames) // 6)] + [frames[-1]]:
        plain = frame.pipe(format="plain").decode()
        layouts.add(tuple(tuple(line.split()[:6]) for line in plain.splitlines() if line.startswith(("graph", "node"))))
    assert len(layouts) == 1


def test_tensors_are_not_modified(lstm_loss):
    loss, _, _ = lstm_loss
    loss.backward(retain_grads=True)
    nodes = tg.Graph(loss).nodes
    before = [(t.grad, None if t.grad is None else t.grad.copy(), t.data.copy(), t.name) for t in nodes]
    backward_frames(loss)
    backward_frames(loss, compact=True)
    for t, (grad, copy, data, name) in zip(nodes, before):
        assert t.grad is grad and t.name == name and np.array_equal(t.data, data)
        assert copy is None or np.array_equal(t.grad, copy)


def test_compact_frames_follow_the_boxes(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frames = [Dot(f.source) for f in backward_frames(loss, compact=True)]
    n = len(_processed(loss))
    assert 4 < len(frames) < n
    counts = [len(_coloured(d)) for d in frames]
    assert counts == list(range(1, len(frames) + 1))  # each frame reaches one more box
    boxes = [re.search(r"through (\S+ t=\d+)", d.source) for d in frames]
    assert [b.group(1) for b in boxes if b] == ["Elman t=3", "Elman t=2", "Elman t=1", "Elman t=0"]
    # the highlighted box is the one the caption names
    for dot, box in zip(frames, boxes):
        if box:
            assert box.group(1) in dot.attr(_highlighted(dot)[0], "label")
    assert f"/{n}:" in frames[-1].source


def test_refuses_without_backward(elman_loss):
    loss, _, _ = elman_loss
    with pytest.raises(ValueError, match=r"backward\(retain_grads=True\)"):
        backward_frames(loss)
    loss.backward()  # without retain_grads: the loss keeps no gradient
    with pytest.raises(ValueError, match=r"retain_grads=True"):
        backward_frames(loss)


def test_refuses_when_only_the_root_kept_its_gradient(elman_loss):
    loss, _, _ = elman_loss
    loss.retain_grad()
    loss.backward()
    with pytest.raises(ValueError, match="intermediate tensors kept no gradient"):
        backward_frames(loss)


def test_refuses_folded_and_bad_options(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    with pytest.raises(ValueError, match="folded=True is not supported"):
        backward_frames(loss, folded=True)
    with pytest.raises(ValueError, match="grads=False"):
        backward_frames(loss, grads=False)
    with pytest.raises(TypeError, match="unknown option"):
        backward_frames(loss, colour=True)
    with pytest.raises(ValueError, match="rankdir"):
        backward_frames(loss, rankdir="BT")
    with pytest.raises(ValueError, match="max_nodes"):
        backward_frames(loss, max_nodes=5)
    with pytest.raises(TypeError, match="root"):
        backward_frames("loss")


def test_save_animation_rejects_bad_arguments(elman_loss, tmp_path):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frames = backward_frames(loss, compact=True)
    with pytest.raises(ValueError, match=r"\.gif file or a folder"):
        save_animation(frames, tmp_path / "anim.png")
    with pytest.raises(ValueError, match="does not exist"):
        save_animation(frames, tmp_path / "missing" / "anim.gif")
    with pytest.raises(ValueError, match="does not exist"):
        save_animation(frames, str(tmp_path / "missing" / "deeper") + "/")
    with pytest.raises(ValueError, match="no frames"):
        save_animation([], tmp_path / "anim.gif")
    with pytest.raises(ValueError, match="seconds_per_frame"):
        save_animation(frames, tmp_path / "anim.gif", seconds_per_frame=0)
    with pytest.raises(TypeError):
        save_animation(["not a drawing"], tmp_path / "anim.gif")
    assert os.listdir(tmp_path) == []


@needs_dot
def test_gif_has_one_image_per_frame(elman_loss, tmp_path):
    Image = pytest.importorskip("PIL.Image")
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frames = backward_frames(loss)
    path = tmp_path / "backward.gif"
    assert save_animation(frames, path, seconds_per_frame=0.25) == str(path)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == len(frames)
        assert gif.info["duration"] == 250
        sizes = set()
        for k in range(gif.n_frames):
            gif.seek(k)
            sizes.add(gif.size)
        assert len(sizes) == 1
    assert sorted(os.listdir(tmp_path)) == ["backward.gif"]  # no temporary file left behind


@needs_dot
def test_folder_gets_numbered_svg_frames(elman_loss, tmp_path):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frames = backward_frames(loss, compact=True)
    folder = tmp_path / "frames"
    (tmp_path / "frames").mkdir()
    (folder / "frame_999.svg").write_text("stale")
    (folder / "notes.txt").write_text("kept")
    written = save_animation(frames, folder)
    names = sorted(os.listdir(folder))
    assert names == [f"frame_{k:03d}.svg" for k in range(len(frames))] + ["notes.txt"]
    assert [os.path.basename(p) for p in written] == names[:-1]
    assert (folder / "frame_000.svg").read_bytes().startswith(b"<?xml")
    # a path ending in / that does not exist yet is created
    written = save_animation(frames[:2], str(tmp_path / "new") + "/")
    assert sorted(os.listdir(tmp_path / "new")) == ["frame_000.svg", "frame_001.svg"]


def test_gif_without_pillow_names_the_extra(elman_loss, tmp_path, monkeypatch):
    import sys

    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frames = backward_frames(loss, compact=True)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"pip install tinygraph\[plot\]"):
        save_animation(frames, tmp_path / "anim.gif")
    assert os.listdir(tmp_path) == []


def test_without_dot_gives_the_install_hint(elman_loss, tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frames = backward_frames(loss, compact=True)
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "dot" else real_which(name, *a, **k))
    for path in (tmp_path / "anim.gif", str(tmp_path / "frames") + "/"):
        with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz"):
            save_animation(frames, path)
    assert os.listdir(tmp_path) == []


def test_exported_from_tinygraph_drawing():
    import tinygraph.drawing as drawing

    assert {"backward_frames", "save_animation"} <= set(drawing.__all__)


@needs_dot
def test_frames_render_without_warnings(elman_loss):
    loss, _, _ = elman_loss
    loss.backward(retain_grads=True)
    frame = backward_frames(loss)[5]
    run = subprocess.run(["dot", "-Tsvg"], input=frame.source.encode(), capture_output=True)
    assert run.returncode == 0 and run.stderr == b""
