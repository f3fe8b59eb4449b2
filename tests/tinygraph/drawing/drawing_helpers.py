"""Reading the DOT text that tinygraph.draw emits (one statement per line)."""
import re
from collections import Counter

_NODE = re.compile(r"^\s*(\w+) \[(.*)\]\s*$")
_EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?\s*$")
_CLUSTER = re.compile(r"^\s*subgraph (\w+) \{\s*$")


class Dot:
    """Nodes (id -> attribute text), edges [(src, dst, attribute text)], clusters
    (name -> {"label": ..., "nodes": [ids]}), and the cluster of each node."""

    def __init__(self, source):
        self.source = source
        self.nodes, self.edges, self.clusters, self.cluster_of = {}, [], {}, {}
        stack = []
        for line in source.splitlines():
            m = _CLUSTER.match(line)
            if m:
                stack.append(m.group(1))
                self.clusters[m.group(1)] = {"label": None, "nodes": [], "attrs": ""}
                continue
            if line.strip() == "}" and stack:
                stack.pop()
                continue
            m = _EDGE.match(line)
            if m:
                self.edges.append((m.group(1), m.group(2), m.group(3) or ""))
                continue
            m = _NODE.match(line)
            if m and m.group(1) not in ("node", "edge", "graph"):
                assert m.group(1) not in self.nodes, f"node {m.group(1)} defined twice"
                self.nodes[m.group(1)] = m.group(2)
                if stack:
                    self.clusters[stack[-1]]["nodes"].append(m.group(1))
                    self.cluster_of[m.group(1)] = stack[-1]
                continue
            if stack and "label=" in line and self.clusters[stack[-1]]["label"] is None:
                lab = re.search(r'label="([^"]*)"', line)
                self.clusters[stack[-1]]["label"] = lab.group(1) if lab else None
                self.clusters[stack[-1]]["attrs"] = line

    def edge_counter(self, include_invisible=False):
        return Counter((a, b) for a, b, attrs in self.edges if include_invisible or "invis" not in attrs)

    def attr(self, node, key):
        m = re.search(rf'\b{key}=("([^"]*)"|<.*?>(?= \w+=|$)|\S+)', self.nodes[node])
        if not m:
            return None
        return m.group(2) if m.group(2) is not None else m.group(1)
