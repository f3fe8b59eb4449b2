"""The folded drawing: one copy of each template, its recurrent state drawn back into it.

Folding is a quotient of the unrolled graph. Each tensor made inside a
template instance gets a *structural key*: its op, name, shape and dtype, and
the keys of its operands in the same instance. Operands from outside the
instance (the previous step's state, the initial state, the step's input) are
keyed by rank and dtype only, which is what makes step 0 (fed by an initial
state) and step t (fed by step t-1) fall onto the same copy. Parameters and
other leaves are keyed by identity, so they are never merged. Tensors made
outside any template are merged when they apply the same op to the same
(folded) operands, e.g. the per-step slices ``xs[t]``; their count is shown.

An edge from instance t-1's node into instance t's node becomes a *back edge*
inside the copy, labelled with the step distance (``t-1``); what fills the
same operand at step 0 from outside (``h0``, ``c0``) is the *initial state*.
"""
from __future__ import annotations

from ..instance import template_key
from .view import BACK, DATA, INIT, OP, PARAM, PARAM_EDGE, Edge, Group, Node, View, is_param, leaf_kind


def _made_within(instance, top):
    """Whether a tensor of ``instance`` was made inside the (outermost) instance ``top``."""
    while instance is not None:
        if instance is top:
            return True
        instance = instance.parent
    return False


def _step_link(p, t):
    """For an edge from ``p`` into ``t``: their outermost instances if they are two different
    instances of one template (the recurrent state), else None."""
    if p.instance is None or t.instance is None:
        return None
    a, b = p.instance.outermost(), t.instance.outermost()
    if a is b or template_key(a) != template_key(b):
        return None
    return a, b


def folded(graph):
    """Fold ``graph`` (a ``tinygraph.Graph``) into a ``View`` with one copy per template.

    A template is one template object: two templates that share a name are
    two copies; two calls (runs) of one template, e.g. a siamese encoder's two
    unrolls, fold into one copy. A template called inside another folds with
    the enclosing template's copy.
    """
    fold = {}  # id(tensor) -> folded node id
    interned = {}  # structural key -> folded node id
    ordinal = {}  # (instance, key) -> copies of that key seen in the instance so far
    nodes = {}
    templates = {}  # template key -> [name, set of indices, set of runs] (graph order)
    nested_groups = {}  # group key of a template called inside another -> its template name
    roots = {id(r) for r in graph.roots}
    for t in graph.nodes:
        inst = t.instance
        if t.op is None and (t.requires_grad or inst is None):
            key = ("leaf", id(t))
            group, kind = None, leaf_kind(t)
        elif inst is not None:
            top = inst.outermost()
            tkey = template_key(top)
            # An operand from outside the instance (the previous step's state, the initial state,
            # the sequence a step reads its x_t from) is keyed by rank and dtype only: two unrolls
            # of different lengths (a (7, B, D) and a (3, B, D) sequence) still fold into one copy.
            tokens = tuple(
                fold[id(p)] if (is_param(p) or _made_within(p.instance, top)) else ("ext", p.ndim, p.dtype.str)
                for p in t.parents
            )
            # Leaves made inside a step (a step's input x_t when it needs no gradient, a constant)
            # are keyed by shape, not value: per-step inputs differ from step to step and must
            # still fold. Several leaves of one shape in a step stay apart by their order.
            nested = tuple(template_key(i) for i in inst.chain()[:-1])
            base = ("in", tkey, nested, t.op, t.name, t.shape, t.dtype.str, tokens)
            seen = ordinal.get((top, base), 0)
            ordinal[(top, base)] = seen + 1
            key = (base, seen)
            # a template called inside this one is a group inside this one's copy
            group = ("folded", tkey) + tuple(reversed(nested))
            for depth, inner in enumerate(reversed(inst.chain()[:-1])):
                nested_groups.setdefault(("folded", tkey) + tuple(reversed(nested))[:depth + 1],
                                         inner.template_name)
            kind = OP if t.op is not None else leaf_kind(t)
            info = templates.setdefault(tkey, [top.template_name, set(), {}])
            info[1].add(top.index)
            info[2][top.run] = None
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
            if _step_link(p, t) is not None:
                recurrent_slots.add((fold[id(t)], i))

    merged = {}
    for t in graph.nodes:
        dst = fold[id(t)]
        for i, p in enumerate(t.parents):
            src = fold[id(p)]
            label = None
            link = _step_link(p, t)
            if (dst, i) in recurrent_slots and p.instance is None and not is_param(p):
                kind, label = INIT, "initial state"
            elif is_param(p):
                kind = PARAM_EDGE
            elif link is not None:
                kind = BACK
                a, b = link
                label = f"t-{b.index - a.index}" if b.index > a.index else "state"
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
    same_name = {}
    for tkey, (name, indices, runs) in templates.items():
        same_name[name] = same_name.get(name, 0) + 1
    numbered, tops = {}, {}
    for inst in graph.instance_list():  # the steps folded into each copy (outermost instances)
        if inst.parent is None:
            tops[template_key(inst)] = tops.get(template_key(inst), 0) + 1
    for tkey, (name, indices, runs) in sorted(templates.items(), key=lambda item: str(item[1][0])):
        numbered[name] = numbered.get(name, 0) + 1
        number = numbered[name]
        idx = sorted(indices)
        count = tops.get(tkey, 0)
        span = f"t={idx[0]}..{idx[-1]}" if len(idx) > 1 else f"t={idx[0]}"
        noun = "instance" if count == 1 else "instances"
        calls = f" in {len(runs)} calls" if len(runs) > 1 else ""
        title = name if same_name[name] == 1 else f"{name} #{number}"
        groups[("folded", tkey)] = Group(("folded", tkey), f"{title} (folded: {count} {noun}{calls}, {span})",
                                         count, name=name, index=None, run=number)
    for key, name in nested_groups.items():
        groups[key] = Group(key, name, parent=key[:-1], name=name, index=None, run=1)
    return View(nodes, list(merged.values()), groups, "folded")
