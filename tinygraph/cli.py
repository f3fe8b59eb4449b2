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
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
