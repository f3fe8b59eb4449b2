"""The README's two commands are what CI runs, so they stay literally true.

The first command sets up a virtual environment, installs what the main job needs
(the project with the ``tasks``, ``progress`` and ``plot`` extras, not the test tools)
and runs it (``tinygraph train shakespeare``); the second installs the test tools and
runs the suite. ``.ci/run`` makes its own
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


def test_the_readme_has_two_commands_the_first_runs_the_main_job_without_test_tools():
    setup, tests = readme_commands()
    assert setup.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    extras = re.search(r'pip install -e "\.\[([a-z,]+)\]"', setup).group(1).split(",")
    assert sorted(extras) == ["plot", "progress", "tasks"], "the main job installs what it needs, no test tools"
    assert setup.endswith("&& tinygraph train shakespeare")
    assert tests.endswith("python -m pytest") and '".[test]"' in tests


def test_ci_runs_the_readme_commands_as_written():
    setup, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    after_venv = setup.split(". .venv/bin/activate && ", 1)[1]
    assert after_venv in ci
    assert tests in ci
    assert "no test passed" in ci and "graphviz" in ci
