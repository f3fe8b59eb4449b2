"""``tinygraph draw``: draw a built-in recurrent model unrolled, folded or compact."""
from __future__ import annotations

import argparse
import os

from ..cli_args import non_negative_int, positive_int, seed

_MODELS = ("rnn", "lstm", "gru")
# A drawing shows the graph's structure, not big tensors: sizes beyond these only cost memory.
MAX_SIZE = 4096
# The largest graph the command builds, whatever --max-nodes says: building (and folding or
# compacting) a graph of millions of nodes takes minutes and gigabytes for a picture nobody can read.
MAX_BUILD_NODES = 200_000
MAX_TENSOR_BYTES = 2**29  # 512 MiB for the values of the whole graph


def add_draw_parser(subparsers):
    """Register the ``draw`` subcommand on an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "draw", help="draw the computation graph of a small RNN/LSTM/GRU unrolled over a few steps",
        description="Draw the computation graph of a small recurrent model (random input, loss = mean of the "
                    "outputs squared), by default its textbook build: the seed's equations inside each step. "
                    "The output format follows the extension: .svg, .png, .pdf, .html (an interactive page; "
                    "these need Graphviz 'dot') or .dot (DOT source, always available).",
    )
    p.add_argument("--model", choices=_MODELS, default="rnn", help="which model (default: rnn)")
    p.add_argument("--steps", type=positive_int, default=3, help="time steps to unroll (default: 3)")
    p.add_argument("--out", required=True,
                   help="output file: .svg, .png, .pdf, .dot, or .html (an interactive page: tooltips, a time-step "
                        "slider, the backward pass step by step)")
    p.add_argument("--folded", action="store_true", help="one copy of the cell, state edges drawn back into it")
    p.add_argument("--grads", action="store_true", help="colour nodes by gradient norm (runs backward)")
    p.add_argument("--compact", action="store_true", help="one box per time step")
    p.add_argument("--animate", action="store_true",
                   help="animate the backward pass step by step (runs backward); --out must be a .gif "
                        "(needs Pillow: pip install tinygraph[plot]) or a folder ending in / for SVG frames")
    p.add_argument("--fused", action="store_true",
                   help="draw the fast build that training runs (inputs projected once before the loop; for "
                        "LSTM/GRU each step one fused op) instead of the default textbook graph (the seed's "
                        "equations inside each step: x_t W, h_{t-1} W, + b, activation; every gate its own node)")
    p.add_argument("--input-size", type=_size, default=2, help=f"features per step (default: 2, at most {MAX_SIZE})")
    p.add_argument("--hidden-size", type=_size, default=3, help=f"hidden size (default: 3, at most {MAX_SIZE})")
    p.add_argument("--batch", type=_size, default=1, help=f"batch size (default: 1, at most {MAX_SIZE})")
    p.add_argument("--seed", type=seed, default=0, help="random seed, a non-negative integer (default: 0)")
    p.add_argument("--max-nodes", type=non_negative_int, default=None,
                   help="refuse to draw more nodes than this (default: 2000; 0 means no limit)")
    p.set_defaults(func=run_draw)
    return p


def _size(text):
    value = positive_int(text)
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"{value} is too large for a drawing (at most {MAX_SIZE}); a drawing "
                                         f"shows the graph's structure, which does not depend on the sizes")
    return value


def _limit(args):
    from . import dot

    return dot.DEFAULT_MAX_NODES if args.max_nodes is None else (None if args.max_nodes == 0 else args.max_nodes)


def check_size(build, args, folded, compact, limit):
    """A message refusing the drawing that ``args`` asks for, worked out before building it, or None.

    The numbers of graph nodes and drawn boxes grow linearly with the steps, so
    they are measured on graphs of one and two steps (with sizes of 1: the
    structure does not depend on sizes) and extrapolated to ``args.steps``.
    """
    from . import dot
    from ..graph import Graph

    sizes = []
    for steps in (1, 2):
        loss = build(args.model, steps, 1, 1, 1, 0, grads=False, fused=args.fused)
        graph = Graph(loss)
        sizes.append((len(graph), len(dot._view_of(graph, folded, compact, None))))
    (g1, v1), (g2, v2) = sizes
    nodes = g1 + (g2 - g1) * (args.steps - 1)
    boxes = v1 + (v2 - v1) * (args.steps - 1)
    if nodes > MAX_BUILD_NODES:
        return (f"--steps {args.steps} would build a graph of about {nodes:,} nodes ({g2 - g1} per step), more "
                f"than tinygraph draw builds ({MAX_BUILD_NODES:,}); draw fewer steps (the drawing of a few "
                f"steps shows the same structure, and --folded shows one step for all)")
    width = max(args.hidden_size, args.input_size) * args.batch
    if nodes * width * 8 > MAX_TENSOR_BYTES:
        return (f"--steps {args.steps} with --batch {args.batch} and sizes up to {width // args.batch} would hold "
                f"about {nodes * width * 8 / 2**20:,.0f} MiB of values; use smaller sizes (the drawing does not "
                f"depend on them)")
    if limit is not None and boxes > limit:
        return dot._too_big_message(nodes, boxes, limit, folded, compact).replace("draw: ", "", 1) + \
            f" (estimated from --steps {args.steps} before building)"
    return None


def _check_out(out, what=".svg, .png, .pdf or .dot"):
    """A message if ``out`` cannot be written (a folder, a missing or unwritable folder), else None."""
    if os.path.isdir(out):
        return f"cannot write {out!r}: it is a folder; give a file name ({what})"
    out_folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_folder):
        return f"cannot write {out!r}: the folder {out_folder!r} does not exist"
    if not os.access(out_folder, os.W_OK):
        return f"cannot write {out!r}: the folder {out_folder!r} is not writable"
    return None


ENTRY_POINT_GROUP = "tinygraph.draw_models"


def model_graph_builder():
    """The function that builds the loss graph of a named model (``models.drawing.build_model_graph``).

    ``tinygraph`` never imports ``models`` (the dependency points the other way):
    the builder is found through the ``tinygraph.draw_models`` entry point that
    the installed project declares.
    """
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        return entry.load()
    raise RuntimeError(
        "tinygraph draw: no model builder found (entry point group 'tinygraph.draw_models'); install the "
        "project with its models package: pip install -e ."
    )


def run_draw(args):
    from . import dot, output as render

    if getattr(args, "animate", False):
        return _run_animate(args)
    problem = _check_out(args.out)
    if problem:
        print(f"tinygraph draw: {problem}")
        return 2
    ext = os.path.splitext(args.out)[1].lower().lstrip(".")
    if ext not in render.RENDERED_FORMATS + render.SOURCE_FORMATS + render.PAGE_FORMATS:
        print(f"tinygraph draw: cannot tell the format of --out {args.out!r}; use .svg, .png, .pdf, .dot or .html")
        return 2
    build = model_graph_builder()
    limit = _limit(args)
    problem = check_size(build, args, args.folded, args.compact, limit)
    if problem:
        print(f"tinygraph draw: {problem}")
        return 2
    # the page shows every node's gradient norm and steps through the backward pass: it runs backward
    loss = build(args.model, args.steps, args.input_size, args.hidden_size, args.batch, args.seed,
                 grads=args.grads or ext in render.PAGE_FORMATS, fused=args.fused)
    title = f"{args.model.upper()}, {args.steps} steps" + (", folded" if args.folded else "") + \
        (", compact" if args.compact else "") + (", gradient norms" if args.grads else "")
    try:
        graph = dot.draw(loss, folded=args.folded, grads=args.grads, compact=args.compact, max_nodes=limit,
                         title=title)
    except ValueError as exc:
        print(f"tinygraph draw: {exc}")
        return 2
    try:
        render.render(graph, args.out)
    except (render.GraphvizNotFoundError, render.DotError) as exc:
        print(f"tinygraph draw: {exc}")
        return 1
    except OSError as exc:  # e.g. permission denied, disk full: the file system's own words
        print(f"tinygraph draw: cannot write {args.out!r}: {exc.strerror or exc}")
        return 1
    print(f"wrote {args.out}")
    return 0


def _run_animate(args):
    from . import animate, output

    folder_out = args.out.endswith(("/", os.sep)) or os.path.isdir(args.out)
    if not folder_out and os.path.splitext(args.out)[1].lower() != ".gif":
        print(f"tinygraph draw --animate: --out {args.out!r} must be a .gif file, or a folder ending in / for "
              f"numbered SVG frames")
        return 2
    if args.folded:
        print("tinygraph draw --animate: --folded is not supported (a folded node stands for one tensor per "
              "step, reached at different times); use --compact or neither")
        return 2
    target = args.out.rstrip("/" + os.sep) if folder_out else args.out
    out_folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(out_folder):
        print(f"tinygraph draw: cannot write {args.out!r}: the folder {out_folder!r} does not exist")
        return 2
    if not os.access(out_folder, os.W_OK):
        print(f"tinygraph draw: cannot write {args.out!r}: the folder {out_folder!r} is not writable")
        return 2
    build = model_graph_builder()
    limit = _limit(args)
    problem = check_size(build, args, False, args.compact, limit)
    if problem:
        print(f"tinygraph draw: {problem}")
        return 2
    loss = build(args.model, args.steps, args.input_size, args.hidden_size, args.batch, args.seed,
                 grads=True, fused=args.fused)
    title = f"{args.model.upper()}, {args.steps} steps" + (", compact" if args.compact else "") + \
        ": the backward pass"
    try:
        frames = animate.backward_frames(loss, compact=args.compact, max_nodes=limit, title=title)
    except ValueError as exc:
        print(f"tinygraph draw: {exc}")
        return 2
    try:
        written = animate.save_animation(frames, args.out)
    except (ImportError, output.GraphvizNotFoundError, output.DotError) as exc:
        print(f"tinygraph draw: {exc}")
        return 1
    except OSError as exc:
        print(f"tinygraph draw: cannot write {args.out!r}: {exc.strerror or exc}")
        return 1
    where = args.out if isinstance(written, str) else f"{len(written)} frames into {args.out}"
    print(f"wrote {where} ({len(frames)} frames)" if isinstance(written, str) else f"wrote {where}")
    return 0
