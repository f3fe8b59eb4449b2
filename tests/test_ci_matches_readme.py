"""The README's two commands are what CI runs, so they stay literally true.

The first command sets up a virtual environment, installs only what the main job
needs (``pip install -e .``: numpy and graphviz) and runs the quickstart; the
second installs the test tools and runs the suite. ``.ci/run`` makes its own
virtual environment, then must run both commands as written.
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Two commands"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_has_two_commands_the_first_installs_no_extras():
    setup, tests = readme_commands()
    assert setup.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    install = re.search(r"pip install (-e \S+)", setup).group(1)
    assert install == "-e .", "the main job installs no extras (numpy and graphviz only)"
    assert "python examples/quickstart.py" in setup
    assert tests.endswith("python -m pytest") and '".[test]"' in tests


def test_ci_runs_the_readme_commands_as_written():
    setup, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    after_venv = setup.split(". .venv/bin/activate && ", 1)[1]
    assert after_venv in ci
    assert tests in ci
    assert "no test passed" in ci and "graphviz" in ci
