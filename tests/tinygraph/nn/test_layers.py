"""Linear, Embedding, Dropout, Sequential and the Module behaviour they rely on."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import nn


# -- Linear --------------------------------------------------------------------------
def test_linear_forward_is_x_at_W_plus_b():
    lin = nn.Linear(3, 2, rng=0)
    assert lin.W.shape == (3, 2) and lin.b.shape == (2,)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(lin(x).data, x @ lin.W.data + lin.b.data, rtol=1e-6)
    x3 = np.ones((4, 5, 3), dtype=np.float32)  # any leading shape
    assert lin(tg.tensor(x3)).shape == (4, 5, 2)


def test_linear_gradients():
    lin = nn.Linear(3, 2, rng=0)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    g = np.random.default_rng(2).normal(size=(5, 2)).astype(np.float32)
    lin(x).backward(g)
    np.testing.assert_allclose(lin.W.grad, x.T @ g, rtol=1e-5)
    np.testing.assert_allclose(lin.b.grad, g.sum(axis=0), rtol=1e-5)


def test_linear_init_is_uniform_in_the_fan_in_bound():
    lin = nn.Linear(400, 300, rng=0)
    bound = 1 / np.sqrt(400)
    for p in (lin.W, lin.b):
        assert np.all(np.abs(p.data) <= bound)
    w = lin.W.data
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound  # fills the interval ...
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.02)  # ... uniformly
    assert not np.array_equal(nn.Linear(400, 300, rng=1).W.data, w)
    np.testing.assert_array_equal(nn.Linear(400, 300, rng=0).W.data, w)  # seeded: reproducible


def test_parameters_take_the_default_dtype_at_creation():
    assert nn.Linear(2, 2).W.dtype == np.float32
    assert nn.Embedding(3, 2).weight.dtype == np.float32
    with tg.default_dtype(np.float64):
        lin, emb = nn.Linear(2, 2), nn.Embedding(3, 2)
    assert lin.W.dtype == lin.b.dtype == emb.weight.dtype == np.float64
    assert nn.Linear(2, 2).W.dtype == np.float32


def test_linear_without_bias_and_errors():
    lin = nn.Linear(3, 2, bias=False, rng=0)
    assert lin.b is None and [n for n, _ in lin.named_parameters()] == ["W"]
    x = np.ones((1, 3), dtype=np.float32)
    np.testing.assert_allclose(lin(x).data, x @ lin.W.data)
    with pytest.raises(ValueError, match=r"Linear\(3, 2\): input of shape \(4,5\) does not fit; expected shape \(\.\.\., 3\)"):
        lin(np.ones((4, 5)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="Linear: in_features must be a positive int"):
            nn.Linear(bad, 2)
    with pytest.raises(TypeError, match="Linear: rng must be None, an int seed or a numpy.random.Generator"):
        nn.Linear(2, 2, rng="seed")


# -- Embedding -------------------------------------------------------------------------
def test_embedding_accepts_index_arrays_of_any_shape():
    emb = nn.Embedding(10, 4, rng=0)
    for idx in (np.array(3), np.array([1, 2]), np.array([[0, 9, 9], [4, 5, 6]]), [[1], [2]]):
        out = emb(idx)
        assert out.shape == np.shape(idx) + (4,)
        np.testing.assert_array_equal(out.data, emb.weight.data[np.asarray(idx)])


def test_embedding_repeated_indices_accumulate():
    emb = nn.Embedding(5, 3, rng=0)
    idx = np.array([[1, 1], [1, 4]])
    g = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    emb(idx).backward(g)
    expected = np.zeros((5, 3), dtype=np.float32)
    expected[1] = g[0, 0] + g[0, 1] + g[1, 0]
    expected[4] = g[1, 1]
    np.testing.assert_array_equal(emb.weight.grad, expected)


def test_embedding_errors():
    emb = nn.Embedding(5, 3)
    with pytest.raises(ValueError, match=r"Embedding\(5, 3\): index 5 is out of range; expected 0 <= index < 5"):
        emb(np.array([0, 5]))
    with pytest.raises(ValueError, match=r"index -1 is out of range"):
        emb(np.array([[-1]]))
    with pytest.raises(TypeError, match=r"Embedding\(5, 3\): indices must be integers, got dtype float64"):
        emb(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"indices must be integers, got dtype bool"):
        emb(np.array([True, False]))
    with pytest.raises(TypeError, match=r"indices must be an integer numpy array, got a Tensor of dtype float32"):
        emb(tg.tensor([1, 2]))


# -- Dropout -----------------------------------------------------------------------------
def test_dropout_in_training_zeroes_about_p_and_rescales_the_rest():
    drop = nn.Dropout(0.25, rng=0)
    x = tg.tensor(np.full((200, 100), 2.0, dtype=np.float32), requires_grad=True)
    y = drop(x)
    zero = y.data == 0
    assert abs(zero.mean() - 0.25) < 0.01
    np.testing.assert_allclose(y.data[~zero], 2.0 / 0.75, rtol=1e-6)
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.where(zero, 0.0, 1 / 0.75), rtol=1e-6)


def test_dropout_is_inactive_in_eval_mode_including_inside_containers():
    model = nn.Sequential(nn.Linear(4, 4, rng=0), nn.Dropout(0.9, rng=0))
    x = np.ones((3, 4), dtype=np.float32)
    model.eval()
    assert not model[1].training
    np.testing.assert_array_equal(model(x).data, model[0](x).data)
    model.train()
    assert model[1].training
    assert np.mean(model(x).data == 0) > 0.5


def test_dropout_rejects_bad_p():
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


# -- Sequential ---------------------------------------------------------------------------
def test_sequential_applies_modules_in_order_and_names_parameters():
    a, b = nn.Linear(3, 5, rng=0), nn.Linear(5, 2, rng=1)
    model = nn.Sequential(a, nn.Tanh(), b)
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).data, b(np.tanh(a(x).data)).data, rtol=1e-6)
    assert [n for n, _ in model.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert len(model) == 3 and model[2] is b and list(model)[0] is a
    with pytest.raises(TypeError, match="Sequential: argument 1 is a ufunc, expected a Module"):
        nn.Sequential(a, np.tanh)


def test_activation_modules():
    x = np.array([-1.0, 0.5])
    np.testing.assert_allclose(nn.ReLU()(x).data, [0, 0.5])
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x))


# -- Module features used with the layers ---------------------------------------------------
def test_state_dict_round_trip_and_strict_errors():
    src = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Linear(4, 2, rng=1))
    dst = nn.Sequential(nn.Linear(3, 4, rng=2), nn.Linear(4, 2, rng=3))
    sd = src.state_dict()
    assert list(sd) == ["0.W", "0.b", "1.W", "1.b"]
    before = dst[0].W.data
    dst.load_state_dict(sd)
    assert dst[0].W.data is before  # loaded in place
    for (_, p), (_, q) in zip(src.named_parameters(), dst.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data)

    bad = dict(sd)
    del bad["0.b"]
    bad["extra.W"] = np.zeros(1)
    bad["1.W"] = np.zeros((2, 4))
    with pytest.raises(ValueError) as info:
        dst.load_state_dict(bad)
    message = str(info.value)
    for fragment in ("missing keys: 0.b", "unexpected keys: extra.W", "1.W: shape (2,4)", "(4,2) in the model"):
        assert fragment in message
    dst.load_state_dict({"0.W": np.zeros((3, 4))}, strict=False)
    assert np.all(dst[0].W.data == 0)


def test_repr_shows_parameter_shapes_and_zero_grad_clears():
    model = nn.Sequential(nn.Embedding(7, 3), nn.Linear(3, 2))
    text = repr(model)
    assert "Parameter(7, 3)" in text and "Parameter(3, 2)" in text and "Embedding(7, 3" in text
    model[1](model[0](np.array([1, 2]))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_linear_converts_numpy_input_to_its_dtype_but_keeps_tensors():
    lin = nn.Linear(2, 1, rng=0)
    assert lin(np.ones((3, 2))).dtype == np.float32  # a float64 array is converted
    assert lin(tg.tensor(np.ones((3, 2)), dtype=np.float64)).dtype == np.float64  # a Tensor is not
