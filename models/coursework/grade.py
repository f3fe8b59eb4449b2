"""Grading: the exercises of an assignment against a namespace, and submitted notebooks in fresh kernels.

``grade_namespace`` runs inside the student's kernel (or in-process, in tests);
``grade_notebook`` executes a submitted notebook top to bottom in a fresh
Jupyter kernel (errors in cells do not stop it), then runs the grading in that
kernel and reads the feedback back; ``grade_path`` does it for a notebook or a
folder of them and writes the grade book (CSV) and one feedback file per student.
"""
from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import re
import tempfile
import time

from .feedback import FAILED, NOT_ATTEMPTED, PASSED, Feedback
from .registry import ASSIGNMENTS, Exercise, exercises, load_all, run_exercise

MARKER = "<<tinygraph-grade>>"
GRADEBOOK_FIELDS = ("student", "notebook", "assignment", "exercise", "status", "points", "max_points", "message")


def load_hidden_checks(path, assignment):
    """The teacher's hidden checks from a Python file: every function ``check_<name>(ns)``
    becomes exercise ``"hidden: <name>"``. A module-level ``ASSIGNMENT`` (a name or a list
    of names) limits the file to those assignments."""
    source = pathlib.Path(path).read_text(encoding="utf-8")
    module = {"__name__": "tinygraph_hidden_checks", "__file__": str(path)}
    exec(compile(source, str(path), "exec"), module)  # the teacher's own file
    wanted = module.get("ASSIGNMENT")
    if wanted is not None and assignment not in ([wanted] if isinstance(wanted, str) else list(wanted)):
        return []
    return [Exercise(assignment, "hidden: " + name[len("check_"):], fn, hidden=True)
            for name, fn in module.items() if name.startswith("check_") and callable(fn)]


def grade_namespace(assignment, ns, hidden=None):
    """Run every exercise of ``assignment`` (and the hidden checks in the file ``hidden``)
    on the namespace ``ns`` (e.g. a notebook's ``globals()``); returns a list of ``Feedback``."""
    checks = exercises(assignment)
    if hidden:
        checks += load_hidden_checks(hidden, assignment)
    return [run_exercise(ex, ns) for ex in checks]


def check(name, ns, assignment=None):
    """Run one exercise now, in a notebook: ``check("rnn_backward", globals())``.

    Returns the ``Feedback`` (its text shows in the notebook)."""
    load_all()
    candidates = [e for a, exs in ASSIGNMENTS.items() if assignment in (None, a) for e in exs if e.name == name]
    if not candidates:
        raise ValueError(f"check: no exercise named {name!r}")
    return run_exercise(candidates[0], ns)


def notebook_assignment(notebook, path=None):
    """The assignment a notebook belongs to: its metadata ``tinygraph.assignment``, else its file name."""
    meta = notebook.get("metadata", {}).get("tinygraph", {})
    if meta.get("assignment"):
        return meta["assignment"]
    load_all()
    stem = pathlib.Path(path).stem if path else ""
    for name in ASSIGNMENTS:
        if name in stem:
            return name
    raise ValueError(f"grade: cannot tell which assignment {path or 'the notebook'} is: its metadata has no "
                     f"'tinygraph': {{'assignment': ...}} and its name contains none of {sorted(ASSIGNMENTS)}")


def _grading_cell(assignment, hidden):
    return (f"import json as _tg_json\nfrom tinygraph.models.coursework import grade_namespace as _tg_grade\n"
            f"print({MARKER!r} + _tg_json.dumps([f.to_dict() for f in "
            f"_tg_grade({assignment!r}, globals(), hidden={None if hidden is None else str(hidden)!r})]))\n")


def grade_notebook(path, hidden=None, timeout=120, kernel_name="python3"):
    """Execute the notebook at ``path`` in a fresh kernel and grade it.

    Parameters
    ----------
    path : path-like
        The submitted notebook.
    hidden : path-like, optional
        A teacher's file of hidden checks (see ``load_hidden_checks``).
    timeout : float
        Seconds for the whole notebook; when they run out the remaining exercises
        fail with "time limit".

    Returns
    -------
    (assignment, list of Feedback)
    """
    assignment, feedback, _ = execute_and_grade(path, hidden=hidden, timeout=timeout, kernel_name=kernel_name)
    return assignment, feedback


def execute_and_grade(path, hidden=None, timeout=120, kernel_name="python3"):
    """Like ``grade_notebook``, and also returns the executed notebook (with its outputs
    and, last, the grading cell): ``(assignment, feedback, notebook)``."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = pathlib.Path(path)
    notebook = nbformat.read(path, as_version=4)
    assignment = notebook_assignment(notebook, path)
    checks = exercises(assignment) + (load_hidden_checks(hidden, assignment) if hidden else [])
    hidden = pathlib.Path(hidden).resolve() if hidden else None
    notebook.cells.append(nbformat.v4.new_code_cell(_grading_cell(assignment, hidden)))
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory() as workdir:  # the student's code writes files here, not next to ours
        kernel = AsyncKernelManager(kernel_name=kernel_name, **_kernel_transport(workdir))
        client = NotebookClient(notebook, km=kernel, allow_errors=True,
                                timeout=None, resources={"metadata": {"path": workdir}},
                                timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))
        try:
            client.execute()
        except (CellTimeoutError, DeadKernelError, RuntimeError) as exc:
            reason = ("time limit" if isinstance(exc, CellTimeoutError) else f"the kernel stopped: "
                      f"{type(exc).__name__}")
            return assignment, [Feedback(e.name, FAILED, f"the notebook did not finish ({reason}, {timeout:g} s)",
                                         0.0, e.points, e.hidden) for e in checks], notebook
        finally:
            if kernel.has_kernel:  # a kernel manager we made is ours to stop (nbclient stops only its own)
                run_sync(kernel.shutdown_kernel)(now=True)
    for output in notebook.cells[-1].get("outputs", []):
        for line in output.get("text", "").splitlines():
            if line.startswith(MARKER):
                feedback = [Feedback(d["exercise"], d["status"], d["message"], d["points"],
                                     d["max_points"], d["hidden"]) for d in json.loads(line[len(MARKER):])]
                return assignment, _blame_failed_cells(feedback, notebook.cells[:-1]), notebook
    errors = [o for o in notebook.cells[-1].get("outputs", []) if o.get("output_type") == "error"]
    why = f"{errors[0]['ename']}: {errors[0]['evalue']}" if errors else "no result"
    return assignment, [Feedback(e.name, FAILED, f"grading failed in the notebook's kernel ({why})", 0.0,
                                 e.points, e.hidden) for e in checks], notebook


def _kernel_transport(workdir):
    """Unix sockets in the scratch folder where the system has them: not a localhost TCP port,
    which any local user could connect to (jupyter warns about that on every start). Windows,
    or a folder path too long for a socket name (about 100 bytes), keeps jupyter's TCP default."""
    prefix = os.path.join(workdir, "kernel")
    if os.name == "posix" and len(os.fsencode(prefix)) < 90:
        return {"transport": "ipc", "ip": prefix}
    return {}


def _blame_failed_cells(feedback, cells):
    """An exercise 'not attempted' because its function is not defined, while a cell that
    defines that function raised (a syntax error, a NameError while defining it, ...), was
    attempted: report it as failed with the cell's error, which is what the student must fix."""
    errors = {}  # function name -> "ename: evalue" of the cell that should have defined it
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        raised = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if raised:
            for name in re.findall(r"^\s*def\s+(\w+)\s*\(", cell.get("source", ""), flags=re.M):
                errors.setdefault(name, f"{raised[0].get('ename')}: {raised[0].get('evalue')}")
    out = []
    for f in feedback:
        missing = re.match(r"(\w+) is not defined$", f.message) if f.status == NOT_ATTEMPTED else None
        if missing and missing.group(1) in errors:
            name = missing.group(1)
            f = Feedback(f.exercise, FAILED, f"{name} is not defined because the cell that defines it raised "
                         f"{errors[name]}; fix that cell and run it again", 0.0, f.max_points, f.hidden)
        out.append(f)
    return out


def find_notebooks(path):
    """``[(student, notebook path)]`` for a notebook or a folder (searched recursively).

    The student is the notebook's folder below ``path`` when there is one
    (``submissions/alice/02_rnn_bptt.ipynb`` -> ``alice``), else the file name's stem.
    """
    path = pathlib.Path(path)
    if path.is_file():
        return [(path.stem, path)]
    if not path.is_dir():
        raise FileNotFoundError(f"grade: {path} is neither a notebook nor a folder")
    found = []
    for nb in sorted(path.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb.parts:
            continue
        rel = nb.relative_to(path)
        found.append((rel.parts[0] if len(rel.parts) > 1 else nb.stem, nb))
    return found


def feedback_text(student, results):
    """The per-student feedback file's text: one block per notebook, one line per exercise."""
    lines = [f"Feedback for {student}", ""]
    for notebook, assignment, feedback in results:
        got = sum(f.points for f in feedback)
        total = sum(f.max_points for f in feedback)
        lines.append(f"{notebook} ({assignment}): {got:g} / {total:g}")
        for f in feedback:
            lines.append(f"  {f}")
        lines.append("")
    return "\n".join(lines)


def _atomic_write(path, text):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def grade_path(path, out_dir, hidden=None, timeout=120, on_notebook=None):
    """Grade a notebook or a folder of submitted notebooks.

    Writes ``out_dir/gradebook.csv`` (one row per student, notebook and exercise)
    and ``out_dir/feedback/<student>.txt``. ``on_notebook(student, path, feedback)``
    is called after each notebook (the CLI prints progress with it).

    Returns
    -------
    dict
        ``student -> [(notebook name, assignment, [Feedback])]``.
    """
    out_dir = pathlib.Path(out_dir)
    notebooks = find_notebooks(path)
    if not notebooks:
        raise FileNotFoundError(f"grade: no .ipynb notebooks under {path}")
    by_student = {}
    rows = []
    for student, nb in notebooks:
        try:
            assignment, feedback = grade_notebook(nb, hidden=hidden, timeout=timeout)
        except ValueError as exc:  # not a coursework notebook, or not a notebook at all
            assignment, feedback = "?", [Feedback("notebook", FAILED, str(exc))]
        except Exception as exc:  # an unreadable file must not stop the other students' grading
            assignment, feedback = "?", [Feedback("notebook", FAILED, f"{type(exc).__name__}: {exc}")]
        by_student.setdefault(student, []).append((nb.name, assignment, feedback))
        for f in feedback:
            rows.append({"student": student, "notebook": nb.name, "assignment": assignment, "exercise": f.exercise,
                         "status": f.status, "points": f"{f.points:g}", "max_points": f"{f.max_points:g}",
                         "message": f.message})
        if on_notebook:
            on_notebook(student, nb, feedback)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=GRADEBOOK_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(out_dir / "gradebook.csv", buf.getvalue())
    for student, results in by_student.items():
        _atomic_write(out_dir / "feedback" / f"{_safe(student)}.txt", feedback_text(student, results))
    return by_student


def _safe(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "student"


def all_passed(by_student):
    return all(f.status == PASSED for results in by_student.values() for _, _, fb in results for f in fb)


__all__ = ["grade_namespace", "grade_notebook", "grade_path", "find_notebooks", "feedback_text", "check",
           "load_hidden_checks", "notebook_assignment", "all_passed", "NOT_ATTEMPTED"]
