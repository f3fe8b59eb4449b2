"""``tinygraph draw``: draw a built-in recurrent model unrolled, folded or compact."""
from __future__ import annotations

import argparse
import os

import numpy as np

_MODELS = ("rnn", "lstm", "gru")


def add_draw_parser(subparsers):
    """Register the ``draw`` subcommand on an ``argparse`` subparsers object; returns its parser."""
    p = subparsers.add_parser(
        "draw", help="draw the computation graph of a small RNN/LSTM/GRU unrolled over a few steps",
        description="Draw the computation graph of a small recurrent model (random input, loss = mean of the "
                    "outputs squared). The output format follows the extension: .svg, .png, .pdf (need Graphviz "
                    "'dot') or .dot (DOT source, always available).",
    )
    p.add_argument("--model", choices=_MODELS, default="rnn", help="which model (default: rnn)")
    p.add_argument("--steps", type=_positive, default=3, help="time steps to unroll (default: 3)")
    p.add_argument("--out", required=True, help="output file: .svg, .png, .pdf or .dot")
    p.add_argument("--folded", action="store_true", help="one copy of the cell, state edges drawn back into it")
    p.add_argument("--grads", action="store_true", help="colour nodes by gradient norm (runs backward)")
    p.add_argument("--compact", action="store_true", help="one box per time step")
    p.add_argument("--fused", action="store_true",
                   help="LSTM/GRU: draw each step as the one fused op that training runs "
                        "(default: every gate as its own node)")
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


def build_model_graph(model, steps, input_size=2, hidden_size=3, batch=1, seed=0, grads=False, fused=False):
    """Build ``models.<RNN|LSTM|GRU>`` and its loss over ``steps`` random steps; returns the loss.

    The LSTM and GRU show every gate unless ``fused`` (the picture is for reading the
    equations; training runs them fused, with the same values)."""
    import models  # models depends on tinygraph, never the reverse: import only when the command runs

    import tinygraph as tg

    cls = {"rnn": models.RNN, "lstm": models.LSTM, "gru": models.GRU}[model]
    options = {} if model == "rnn" else {"fused": fused}
    net = cls(input_size, hidden_size, rng=seed, **options)
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.normal(size=(steps, batch, input_size)).astype(tg.get_default_dtype()), name="x")
    outputs, _ = net(x)
    loss = (outputs ** 2).mean()
    loss.name = "loss"
    if grads:
        loss.backward(retain_grads=True)
    return loss


def run_draw(args):
    from . import dot, output as render

    ext = os.path.splitext(args.out)[1].lower().lstrip(".")
    if ext not in render.RENDERED_FORMATS + render.SOURCE_FORMATS:
        print(f"tinygraph draw: cannot tell the format of --out {args.out!r}; use .svg, .png, .pdf or .dot")
        return 2
    loss = build_model_graph(args.model, args.steps, args.input_size, args.hidden_size, args.batch,
                             args.seed, grads=args.grads, fused=args.fused)
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
