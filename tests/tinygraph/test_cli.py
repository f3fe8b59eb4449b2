import subprocess
import sys

import tinygraph as tg
from tinygraph.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert tg.__version__ in capsys.readouterr().out


def test_info_reports_versions_dtype_and_dot(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "tinygraph" in out and "numpy" in out and "default dtype float32" in out and "dot" in out


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "tinygraph", "info"], capture_output=True, text=True, check=True)
    assert "default dtype" in result.stdout


def test_info_into_a_closed_pipe_is_quiet():
    """``tinygraph info | head -1`` must not end in a BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone, as after ``head`` exits
    try:
        run = subprocess.run([sys.executable, "-m", "tinygraph", "info"], stdout=write_end,
                             stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert run.returncode == 0
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr, run.stderr
