"""The compact drawing: each template instance (or folded template) as one box.

Edges between boxes are merged; an edge that carries named tensors (e.g. the
state ``h, c``) is labelled with their names. A box's gradient is the norm of
the gradients of its *outputs*, the tensors it passes on (for an RNN cell,
``||dL/dh_t||``), which is the quantity that vanishes or explodes over time.
"""
from __future__ import annotations

from .view import BACK, BLOCK, PARAM, Edge, Node, View


def compact(view):
    """Collapse every group of ``view`` into one ``BLOCK`` node (a new ``View``)."""
    block_of = {}  # group key -> block node id
    nodes = {}
    members = {}
    for node in view.nodes.values():
        if node.group is None:
            nodes[node.id] = node
            continue
        if node.group not in block_of:
            block_of[node.group] = f"b{len(block_of)}"
        members.setdefault(node.group, []).append(node)
    where = {nid: (nid if n.group is None else block_of[n.group]) for nid, n in view.nodes.items()}

    outputs = {key: [] for key in members}
    for edge in view.edges:
        src_node = view.nodes[edge.src]
        if src_node.group is not None and where[edge.dst] != where[edge.src]:
            outputs[src_node.group].append(src_node)
    for node in view.nodes.values():
        if node.group is not None and node.is_root:
            outputs[node.group].append(node)

    for key, group in view.groups.items():
        if key not in members:
            continue
        inside = members[key]
        outs = list({id(n): n for n in outputs[key]}.values())
        ops = sum(1 for n in inside if n.tensor.op is not None)
        tensors = [t for n in outs for t in n.tensors]
        nodes[block_of[key]] = Node(
            block_of[key], BLOCK, tensors or [inside[-1].tensor], None,
            is_root=any(n.is_root for n in inside), count=group.instances,
            title=group.label, detail=f"{ops} ops, {len(inside)} nodes",
        )
    # Blocks before the nodes that consume them, in time order, keeps DOT readable.
    ordered = {}
    for key in view.groups:
        if key in block_of:
            ordered[block_of[key]] = nodes.pop(block_of[key])
    ordered.update(nodes)

    merged = {}
    for edge in view.edges:
        src, dst = where[edge.src], where[edge.dst]
        if src == dst and edge.kind != BACK:
            continue
        k = (src, dst, edge.kind)
        name = view.nodes[edge.src].tensor.name if view.nodes[edge.src].kind != PARAM else None
        if k not in merged:
            merged[k] = (Edge(src, dst, edge.kind, 0, edge.label), [])
        e, names = merged[k]
        e.count += edge.count
        if e.label is None:
            e.label = edge.label
        if name and name not in names and src != edge.src:
            names.append(name)
    edges = []
    for e, names in merged.values():
        if names:
            e.label = ", ".join(names) if e.label is None else f"{', '.join(names)} ({e.label})"
        edges.append(e)
    return View(ordered, edges, {}, view.mode + "+compact")
