"""Gradient norms over time and their plot."""
import sys

import numpy as np
import pytest
from conftest import Elman, sequence

import tinygraph as tg
from tinygraph.drawing import plots


def unrolled(steps=8):
    cell = Elman(3, 4, seed=2)
    cell.W_hh.data *= 0.3
    outputs, h = tg.unroll(cell, sequence(steps))
    loss = (h ** 2).sum()
    loss.backward(retain_grads=True)
    return outputs


def test_step_grad_norms_are_total_gradients_of_each_step():
    outputs = unrolled()
    norms = plots.step_grad_norms(outputs)
    assert norms.shape == (8,)
    expected = [np.linalg.norm(h.grad) for h in outputs.parents]
    np.testing.assert_allclose(norms, expected)
    assert np.all(np.diff(norms) > 0)  # loss on the last step: gradients shrink going back in time
    np.testing.assert_allclose(plots.step_grad_norms(list(outputs.parents)), norms)


def test_step_grad_norms_errors():
    with pytest.raises(TypeError, match="step_grad_norms: expected a Tensor or a list of Tensors, got int"):
        plots.step_grad_norms(3)
    x = tg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match="step_grad_norms: expected the stacked outputs .* made by 'tanh'"):
        plots.step_grad_norms(x.tanh())
    out, _ = tg.unroll(Elman(3, 4), sequence(2))
    with pytest.raises(ValueError, match=r"no step has a gradient; call loss.backward\(retain_grads=True\)"):
        plots.step_grad_norms(out)


def test_plot_grad_norms_writes_a_log_plot(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    outputs = unrolled()
    path = tmp_path / "norms.png"
    fig = plots.plot_grad_norms({"tanh RNN": outputs, "made up": [1.0, 0.5, 0.0, 0.1]}, path=path, title="t")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.lines) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["tanh RNN", "made up"]
    assert path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["norms.png"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_plot_grad_norms_bad_input(tmp_path):
    with pytest.raises(TypeError, match="plot_grad_norms: expected a non-empty dict"):
        plots.plot_grad_norms([1, 2])
    with pytest.raises(ValueError, match=r"plot_grad_norms: cannot save .*norms.gif.*expected a .png, .svg or .pdf"):
        plots.plot_grad_norms({"a": [1.0]}, path=tmp_path / "norms.gif")


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install tinygraph\[plot\]"):
        plots.plot_grad_norms({"a": [1.0, 0.1]})


def test_library_import_does_not_import_matplotlib_or_models():
    import subprocess

    code = ("import sys, tinygraph, tinygraph.drawing, tinygraph.drawing.plots, tinygraph.drawing.cli; "
            "print('matplotlib' in sys.modules, 'models' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
