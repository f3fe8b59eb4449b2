"""The computation graph as an object you can inspect."""
from __future__ import annotations

from collections import Counter

from .autograd import topological_order


class Graph:
    """The graph reachable from ``roots`` through ``Tensor.parents``.

    Parameters
    ----------
    *roots : Tensor
        Where to start (typically the loss, or a model's outputs).

    Attributes
    ----------
    nodes : list of Tensor
        Every reachable tensor in topological order: inputs before the
        tensors made from them. Found by an iterative walk (no recursion).
    roots : tuple of Tensor

    Examples
    --------
    >>> g = Graph(loss)
    >>> len(g), g.ops()["matmul"], g.instances()   # doctest: +SKIP
    (412, 40, Counter({'LSTMCell': 10}))
    """

    def __init__(self, *roots):
        from .tensor import Tensor

        if len(roots) == 1 and isinstance(roots[0], (list, tuple)):
            roots = tuple(roots[0])
        for i, r in enumerate(roots):
            if not isinstance(r, Tensor):
                raise TypeError(f"Graph: root {i} is a {type(r).__name__}, expected a Tensor")
        if not roots:
            raise ValueError("Graph: needs at least one root tensor")
        self.roots = tuple(roots)
        self.nodes = topological_order(self.roots)

    def __len__(self):
        return len(self.nodes)

    def __iter__(self):
        return iter(self.nodes)

    def __contains__(self, tensor):
        return any(n is tensor for n in self.nodes)

    def ops(self):
        """``Counter`` of op names over the non-leaf nodes."""
        return Counter(n.op for n in self.nodes if n.op is not None)

    def instance_list(self):
        """Every template instance in the graph, once each, in graph order (enclosing
        instances of nested templates included, after the first of their nodes' instances)."""
        # a dict keyed by the instances themselves: they compare by identity, so two calls
        # that share a (template_name, index) pair are two keys
        seen = {}
        for n in self.nodes:
            inst = n.instance
            while inst is not None and inst not in seen:
                seen[inst] = None
                inst = inst.parent
        return list(seen)

    def instances(self):
        """``Counter`` of template names, counting each instance (template call) once.

        Instances have identity: two unrolls of one template in one graph count
        separately (a 7-step and a 3-step unroll give 10), and a template
        called inside another counts as well as the one enclosing it.
        """
        return Counter(inst.template_name for inst in self.instance_list())

    def leaves(self):
        """Tensors not made by an op (inputs, parameters, constants)."""
        return [n for n in self.nodes if n.op is None]

    def parameters(self):
        """Leaves with ``requires_grad`` (what backward accumulates into)."""
        return [n for n in self.nodes if n.op is None and n.requires_grad]

    def edges(self):
        """List of ``(parent, child)`` pairs along the data flow (one per operand)."""
        return [(p, n) for n in self.nodes for p in n.parents]

    def by_instance(self):
        """Dict mapping each instance (or None) to the nodes made directly in it, in topological order.

        The keys are ``tinygraph.instance.Instance`` objects: two calls of one
        template are two keys even when both compare equal to
        ``(template_name, index)``. Looking a key up by that pair
        (``groups[("RNNCell", 3)]``) finds the first such instance.
        """
        groups = {}
        for n in self.nodes:
            groups.setdefault(n.instance, []).append(n)
        return groups

    def __repr__(self):
        ops = ", ".join(f"{k}={v}" for k, v in sorted(self.ops().items()))
        inst = self.instances()
        text = f"Graph({len(self)} nodes, {len(self.leaves())} leaves; ops: {ops}"
        if inst:
            text += "; instances: " + ", ".join(f"{k}={v}" for k, v in sorted(inst.items()))
        return text + ")"

    def summary(self):
        """A multi-line text listing of the nodes, one per line, inputs first."""
        index = {id(n): i for i, n in enumerate(self.nodes)}
        lines = []
        for i, n in enumerate(self.nodes):
            label = n.name or (n.op or ("param" if n.requires_grad else "const"))
            args = ", ".join(f"%{index[id(p)]}" for p in n.parents)
            where = f"  [{n.instance[0]} t={n.instance[1]}]" if n.instance is not None else ""
            op = f"{n.op}({args})" if n.op else ("leaf, requires_grad" if n.requires_grad else "leaf")
            lines.append(f"%{i} {label}: {op} -> {tuple(n.shape)} {n.dtype}{where}")
        return "\n".join(lines)
