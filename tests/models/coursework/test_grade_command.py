"""``tinygraph grade``: a folder of submissions -> CSV grade book, feedback per student, exit code;
hidden checks; time limit; bad paths."""
import csv
import json
import shutil
import pathlib
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from tinygraph.models import coursework  # noqa: E402

from .solutions import EXERCISES, SOLUTIONS, namespace  # noqa: E402

HIDDEN = '''
ASSIGNMENT = "02_rnn_bptt"
import numpy as np
from tinygraph.models.coursework import Wrong, need


def check_long_sequence(ns):
    """A longer sequence than the notebook's checks use."""
    rng = np.random.default_rng(7)
    xs, h0 = rng.normal(size=(40, 2, 3)), np.zeros((2, 4))
    W_xh, W_hh, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 4)) * 0.3, np.zeros(4)
    hs = need(ns, "rnn_forward")(xs, h0, W_xh, W_hh, b)
    if np.asarray(hs).shape != (40, 2, 4):
        raise Wrong("rnn_forward: wrong shape on a 40-step sequence")


def check_secret_teacher_rule(ns):
    assert "rnn_step_forward" in ns and ns.get("STUDENT_ID"), "set STUDENT_ID in your notebook"
'''


def _tinygraph(*args):
    return subprocess.run([sys.executable, "-m", "tinygraph", *args], capture_output=True, text=True, timeout=600)


def test_grade_a_folder_writes_the_grade_book_and_feedback(tmp_path):
    subs = tmp_path / "submissions"
    (subs / "alice").mkdir(parents=True)
    (subs / "bob").mkdir()
    shutil.copy(SOLUTIONS / "02_rnn_bptt.ipynb", subs / "alice" / "02_rnn_bptt.ipynb")
    shutil.copy(EXERCISES / "02_rnn_bptt.ipynb", subs / "bob" / "02_rnn_bptt.ipynb")
    hidden = tmp_path / "hidden_checks.py"
    hidden.write_text(HIDDEN)
    result = _tinygraph("grade", str(subs), "--out", str(tmp_path / "grades"), "--hidden", str(hidden))
    assert result.returncode == 1, result.stdout + result.stderr  # bob has not attempted anything
    rows = list(csv.DictReader(open(tmp_path / "grades" / "gradebook.csv")))
    by = {(r["student"], r["exercise"]): r for r in rows}
    exercises = [e.name for e in coursework.exercises("02_rnn_bptt")]
    assert {s for s, _ in by} == {"alice", "bob"}
    for name in exercises:
        assert by["alice", name]["status"] == "passed" and by["alice", name]["points"] == "1"
        assert by["bob", name]["status"] == "not attempted" and by["bob", name]["points"] == "0"
    # the hidden checks ran too: one passes for alice, the other names what is missing
    assert by["alice", "hidden: long_sequence"]["status"] == "passed"
    assert by["alice", "hidden: secret_teacher_rule"]["status"] == "failed"
    assert "set STUDENT_ID" in by["alice", "hidden: secret_teacher_rule"]["message"]
    assert by["bob", "hidden: long_sequence"]["status"] == "not attempted"
    alice = (tmp_path / "grades" / "feedback" / "alice.txt").read_text()
    assert "02_rnn_bptt.ipynb (02_rnn_bptt): 5 / 6" in alice and "[passed] rnn_backward" in alice
    bob = (tmp_path / "grades" / "feedback" / "bob.txt").read_text()
    assert "[not attempted] rnn_backward: rnn_backward still raises NotImplementedError" in bob
    assert "alice: 02_rnn_bptt.ipynb: 5/6 exercises passed" in result.stdout


def test_exit_code_zero_when_everything_passes_and_a_mistake_is_reported(tmp_path):
    nb = nbformat.read(SOLUTIONS / "03_vanishing_exploding.ipynb", as_version=4)
    good = tmp_path / "carol.ipynb"
    nbformat.write(nb, good)
    result = _tinygraph("grade", str(good), "--out", str(tmp_path / "g1"))
    assert result.returncode == 0, result.stdout + result.stderr
    # the kernel runs over unix sockets (no localhost TCP port for other users) and is stopped by us
    assert "TCP" not in result.stderr and "Parent appears to have exited" not in result.stderr, result.stderr
    for cell in nb.cells:  # inject the per-parameter clipping mistake into the submission
        cell.source = cell.source.replace("scale = min(1.0, max_norm / (total + 1e-12))",
                                          "scale = min(1.0, max_norm / (total + 1e-12)) if False else 1.0")
    bad = tmp_path / "dave.ipynb"
    nbformat.write(nb, bad)
    result = _tinygraph("grade", str(bad), "--out", str(tmp_path / "g2"))
    assert result.returncode == 1
    row = [r for r in csv.DictReader(open(tmp_path / "g2" / "gradebook.csv")) if r["exercise"] == "clip_grad_norm"]
    assert row[0]["status"] == "failed" and "parameter W_xh scaled by 1" in row[0]["message"]


def test_time_limit_and_kernel_errors_fail_the_notebook_not_the_grader(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["tinygraph"] = {"assignment": "01_autodiff"}
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]
    slow = tmp_path / "slow.ipynb"
    nbformat.write(nb, slow)
    before = _kernel_processes()
    assignment, feedback = coursework.grade_notebook(slow, timeout=5)
    assert assignment == "01_autodiff"
    assert all(f.status == "failed" and "time limit" in f.message for f in feedback)
    assert _kernel_processes() <= before  # the timed-out kernel was shut down, not left running


def _kernel_processes():
    """The pids of running ipykernel processes (empty where /proc is not there)."""
    pids = set()
    for entry in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            if b"ipykernel" in (entry / "cmdline").read_bytes():
                pids.add(entry.name)
        except OSError:
            continue
    return pids


def test_unknown_notebooks_and_paths_are_clear(tmp_path):
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, tmp_path / "random.ipynb")
    with pytest.raises(ValueError, match="cannot tell which assignment"):
        coursework.grade_notebook(tmp_path / "random.ipynb")
    result = _tinygraph("grade", str(tmp_path / "missing"), "--out", str(tmp_path / "g"))
    assert result.returncode == 2 and "neither a notebook nor a folder" in result.stderr


def test_missing_functions_are_not_attempted_in_process():
    ns = namespace("02_rnn_bptt")
    del ns["rnn_backward"]
    results = {f.exercise: f for f in coursework.grade_namespace("02_rnn_bptt", ns)}
    assert results["rnn_backward"].status == "not attempted"
    assert results["rnn_backward"].message == "rnn_backward is not defined"
    assert results["rnn_forward"].passed


def test_feedback_round_trips_as_json():
    f = coursework.Feedback("x", "failed", "msg", 0.0, 1.0)
    assert json.loads(json.dumps(f.to_dict()))["status"] == "failed"
    assert str(f) == "[failed] x: msg" and repr(f) == str(f)


def test_a_cell_that_fails_to_define_an_exercise_is_reported_with_its_error(tmp_path):
    """A student whose answer cell has a syntax error (or raises while defining the function) did
    attempt it: the feedback is 'failed' with the cell's error, not 'not attempted: ... is not defined'."""
    nb = nbformat.read(SOLUTIONS / "02_rnn_bptt.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.lstrip().startswith("def rnn_backward("):
            cell.source = cell.source.replace("def rnn_backward(dhs, xs, h0, hs, W_xh, W_hh):",
                                              "def rnn_backward(dhs, xs, h0, hs, W_xh, W_hh)", 1)
            break
    else:
        pytest.fail("no cell defines rnn_backward")
    path = tmp_path / "erin.ipynb"
    nbformat.write(nb, path)
    _, feedback = coursework.grade_notebook(path, timeout=120)
    by = {f.exercise: f for f in feedback}
    assert by["rnn_backward"].status == "failed", by["rnn_backward"].message
    assert "SyntaxError" in by["rnn_backward"].message and "rnn_backward" in by["rnn_backward"].message
    assert by["rnn_forward"].status == "passed"


@pytest.mark.parametrize("flags, words", [
    (["--hidden", "no_such_checks.py"], "--hidden"), (["--timeout", "-1"], "--timeout"),
    (["--timeout", "0"], "--timeout"),
])
def test_the_teachers_bad_flags_stop_before_any_student_is_graded(tmp_path, flags, words):
    """A missing hidden-checks file failed every student ('notebook: FileNotFoundError') and wrote
    a grade book; a negative time limit was accepted."""
    shutil.copy(SOLUTIONS / "01_autodiff.ipynb", tmp_path / "ann.ipynb")
    result = _tinygraph("grade", str(tmp_path / "ann.ipynb"), "--out", str(tmp_path / "g"), *flags)
    assert result.returncode == 2 and words in result.stderr, result.stdout + result.stderr
    assert not (tmp_path / "g").exists() and "ann" not in result.stdout


def test_an_unwritable_out_stops_before_any_student_is_graded(tmp_path):
    shutil.copy(SOLUTIONS / "01_autodiff.ipynb", tmp_path / "ann.ipynb")
    (tmp_path / "taken").write_text("a file, not a folder")
    result = _tinygraph("grade", str(tmp_path / "ann.ipynb"), "--out", str(tmp_path / "taken"))
    assert result.returncode == 2 and "--out" in result.stderr and "ann" not in result.stdout
