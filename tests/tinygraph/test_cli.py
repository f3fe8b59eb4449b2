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
