"""Generate the student notebooks (notebooks/exercises/) from the solution notebooks (notebooks/solutions/).

In a solution notebook, every answer sits between two marker lines, as in nbgrader::

    def rnn_step_forward(x, h_prev, W_xh, W_hh, b_h):
        ### BEGIN SOLUTION
        return np.tanh(x @ W_xh + h_prev @ W_hh + b_h)
        ### END SOLUTION

The student version replaces each region by a stub at the marker's indentation,
``raise NotImplementedError("exercise: rnn_step_forward")`` (the name is the
enclosing function, ``Class.method`` for a method), and drops every output.
The grader reports such a stub as "not attempted".

Usage, from the repository root::

    python notebooks/make_exercises.py            # (re)write notebooks/exercises/*.ipynb
    python notebooks/make_exercises.py --check    # exit 1 if any is missing or out of date

The test suite runs the check, so the student notebooks are never edited by hand.
"""
from __future__ import annotations

import argparse
import copy
import os
import pathlib
import re
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
SOLUTIONS = HERE / "solutions"
EXERCISES = HERE / "exercises"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_DEF = re.compile(r"^(\s*)(def|class)\s+(\w+)")


def stub_source(source, where="cell"):
    """The cell's source with every solution region replaced by a NotImplementedError stub."""
    out, scopes, inside = [], [], False
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if inside:
            if stripped == END:
                inside = False
            elif stripped == BEGIN:
                raise ValueError(f"{where}, line {number}: {BEGIN} inside a solution region")
            continue
        if stripped == END:
            raise ValueError(f"{where}, line {number}: {END} without {BEGIN}")
        match = _DEF.match(line)
        if match:
            indent = len(match.group(1))
            scopes = [s for s in scopes if s[0] < indent] + [(indent, match.group(3))]
        if stripped == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            enclosing = [name for level, name in scopes if level < len(indent)]
            name = ".".join(enclosing) or "this cell"
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f'{indent}raise NotImplementedError("exercise: {name}")')
            inside = True
            continue
        out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out)


def student_notebook(solution, name):
    """The student version of a solution notebook (an nbformat NotebookNode)."""
    import nbformat

    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = stub_source(cell.source, where=f"{name}, cell {index}")
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.setdefault("tinygraph", {})["student"] = True
    note = nbformat.v4.new_markdown_cell(
        f"*Student version, generated from `notebooks/solutions/{name}` by `notebooks/make_exercises.py`. "
        f"Fill in the cells that raise `NotImplementedError`.*")
    note.id = "student-version-note"
    nb.cells.insert(0, note)
    return nb


def render(path):
    import nbformat

    solution = nbformat.read(path, as_version=4)
    return nbformat.writes(student_notebook(solution, path.name)) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the student notebooks are up to date")
    args = parser.parse_args(argv)
    stale = []
    sources = sorted(SOLUTIONS.glob("*.ipynb"))
    for path in sources:
        target = EXERCISES / path.name
        text = render(path)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not args.check:
            EXERCISES.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=EXERCISES, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, target)
    orphans = sorted(set(EXERCISES.glob("*.ipynb")) - {EXERCISES / p.name for p in sources})
    for name in stale:
        print(("out of date: " if args.check else "wrote ") + str(name.relative_to(HERE.parent)))
    for name in orphans:
        print(f"no solution notebook for {name.relative_to(HERE.parent)}")
    return 1 if args.check and (stale or orphans) else 0


if __name__ == "__main__":
    sys.exit(main())
