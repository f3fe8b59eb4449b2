"""examples/make_pictures.py regenerates every docs/ picture."""
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir)
SCRIPT = os.path.join(ROOT, "examples", "make_pictures.py")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_make_pictures_writes_every_docs_picture(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("models")
    run = subprocess.run([sys.executable, SCRIPT, "--out-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    expected = {"rnn_unrolled.svg", "rnn_unrolled.png", "lstm_folded.svg", "lstm_folded.png",
                "rnn_grads.svg", "rnn_grads.png", "grad_norms.png", "exploding.png",
                "limitations.png", "bptt_backward.gif"}
    assert set(os.listdir(tmp_path)) == expected
    assert expected <= set(os.listdir(os.path.join(ROOT, "docs")))
    # the RNN's gradient at step 0 is orders of magnitude below the LSTM's (vanishing gradient)
    lines = dict(line.split(": ", 1) for line in run.stdout.splitlines() if "||dL/dh_0||" in line)
    rnn = float(lines["tanh RNN"].split("= ")[1].split(",")[0])
    lstm = float(lines["LSTM (forget bias 1)"].split("= ")[1].split(",")[0])
    assert rnn < lstm / 100

    # Jacobian products vanish for spectral radius 0.7 and grow for 1.5; clipping keeps training finite
    jac = {k: float(v.split("= ")[1]) for k, v in
           (line.split(": ", 1) for line in run.stdout.splitlines() if "||dh_T/dh_0||" in line)}
    assert jac["tanh RNN, spectral radius 0.7"] < 1e-4 < 1.0 < jac["tanh RNN, spectral radius 1.5"]
    assert "training with no clipping: first loss" in run.stdout and "diverged at step" in run.stdout
    clipped = [line for line in run.stdout.splitlines() if line.startswith("training with clip_grad_norm_")]
    assert len(clipped) == 1 and "final loss" in clipped[0]
    first, final = (float(x) for x in re.findall(r"loss ([0-9.]+)", clipped[0]))
    assert final < first

    # short effective memory: the tanh RNN stops learning the recall long before the LSTM does
    recall = {int(T): (float(r), float(lstm)) for T, r, lstm in
              re.findall(r"recall after T=(\d+): tanh RNN loss/var ([0-9.]+), LSTM loss/var ([0-9.]+)", run.stdout)}
    assert recall[5][0] < 0.1 and recall[5][1] < 0.1
    assert recall[20][0] > 0.5 > 0.1 > recall[20][1]
    # the state bottleneck: accuracy falls with length, less with a larger state
    reversal = {label: [float(a) for a in re.findall(r"length \d+: ([0-9.]+)", line)]
                for label, line in re.findall(r"reversal with a (state of \d+ units): (.*)", run.stdout)}
    small, large = reversal["state of 8 units"], reversal["state of 32 units"]
    assert small[0] > 0.9 and small[-1] < 0.6 and all(b >= a for a, b in zip(small, large))
