"""Writing drawings to files and showing them in Jupyter, with or without Graphviz's ``dot``.

The DOT source never needs ``dot``; ``.svg``/``.png``/``.pdf`` do. Files are
written atomically (a temporary file in the same folder, then ``os.replace``),
so an interrupted render never leaves a half-written picture behind.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import graphviz

INSTALL_HINT = (
    "install the Graphviz programs (the Python package 'graphviz' alone is not enough): "
    "apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
    "or conda install graphviz"
)
RENDERED_FORMATS = ("svg", "png", "pdf")
SOURCE_FORMATS = ("dot", "gv")
PAGE_FORMATS = ("html",)  # the interactive page (html.py)


DOT_TIMEOUT = 60.0  # seconds; a drawing small enough to read renders in well under a second


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is needed to render a picture but is not installed."""


class DotError(RuntimeError):
    """Graphviz ``dot`` failed on a drawing or did not finish in time (the message says which,
    with what ``dot`` printed)."""


def pipe(digraph, fmt, timeout=DOT_TIMEOUT):
    """Run ``dot -T<fmt>`` on the drawing's DOT source and return the bytes it writes.

    Unlike ``graphviz.Digraph.pipe`` it has a time limit: a ``dot`` that hangs
    (or takes minutes over a huge graph) is stopped after ``timeout`` seconds.

    Raises
    ------
    GraphvizNotFoundError
        ``dot`` is not installed.
    DotError
        ``dot`` exited with an error (its message is included) or ran longer than ``timeout``.
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"render: timeout must be a positive number of seconds or None, got {timeout!r}")
    program = shutil.which("dot")
    if program is None:
        raise GraphvizNotFoundError(f"render: the Graphviz 'dot' program is not installed; to render pictures, "
                                    f"{INSTALL_HINT}.")
    source = digraph.source.encode("utf-8")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=source, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DotError(f"render: Graphviz 'dot' did not finish within {timeout:g} s and was stopped; the drawing "
                       f"is probably too large to lay out (draw fewer steps, or use compact=True or "
                       f"folded=True), or pass a longer timeout") from None
    except OSError as exc:  # on PATH but not runnable: a broken install
        raise GraphvizNotFoundError(f"render: the Graphviz 'dot' program ({program}) could not be run ({exc}); "
                                    f"to render pictures, {INSTALL_HINT}.") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip() or "(no message)"
        raise DotError(f"render: Graphviz 'dot' failed (exit status {done.returncode}) making {fmt.upper()}: "
                       f"{message[:2000]}")
    return done.stdout


def dot_available():
    """Whether the Graphviz ``dot`` program is on ``PATH``."""
    return shutil.which("dot") is not None


class Drawing(graphviz.Digraph):
    """A ``graphviz.Digraph`` that shows its DOT source in Jupyter when ``dot`` is missing
    (instead of a traceback)."""

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        if dot_available():
            try:  # through ``pipe``: with a time limit, and dot's own message if it fails
                return {"image/svg+xml": pipe(self, "svg").decode("utf-8")}
            except DotError as exc:
                return {"text/plain": f"# {exc}\n{self.source}"}
            except GraphvizNotFoundError:
                pass
        return {"text/plain": f"# Graphviz 'dot' not found, so here is the DOT source; to see the picture, "
                              f"{INSTALL_HINT}\n{self.source}"}


def _format_of(path, where):
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in RENDERED_FORMATS + SOURCE_FORMATS + PAGE_FORMATS:
        known = ", ".join("." + e for e in RENDERED_FORMATS + SOURCE_FORMATS + PAGE_FORMATS)
        raise ValueError(f"{where}: cannot tell the output format of {os.fspath(path)!r} "
                         f"(extension {'.' + ext if ext else 'missing'}); expected one of {known}")
    return ext


def _new_file_mode(path):
    """The permissions a plain ``open(path, "w")`` would give: the old file's, or 0o666 minus umask.
    (``mkstemp`` creates files readable by their owner only, wrong for pictures meant to be shared.)"""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def replace_atomically(path, write):
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then move it onto ``path``.

    Readers never see a half-written file; on error the temporary file is removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_atomic(path, data):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    replace_atomically(path, write)


def source(digraph):
    """The DOT text of a drawing (works without Graphviz installed)."""
    _check_digraph(digraph, "source")
    return digraph.source


def render(digraph, path, dot_fallback=True, dpi=None, timeout=DOT_TIMEOUT):
    """Write ``digraph`` to ``path``, the format chosen by the extension.

    Parameters
    ----------
    digraph : graphviz.Digraph
        What ``tinygraph.draw`` returned.
    path : str or os.PathLike
        ``.svg``, ``.png`` or ``.pdf`` (rendered by Graphviz ``dot``), or
        ``.dot``/``.gv`` (the DOT source; needs no Graphviz), or ``.html``: a
        self-contained interactive page (``tinygraph.drawing.html``; needs ``dot``).
    dot_fallback : bool
        When ``dot`` is missing, still write the DOT source next to ``path``
        (same name, ``.dot`` extension) before raising.
    dpi : int, optional
        Resolution of a ``.png`` (Graphviz's default is 96; 150 reads well on
        high-density screens). Ignored for the other formats.
    timeout : float or None
        Seconds ``dot`` may run before it is stopped (``DotError``); ``None``: no limit.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        Unknown extension.
    GraphvizNotFoundError
        A picture format was asked for and ``dot`` is not installed; the
        message says how to install it and where the DOT source went.
    DotError
        ``dot`` failed or ran longer than ``timeout``; nothing is written.
    IsADirectoryError
        ``path`` is an existing folder.
    """
    _check_digraph(digraph, "render")
    fmt = _format_of(path, "render")
    path = os.fspath(path)
    if os.path.isdir(path):
        example = os.path.join(path, "graph." + fmt)
        raise IsADirectoryError(f"render: {path!r} is a folder; give a file name (e.g. {example!r})")
    if fmt in SOURCE_FORMATS:
        _write_atomic(path, digraph.source.encode("utf-8"))
        return path
    if fmt in PAGE_FORMATS:
        from .html import write_page

        return write_page(digraph, path)
    if dpi is not None and (isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or dpi <= 0):
        raise ValueError(f"render: dpi must be a positive number, got {dpi!r}")
    if not dot_available():
        _raise_not_found(digraph, path, dot_fallback)
    if fmt == "png" and dpi is not None:
        digraph = digraph.copy()
        digraph.attr(dpi=str(dpi))
    try:
        data = pipe(digraph, fmt, timeout)
    except GraphvizNotFoundError:
        _raise_not_found(digraph, path, dot_fallback)
    _write_atomic(path, data)
    return path


save = render


def _raise_not_found(digraph, path, dot_fallback):
    where = ""
    if dot_fallback:
        dot_path = os.path.splitext(path)[0] + ".dot"
        _write_atomic(dot_path, digraph.source.encode("utf-8"))
        where = f" The DOT source was written to {dot_path}."
    raise GraphvizNotFoundError(
        f"render: the Graphviz 'dot' program is not installed, so {path} could not be drawn.{where} "
        f"To render pictures, {INSTALL_HINT}."
    ) from None


def _check_digraph(digraph, where):
    if not isinstance(digraph, (graphviz.Digraph, graphviz.Graph, graphviz.Source)):
        raise TypeError(f"{where}: expected the graphviz.Digraph returned by tinygraph.draw, "
                        f"got {type(digraph).__name__}")
