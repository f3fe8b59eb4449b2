"""examples/train_regression.py (the README's "train a model" example) runs and learns the line."""
import pathlib
import re
import runpy

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "train_regression.py"


def test_example_runs_and_recovers_the_line(capsys):
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)", out)]
    assert losses[0] > 1.0 and losses[-1] < 0.01
    learned = [float(v) for v in re.search(r"learned W \[\s*(\S+)\s+(\S+)\s*\] b \[(\S+)\]", out).groups()]
    assert abs(learned[0] - 2) < 0.05 and abs(learned[1] + 3) < 0.05 and abs(learned[2] - 0.5) < 0.05
