"""``tinygraph draw``: draw a built-in recurrent model unrolled, folded or compact."""
from __future__ import annotations

import argparse
import os

_MODELS = ("rnn", "lstm", "gru")


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
    p.add_argument("--steps", type=_positive, default=3, help="time steps to unroll (default: 3)")
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
    p.add_argument("--input-size", type=_positive, default=2, help="features per step (default: 2)")
    p.add_argument("--hidden-size", type=_positive, default=3, help="hidden size (default: 3)")
    p.add_argument("--batch", type=_positive, default=1, help="batch size (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--max-nodes", type=int, default=None,
                   help="refuse to draw more nodes than this (default: 2000; 0 means no limit)")
    p.set_defaults(func=run_draw)
    return p


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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
    ext = os.path.splitext(args.out)[1].lower().lstrip(".")
    if ext not in render.RENDERED_FORMATS + render.SOURCE_FORMATS + render.PAGE_FORMATS:
        print(f"tinygraph draw: cannot tell the format of --out {args.out!r}; use .svg, .png, .pdf, .dot or .html")
        return 2
    out_folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_folder):
        print(f"tinygraph draw: cannot write {args.out!r}: the folder {out_folder!r} does not exist")
        return 2
    build = model_graph_builder()
    # the page shows every node's gradient norm and steps through the backward pass: it runs backward
    loss = build(args.model, args.steps, args.input_size, args.hidden_size, args.batch, args.seed,
                 grads=args.grads or ext in render.PAGE_FORMATS, fused=args.fused)
    limit = dot.DEFAULT_MAX_NODES if args.max_nodes is None else (None if args.max_nodes == 0 else args.max_nodes)
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
    except render.GraphvizNotFoundError as exc:
        print(f"tinygraph draw: {exc}")
        return 1
    print(f"wrote {args.out}")
    return 0


def _run_animate(args):
    from . import animate, dot, output

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
    build = model_graph_builder()
    loss = build(args.model, args.steps, args.input_size, args.hidden_size, args.batch, args.seed,
                 grads=True, fused=args.fused)
    limit = dot.DEFAULT_MAX_NODES if args.max_nodes is None else (None if args.max_nodes == 0 else args.max_nodes)
    title = f"{args.model.upper()}, {args.steps} steps" + (", compact" if args.compact else "") + \
        ": the backward pass"
    try:
        frames = animate.backward_frames(loss, compact=args.compact, max_nodes=limit, title=title)
    except ValueError as exc:
        print(f"tinygraph draw: {exc}")
        return 2
    try:
        written = animate.save_animation(frames, args.out)
    except (ImportError, output.GraphvizNotFoundError) as exc:
        print(f"tinygraph draw: {exc}")
        return 1
    where = args.out if isinstance(written, str) else f"{len(written)} frames into {args.out}"
    print(f"wrote {where} ({len(frames)} frames)" if isinstance(written, str) else f"wrote {where}")
    return 0
