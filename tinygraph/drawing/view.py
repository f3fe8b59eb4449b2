"""What a drawing shows, before it becomes DOT: boxes, arrows and groups.

A ``View`` is the small intermediate form every drawing mode produces (the
unrolled graph here, the folded one in ``folded.py``, the compact one in
``compact.py``); ``dot.py`` turns any ``View`` into Graphviz. Keeping modes
and DOT apart means each mode is a plain transformation that tests can read.
"""
from __future__ import annotations

from ..instance import number_runs
from ..nn.module import Parameter

# Node kinds.
PARAM, INPUT, CONST, OP, BLOCK = "param", "input", "const", "op", "block"
# Edge kinds: along the data flow, out of a parameter, carrying state from one
# template instance to another, (folded) that state drawn back into the copy, and
# (folded) the initial state entering the copy.
DATA, PARAM_EDGE, STATE, BACK, INIT = "data", "param", "state", "back", "init"


class Node:
    """One box of the drawing; ``tensors`` are the tensors it stands for (one
    when unrolled, one per instance when folded, a whole instance when compact)."""

    __slots__ = ("id", "kind", "tensors", "group", "is_root", "count", "title", "detail")

    def __init__(self, id, kind, tensors, group, is_root=False, count=1, title=None, detail=None):
        self.id = id
        self.kind = kind
        self.tensors = tensors
        self.group = group
        self.is_root = is_root
        self.count = count
        self.title = title
        self.detail = detail

    @property
    def tensor(self):
        """The representative tensor (the first one)."""
        return self.tensors[0]


class Edge:
    __slots__ = ("src", "dst", "kind", "count", "label")

    def __init__(self, src, dst, kind, count=1, label=None):
        self.src, self.dst, self.kind, self.count, self.label = src, dst, kind, count, label


class Group:
    """A template instance (unrolled), or all instances of a template (folded).

    ``name`` is the template name, ``index`` the step (None when folded) and
    ``run`` the number of the template's call among the calls of templates of
    that name in the drawing (1, 2, ...); the DOT cluster id is made from
    them. ``parent`` is the key of the enclosing group, for a template called
    inside another.
    """

    __slots__ = ("key", "label", "instances", "parent", "name", "index", "run")

    def __init__(self, key, label, instances=1, parent=None, name=None, index=None, run=1):
        self.key, self.label, self.instances = key, label, instances
        self.parent, self.name, self.index, self.run = parent, name, index, run


class View:
    """Nodes (in drawing order), edges, and the groups nodes belong to."""

    def __init__(self, nodes, edges, groups, mode):
        self.nodes = nodes  # dict id -> Node, insertion ordered
        self.edges = edges
        self.groups = groups  # dict key -> Group, in time order
        self.mode = mode

    def __len__(self):
        return len(self.nodes)


def is_param(t):
    """Parameters are ``tinygraph.nn.Parameter`` leaves (a Module's weights). Other leaves
    that require grad, e.g. an input whose gradient is studied, are drawn as inputs."""
    return isinstance(t, Parameter)


def leaf_kind(t):
    if is_param(t):
        return PARAM
    if t.requires_grad:
        return INPUT
    # Anonymous scalars are the constants of expressions like ``1 - z``: drawn as their value.
    if t.name is None and t.data.size == 1:
        return CONST
    return INPUT


def instance_label(instance, run=1):
    """``"RNNCell t=3"``; ``"RNNCell #2 t=3"`` for a step of the second call (run) of a template of that name."""
    name, index = instance
    return f"{name} t={index}" if run == 1 else f"{name} #{run} t={index}"


def instance_groups(instances):
    """One ``Group`` per instance (an iterable of ``Instance`` in graph order, enclosing ones
    included), keyed by the instance, ordered by template name, call and step so that
    clusters appear in time order. Runs are numbered only when a name has several."""
    instances = list(instances)
    # runs are numbered among the runs of one name in the same enclosing instance (a cell called
    # afresh in each step of an enclosing template is "Inner t=0" in each step's cluster)
    numbers, counts = {}, {}
    for parent in dict.fromkeys(i.parent for i in instances):
        n, c = number_runs(i for i in instances if i.parent is parent)
        numbers.update(n)
        counts.update({(parent, name): k for name, k in c.items()})
    order = sorted(instances, key=lambda i: (str(i.template_name), numbers[i.run], i.index))
    groups = {}
    for inst in order:
        run = numbers[inst.run] if counts[(inst.parent, inst.template_name)] > 1 else 1
        groups[inst] = Group(inst, instance_label(inst, run), parent=inst.parent, name=inst.template_name,
                             index=inst.index, run=run)
    return groups


def unrolled(graph):
    """The graph node by node: node ``n<k>`` is ``graph.nodes[k]``, one edge per operand.

    Parameters belong to no group even when made inside a template, so that
    each is drawn once, with the other parameters.
    """
    ids = {}
    nodes = {}
    roots = {id(r) for r in graph.roots}
    instances = {}  # every instance with a drawn node, and the instances enclosing it (graph order)
    for k, t in enumerate(graph.nodes):
        nid = f"n{k}"
        ids[id(t)] = nid
        kind = leaf_kind(t) if t.op is None else OP
        group = None if kind == PARAM else t.instance
        inst = group
        while inst is not None and inst not in instances:
            instances[inst] = None
            inst = inst.parent
        nodes[nid] = Node(nid, kind, [t], group, is_root=id(t) in roots)
    edges = []
    for t in graph.nodes:
        dst = ids[id(t)]
        for p in t.parents:
            edges.append(Edge(ids[id(p)], dst, edge_kind(p, t)))
    return View(nodes, edges, instance_groups(instances), "unrolled")


def edge_kind(parent, child):
    if is_param(parent):
        return PARAM_EDGE
    a, b = parent.instance, child.instance
    if a is not None and b is not None and a != b and not _nested(a, b) and not _nested(b, a):
        return STATE
    return DATA


def _nested(inner, outer):
    """Whether instance ``inner`` was made inside instance ``outer`` (at any depth)."""
    inst = inner.parent
    while inst is not None:
        if inst is outer:
            return True
        inst = inst.parent
    return False
