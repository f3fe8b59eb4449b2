"""An animation of the backward pass: one drawing per step of the engine's backward walk.

``backward_frames(loss)`` replays, after ``loss.backward(retain_grads=True)``,
the order in which ``tinygraph.autograd.backward`` processed the graph
(``reversed(topological_order(roots, only_requires_grad=True))``, skipping the
tensors no gradient reached). Frame k shows the first k processed nodes
coloured by their gradient norm, the others grey ("not reached yet"), and the
node processed at step k outlined, with the edges its gradient flows back
along. The colour scale and every label's size are the same in all frames, so
Graphviz lays every frame out identically and only the colours change.
``save_animation(frames, "backward.gif")`` writes them as a GIF (Pillow), or
as numbered SVG files into a folder.

Nothing is modified: gradient norms are read from ``.grad``, which keeps its
final value throughout.
"""
from __future__ import annotations

import glob
import io
import math
import os
import re

from ..autograd import topological_order
from . import colors
from . import dot as _dot
from .compact import compact as _compact
from .labels import FILLS, op_text
from .output import (INSTALL_HINT, GraphvizNotFoundError, _check_digraph, dot_available, pipe, render,
                     replace_atomically)
from .view import BLOCK, CONST, PARAM, instance_label, unrolled

PLOT_HINT = "pip install tinygraph[plot]"
_FRAME_NAME = "frame_{:03d}.svg"
_FRAME_RE = re.compile(r"^frame_(\d{3,})\.svg$")


DEFAULT_MAX_FRAMES = 60


def backward_frames(*roots, max_frames=DEFAULT_MAX_FRAMES, **draw_options):
    """The backward pass as a list of drawings, one per step of the engine's walk.

    Parameters
    ----------
    *roots : Tensor (or one ``tinygraph.Graph``, or one list of Tensors)
        The tensors ``backward`` was called on, usually the loss; run
        ``loss.backward(retain_grads=True)`` first, so that every intermediate
        tensor kept its gradient.
    **draw_options
        The options of ``tinygraph.draw``: ``compact``, ``max_nodes``,
        ``rankdir``, ``title``, ``grad_range``, ``show_dtype``, ``legend``
        (``grads`` is implied). ``folded=True`` is refused: a folded node
        stands for one tensor per step, reached at different times.
    max_frames : int or None
        At most this many frames (default 60; None: one per node). When the
        walk has more steps, the nodes it processes one after the other inside
        one step's cluster (or outside every cluster) make one frame, so a
        frame is one time step of BPTT; if that is still too many, runs of
        consecutive frames are merged evenly. The last frame always shows the
        finished walk. A GIF of a 3-step LSTM stays small and quick to make.

    Returns
    -------
    list of Drawing
        Frame k (1-based) shows the graph after the backward walk processed
        its first k nodes, in the engine's order (the loss first): those k
        nodes coloured by their gradient norm, the rest grey ("not reached
        yet"; tensors that never get a gradient stay white and dashed, as in
        ``draw(grads=True)``), node k outlined in orange with the edges its
        gradient flows back along, and a caption
        ``backward step k/N: ∂L/∂(h, RNNCell t=2)``. The colour scale is fixed
        from all gradients (or ``grad_range``) and labels keep their size, so
        all frames have the same layout. With ``compact=True`` the nodes
        processed one after the other inside the same box make one frame
        (captioned ``backward steps 4-8/22``), so there are fewer frames.

    Raises
    ------
    ValueError
        If a root has no gradient or the intermediate tensors kept none
        (``backward(retain_grads=True)`` was not run), if ``folded=True``, or
        if an option has a bad value (as ``draw``).

    Examples
    --------
    >>> loss.backward(retain_grads=True)                         # doctest: +SKIP
    >>> frames = backward_frames(loss)                           # doctest: +SKIP
    >>> save_animation(frames, "backward.gif")                   # doctest: +SKIP
    """
    options = dict(folded=False, grads=True, compact=False, max_nodes=_dot.DEFAULT_MAX_NODES, rankdir="TB",
                   title=None, grad_range=None, show_dtype=True, legend=True)
    unknown = sorted(set(draw_options) - set(options))
    if unknown:
        raise TypeError(f"backward_frames: unknown option(s) {', '.join(unknown)}; expected the options of "
                        f"draw: {', '.join(sorted(options))}")
    options.update(draw_options)
    grad_range = _dot._check_options(**options)
    if options["grads"] is not True:
        raise ValueError("backward_frames: the frames always show gradients; grads=False makes no sense here")
    if options["folded"]:
        raise ValueError("backward_frames: folded=True is not supported (a folded node stands for one tensor per "
                         "step, and the backward pass reaches them at different times); use the unrolled view "
                         "or compact=True")
    graph = _dot._graph_of(roots)
    order = _processing_order(graph.roots)

    compact, max_nodes = options["compact"], options["max_nodes"]
    view = unrolled(graph)
    where = {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}
    if compact:
        block_of = {}
        for nid, node in view.nodes.items():  # the ids compact() gives its boxes: b0, b1, ... by first member
            if node.group is not None:
                where[id(node.tensor)] = block_of.setdefault(node.group, f"b{len(block_of)}")
        view = _compact(view)
    if max_nodes is not None and len(view) > max_nodes:
        raise ValueError(_dot._too_big_message(len(graph), len(view), max_nodes, False, compact)
                         .replace("draw:", "backward_frames:", 1))

    final = {nid: colors.grad_norm(node.tensors) for nid, node in view.nodes.items() if node.kind != CONST}
    values = list(final.values())
    scale = colors.LogScale.fit(values, grad_range)
    any_missing = any(v is None for v in values)
    any_nonfinite = any(v is not None and not math.isfinite(v) for v in values)
    texts = {nid: colors.format_norm(v) for nid, v in final.items() if v is not None}
    extra_legend = _extra_legend()

    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                   or max_frames < 1):
        raise ValueError(f"backward_frames: max_frames must be a positive int or None, got {max_frames!r}")
    runs = []  # (view node id, [processed tensors]) in order; one per frame
    for t in order:
        nid = where[id(t)]
        if runs and runs[-1][0] == nid:
            runs[-1][1].append(t)
        else:
            runs.append((nid, [t]))
    frames_of = [[run] for run in runs]  # each frame: the runs it shows being processed
    if max_frames is not None and len(frames_of) > max_frames:
        frames_of = _cap_frames(runs, view, max_frames)
    total = len(order)
    frames, reached, done = [], set(), 0
    for group in frames_of:
        nids = [nid for nid, _ in group]
        tensors = [t for _, ts in group for t in ts]
        nid = nids[-1]
        reached.update(nids)
        first, done = done + 1, done + len(tensors)
        norms = {n: (v if n in reached else None) for n, v in final.items()}
        pending = {n for n, v in final.items() if v is not None and n not in reached}
        active = {(e.src, e.dst) for e in view.edges if e.dst in set(nids) and final.get(e.src) is not None}
        if len(group) == 1:
            step = _step_caption(first, done, total, view.nodes[nid], tensors)
        else:
            step = _span_caption(first, done, total, view.nodes[nid], tensors)
        paint = _dot._Paint(norms, scale, any_missing, any_nonfinite, pending=pending, texts=texts, current=nid,
                            active_edges=active, step=step, extra_legend=extra_legend)
        frames.append(_dot._emit(view, paint, options["title"], options["show_dtype"], options["legend"],
                                 options["rankdir"]))
    return frames


def _cap_frames(runs, view, max_frames):
    """Group the walk's runs into at most ``max_frames`` frames: first one per stretch of the walk
    inside one cluster (one time step), then, if still too many, consecutive stretches evenly."""
    stretches = []
    for run in runs:
        group = view.nodes[run[0]].group
        if stretches and stretches[-1][0] == group:
            stretches[-1][1].append(run)
        else:
            stretches.append((group, [run]))
    frames = [runs_ for _, runs_ in stretches]
    if len(frames) > max_frames:
        edges = [round(k * len(frames) / max_frames) for k in range(max_frames + 1)]
        frames = [[run for f in frames[a:b] for run in f] for a, b in zip(edges, edges[1:]) if b > a]
    return frames


def _span_caption(first, last, total, node, tensors):
    esc = _dot._escape
    groups = []
    for t in tensors:
        label = instance_label(t.instance) if t.instance is not None else "outside the steps"
        if label not in groups:
            groups.append(label)
    where = groups[0] if len(groups) == 1 else f"{groups[0]} … {groups[-1]}"
    return (f'<font point-size="12">backward steps <b>{first}-{last}</b>/{total}: {len(tensors)} nodes, '
            f'{esc(where)}; last ∂L/∂({esc(_tensor_text(tensors[-1]))})</font>')


def _processing_order(roots):
    """The tensors ``autograd.backward`` processed, in its order; checks that it ran with retain_grads."""
    for i, r in enumerate(roots):
        if r.grad is None:
            what = f"root {i}" + (f" ({r.name})" if r.name else "")
            raise ValueError(f"backward_frames: {what} has no gradient; call loss.backward(retain_grads=True) "
                             f"before making the frames")
    candidates = list(reversed(topological_order(list(roots), only_requires_grad=True)))
    root_ids = {id(r) for r in roots}
    inner = [t for t in candidates if t.op is not None and id(t) not in root_ids]
    if inner and all(t.grad is None for t in inner):
        raise ValueError("backward_frames: the intermediate tensors kept no gradient, so the walk cannot be "
                         "shown; call loss.backward(retain_grads=True) (not plain backward()) before making "
                         "the frames")
    return [t for t in candidates if t.grad is not None]


def _tensor_text(t):
    if t.name:
        name = t.name
    elif t.op is not None:
        name = op_text(t)
    else:
        name = "input"
    return name + (f", {instance_label(t.instance)}" if t.instance is not None else "")


def _step_caption(first, last, total, node, tensors):
    esc = _dot._escape
    if node.kind == BLOCK and len(tensors) > 1:
        head = f"backward steps <b>{first}-{last}</b>/{total}"
        what = f"through {esc(node.title)}"
    else:
        head = f"backward step <b>{last}</b>/{total}"
        what = f"∂L/∂({esc(_tensor_text(tensors[-1]))})"
        if tensors[-1].op is None:
            what += " (a leaf: its gradient stays in .grad)"
    return f'<font point-size="12">{head}: {what}</font>'


def _extra_legend():
    cell = '<td align="left"><font point-size="9">{}</font></td>'
    return ('<table border="0" cellborder="0" cellspacing="3" cellpadding="1"><tr>'
            f'<td bgcolor="{_dot.PENDING_FILL}" color="{_dot.PENDING_BORDER}" border="1" width="16" height="12">'
            f'</td>{cell.format("not reached yet")}'
            f'<td bgcolor="{FILLS[PARAM]}" color="{_dot.HIGHLIGHT}" border="3" width="16" height="12"></td>'
            f'{cell.format("being processed; its gradient flows back along the orange edges")}'
            '</tr></table>')


def save_animation(frames, path, seconds_per_frame=0.6, dpi=72):
    """Write ``frames`` (from ``backward_frames``) as an animated GIF, or as numbered SVG files.

    Parameters
    ----------
    frames : list of graphviz.Digraph
    path : str or os.PathLike
        ``*.gif``: one animated GIF (needs Pillow, which comes with
        ``pip install tinygraph[plot]``), frames padded to one size, the last
        one held for four frame durations. A folder (an existing directory,
        or a path ending in ``/``, created if its parent exists):
        ``frame_000.svg``, ``frame_001.svg``, ... (older ``frame_*.svg`` files
        beyond the new count are removed). Both need Graphviz ``dot``.
    seconds_per_frame : float
    dpi : int
        Resolution of the GIF's frames (72 keeps a 3-step textbook LSTM, one
        frame per step cluster, near 1.3 MB with its labels readable).

    Returns
    -------
    str or list of str
        The GIF's path, or the SVG files written.

    Raises
    ------
    ValueError
        No frames, a bad ``seconds_per_frame``, or a path that is neither
        ``.gif`` nor a folder.
    ImportError
        Pillow is missing (GIF only).
    GraphvizNotFoundError
        The Graphviz ``dot`` program is missing.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("save_animation: no frames to write")
    for f in frames:
        _check_digraph(f, "save_animation")
    if isinstance(seconds_per_frame, bool) or not isinstance(seconds_per_frame, (int, float)) \
            or not seconds_per_frame > 0:
        raise ValueError(f"save_animation: seconds_per_frame must be a positive number, got {seconds_per_frame!r}")
    text = os.fspath(path)
    if text.endswith(("/", os.sep)) or os.path.isdir(text):
        return _save_folder(frames, text)
    if os.path.splitext(text)[1].lower() != ".gif":
        raise ValueError(f"save_animation: cannot tell what to write to {text!r}; expected a .gif file or a "
                         f"folder (a path ending in '/') for numbered SVG frames")
    folder = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(folder):
        raise ValueError(f"save_animation: cannot write {text!r}: the folder {folder!r} does not exist")
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"save_animation: writing a GIF needs Pillow; {PLOT_HINT} (or pip install pillow), "
                          f"or pass a folder path ending in '/' to write SVG frames instead") from None
    _require_dot(text)
    images = []
    for f in frames:
        g = f.copy()
        g.attr(dpi=str(dpi), bgcolor="white", pad="0.15")
        images.append(Image.open(io.BytesIO(pipe(g, "png"))).convert("RGB"))  # with a time limit
    width, height = max(im.width for im in images), max(im.height for im in images)
    for k, im in enumerate(images):
        if im.size != (width, height):
            canvas = Image.new("RGB", (width, height), "white")
            canvas.paste(im, (0, 0))
            images[k] = canvas
    # One palette for all frames (from the first and the last, which between them hold every colour), so
    # that colours do not flicker and Pillow stores each frame as its difference from the one before.
    sample = Image.new("RGB", (2 * width, height))
    sample.paste(images[0], (0, 0))
    sample.paste(images[-1], (width, 0))
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    padded = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    ms = int(round(seconds_per_frame * 1000))
    durations = [ms] * (len(padded) - 1) + [4 * ms]

    def write(tmp):
        padded[0].save(tmp, format="GIF", save_all=True, append_images=padded[1:], duration=durations, loop=0,
                       disposal=1, optimize=False)

    replace_atomically(text, write)
    return text


def _require_dot(path):
    if not dot_available():
        raise GraphvizNotFoundError(f"save_animation: the Graphviz 'dot' program is not installed, so {path} "
                                    f"could not be drawn. To render pictures, {INSTALL_HINT}.")


def _save_folder(frames, folder):
    if not os.path.isdir(folder):
        parent = os.path.dirname(os.path.abspath(folder.rstrip("/" + os.sep)))
        if not os.path.isdir(parent):
            raise ValueError(f"save_animation: cannot create the folder {folder!r}: {parent!r} does not exist")
    _require_dot(folder)
    os.makedirs(folder, exist_ok=True)
    written = [render(f, os.path.join(folder, _FRAME_NAME.format(k)), dot_fallback=False)
               for k, f in enumerate(frames)]
    for old in glob.glob(os.path.join(glob.escape(folder), "frame_*.svg")):
        m = _FRAME_RE.match(os.path.basename(old))
        if m and int(m.group(1)) >= len(frames):
            os.unlink(old)
    return written


__all__ = ["backward_frames", "save_animation"]
