"""The interactive graph page: one self-contained HTML file (inline SVG, inline script and style).

``save(drawing, "graph.html")`` (``write_page``) lays the drawing out with
Graphviz ``dot``, inlines the SVG and adds, with no network access and no
external script, style or font:

* a tooltip on hover (and an info panel on click) for every node: its name,
  op, shape, dtype, time step, a value summary (min / mean / max, or the values
  when there are few) and, when gradients exist, the gradient norm;
* for an unrolled graph, a time-step slider that highlights one step's
  cluster (and fades the nodes of the other steps); the nodes on the state
  path (the tensors passed from one step to the next) are marked;
* the backward pass, stepped through node by node (next / previous, or the
  arrow keys) in the order the engine's ``backward`` walks the graph, each
  step outlining the node being processed and the edges its gradient flows
  back along.

The page reads its state from the URL fragment too, e.g.
``graph.html#step=2&walk=5&node=n12`` (slider position, backward step, node
shown in the panel), so a link can point at one moment of the walk.
"""
from __future__ import annotations

import json
import math
import re

import numpy as np

from ..autograd import topological_order
from . import colors
from .dot import _cluster_names
from .escape import escape_html
from .labels import folded_op_text, op_text, shape_text
from .output import INSTALL_HINT, GraphvizNotFoundError, _check_digraph, dot_available, replace_atomically
from .view import BLOCK, CONST, INPUT, PARAM, STATE, instance_label

SMALL = 8  # tensors with at most this many elements show their values


def escape(text):
    """Text for HTML (element content and attribute values): the project's one escaping
    function for user strings (``tinygraph.drawing.escape``), shared with every DOT view."""
    return escape_html(text)


def _json_for_script(data):
    # inside <script> only "</" (and, to be safe, any < > &) could end it early
    return (json.dumps(data, ensure_ascii=False, allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _number(x):
    return f"{x:.4g}"


def value_summary(tensors):
    """``values [..]`` for a few elements, else ``min / mean / max`` over all of ``tensors``' data."""
    arrays = [np.asarray(t.data) for t in tensors]
    if len(arrays) == 1 and arrays[0].size <= SMALL:
        flat = arrays[0].astype(np.float64, copy=False).ravel()
        return "values [" + ", ".join(_number(v) for v in flat) + "]"
    flat = np.concatenate([a.astype(np.float64, copy=False).ravel() for a in arrays])
    if flat.size == 0:
        return "empty"
    finite = flat[np.isfinite(flat)]
    text = ("min " + _number(finite.min()) + " · mean " + _number(finite.mean()) + " · max " + _number(finite.max())
            if finite.size else "no finite value")
    if finite.size < flat.size:
        text += f" · {flat.size - finite.size} inf/nan"
    return text


def _node_info(node):
    t = node.tensor
    info = {"kind": node.kind}
    if node.kind == BLOCK:
        info.update(title=node.title, op="template instance", detail=node.detail)
    else:
        if t.op is None:
            op = "parameter" if node.kind == PARAM else ("constant" if node.kind == CONST else "leaf (input)")
        else:
            op = folded_op_text(node.tensors) if len(node.tensors) > 1 else op_text(t)
        info.update(title=t.name or (op if t.op is not None else ("input" if node.kind == INPUT else op)),
                    name=t.name or "", op=op, shape=shape_text(t.shape), dtype=str(t.dtype))
    info["where"] = (instance_label(node.group) if node.group is not None and node.group[1] is not None
                     else (f"{node.group[0]} (folded, ×{node.count})" if node.group is not None
                           else ("parameters (shared by every step)" if node.kind == PARAM else "outside the steps")))
    if len(node.tensors) > 1:
        info["copies"] = len(node.tensors)
    info["values"] = value_summary(node.tensors)
    norm = colors.grad_norm(node.tensors)
    if norm is not None:
        info["grad"] = colors.format_norm(norm) if not math.isfinite(norm) else f"{norm:.4g}"
    return info


def _walk(graph, view):
    """The engine's backward walk as view node ids (consecutive repeats merged), with captions."""
    roots = list(graph.roots)
    order = list(reversed(topological_order(roots, only_requires_grad=True)))
    if any(t.grad is not None for t in order):
        order = [t for t in order if t.grad is not None]
    where = {}
    for nid, node in view.nodes.items():
        for t in node.tensors:
            where.setdefault(id(t), nid)
    blocks = {}
    for nid, node in view.nodes.items():
        if node.kind == BLOCK:
            for t in node.tensors:
                if t.instance is not None:
                    blocks.setdefault(t.instance, nid)
    steps = []
    for t in order:
        nid = where.get(id(t)) or blocks.get(t.instance)
        if nid is None:
            continue
        text = t.name or (op_text(t) if t.op is not None else "input")
        if t.instance is not None:
            text += ", " + instance_label(t.instance)
        if steps and steps[-1][0] == nid:
            steps[-1][1] = f"through {view.nodes[nid].title or text}"
            continue
        steps.append([nid, f"∂L/∂({text})" + (" — a leaf: its gradient stays in .grad" if t.op is None else "")])
    return steps


def _page_data(drawing):
    source = getattr(drawing, "tinygraph_source", None)
    if source is None:
        return {"nodes": {}, "clusters": {}, "steps": [], "state": [], "walk": [], "grads": False}
    graph, view = source["graph"], source["view"]
    nodes = {nid: _node_info(node) for nid, node in view.nodes.items()}
    # the cluster ids the DOT source uses, and each group's time step (None when folded)
    ids = _cluster_names(view.groups)
    clusters = {ids[key]: group.index for key, group in view.groups.items() if group.index is not None}
    for nid, node in view.nodes.items():
        if node.group is not None and view.groups[node.group].index is not None:
            nodes[nid]["step"] = view.groups[node.group].index
        elif node.kind == BLOCK and node.tensor.instance is not None:  # compact: one box per step
            nodes[nid]["step"] = node.tensor.instance[1]
    indices = sorted({info["step"] for info in nodes.values() if "step" in info})
    state = set()
    names = set()
    for e in view.edges:
        if e.kind == STATE:
            state.add(e.src)
            names.add((view.nodes[e.src].group[0] if view.nodes[e.src].group else None,
                       view.nodes[e.src].tensor.name))
    for nid, node in view.nodes.items():  # the last step's state (h_T, c_T) has no outgoing state edge
        if node.group is not None and node.tensor.name and (node.group[0], node.tensor.name) in names:
            state.add(nid)
    return {"nodes": nodes, "clusters": clusters, "steps": indices, "state": sorted(state),
            "walk": _walk(graph, view), "grads": any(t.grad is not None for t in graph.nodes)}


def _svg_of(drawing):
    if not dot_available():
        raise GraphvizNotFoundError(f"save: the interactive page needs the Graphviz 'dot' program for the layout, "
                                    f"which is not installed. To render pictures, {INSTALL_HINT}.")
    svg = drawing.pipe(format="svg").decode("utf-8")
    start = svg.find("<svg")
    svg = svg[start:]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)  # graphviz's comments repeat the titles; keep it small
    return svg


def page_html(drawing, title=None):
    """The interactive page of ``drawing`` (what ``tinygraph.draw`` returned), as an HTML string.

    Parameters
    ----------
    drawing : graphviz.Digraph
        Tooltips, the time-step slider and the backward walk need the graph
        that ``tinygraph.draw`` keeps on its result; any other Digraph gives a
        page with the picture only.
    title : str, optional
        The page's heading (default: the drawing's title, or "tinygraph graph").

    Raises
    ------
    GraphvizNotFoundError
        The Graphviz ``dot`` program (which lays the graph out) is missing.
    """
    _check_digraph(drawing, "save")
    data = _page_data(drawing)
    if title is None:
        title = (getattr(drawing, "tinygraph_source", None) or {}).get("title") or "tinygraph graph"
    svg = _svg_of(drawing)
    return _TEMPLATE.format(title=escape(title), svg=svg, data=_json_for_script(data), style=_STYLE,
                            script=_SCRIPT)


def write_page(drawing, path, title=None):
    """Write ``page_html(drawing)`` to ``path`` atomically; returns the path."""
    text = page_html(drawing, title=title).encode("utf-8")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(text)

    replace_atomically(path, write)
    return str(path)


_STYLE = """
:root { --hl: #ff4f00; --state: #1f5fa8; --ink: #222; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); }
header { position: sticky; top: 0; z-index: 2; background: #fafbfc; border-bottom: 1px solid #dde1e6;
         padding: 8px 14px; display: flex; flex-wrap: wrap; gap: 10px 24px; align-items: center; }
header h1 { font-size: 15px; margin: 0; font-weight: 600; }
.control { display: flex; gap: 8px; align-items: center; }
.control button { font: inherit; padding: 2px 10px; border: 1px solid #9aa4ae; border-radius: 4px; background: #fff;
                  cursor: pointer; }
.control button:disabled { opacity: .4; cursor: default; }
#walk-caption { min-width: 22em; color: #444; }
main { display: flex; align-items: flex-start; }
#canvas { flex: 1; overflow: auto; padding: 10px; }
#canvas svg { max-width: 100%; height: auto; }
#panel { width: 300px; flex: none; position: sticky; top: 56px; margin: 10px; padding: 10px 12px;
         border: 1px solid #dde1e6; border-radius: 6px; background: #fff; font-size: 13px; }
#panel h2 { font-size: 14px; margin: 0 0 6px; }
#panel .hint { color: #777; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 0; }
dt { color: #666; } dd { margin: 0; overflow-wrap: anywhere; }
#tooltip { position: fixed; z-index: 5; pointer-events: none; display: none; max-width: 340px; padding: 6px 9px;
           background: #1e2329; color: #f4f6f8; border-radius: 5px; font-size: 12.5px; box-shadow: 0 2px 8px #0004; }
#tooltip dt { color: #aab3bd; }
#tooltip b { font-size: 13px; }
.node { cursor: pointer; }
.node.state > ellipse, .node.state > polygon, .node.state > path { stroke: var(--state); stroke-width: 3px; }
.node.dim, .edge.dim { opacity: .22; }
.cluster.hl > path, .cluster.hl > polygon { stroke: var(--hl); stroke-width: 3.5px; }
.node.hl > polygon, .node.hl > path { stroke: var(--hl); stroke-width: 3.5px; }
.node.visited > ellipse, .node.visited > polygon, .node.visited > path { stroke: #8a5a00; stroke-width: 2px; }
.node.current > ellipse, .node.current > polygon, .node.current > path { stroke: var(--hl); stroke-width: 5px; }
.node.current, .edge.flow { opacity: 1; }  /* the walk stays visible whatever step the slider shows */
.edge.flow > path { stroke: var(--hl); stroke-width: 3px; }
.edge.flow > polygon { stroke: var(--hl); fill: var(--hl); }
.node.selected > ellipse, .node.selected > polygon, .node.selected > path { stroke-dasharray: 4 2; }
.key { display: inline-block; width: 14px; height: 10px; border: 3px solid var(--state); vertical-align: middle; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tinygraph-data").textContent);
  var svg = document.querySelector("#canvas svg");
  var tip = document.getElementById("tooltip");
  var panel = document.getElementById("info");
  var nodes = {}, edgesInto = {}, clusters = [];
  function text(el) { var t = el.querySelector("title"); return t ? t.textContent : ""; }
  svg.querySelectorAll("g.node").forEach(function (g) { g.dataset.id = text(g); nodes[g.dataset.id] = g; });
  svg.querySelectorAll("g.edge").forEach(function (g) {
    var ends = text(g).split("->"); g.dataset.src = ends[0]; g.dataset.dst = ends[1];
    (edgesInto[ends[1]] = edgesInto[ends[1]] || []).push(g);
  });
  svg.querySelectorAll("g.cluster").forEach(function (g) {
    var name = text(g);
    if (Object.prototype.hasOwnProperty.call(data.clusters, name)) { g.dataset.step = data.clusters[name]; clusters.push(g); }
  });
  data.state.forEach(function (id) { if (nodes[id]) nodes[id].classList.add("state"); });

  function info(id) {
    var d = data.nodes[id], rows = [];
    if (!d) { return { title: id, rows: [] }; }
    if (d.name && d.name !== d.title) rows.push(["name", d.name]);
    rows.push(["op", d.op]);
    if (d.shape) rows.push(["shape", d.shape]);
    if (d.dtype) rows.push(["dtype", d.dtype]);
    if (d.detail) rows.push(["detail", d.detail]);
    rows.push(["where", d.where]);
    if (d.copies) rows.push(["copies", String(d.copies)]);
    rows.push(["value", d.values]);
    rows.push(["‖grad‖", d.grad !== undefined ? d.grad : (data.grads ? "none (no gradient reached it)" : "backward has not run")]);
    return { title: d.title, rows: rows };
  }
  function fill(el, id) {
    var i = info(id);
    el.textContent = "";
    var head = document.createElement(el === tip ? "b" : "h2"); head.textContent = i.title; el.appendChild(head);
    var dl = document.createElement("dl");
    i.rows.forEach(function (r) {
      var dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = r[0]; dd.textContent = r[1]; dl.appendChild(dt); dl.appendChild(dd);
    });
    el.appendChild(dl);
  }
  var selected = null;
  function select(id) {
    if (selected && nodes[selected]) nodes[selected].classList.remove("selected");
    selected = id;
    if (id && nodes[id]) { nodes[id].classList.add("selected"); fill(panel, id); }
    writeHash();
  }
  Object.keys(nodes).forEach(function (id) {
    var g = nodes[id];
    g.addEventListener("mouseenter", function () { fill(tip, id); tip.style.display = "block"; });
    g.addEventListener("mousemove", function (ev) {
      var x = ev.clientX + 14, y = ev.clientY + 14, w = tip.offsetWidth, h = tip.offsetHeight;
      if (x + w > window.innerWidth - 4) x = ev.clientX - w - 10;
      if (y + h > window.innerHeight - 4) y = ev.clientY - h - 10;
      tip.style.left = x + "px"; tip.style.top = y + "px";
    });
    g.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    g.addEventListener("click", function () { select(id); });
  });

  // time-step slider: -1 shows every step; k highlights data.steps[k]
  var slider = document.getElementById("step"), stepLabel = document.getElementById("step-label");
  function showStep(k) {
    var step = k < 0 ? null : data.steps[k];
    clusters.forEach(function (g) { g.classList.toggle("hl", step !== null && Number(g.dataset.step) === step); });
    Object.keys(nodes).forEach(function (id) {
      var d = data.nodes[id];
      nodes[id].classList.toggle("dim", step !== null && d !== undefined && d.step !== undefined && d.step !== step);
      nodes[id].classList.toggle("hl", step !== null && d !== undefined && d.kind === "block" && d.step === step);
    });
    stepLabel.textContent = step === null ? "all steps" : "t = " + step;
  }
  if (data.steps.length) {
    slider.max = String(data.steps.length - 1);
    slider.addEventListener("input", function () { showStep(Number(slider.value)); writeHash(); });
  } else {
    document.getElementById("step-control").style.display = "none";
  }

  // the backward walk, in the engine's order
  var walk = data.walk, at = -1;
  var prev = document.getElementById("prev"), next = document.getElementById("next");
  var caption = document.getElementById("walk-caption");
  function showWalk(k) {
    at = Math.max(-1, Math.min(k, walk.length - 1));
    svg.querySelectorAll(".current, .visited, .flow").forEach(function (el) {
      el.classList.remove("current", "visited", "flow");
    });
    for (var j = 0; j <= at; j++) { var g = nodes[walk[j][0]]; if (g) g.classList.add(j === at ? "current" : "visited"); }
    if (at >= 0) {
      var id = walk[at][0];
      (edgesInto[id] || []).forEach(function (e) { e.classList.add("flow"); });
      caption.textContent = "backward step " + (at + 1) + "/" + walk.length + ": " + walk[at][1];
    } else {
      caption.textContent = walk.length ? "backward pass: " + walk.length + " steps (press next, or →)" : "no backward walk";
    }
    prev.disabled = at < 0; next.disabled = at >= walk.length - 1;
  }
  prev.addEventListener("click", function () { showWalk(at - 1); writeHash(); });
  next.addEventListener("click", function () { showWalk(at + 1); writeHash(); });
  document.addEventListener("keydown", function (ev) {
    if (ev.target === slider) return;
    if (ev.key === "ArrowRight") { showWalk(at + 1); writeHash(); }
    if (ev.key === "ArrowLeft") { showWalk(at - 1); writeHash(); }
  });

  // state in the URL fragment: #step=2&walk=5&node=n12
  var reading = false;
  function writeHash() {
    if (reading) return;
    var parts = [];
    if (Number(slider.value) >= 0 && data.steps.length) parts.push("step=" + data.steps[Number(slider.value)]);
    if (at >= 0) parts.push("walk=" + (at + 1));
    if (selected) parts.push("node=" + encodeURIComponent(selected));
    history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname + location.search);
  }
  function readHash() {
    reading = true;
    var q = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var p = kv.split("="); if (p[0]) q[p[0]] = decodeURIComponent(p[1] || "");
    });
    if (q.step !== undefined && data.steps.indexOf(Number(q.step)) >= 0) slider.value = String(data.steps.indexOf(Number(q.step)));
    showStep(Number(slider.value));
    showWalk(q.walk !== undefined ? Number(q.walk) - 1 : -1);
    if (q.node && nodes[q.node]) select(q.node);
    reading = false;
  }
  window.addEventListener("hashchange", readHash);
  readHash();
  document.body.dataset.ready = "1";
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<header>
  <h1>{title}</h1>
  <div class="control" id="step-control">
    <label for="step">time step</label>
    <input type="range" id="step" min="-1" max="0" value="-1" step="1">
    <span id="step-label">all steps</span>
  </div>
  <div class="control">
    <button id="prev" type="button" title="previous node of the backward walk (←)">◀ previous</button>
    <button id="next" type="button" title="next node of the backward walk (→)">next ▶</button>
    <span id="walk-caption"></span>
  </div>
</header>
<main>
  <div id="canvas">
{svg}
  </div>
  <aside id="panel">
    <div id="info"><h2>Node details</h2><p class="hint">Hover a node for its details; click it to keep
    them here. <span class="key"></span> marks the state passed from one step to the next.</p></div>
  </aside>
</main>
<div id="tooltip" role="tooltip"></div>
<script type="application/json" id="tinygraph-data">{data}</script>
<script>{script}</script>
</body>
</html>
"""
