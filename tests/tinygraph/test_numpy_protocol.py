"""numpy functions and ufuncs on Tensors (tinygraph/numpy_protocol.py has the policy).

Each numpy call either runs the tinygraph op (a Tensor on the graph, gradients
flow, checked against the Tensor method or by finite differences), reads the
value where nothing is differentiable, or raises a TypeError that names the
function and says what to use. Never an object array of 0-d tensors.
"""
import numpy as np
import pytest

import tinygraph as tg


@pytest.fixture
def x():
    return tg.tensor(np.random.default_rng(0).normal(size=(2, 3)), requires_grad=True, name="x")


def grad_of(fn, x):
    """d(sum(fn(x) * w))/dx for fixed random weights w (a non-trivial seed)."""
    x.grad = None
    out = fn(x)
    assert isinstance(out, tg.Tensor), type(out)
    w = np.random.default_rng(1).normal(size=out.shape)
    (out * w).sum().backward()
    return out.data.copy(), x.grad.copy()


# numpy call -> the tinygraph spelling it must agree with (value and gradient)
DISPATCHED = {
    "np.sum": (lambda t: np.sum(t), lambda t: t.sum()),
    "np.sum axis keepdims": (lambda t: np.sum(t, axis=1, keepdims=True), lambda t: t.sum(axis=1, keepdims=True)),
    "np.mean": (lambda t: np.mean(t), lambda t: t.mean()),
    "np.mean axis": (lambda t: np.mean(t, 0), lambda t: t.mean(0)),
    "np.max": (lambda t: np.max(t), lambda t: t.max()),
    "np.max axis": (lambda t: np.max(t, axis=-1), lambda t: t.max(axis=-1)),
    "np.amax": (lambda t: np.amax(t, 0), lambda t: t.max(0)),
    "np.min": (lambda t: np.min(t, axis=0, keepdims=True), lambda t: t.min(axis=0, keepdims=True)),
    "np.reshape": (lambda t: np.reshape(t, (3, 2)), lambda t: t.reshape(3, 2)),
    "np.reshape -1": (lambda t: np.reshape(t, -1), lambda t: t.reshape(-1)),
    "np.transpose": (lambda t: np.transpose(t), lambda t: t.T),
    "np.transpose axes": (lambda t: np.transpose(t, (1, 0)), lambda t: t.transpose(1, 0)),
    "np.squeeze": (lambda t: np.squeeze(np.expand_dims(t, 0)), lambda t: t),
    "np.expand_dims": (lambda t: np.expand_dims(t, 1), lambda t: t.reshape(2, 1, 3)),
    "np.concatenate": (lambda t: np.concatenate([t, 2 * t], axis=1), lambda t: tg.concat([t, 2 * t], axis=1)),
    "np.stack": (lambda t: np.stack([t, np.ones((2, 3))]), lambda t: tg.stack([t, np.ones((2, 3))])),
    "np.where": (lambda t: np.where(t.data > 0, t, 0.0), lambda t: tg.where(t.data > 0, t, 0.0)),
    "np.clip": (lambda t: np.clip(t, -0.5, 0.5), lambda t: t.clip(-0.5, 0.5)),
    "np.dot": (lambda t: np.dot(t, np.ones((3, 2))), lambda t: t @ np.ones((3, 2))),
    "np.exp": (lambda t: np.exp(t), lambda t: t.exp()),
    "np.tanh": (lambda t: np.tanh(t), lambda t: t.tanh()),
    "np.log": (lambda t: np.log(np.abs(t)), lambda t: t.abs().log()),
    "np.sqrt": (lambda t: np.sqrt(t * t + 1), lambda t: (t * t + 1).sqrt()),
    "np.square": (lambda t: np.square(t), lambda t: t ** 2),
    "np.negative": (lambda t: -np.positive(t), lambda t: -t),
    "np.maximum": (lambda t: np.maximum(t, 0.1), lambda t: tg.maximum(t, 0.1)),
    "np.multiply": (lambda t: np.multiply(np.arange(3.0), t), lambda t: t * np.arange(3.0)),
    "t + np.float64(1)": (lambda t: t + np.float64(1), lambda t: t + 1.0),
    "np.float64(1) - t": (lambda t: np.float64(1) - t, lambda t: 1.0 - t),
    "np.float32 scalar * t": (lambda t: np.float32(2) * t, lambda t: 2.0 * t),
    "ndarray + t": (lambda t: np.ones(3) + t, lambda t: t + 1.0),
    "ndarray / t": (lambda t: np.ones((2, 3)) / (t * t + 1), lambda t: 1.0 / (t * t + 1)),
    "ndarray ** t": (lambda t: np.full(3, 2.0) ** t, lambda t: 2.0 ** t),
    "ndarray @ t": (lambda t: np.ones((4, 2)) @ t, lambda t: tg.tensor(np.ones((4, 2)), dtype=t.dtype) @ t),
}


@pytest.mark.parametrize("case", sorted(DISPATCHED))
def test_numpy_runs_the_tinygraph_op_and_gradients_flow(case, x):
    numpy_call, tinygraph_call = DISPATCHED[case]
    value, grad = grad_of(numpy_call, x)
    expected_value, expected_grad = grad_of(tinygraph_call, x)
    assert value.dtype == expected_value.dtype == np.float64
    np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12)


def test_numpy_calls_pass_gradcheck(x):
    assert tg.gradcheck(lambda t: np.sum(np.tanh(np.reshape(t, (3, 2))) * np.arange(6.0).reshape(3, 2))
                        + np.max(t) + np.mean(np.exp(np.transpose(t)), axis=0).sum(), [x])


def test_reflected_operators_keep_the_float32_dtype():
    t = tg.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    assert (np.float64(2) * t).dtype == np.float32  # a scalar takes the tensor's dtype
    assert (t + np.float64(1)).dtype == np.float32
    out = np.ones(3, dtype=np.float32) + t
    assert isinstance(out, tg.Tensor) and out.dtype == np.float32 and out.op == "add"
    out.sum().backward()
    np.testing.assert_array_equal(t.grad, np.ones(3))


def test_asarray_gives_the_value_not_an_object_array(x):
    a = np.asarray(x)
    assert a.dtype == np.float64 and a.shape == (2, 3) and a is x.data
    b = np.array(x)
    assert b.dtype == np.float64 and b is not x.data and np.array_equal(b, x.data)
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    both = np.array([x, x])
    assert both.dtype == np.float64 and both.shape == (2, 2, 3)
    np.testing.assert_allclose(x, x.data)  # numpy's testing helpers read the value


def test_value_reads_return_numpy_results(x):
    assert np.shape(x) == (2, 3) and np.ndim(x) == 2 and np.size(x) == 6
    assert np.allclose(x, x.data) and np.array_equal(x, x.data)
    np.testing.assert_array_equal(np.isclose(x, x.data), np.ones((2, 3), bool))
    assert np.argmax(x) == np.argmax(x.data)
    for got, want in [(np.less(x, 0), x.data < 0), (np.ones(3) < x, 1 < x.data),
                      (np.isfinite(x), np.ones((2, 3), bool)), (np.where(x), np.where(x.data))]:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("call, names", [
    (lambda t: np.sin(t), ["numpy.sin", "t.numpy()"]),
    (lambda t: np.prod(t), ["numpy.prod", "t.numpy()"]),
    (lambda t: np.linalg.norm(t), ["numpy.linalg.norm", "sqrt"]),
    (lambda t: np.cumsum(t), ["numpy.cumsum"]),
    (lambda t: np.add.reduce(t), ["numpy.add.reduce", "sum"]),
    (lambda t: np.sum(t, out=np.zeros(())), ["numpy.sum", "out"]),
    (lambda t: np.mean(t, dtype=np.float32), ["numpy.mean", "dtype"]),
    (lambda t: np.max(t, initial=0.0), ["numpy.max", "initial"]),
    (lambda t: np.reshape(t, (3, 2), order="F"), ["numpy.reshape", "order"]),
    (lambda t: np.add(t, 1, dtype=np.float32), ["numpy.add", "dtype"]),
    (lambda t: np.exp(t, out=np.zeros((2, 3))), ["numpy.exp", "out"]),
    (lambda t: np.dot(np.ones((2, 2, 2)), t), ["numpy.dot", "@"]),
    (lambda t: np.ones(3) == t, ["numpy.equal", "t.numpy() == a"]),
    (lambda t: t != np.ones(3), ["numpy.not_equal", "identity"]),
    (lambda t: tg.tensor([t, t]), ["tensor", "tinygraph.stack"]),
])
def test_numpy_refuses_with_a_clear_type_error(call, names, x):
    with pytest.raises(TypeError) as info:
        call(x)
    for name in names:
        assert name in str(info.value), (name, str(info.value))


def test_in_place_numpy_update_with_a_tensor_is_refused(x):
    a = np.ones((2, 3))
    with pytest.raises(TypeError, match="a = a \\+ t"):
        a += x
    np.testing.assert_array_equal(a, np.ones((2, 3)))  # untouched


def test_tensors_compare_by_identity_among_themselves(x):
    y = tg.tensor(x.data.copy())
    assert x == x and x != y and {x: 1, y: 2}[y] == 2
