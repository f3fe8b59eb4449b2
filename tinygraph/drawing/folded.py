"""The folded drawing: one copy of each template, its recurrent state drawn back into it.

Folding is a quotient of the unrolled graph. Each tensor made inside a
template instance gets a *structural key*: its op, name, shape and dtype, and
the keys of its operands in the same instance. Operands from outside the
instance (the previous step's state, the initial state, the step's input) are
keyed by shape and dtype only, which is what makes step 0 (fed by an initial
state) and step t (fed by step t-1) fall onto the same copy. Parameters and
other leaves are keyed by identity, so they are never merged. Tensors made
outside any template are merged when they apply the same op to the same
(folded) operands, e.g. the per-step slices ``xs[t]``; their count is shown.

An edge from instance t-1's node into instance t's node becomes a *back edge*
inside the copy, labelled with the step distance (``t-1``); what fills the
same operand at step 0 from outside (``h0``, ``c0``) is the *initial state*.
"""
from __future__ import annotations

from .view import BACK, DATA, INIT, OP, PARAM, PARAM_EDGE, Edge, Group, Node, View, is_param, leaf_kind

_SMALL_CONSTANT = 16  # constants up to this size are keyed by value, larger ones by shape


def folded(graph):
    """Fold ``graph`` (a ``tinygraph.Graph``) into a ``View`` with one copy per template."""
    fold = {}  # id(tensor) -> folded node id
    interned = {}  # structural key -> folded node id
    ordinal = {}  # (instance, key) -> copies of that key seen in the instance so far
    nodes = {}
    indices = {}  # template name -> set of instance indices folded into it
    roots = {id(r) for r in graph.roots}
    for t in graph.nodes:
        inst = t.instance
        if t.op is None and (t.requires_grad or inst is None):
            key = ("leaf", id(t))
            group, kind = None, leaf_kind(t)
        elif inst is not None:
            tokens = tuple(
                fold[id(p)] if (p.instance == inst or is_param(p)) else ("ext", p.shape, p.dtype.str)
                for p in t.parents
            )
            value = None
            if t.op is None and t.name is None and t.data.size <= _SMALL_CONSTANT:  # (a named leaf, e.g. x_t, is data)
                value = t.data.tobytes()
            base = ("in", inst[0], t.op, t.name, t.shape, t.dtype.str, tokens, value)
            seen = ordinal.get((inst, base), 0)
            ordinal[(inst, base)] = seen + 1
            key = (base, seen)
            group = (inst[0], None)
            kind = OP if t.op is not None else leaf_kind(t)
            indices.setdefault(inst[0], set()).add(inst[1])
        else:
            key = ("out", t.op, t.name, t.shape, t.dtype.str, tuple(fold[id(p)] for p in t.parents))
            group, kind = None, OP
        fid = interned.get(key)
        if fid is None:
            fid = interned[key] = f"f{len(interned)}"
            nodes[fid] = Node(fid, kind, [t], None if kind == PARAM else group)
        else:
            nodes[fid].tensors.append(t)
            nodes[fid].count += 1
        if id(t) in roots:
            nodes[fid].is_root = True
        fold[id(t)] = fid

    # Operand slots (folded node, operand position) that receive the state from a
    # previous step: whatever fills such a slot from outside the template is the
    # initial state (h0, c0), drawn as such.
    recurrent_slots = set()
    for t in graph.nodes:
        for i, p in enumerate(t.parents):
            if (p.instance is not None and t.instance is not None and p.instance[0] == t.instance[0]
                    and p.instance != t.instance):
                recurrent_slots.add((fold[id(t)], i))

    merged = {}
    for t in graph.nodes:
        dst = fold[id(t)]
        for i, p in enumerate(t.parents):
            src = fold[id(p)]
            label = None
            if (dst, i) in recurrent_slots and p.instance is None and not is_param(p):
                kind, label = INIT, "initial state"
            elif is_param(p):
                kind = PARAM_EDGE
            elif (p.instance is not None and t.instance is not None and p.instance[0] == t.instance[0]
                  and p.instance != t.instance):
                kind = BACK
                label = f"t-{t.instance[1] - p.instance[1]}" if t.instance[1] > p.instance[1] else "state"
            else:
                kind = DATA
            k = (src, dst, kind, label)
            if k in merged:
                merged[k].count += 1
            else:
                merged[k] = Edge(src, dst, kind, 1, label)
    # One "t-1" per state tensor is enough: an LSTM's h feeds four gates, and four
    # identical labels only crowd the picture (the colour marks the others).
    labelled = set()
    for edge in merged.values():
        if edge.kind in (BACK, INIT):
            if (edge.src, edge.label) in labelled:
                edge.label = None
            labelled.add((edge.src, edge.label))

    groups = {}
    for name in sorted(indices):
        idx = sorted(indices[name])
        span = f"t={idx[0]}..{idx[-1]}" if len(idx) > 1 else f"t={idx[0]}"
        noun = "instance" if len(idx) == 1 else "instances"
        groups[(name, None)] = Group((name, None), f"{name} (folded: {len(idx)} {noun}, {span})", len(idx))
    return View(nodes, list(merged.values()), groups, "folded")
