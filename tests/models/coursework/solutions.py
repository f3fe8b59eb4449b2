"""Load the functions of a solution notebook into a namespace, optionally with a mistake injected.

Only the setup cell (the first code cell) and the cells holding solution regions
run: the grader's checks call those functions, so this is enough and fast.
"""
import pathlib

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[3]
SOLUTIONS = ROOT / "notebooks" / "solutions"
EXERCISES = ROOT / "notebooks" / "exercises"
NOTEBOOK = {
    "01_autodiff": "01_autodiff.ipynb",
    "02_rnn_bptt": "02_rnn_bptt.ipynb",
    "03_vanishing_exploding": "03_vanishing_exploding.ipynb",
    "04_lstm": "04_lstm.ipynb",
    "05_sequence_patterns": "05_sequence_patterns.ipynb",
}


def exercise_cells(assignment, folder=SOLUTIONS):
    nb = nbformat.read(folder / NOTEBOOK[assignment], as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    marker = "### BEGIN SOLUTION" if folder == SOLUTIONS else "NotImplementedError(\"exercise"
    return [code[0]] + [s for s in code[1:] if marker in s]


def namespace(assignment, mutate=None, folder=SOLUTIONS):
    """Run the notebook's exercise cells; ``mutate=(old, new)`` replaces text first (it must occur)."""
    source = "\n\n".join(exercise_cells(assignment, folder))
    if mutate is not None:
        old, new = mutate
        assert source.count(old) == 1, f"the mutation's text must occur once in {assignment}: {old!r}"
        source = source.replace(old, new)
    ns = {"__name__": "__main__"}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # re-registering the notebook's ops
        exec(compile(source, f"<{assignment}>", "exec"), ns)
    return ns
