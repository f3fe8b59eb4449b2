"""Backward semantics: seeding, accumulation, detach, no_grad, retained gradients, depth."""
import sys
import tracemalloc

import numpy as np
import pytest

import tinygraph as tg
from tinygraph.autograd import unbroadcast


def test_scalar_is_seeded_with_one():
    x = tg.tensor(3.0, requires_grad=True)
    (x * x).backward()
    assert x.grad == pytest.approx(6.0)


def test_one_element_non_scalar_is_seeded():
    x = tg.tensor([[2.0]], requires_grad=True)
    (x * 3).backward()
    np.testing.assert_array_equal(x.grad, [[3.0]])


def test_non_scalar_without_grad_is_a_value_error():
    x = tg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"backward.*\(3\).*explicit grad"):
        (x * 2).backward()


def test_explicit_grad_array_or_tensor():
    x = tg.tensor(np.ones(3), requires_grad=True)
    (x * 2).backward(np.array([1.0, 2.0, 3.0]))
    (x * 2).backward(tg.tensor(np.array([1.0, 1.0, 1.0])))
    np.testing.assert_array_equal(x.grad, [4.0, 6.0, 8.0])


def test_wrong_grad_shape_is_a_value_error():
    x = tg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(2\).*\(3\)"):
        (x * 2).backward(np.ones(2))


def test_backward_on_tensor_without_grad_is_an_error():
    with pytest.raises(ValueError, match="does not require grad"):
        tg.tensor(1.0).backward()


def test_gradients_accumulate_until_zeroed():
    x = tg.tensor(2.0, requires_grad=True)
    (x * 3).backward()
    (x * 3).backward()
    assert x.grad == pytest.approx(6.0)
    x.zero_grad()
    (x * 3).backward()
    assert x.grad == pytest.approx(3.0)


def test_a_tensor_used_twice_gets_both_contributions():
    x = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2
    ((y * y).sum() + y.sum()).backward()
    np.testing.assert_allclose(x.grad, 2 * (2 * y.data) + 2)


def test_only_leaves_with_requires_grad_get_grad():
    x = tg.tensor(1.0, requires_grad=True)
    c = tg.tensor(5.0)
    y = x * c
    z = y + 1
    z.backward()
    assert c.grad is None and y.grad is None and x.grad == pytest.approx(5.0)


def test_retain_grad_and_retain_grads():
    x = tg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    out = (h * h).sum()
    out.backward()
    np.testing.assert_allclose(h.grad, 2 * h.data)
    x2 = tg.tensor(np.array([1.0, -2.0]), requires_grad=True)
    mid = x2.tanh()
    top = mid.sum()
    top.backward(retain_grads=True)
    np.testing.assert_allclose(mid.grad, [1.0, 1.0])
    assert top.grad == pytest.approx(1.0)


def test_detach_stops_gradients():
    x = tg.tensor(2.0, requires_grad=True)
    y = x * x.detach()
    y.backward()
    assert x.grad == pytest.approx(2.0)


def test_no_grad_records_nothing_and_restores():
    x = tg.tensor(2.0, requires_grad=True)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 3
        with tg.enable_grad():
            z = x * 3
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.op is None and y.parents == ()
    assert z.requires_grad and z.op == "mul"


def test_no_grad_as_decorator():
    @tg.no_grad()
    def f(x):
        return x * 2

    assert not f(tg.tensor(1.0, requires_grad=True)).requires_grad
    assert tg.is_grad_enabled()


def test_no_grad_restores_after_exception():
    with pytest.raises(RuntimeError):
        with tg.no_grad():
            raise RuntimeError("boom")
    assert tg.is_grad_enabled()


def test_float32_leaf_in_float64_graph_gets_float32_grad():
    x = tg.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    (x * np.array([1.0, 2.0])).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [1, 2])


def test_chain_of_100k_nodes_backward_without_recursion():
    limit = sys.getrecursionlimit()
    x = tg.tensor(1.0, requires_grad=True)
    h = x
    for _ in range(100_000):
        h = h * 1.0 + 0.0
    h.backward()
    assert x.grad == pytest.approx(1.0)
    assert sys.getrecursionlimit() == limit
    assert len(tg.Graph(h)) > 300_000


def test_graph_of_a_million_nodes():
    x = tg.tensor(np.ones(1), requires_grad=True)
    h = x
    for _ in range(500_000):  # two ops per step plus a constant: ~1.5 million nodes
        h = h + x
    graph = tg.Graph(h)
    assert len(graph) >= 500_000
    h.backward(np.ones(1))
    assert x.grad[0] == pytest.approx(500_001)


def test_backward_frees_intermediate_gradients():
    # A chain of 200 (1000, 1000) float64 tensors: keeping every gradient would need 1.6 GB.
    x = tg.tensor(np.ones((1000, 1000)), requires_grad=True)
    h = x
    for _ in range(200):
        h = h * 1.0
    tracemalloc.start()
    h.backward(np.ones((1000, 1000)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 10 * 8e6, f"peak {peak / 1e6:.0f} MB: intermediate gradients were kept"


def test_unbroadcast_rejects_shapes_broadcasting_cannot_explain():
    with pytest.raises(RuntimeError, match=r"op 'bad'.*\(2,3\).*\(4\)"):
        unbroadcast(np.ones((2, 3)), (4,), "bad", 0)
    assert unbroadcast(np.ones((2, 3, 4)), (3, 1), "ok", 0).tolist() == [[8.0]] * 3


@pytest.mark.parametrize("grad, error", [
    (np.array([[object()] * 3] * 2), TypeError),
    (np.ones((2, 3), dtype=complex), TypeError),
    ([[1.0, 2.0], [3.0]], ValueError),
])
def test_backward_refuses_seeds_that_are_not_real_arrays(grad, error):
    y = tg.tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(error, match="backward: grad"):
        y.backward(grad)
