"""The graphs ``tinygraph draw --model rnn|lstm|gru`` draws.

``tinygraph`` never imports ``models``; the command finds this builder through
the ``tinygraph.draw_models`` entry point that ``setup.cfg`` declares.
"""
from __future__ import annotations

import re

import numpy as np

import tinygraph as tg
from tinygraph.drawing.escape import escape_html

from .recurrent import GRU, LSTM, RNN

MODELS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def build_model_graph(model, steps, input_size=2, hidden_size=3, batch=1, seed=0, grads=False, fused=False):
    """Build ``models.<RNN|LSTM|GRU>`` and its loss over ``steps`` random steps; returns the loss.

    The loss is the mean of the outputs squared. The model is the textbook
    build (``fused=False``: the seed's equations inside each step, every gate
    its own node) unless ``fused``, which gives the fast build that training
    runs (the inputs of all steps projected before the loop; for the LSTM and
    GRU one fused op per step), with the same values. With ``grads``, backward
    has run with every intermediate gradient kept, for a gradient-coloured drawing.
    """
    if model not in MODELS:
        raise ValueError(f"build_model_graph: model must be one of {sorted(MODELS)}, got {model!r}")
    net = MODELS[model](input_size, hidden_size, rng=seed, fused=bool(fused))
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.normal(size=(steps, batch, input_size)).astype(tg.get_default_dtype()), name="x")
    outputs, _ = net(x)
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    if grads:
        loss.backward(retain_grads=True)
    return loss


# ---------------------------------------------------------------------------
# The seed's BPTT sum on the real graph, and truncated BPTT with its cut
# ---------------------------------------------------------------------------
TERM_COLOR = "#c77c2a"  # the parameters' colour: a term is a share of a parameter's gradient
PATH_COLOR = "#ff4f00"
CUT_COLOR = "#b2182b"


def _ids(graph):
    return {id(t): f"n{k}" for k, t in enumerate(graph.nodes)}


def _descendants(graph, start):
    """``start`` and every node of ``graph`` computed from it."""
    seen = {id(start)}
    for t in graph.nodes:
        if any(id(p) in seen for p in t.parents):
            seen.add(id(t))
    return seen


def path_between(graph, source, use):
    """The nodes on the paths from ``use`` forward to ``source`` (both included): the way the
    gradient of ``source`` travels back to ``use``. Empty if ``source`` does not depend on ``use``."""
    ancestors = {id(t) for t in tg.Graph(source).nodes}
    return [t for t in graph.nodes if id(t) in ancestors and id(t) in _descendants(graph, use)]


def _bar(norm, biggest, width=110):
    filled = max(1, int(round(width * (norm / biggest)))) if biggest > 0 and norm > 0 else 1
    return (f'<table border="0" cellborder="0" cellspacing="0" cellpadding="0"><tr>'
            f'<td bgcolor="{TERM_COLOR}" width="{filled}" height="9" fixedsize="true"></td>'
            + (f'<td width="{width - filled}" height="9" fixedsize="true"></td>' if width > filled else "")
            + "</tr></table>")


def draw_bptt_sum(loss, weight, path=None, title=None, max_nodes=None):
    """The seed's BPTT sum drawn on the real graph: ``dL/dW`` split into one term per step.

    ``models.grad_contributions(loss, weight)`` reads the terms from the graph;
    each term is drawn as a bar (its norm, to scale with the largest) inside
    the step whose node uses ``weight``, with a dashed edge from that node, and
    every term flows into one node for their sum, the gradient that ``backward``
    leaves in ``weight.grad``.

    Parameters
    ----------
    loss : Tensor, one element
    weight : Tensor
        A shared parameter, e.g. ``rnn.cell.W_hh`` (build the model with
        ``fused=False`` so that each step uses it directly).
    path : (Tensor, int), optional
        ``(source, k)``: highlight how the gradient of ``source`` (e.g. the loss
        of step t) travels back to the use of ``weight`` at step ``k``, the
        seed's product of Jacobians from ``h_t`` back to ``h_k``.
    title : str, optional
    max_nodes : int, optional
        As in ``tinygraph.draw`` (default: no limit).

    Returns
    -------
    tinygraph.drawing.Drawing

    Raises
    ------
    ValueError
        If ``path``'s step has no use of ``weight``, or ``source`` does not depend on it.

    Notes
    -----
    ``grad_contributions`` runs ``loss.backward()``: ``weight.grad`` (and the
    other leaves' gradients) accumulate as usual.
    """
    from .bptt import _use_paths, grad_contributions

    graph = tg.Graph(loss)
    symbol = escape_html(weight.name or "W")
    if path is not None:
        # checked before the backward pass, which runs once per graph
        source, step = path
        uses = [p[-1] for p in _use_paths(loss, weight, "draw_bptt_sum")
                if p[-1].instance is not None and p[-1].instance[1] == step]
        if not uses:
            steps = [p[-1].instance[1] for p in _use_paths(loss, weight, "draw_bptt_sum")
                     if p[-1].instance is not None]
            raise ValueError(f"draw_bptt_sum: no use of {weight.name or 'W'} at step {step}; "
                             f"its uses are at steps {steps}")
        on_path = {id(t) for use in uses for t in path_between(graph, source, use)}
        if not on_path:
            raise ValueError(f"draw_bptt_sum: {source.name or 'the source'} does not depend on "
                             f"{weight.name or 'W'} at step {step}")
    terms = grad_contributions(loss, weight)
    ids = _ids(graph)
    g = tg.draw(loss, title=title, max_nodes=max_nodes)
    norms = [float(np.linalg.norm(np.asarray(c.grad, np.float64))) for c in terms]
    biggest = max(norms) if norms else 0.0
    for k, (term, norm) in enumerate(zip(terms, norms)):
        where = "" if term.instance is None else f"t={term.instance[1]}"
        label = (f'<<table border="0" cellborder="0" cellspacing="1"><tr><td align="left">'
                 f'<font point-size="9">term {where}: ‖∂L/∂{symbol}‖ = {norm:.2e}</font></td></tr>'
                 f'<tr><td align="left">{_bar(norm, biggest)}</td></tr></table>>')
        node = f"term{k}"
        if term.instance is not None:
            with g.subgraph(name=_cluster(term.instance)) as sub:  # the same cluster: DOT re-opens it
                sub.node(node, label, shape="box", style="rounded", color=TERM_COLOR, margin="0.04,0.02")
        else:
            g.node(node, label, shape="box", style="rounded", color=TERM_COLOR, margin="0.04,0.02")
        g.edge(ids[id(term.node)], node, style="dashed", color=TERM_COLOR, arrowsize="0.5")
        g.edge(node, "bptt_sum", color=TERM_COLOR, style="dashed", arrowsize="0.5")
    total = float(np.linalg.norm(np.asarray(weight.grad, np.float64))) if weight.grad is not None else 0.0
    g.node("bptt_sum", f'<<b>∂L/∂{symbol} = Σ<sub>t</sub> term<sub>t</sub></b><br/>'
                       f'<font point-size="8">{len(terms)} terms · ‖sum‖ = {total:.2e} (= ‖{symbol}.grad‖)</font>>',
           shape="box", style="rounded,filled,bold", fillcolor="#fde3c4", color=TERM_COLOR)
    if path is not None:
        for t in graph.nodes:
            if id(t) in on_path:
                g.node(ids[id(t)], color=PATH_COLOR, penwidth="3")  # a later statement updates the node
        pairs = {(ids[id(p)], ids[id(t)]) for t in graph.nodes if id(t) in on_path
                 for p in t.parents if id(p) in on_path}
        pairs |= {(ids[id(weight)], ids[id(use)]) for use in uses}  # ... and finally to W as used at step k
        _recolour_edges(g, pairs)
    return g


def _cluster(instance):
    name, index = instance
    return "cluster_" + re.sub(r"\W", "_", str(name)) + ("" if index is None else f"_{index}")


def _recolour_edges(g, pairs, color=PATH_COLOR):
    """Draw the edges ``(src, dst)`` of ``g`` in ``color`` (a second attribute list overrides the first)."""
    pattern = re.compile(r"^\s*(\w+) -> (\w+)\b")
    for k, line in enumerate(g.body):
        m = pattern.match(line)
        if m and (m.group(1), m.group(2)) in pairs:
            g.body[k] = line.rstrip("\n") + f' [color="{color}" penwidth=3]\n'


def draw_truncated_bptt(model, xs, k, loss_fn=None, title=None, grads=True, max_nodes=None):
    """Truncated BPTT drawn: the chunks of ``k`` steps and the cut between them.

    Runs ``model`` over ``xs`` in chunks of ``k`` steps as ``models.truncated_bptt``
    does: each chunk starts from the previous chunk's final state *detached*
    (``models.detach_state``), so its value carries over but no gradient flows
    back across the boundary. The steps keep counting across chunks
    (``t = 0 .. T-1``). Each detached state is drawn as the input it is, with a
    red dashed edge ``✂ detach`` from the state it copies: no gradient flows
    along it.

    Parameters
    ----------
    model : models.RNN / LSTM / GRU (one layer; ``fused=False`` for the textbook picture)
    xs : array or Tensor (T, B, D)
    k : int
        Steps per chunk.
    loss_fn : callable, optional
        ``loss_fn(outputs) -> scalar Tensor`` per chunk; default ``(outputs ** 2).mean()``.
    grads : bool
        Run each chunk's backward (retaining gradients) and colour the nodes
        by gradient norm: chunk boundaries show as the place where the
        gradient stops.

    Returns
    -------
    tinygraph.drawing.Drawing
    """
    from .bptt import detach_state
    from ._cell import _SameInstance

    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"draw_truncated_bptt: k (steps per chunk) must be a positive int, got {k!r}")
    if getattr(model, "num_layers", 1) != 1:
        raise ValueError("draw_truncated_bptt: draws one-layer models; got num_layers="
                         f"{model.num_layers}")
    xs = np.asarray(xs.data if isinstance(xs, tg.Tensor) else xs)
    loss_fn = loss_fn or (lambda out: (out ** 2).mean())
    state, losses, cuts = None, [], []
    for c, start in enumerate(range(0, xs.shape[0], k)):
        chunk = tg.tensor(xs[start:start + k], dtype=model.cells[0].parameters()[0].dtype, name=f"x[{start}:{start + k}]")
        outputs, final = model(chunk, state)
        loss = loss_fn(outputs)
        loss.name = f"loss (chunk {c + 1})"
        losses.append(loss)
        if grads:
            loss.backward(retain_grads=True)
        parts = final if isinstance(final, tuple) else (final,)
        # the detached copy is made "in" the last step so that the next chunk counts on (t = start + k, ...),
        # then moved out of it so that it is drawn between the chunks
        with _SameInstance(parts[0]):
            detached = detach_state(final)
        detached_parts = detached if isinstance(detached, tuple) else (detached,)
        for old, new in zip(parts, detached_parts):
            new.name = f"{old.name or 'state'} (detached)"
            cuts.append((old, new))
        state = detached
    # the state after the last chunk feeds nothing: keep only the cuts between chunks
    cuts = cuts[: len(cuts) - len(detached_parts)]
    for _, new in cuts:
        new.instance = None
    g = tg.draw(*losses, grads=grads, title=title, max_nodes=max_nodes)
    ids = _ids(tg.Graph(*losses))
    for old, new in cuts:
        g.edge(ids[id(old)], ids[id(new)], label="✂ detach: no gradient", color=CUT_COLOR, fontcolor=CUT_COLOR,
               style="dashed", penwidth="2")
    return g
