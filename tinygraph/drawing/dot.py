"""``draw``: a tinygraph graph as a ``graphviz.Digraph`` (DOT source; no ``dot`` needed)."""
from __future__ import annotations

import math
import re
import warnings

from ..graph import Graph
from ..tensor import Tensor
from . import colors
from .compact import compact as _compact
from .escape import dot_label, escape_dot
from .folded import folded as _folded
from .labels import BORDERS, FILLS, FONT, INK, MUTED, ROOT_BORDER, SHAPES, STATE_COLOR, key_html, node_label
from .output import Drawing
from .view import BACK, BLOCK, CONST, INIT, INPUT, PARAM, PARAM_EDGE, STATE, unrolled

DEFAULT_MAX_NODES = 2000
_RANKDIRS = ("TB", "LR")
_STATE_COLOR = STATE_COLOR
PARAM_GROUP = "params"  # key of the parameters' cluster (not a template instance)


def draw(*roots, folded=False, grads=False, compact=False, max_nodes=DEFAULT_MAX_NODES,
         rankdir="TB", title=None, grad_range=None, show_dtype=True, legend=True):
    """Draw the computation graph reachable from ``roots``.

    Parameters
    ----------
    *roots : Tensor (or one ``tinygraph.Graph``, or one list of Tensors)
        Usually the loss. Roots are marked with a double red border.
    folded : bool
        Draw one copy of each template, its recurrent state edges drawn back
        into it (labelled ``t-1``); the cluster label gives how many instances
        were folded. Per-step tensors made outside templates (e.g. ``xs[t]``)
        are merged too and show ``×T``.
    grads : bool
        Colour each node by the norm of its ``.grad`` on a logarithmic scale,
        with a legend. Run ``loss.backward(retain_grads=True)`` first so that
        intermediate tensors keep their gradients.
    compact : bool
        Draw each template instance (each folded template, with ``folded``)
        as one box.
    max_nodes : int or None
        Refuse (``ValueError``) to draw more boxes than this; ``None`` draws
        any size. Rendering thousands of nodes takes Graphviz minutes and
        yields an unreadable picture, so ``compact`` or ``folded`` is better.
    rankdir : {"TB", "LR"}
        ``"TB"``: each step's computation flows top to bottom and time flows
        left to right, parameters on top. ``"LR"``: everything flows left to
        right (better for long chains without templates).
    title : str, optional
        A caption drawn below the graph.
    grad_range : (float, float), optional
        Fix the colour scale's ends (positive norms), e.g. to compare drawings;
        by default it spans the norms in the graph.
    show_dtype : bool
        Include the dtype in node labels.
    legend : bool
        Draw a key below the graph: node kinds and state edges (and, with
        ``grads``, the colour scale, which is always drawn).

    Returns
    -------
    graphviz.Digraph
        Its ``.source`` is the DOT text. In unrolled mode node ``n<k>`` is
        ``Graph(*roots).nodes[k]``; each template instance is a
        ``subgraph cluster_<template>_<index>`` labelled ``<template> t=<index>``
        (a second call of a template of that name in the graph, e.g. a siamese
        encoder's second unroll, is ``cluster_<template>_r2_<index>`` labelled
        ``<template> #2 t=<index>``; a template called inside another is a
        cluster inside the other's); parameters are drawn once each, in
        ``cluster_parameters``. Every user string (tensor, template and model
        names, the title) is escaped by ``tinygraph.drawing.escape``. Render it
        with ``tinygraph.drawing.save(digraph, "graph.svg")``; in Jupyter it
        displays itself (as DOT text if Graphviz is not installed).

    Raises
    ------
    TypeError
        If a root is not a Tensor or an option has the wrong type.
    ValueError
        If the drawing would exceed ``max_nodes``, ``grads=True`` finds no
        gradients, or an option has an unknown value.

    Examples
    --------
    >>> outputs, h = model(xs)                        # doctest: +SKIP
    >>> loss = (outputs ** 2).mean()                  # doctest: +SKIP
    >>> loss.backward(retain_grads=True)              # doctest: +SKIP
    >>> tinygraph.draw(loss, grads=True)              # doctest: +SKIP
    >>> tinygraph.draw(loss, folded=True).render...   # doctest: +SKIP
    """
    graph = _graph_of(roots)
    grad_range = _check_options(folded, grads, compact, max_nodes, rankdir, title, grad_range, show_dtype, legend)
    view = _view_of(graph, folded, compact, max_nodes)
    paint = _gradient_paint(graph, view, grad_range) if grads else None
    drawing = _emit(view, paint, title, show_dtype, legend, rankdir)
    drawing.tinygraph_source = {"graph": graph, "view": view, "title": title}  # for save(..., "x.html")
    return drawing


def _check_options(folded, grads, compact, max_nodes, rankdir, title, grad_range, show_dtype, legend):
    """Check ``draw``'s options (TypeError/ValueError); returns ``grad_range`` as a pair of floats or None."""
    for name, value in (("folded", folded), ("grads", grads), ("compact", compact), ("show_dtype", show_dtype),
                        ("legend", legend)):
        if not isinstance(value, bool):
            raise TypeError(f"draw: {name} must be True or False, got {value!r}")
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"draw: max_nodes must be a positive int or None, got {max_nodes!r}")
    if rankdir not in _RANKDIRS:
        raise ValueError(f"draw: rankdir must be one of {_RANKDIRS}, got {rankdir!r}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"draw: title must be a str or None, got {type(title).__name__}")
    return _check_grad_range(grad_range)


def _view_of(graph, folded, compact, max_nodes):
    view = _folded(graph) if folded else unrolled(graph)
    if compact:
        view = _compact(view)
    if max_nodes is not None and len(view) > max_nodes:
        raise ValueError(_too_big_message(len(graph), len(view), max_nodes, folded, compact))
    return view


def _graph_of(roots):
    if len(roots) == 1 and isinstance(roots[0], Graph):
        return roots[0]
    if len(roots) == 1 and isinstance(roots[0], (list, tuple)):
        roots = tuple(roots[0])
    if not roots:
        raise TypeError("draw: expected at least one root Tensor (e.g. draw(loss)), got none")
    for i, r in enumerate(roots):
        if not isinstance(r, Tensor):
            raise TypeError(f"draw: root {i} is a {type(r).__name__}, expected a tinygraph Tensor (or one Graph)")
    return Graph(*roots)


def _check_grad_range(grad_range):
    if grad_range is None:
        return None
    try:
        lo, hi = (float(v) for v in grad_range)
    except (TypeError, ValueError):
        raise TypeError(f"draw: grad_range must be a pair of positive numbers (lo, hi), got {grad_range!r}") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"draw: grad_range must satisfy 0 < lo < hi (finite), got {grad_range!r}")
    return lo, hi


def _too_big_message(n_graph, n_view, limit, folded, compact):
    what = f"the graph has {n_graph} nodes"
    if folded or compact:
        what += f" ({n_view} after {'folding' if folded else ''}{' and ' if folded and compact else ''}"
        what += f"{'compacting' if compact else ''})"
    hints = []
    if not compact:
        hints.append("compact=True (one box per template instance)")
    if not folded:
        hints.append("folded=True (one copy per template)")
    hints.append(f"max_nodes={n_view} or max_nodes=None to draw it anyway")
    return f"draw: {what}, more than max_nodes={limit}; use " + ", ".join(hints)


class _Paint:
    """Per-node fill from gradient norms, and the legend for them.

    The animation of the backward pass (``animate.py``) also sets ``pending``
    (ids of nodes whose gradient is not computed yet: grey, their gradient line
    kept but its value invisible, so every frame has the same label sizes),
    ``texts`` (the gradient text of each node, the same in every frame),
    ``current`` (the node being processed: a thick outline), ``active_edges``
    (the edges its gradient flows back along), ``step`` (a caption line) and
    ``extra_legend`` (HTML-like cells for the legend).
    """

    def __init__(self, norms, scale, any_missing, any_nonfinite, pending=None, texts=None, current=None,
                 active_edges=(), step=None, extra_legend=None):
        self.norms, self.scale = norms, scale
        self.any_missing, self.any_nonfinite = any_missing, any_nonfinite
        self.pending, self.texts, self.current = pending or set(), texts or {}, current
        self.active_edges, self.step, self.extra_legend = set(active_edges), step, extra_legend


PENDING_FILL = "#dcdcdc"  # animation: gradient not computed yet
PENDING_BORDER = "#9a9a9a"
HIGHLIGHT = "#ff4f00"  # animation: the node being processed, and the edges its gradient flows back along


def _gradient_paint(graph, view, grad_range):
    if not any(t.grad is not None for t in graph.nodes):
        raise ValueError(
            "draw: grads=True but no tensor in the graph has a gradient; call "
            "loss.backward(retain_grads=True) before drawing"
        )
    if not any(t.grad is not None for t in graph.nodes if t.op is not None):
        warnings.warn(
            "draw(grads=True): only leaves have gradients, so the flow through the graph is not shown; "
            "call loss.backward(retain_grads=True) to keep intermediate gradients",
            stacklevel=3,
        )
    norms = {nid: colors.grad_norm(node.tensors) for nid, node in view.nodes.items() if node.kind != CONST}
    values = list(norms.values())
    scale = colors.LogScale.fit(values, grad_range)
    return _Paint(norms, scale, any(v is None for v in values),
                  any(v is not None and not math.isfinite(v) for v in values))


def _cluster_names(groups):
    """A DOT cluster id for every group: ``cluster_<name>_<index>`` (``cluster_<name>`` when folded,
    ``cluster_<name>_r<k>_<index>`` for the k-th call of a name), the name reduced to
    ``[A-Za-z0-9_]``. Names that reduce to the same id (``enc-1`` and ``enc_1``) get a
    suffix ``__2``, ``__3``, ...: two groups never share a cluster."""
    names, used = {}, set()
    for key, group in groups.items():
        safe = re.sub(r"[^A-Za-z0-9_]", "_", str(group.name if group.name is not None else key))
        base = f"cluster_{safe}"
        if group.run is not None and group.run > 1:
            base += f"_r{group.run}"
        if group.index is not None:
            base += f"_{group.index}"
        name, k = base, 1
        while name in used or name == "cluster_parameters":
            k += 1
            name = f"{base}__{k}"
        used.add(name)
        names[key] = name
    return names


def _emit(view, paint, title, show_dtype, legend, rankdir):
    g = Drawing(name="tinygraph", node_attr={"fontname": FONT, "fontsize": "10", "margin": "0.06,0.03",
                                             "height": "0.3"},
                edge_attr={"fontname": FONT, "fontsize": "8", "arrowsize": "0.6", "color": "#555555"})
    g.attr(rankdir=rankdir, fontname=FONT, nodesep="0.2", ranksep="0.3")
    grouped = {}
    for node in view.nodes.values():
        grouped.setdefault(PARAM_GROUP if node.kind == PARAM else node.group, []).append(node)

    params = grouped.pop(PARAM_GROUP, None)
    loose = grouped.pop(None, [])
    if params:
        with g.subgraph(name="cluster_parameters") as sub:
            sub.attr(label="parameters (shared)", style="rounded,dashed", color="#c77c2a",
                     fontcolor="#c77c2a", fontsize="11", labeljust="l")
            for node in params:
                _emit_node(sub, node, paint, show_dtype)
    _emit_groups(g, view, grouped, paint, show_dtype)
    for node in loose:
        _emit_node(g, node, paint, show_dtype)
    for edge in view.edges:
        _emit_edge(g, edge, view, paint is not None and (edge.src, edge.dst) in paint.active_edges)
    key = None
    if legend and paint is None:
        key = key_html({n.kind for n in view.nodes.values()},
                       any(e.kind in (STATE, BACK) for e in view.edges), view.mode.startswith("folded"),
                       any(e.kind == INIT for e in view.edges))
    caption = _caption(title, paint, key)
    if caption:
        g.attr(label=caption, labelloc="b", labeljust="l", fontsize="11")
    return g


def _emit_groups(g, view, grouped, paint, show_dtype):
    """One cluster per group with members, nested as the template calls were (a template called
    inside another is a cluster inside the other's). Recursion follows the nesting of template
    calls in the user's code, which is shallow, not the size of the graph."""
    names = _cluster_names(view.groups)
    children = {}
    for key, group in view.groups.items():
        parent = group.parent if group.parent in view.groups else None
        children.setdefault(parent, []).append(key)
    visible = {}

    def has_nodes(key):
        if key not in visible:
            visible[key] = bool(grouped.get(key)) or any([has_nodes(c) for c in children.get(key, ())])
        return visible[key]

    def emit(parent_graph, key):
        group = view.groups[key]
        with parent_graph.subgraph(name=names[key]) as sub:
            sub.attr(label=dot_label(group.label), style="rounded,filled", fillcolor="#f3f5f8",
                     color="#8a96a3", fontsize="12", labeljust="l", fontcolor=INK)
            for node in grouped.get(key, ()):
                _emit_node(sub, node, paint, show_dtype)
            for child in children.get(key, ()):
                if has_nodes(child):
                    emit(sub, child)

    for key in children.get(None, ()):
        if has_nodes(key):
            emit(g, key)


_escape = escape_dot  # (the name the animation module imports)


def _emit_node(g, node, paint, show_dtype):
    kind = node.kind
    attrs = {"shape": SHAPES[kind], "color": BORDERS[kind], "fillcolor": FILLS[kind], "style": "filled"}
    if kind in (PARAM, INPUT, BLOCK):
        attrs["style"] = "filled,rounded"
    if kind == PARAM:
        attrs["penwidth"] = "1.4"
    ink, muted, grad_text, grad_value = INK, MUTED, None, None
    if paint is not None and kind != CONST:
        norm = paint.norms.get(node.id)
        pending = node.id in paint.pending
        fill = PENDING_FILL if pending else paint.scale.fill(norm)
        attrs["fillcolor"] = fill
        ink = colors.text_color(fill)
        muted = "#e8e8e8" if ink == "#ffffff" else "#2a2a2a"  # grey on mid colours is unreadable
        prefix = "‖∂L/∂out‖ " if kind == BLOCK else "‖g‖ "
        if pending:
            attrs["color"] = PENDING_BORDER
            grad_text, grad_value = prefix, (paint.texts[node.id], fill)  # the value drawn in the fill colour
        elif norm is None:
            attrs["style"] += ",dashed"
            attrs["color"] = "#aaaaaa"
        elif node.id in paint.texts:
            grad_text, grad_value = prefix, (paint.texts[node.id], muted)
        else:
            grad_text = prefix + colors.format_norm(norm)
    attrs["fontcolor"] = ink
    if node.is_root:
        attrs.update(peripheries="2", color=ROOT_BORDER, penwidth="1.6")
    if paint is not None and paint.current == node.id:
        attrs.update(color=HIGHLIGHT, penwidth="4")
    if kind == CONST:
        attrs.pop("style")
        attrs.pop("fillcolor")
    g.node(node.id, node_label(node, grad_text, ink, muted, show_dtype, grad_value), **attrs)


def _emit_edge(g, edge, view, active=False):
    attrs = {}
    if edge.kind == PARAM_EDGE:
        attrs.update(color="#d9a66b", arrowsize="0.45", penwidth="0.7")
    elif edge.kind == STATE:
        # State edges keep their layout constraint: it is what places step t after
        # step t-1 (below with rankdir TB, to the right with LR). Without it dot
        # orders the steps to reduce crossings and t=2 may come before t=1.
        attrs.update(color=_STATE_COLOR, penwidth="1.8")
    elif edge.kind == BACK:
        attrs.update(color=_STATE_COLOR, penwidth="1.8", style="bold", constraint="false",
                     fontcolor=_STATE_COLOR)
    elif edge.kind == INIT:
        attrs.update(color=_STATE_COLOR, penwidth="1.2", style="dashed", fontcolor=_STATE_COLOR)
    if edge.kind == STATE and not edge.label:
        name = view.nodes[edge.src].tensor.name
        if name:
            attrs["label"] = name
    if edge.label:
        attrs["label"] = edge.label
    if edge.kind in (STATE, BACK) and view.nodes[edge.dst].kind == BLOCK and edge.count > 1 and "label" not in attrs:
        attrs["label"] = f"×{edge.count}"
    if "label" in attrs:
        attrs["label"] = dot_label(attrs["label"])  # tensor names are user strings
        attrs.setdefault("fontcolor", _STATE_COLOR if edge.kind in (STATE, BACK, INIT) else MUTED)
    if active:  # penwidth and colour only: the layout does not change
        attrs.update(color=HIGHLIGHT, penwidth="2.6")
    g.edge(edge.src, edge.dst, **attrs)


def _caption(title, paint, key):
    parts = []
    if title:
        parts.append(f'<tr><td align="left"><b>{escape_dot(title)}</b></td></tr>')
    if paint is not None and paint.step is not None:
        parts.append(f'<tr><td align="left">{paint.step}</td></tr>')
    if key:
        parts.append(f'<tr><td align="left">{key}</td></tr>')
    if paint is not None:
        legend = colors.legend_html(paint.scale, paint.any_missing, paint.any_nonfinite)
        if paint.extra_legend:
            legend = ('<table border="0" cellborder="0" cellspacing="0"><tr><td valign="top">' + legend
                      + f'</td><td valign="bottom">{paint.extra_legend}</td></tr></table>')
        parts.append(f'<tr><td align="left">{legend}</td></tr>')
    if not parts:
        return None
    return '<<table border="0" cellborder="0" cellspacing="4">' + "".join(parts) + "</table>>"

