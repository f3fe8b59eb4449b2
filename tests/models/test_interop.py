"""models.to_torch / from_torch (PyTorch optional: skipped without it)."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models

torch = pytest.importorskip("torch")

D, H, T, B = 3, 5, 6, 2


def build(kind, **kw):
    if kind == "rnn_relu":
        return models.RNN(D, H, nonlinearity="relu", rng=1, **kw)
    return {"rnn": models.RNN, "lstm": models.LSTM, "gru": models.GRU}[kind](D, H, rng=1, **kw)


def run_torch(module, x):
    with torch.no_grad():
        out, state = module(torch.from_numpy(x))
    return out.numpy(), state


KINDS = ["rnn", "rnn_relu", "lstm", "gru"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", [1, 2])
def test_outputs_agree_to_float32_precision(kind, layers):
    model = build(kind, num_layers=layers)
    x = np.random.default_rng(0).normal(size=(T, B, D)).astype(np.float32)
    ours, final = model(x)
    theirs, state = run_torch(models.to_torch(model), x)
    np.testing.assert_allclose(ours.data, theirs, rtol=1e-5, atol=1e-6)
    h_last = (final[-1] if layers > 1 else final)
    h_last = h_last[0] if isinstance(h_last, tuple) else h_last
    torch_h = (state[0] if isinstance(state, tuple) else state)[-1].numpy()
    np.testing.assert_allclose(h_last.data, torch_h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_weights_round_trip_exactly(kind):
    model = build(kind, num_layers=2, output_size=4)
    rnn, linear = models.to_torch(model)
    back = models.from_torch(rnn, linear)
    assert type(back) is type(model)
    a, b = model.state_dict(), back.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_a_torch_model_loads_from_its_state_dict_saved_as_arrays(kind, tmp_path):
    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](D, H, num_layers=2)
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in module.state_dict().items()})
    arrays = dict(np.load(tmp_path / "w.npz", allow_pickle=False))
    model = models.from_torch(arrays)
    assert type(model).__name__ == kind.upper() and model.num_layers == 2
    x = np.random.default_rng(1).normal(size=(T, B, D)).astype(np.float32)
    theirs, _ = run_torch(module, x)
    np.testing.assert_allclose(model(x)[0].data, theirs, rtol=1e-5, atol=1e-6)


def test_output_layer_becomes_a_linear():
    model = build("gru", output_size=2)
    rnn, linear = models.to_torch(model)
    x = np.random.default_rng(2).normal(size=(T, B, D)).astype(np.float32)
    with torch.no_grad():
        y = linear(rnn(torch.from_numpy(x))[0]).numpy()
    np.testing.assert_allclose(model(x)[0].data, y, rtol=1e-5, atol=1e-6)


def test_float64_models_stay_float64():
    with tg.default_dtype(np.float64):
        model = build("lstm")
    rnn = models.to_torch(model)
    assert rnn.weight_ih_l0.dtype == torch.float64
    assert models.from_torch(rnn).cell.W_xi.dtype == np.float64


def test_unsupported_modules_are_refused():
    with pytest.raises(ValueError, match="unidirectional"):
        models.from_torch(torch.nn.LSTM(D, H, bidirectional=True))
    with pytest.raises(TypeError, match="to_torch"):
        models.to_torch(models.LanguageModel(4, 3))
    with pytest.raises(ValueError, match="weight_ih_l0"):
        models.from_torch({"x": np.zeros(2)})
