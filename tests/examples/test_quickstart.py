"""examples/quickstart.py (the README's main job) runs, trains its LSTM and draws."""
import pathlib
import re
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_runs_learns_and_draws(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "gradcheck: True" in out
    assert "template instances: {'LSTMCell': 12}" in out
    losses = [float(v) for v in re.findall(r"step +\d+ +loss ([0-9.]+)", out)]
    assert len(losses) == 6
    assert losses[-1] < 0.05 < losses[0] and losses[-1] < losses[0] / 5  # it learned to recall x_1
    rnn = re.search(r"tanh RNN +t=1: (\S+)", out).group(1)
    lstm = re.search(r"LSTM +t=1: (\S+)", out).group(1)
    assert float(rnn) < float(lstm)  # the tanh RNN's gradient vanishes faster
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 3 and all(name.startswith("lstm_") for name in written)
    assert all((tmp_path / "out" / name).stat().st_size > 0 for name in written)
