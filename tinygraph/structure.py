"""The structure of one template instance in a graph: its nodes and the recurrent edges
entering it (what a folded drawing shows once). ``Template.structure`` calls this."""
from __future__ import annotations

from typing import NamedTuple


class InstanceStructure(NamedTuple):
    """One instance of a template: its nodes and the recurrent edges entering it."""

    template_name: str
    index: int
    nodes: list  # the instance's tensors, in topological order
    recurrent_edges: list  # (tensor of instance index-1, tensor of this instance that reads it)


def instance_structure(template, *roots):
    """The structure of one instance of this template in the graph of ``roots``.

    Returns an ``InstanceStructure``: the nodes of one instance (the second
    step of the first run of this template in the graph that has two, or
    the first step when no run has; with the nodes of templates called
    inside it), and the
    recurrent state edges, i.e. the edges from the previous instance of
    the same run into this one as ``(producer, consumer)`` pairs. Every
    instance of an unrolled template has the same structure; this is what
    a folded drawing shows once, with the recurrent edges drawn back into it.
    """
    from .graph import Graph  # (graph imports tensor, which this module must not import first)

    nodes_of = {}  # instance of this template -> its nodes (nested calls included)
    for n in Graph(*roots).nodes:
        inst = n.instance
        while inst is not None:
            if inst.belongs_to(template):
                nodes_of.setdefault(inst, []).append(n)
                break
            inst = inst.parent
    if not nodes_of:
        raise ValueError(f"structure: no instance of {template.template_name} in this graph")
    runs = {}  # run -> its instances, runs in graph order
    for inst in nodes_of:
        runs.setdefault(inst.run, []).append(inst)
    # the first run with a step 1 (so that the recurrent edges show), else the first run
    steps = next((s for s in runs.values() if len(s) > 1), next(iter(runs.values())))
    steps = sorted(steps, key=lambda inst: inst.index)
    chosen = steps[1] if len(steps) > 1 else steps[0]
    previous = {inst for inst in steps if inst.index == chosen.index - 1}
    nodes = nodes_of[chosen]

    def made_in_previous(p):
        inst = p.instance
        while inst is not None:
            if inst in previous:
                return True
            inst = inst.parent
        return False

    recurrent = [(p, n) for n in nodes for p in n.parents if made_in_previous(p)]
    return InstanceStructure(template.template_name, chosen.index, nodes, recurrent)
