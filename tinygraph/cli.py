"""The ``tinygraph`` command line."""
from __future__ import annotations

import argparse
import shutil
import sys

import numpy as np

from . import __version__
from .config import get_default_dtype


def _info(args):
    import graphviz

    dot = shutil.which("dot")
    print(f"tinygraph {__version__}")
    print(f"python    {sys.version.split()[0]}")
    print(f"numpy     {np.__version__}")
    print(f"graphviz  {graphviz.__version__} (Python package)")
    print(f"dot       {dot or 'not found: install Graphviz (e.g. apt-get install graphviz) to render drawings'}")
    print(f"default dtype {np.dtype(get_default_dtype()).name}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygraph", description=__doc__)
    parser.add_argument("--version", action="version", version=f"tinygraph {__version__}")
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("info", help="print versions, default dtype and whether Graphviz 'dot' is found")
    p.set_defaults(func=_info)
    from .drawing.cli import add_draw_parser
    add_draw_parser(sub)
    for add_parser in _plugin_commands():
        add_parser(sub)
    return parser


COMMANDS_ENTRY_POINT_GROUP = "tinygraph.commands"


def _plugin_commands():
    """Subcommands that other installed packages add (``tinygraph train``, ``grade``, ...).

    ``tinygraph`` never imports ``tinygraph.models``: the models package declares
    its commands in the ``tinygraph.commands`` entry-point group, each entry a
    function ``add_parser(subparsers)`` that registers one subcommand.
    """
    from importlib.metadata import entry_points

    return [entry.load() for entry in sorted(entry_points(group=COMMANDS_ENTRY_POINT_GROUP),
                                             key=lambda e: e.name)]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    try:
        status = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader went away (``tinygraph info | head -2``): stop quietly, as Unix tools do.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
