"""Drawing tinygraph graphs: unrolled, folded and compact views, gradient flow in
colour, rendering to files, and plots of gradient norms over time.

``draw`` needs only the ``graphviz`` Python package (it builds DOT text);
rendering to pictures needs the Graphviz ``dot`` program; ``plots`` needs
matplotlib (``pip install tinygraph[plot]``). ``backward_frames`` and
``save_animation`` animate the backward pass, step by step (a GIF needs
Pillow, which comes with the ``plot`` extra). ``save(drawing, "graph.html")`` writes a
self-contained interactive page (``html.page_html`` / ``html.write_page``).
"""
from .animate import backward_frames, save_animation
from .dot import DEFAULT_MAX_NODES, draw
from .html import page_html, write_page
from .output import Drawing, GraphvizNotFoundError, dot_available, render, save, source
from .output import DotError
from .escape import dot_label, escape_dot, escape_html
from .plots import plot_grad_norms, step_grad_norms

__all__ = ["draw", "render", "save", "source", "dot_available", "Drawing", "GraphvizNotFoundError",
           "DEFAULT_MAX_NODES", "plot_grad_norms", "step_grad_norms", "backward_frames", "save_animation",
           "page_html", "write_page", "DotError", "escape_html", "escape_dot", "dot_label"]
