"""Names, shapes, initialisation, templates and error messages of the recurrent models."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models

D, H, B, T = 3, 5, 2, 4


@pytest.mark.parametrize("cls, names", [
    (models.RNNCell, {"W_xh": (D, H), "W_hh": (H, H), "b_h": (H,)}),
    (models.LSTMCell, {**{f"W_x{k}": (D, H) for k in "ifgo"}, **{f"W_h{k}": (H, H) for k in "ifgo"},
                       **{f"b_{k}": (H,) for k in "ifgo"}}),
    (models.GRUCell, {**{f"W_x{k}": (D, H) for k in "rzn"}, **{f"W_h{k}": (H, H) for k in "rzn"},
                      **{f"b_{k}": (H,) for k in "rzn"}, "b_hn": (H,)}),
])
def test_cell_parameters_names_shapes_and_init(cls, names):
    cell = cls(D, H, rng=0)
    assert isinstance(cell, tg.Template)
    got = {n: p.shape for n, p in cell.named_parameters()}
    assert got == names
    bound = 1 / np.sqrt(H)
    values = np.concatenate([p.data.ravel() for p in cell.parameters()])
    assert values.min() >= -bound and values.max() <= bound
    assert values.std() > 0.3 * bound  # drawn, not constant
    assert all(p.dtype == np.float32 for p in cell.parameters())


def test_forget_bias_option():
    cell = models.LSTMCell(D, H, forget_bias=1.0, rng=0)
    np.testing.assert_array_equal(cell.b_f.data, np.ones(H))
    assert not np.allclose(cell.b_i.data, 1.0)
    model = models.LSTM(D, H, num_layers=2, forget_bias=1.0)
    assert all(np.all(c.b_f.data == 1.0) for c in model.cells)


@pytest.mark.parametrize("cls, cell_name, n_state", [
    (models.RNN, "RNNCell", 1), (models.LSTM, "LSTMCell", 2), (models.GRU, "GRUCell", 1)])
def test_models_shapes_state_and_instances(cls, cell_name, n_state):
    model = cls(D, H, rng=0)
    out, final = model(np.ones((T, B, D), dtype=np.float32))
    assert out.shape == (T, B, H) and out.dtype == np.float32
    states = final if n_state == 2 else (final,)
    assert len(states) == n_state and all(s.shape == (B, H) for s in states)
    np.testing.assert_array_equal(out.data[-1], states[0].data)
    assert tg.Graph(out).instances() == {cell_name: T}
    assert model.cell is model.cells[0]
    assert all(name.startswith("cell.") for name, _ in model.named_parameters())


def test_lstm_unrolled_is_one_instance_per_step_fused_or_not():
    for fused in (True, False):
        out, _ = models.LSTM(D, H, fused=fused)(np.ones((T, B, D)))
        assert tg.Graph(out).instances() == {"LSTMCell": T}
    fused_ops = tg.Graph(models.LSTM(D, H)(np.ones((T, B, D)))[0]).ops()
    # the fused op's two outputs h_t and c_t are its nodes (the last c_t feeds nothing here)
    assert fused_ops["lstm_cell"] == 2 * T - 1
    primitive_ops = tg.Graph(models.LSTM(D, H, fused=False)(np.ones((T, B, D)))[0]).ops()
    assert primitive_ops["sigmoid"] == 3 * T and "lstm_cell" not in primitive_ops  # i, f, o per step


def test_stacked_layers_and_output_layer():
    model = models.GRU(D, H, num_layers=3, output_size=2, rng=0)
    names = dict(model.named_parameters())
    assert {"W_hy", "b_y", "cell.W_hr", "cell_1.W_xr", "cell_2.b_hn"} <= set(names)
    assert names["cell_1.W_xr"].shape == (H, H) and names["W_hy"].shape == (H, 2)
    y, final = model(np.ones((T, B, D)))
    assert y.shape == (T, B, 2) and len(final) == 3
    assert tg.Graph(y).instances() == {"GRUCell": T, "GRUCell_1": T, "GRUCell_2": T}
    h0 = [tg.tensor(np.ones((B, H))) for _ in range(3)]
    y2, _ = model(np.ones((T, B, D)), h0)
    assert not np.allclose(y.data, y2.data)


def test_state_dict_round_trip():
    a, b = models.LSTM(D, H, rng=0), models.LSTM(D, H, rng=1)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).normal(size=(T, B, D))
    np.testing.assert_array_equal(a(x)[0].data, b(x)[0].data)


def test_initial_state_is_used():
    model = models.RNN(D, H, rng=0)
    x = np.zeros((1, B, D), dtype=np.float32)
    h0 = np.full((B, H), 0.5, dtype=np.float32)
    out, _ = model(x, tg.tensor(h0))
    c = model.cell
    np.testing.assert_allclose(out.data[0], np.tanh(h0 @ c.W_hh.data + c.b_h.data), rtol=1e-6)


def test_bad_inputs_name_what_was_expected():
    lstm = models.LSTM(D, H)
    with pytest.raises(ValueError, match=r"LSTM: expected a time-major input of shape \(T, B, input_size=3\), "
                                         r"got shape \(4, 3\)"):
        lstm(np.ones((T, D)))
    with pytest.raises(ValueError, match=r"input_size=3\), got shape \(4, 2, 7\)"):
        lstm(np.ones((T, B, 7)))
    with pytest.raises(ValueError, match=r"\(h0, c0\), each of shape \(2, 5\), got a tensor of shape \(2, 4\)"):
        lstm(np.ones((T, B, D)), (tg.tensor(np.ones((B, 4))), tg.tensor(np.ones((B, H)))))
    with pytest.raises(ValueError, match=r"LSTM: expected the initial state as \(h0, c0\)"):
        lstm(np.ones((T, B, D)), tg.tensor(np.ones((B, H))))
    with pytest.raises(ValueError, match=r"RNN: expected the initial state as \(2, 5\), got a tensor of shape \(3, 5\)"):
        models.RNN(D, H)(np.ones((T, B, D)), tg.tensor(np.ones((3, H))))
    with pytest.raises(ValueError, match="a list of 2 per-layer states"):
        models.GRU(D, H, num_layers=2)(np.ones((T, B, D)), tg.tensor(np.ones((B, H))))
    with pytest.raises(ValueError, match="no time steps"):
        lstm(np.ones((0, B, D)))

    cell = models.LSTMCell(D, H)
    h = tg.tensor(np.zeros((B, H)))
    with pytest.raises(ValueError, match=r"LSTMCell.forward: expected an input x_t of shape \(B, input_size=3\), "
                                         r"got shape \(2, 4\)"):
        cell(tg.tensor(np.ones((B, 4))), (h, h))
    with pytest.raises(ValueError, match=r"expected state c of shape \(B, hidden_size\) = \(2, 5\), got shape \(2, 6\)"):
        cell(tg.tensor(np.ones((B, D))), (h, tg.tensor(np.zeros((B, 6)))))
    with pytest.raises(ValueError, match=r"the state must be a pair \(h, c\)"):
        cell(tg.tensor(np.ones((B, D))), h)
    with pytest.raises(ValueError, match=r"GRUCell.unroll: expected a time-major input of shape \(T, B, input_size=3\)"):
        tg.unroll(models.GRUCell(D, H), np.ones((T, B, 4)))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        models.RNNCell(D, 0)
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        models.RNNCell(D, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        models.LSTM(D, H, num_layers=0)


def test_lstm_cell_op_shape_error():
    from tinygraph.ops import OPS
    from tinygraph.tensor import apply
    with pytest.raises(ValueError, match=r"lstm_cell: expected x_proj \(..., 4H\), h \(..., K\), W_h \(K, 4H\)"):
        apply(OPS["lstm_cell"], np.ones((2, 8)), np.ones((2, 3)), np.ones((3, 8)), np.ones((2, 3)))


def test_models_do_not_leak_into_tinygraph():
    import subprocess
    import sys
    code = "import sys, tinygraph, tinygraph.nn, tinygraph.optim; print('models' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_long_sequence_forward_and_backward():
    """BPTT over thousands of steps is the engine's iterative backward: no recursion limit."""
    model = models.LSTM(2, 4, rng=0)
    x = np.random.default_rng(0).normal(size=(3000, 2, 2)).astype(np.float32)
    out, (h, c) = model(x)
    out.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)
    assert tg.Graph(out).instances() == {"LSTMCell": 3000}


@pytest.mark.parametrize("cls, options, symbols", [
    (models.RNN, {}, {"h_t"}),
    (models.RNN, {"fused": False}, {"x_t", "x_t W_xh", "h_{t-1} W_hh", "h_t"}),
    (models.GRU, {}, {"h_t"}),
    (models.GRU, {"fused": False}, {"x_t", "r", "z", "n", "h_t", "x_t W_xn", "h_{t-1} W_hn"}),
    (models.LSTM, {}, {"h_t", "c_t"}),
    (models.LSTM, {"fused": False}, {"x_t", "i", "f", "g", "o", "h_t", "c_t", "x_t W_xf", "h_{t-1} W_hf",
                                      "f c_{t-1}", "i g", "tanh(c_t)"}),
])
def test_step_tensors_carry_the_symbols_of_the_equations(cls, options, symbols):
    out, final = cls(D, H, rng=0, **options)(np.ones((T, B, D)))
    roots = final if isinstance(final, tuple) else (final,)
    per_step = tg.Graph(out, *roots).by_instance()
    for t in range(T):
        names = {n.name for n in per_step[(cls.__name__ + "Cell", t)] if n.name}
        assert symbols <= names, (t, names)


@pytest.mark.parametrize("cls", [models.RNN, models.LSTM, models.GRU])
def test_numpy_input_takes_the_parameters_dtype(cls):
    model = cls(D, H, rng=0)  # float32 parameters
    h0 = np.zeros((B, H))
    state = (h0, h0) if cls is models.LSTM else h0
    out, final = model(np.ones((T, B, D), dtype=np.float64), state)
    assert out.dtype == np.float32
    assert all(t.dtype == np.float32 for t in tg.Graph(out))
    int_out, _ = model(np.ones((T, B, D), dtype=np.int64))
    assert int_out.dtype == np.float32
    np.testing.assert_allclose(int_out.data, out.data, rtol=1e-6)
    cell = model.cell
    h, _ = cell(np.ones((B, D)), (tg.tensor(h0, dtype=np.float32),) * 2 if cls is models.LSTM
                else tg.tensor(h0, dtype=np.float32))
    assert h.dtype == np.float32


@pytest.mark.parametrize("cls, names", [(models.RNN, {"h0"}), (models.GRU, {"h0"}), (models.LSTM, {"h0", "c0"})])
def test_default_initial_state_and_input_are_named(cls, names):
    out, _ = cls(D, H, rng=0)(np.ones((T, B, D)))
    leaf_names = {leaf.name for leaf in tg.Graph(out).leaves()}
    assert names | {"[x 1]"} <= leaf_names


def test_encoder_decoder_with_names_keeps_the_two_templates_apart():
    encoder = models.LSTM(D, H, name="encoder", num_layers=2, rng=0)
    decoder = models.LSTM(D, H, name="decoder", rng=1)
    _, (layer0, layer1) = encoder(np.ones((T, B, D)))
    out, _ = decoder(np.ones((3, B, D)), layer1)  # the encoder's final state starts the decoder
    assert tg.Graph(out).instances() == {"encoder": T, "encoder_1": T, "decoder": 3}
    (out ** 2).sum().backward()
    assert all(p.grad is not None for p in encoder.cell_1.parameters())  # gradients reach the encoder
    dot_source = tg.draw(out).source
    assert dot_source.count("subgraph cluster_") - dot_source.count("subgraph cluster_parameters") == 2 * T + 3
    with pytest.raises(TypeError, match="name"):
        models.GRU(D, H, name="")
    # parameters are labelled per model in drawings; state_dict keys stay the attribute paths
    assert encoder.cell.W_hi.name == "encoder.W_hi" and encoder.cell_1.W_hi.name == "encoder_1.W_hi"
    assert decoder.cell.W_hi.name == "decoder.W_hi"
    assert "encoder.W_hi" in dot_source and "decoder.W_hi" in dot_source
    assert set(decoder.state_dict()) == {n for n, _ in models.LSTM(D, H).named_parameters()}
    assert models.LSTM(D, H, output_size=2, name="dec").W_hy.name == "dec.W_hy"


def test_a_ragged_initial_state_is_a_clear_error():
    with pytest.raises(ValueError, match=r"RNN: expected the initial state as \(1, 4\)"):
        models.RNN(3, 4)(np.ones((2, 1, 3)), [[1, 2], [3]])


@pytest.mark.parametrize("make", [
    lambda e: models.LanguageModel(10, 4, embed_size=e),
    lambda e: models.SequenceClassifier(10, 4, num_classes=2, embed_size=e),
    lambda e: models.SequenceTagger(10, 4, num_tags=3, embed_size=e),
    lambda e: models.Seq2Seq(10, 8, 4, embed_size=e),
])
@pytest.mark.parametrize("embed_size", [0, -2, 2.5])
def test_a_bad_embed_size_is_an_error_not_the_default(make, embed_size):
    """embed_size=0 used to become hidden_size silently (``embed_size or hidden_size``)."""
    with pytest.raises(ValueError, match=r"embed_size must be a positive integer, got"):
        make(embed_size)
