"""Tensor construction, dtype policy, operators and the error policy at op boundaries."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygraph as tg


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    previous = tg.get_default_dtype()
    yield
    tg.set_default_dtype(previous)


# -- dtype policy ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_arrays_keep_their_dtype(dtype):
    assert tg.tensor(np.zeros(3, dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("data", [1, 2.5, [1, 2], [[1.0, 2.0]], np.arange(3), np.array([True, False]), True])
def test_python_data_and_int_arrays_take_the_default_dtype(data):
    assert tg.tensor(data).dtype == np.float32
    tg.set_default_dtype(np.float64)
    assert tg.tensor(data).dtype == np.float64


def test_explicit_dtype_overrides():
    assert tg.tensor(np.zeros(2, dtype=np.float32), dtype="float64").dtype == np.float64


def test_default_dtype_context_manager_restores():
    with tg.default_dtype(np.float64):
        assert tg.tensor(1.0).dtype == np.float64
    assert tg.tensor(1.0).dtype == np.float32


@pytest.mark.parametrize("bad", ["abc", np.array(["a", "b"]), np.array([1 + 2j]), np.array([object()]), None, 3 + 1j])
def test_strings_objects_and_complex_are_type_errors(bad):
    with pytest.raises(TypeError, match="tensor"):
        tg.tensor(bad)


@pytest.mark.parametrize("dtype", [np.int32, "int64", np.complex64, "not-a-dtype"])
def test_non_float_dtypes_are_rejected(dtype):
    with pytest.raises(TypeError, match="dtype"):
        tg.tensor([1.0], dtype=dtype)
    with pytest.raises(TypeError, match="set_default_dtype"):
        tg.set_default_dtype(dtype)


def test_ragged_lists_are_value_errors():
    with pytest.raises(ValueError, match="ragged"):
        tg.tensor([[1, 2], [3]])


def test_python_scalars_do_not_promote_float32():
    x = tg.tensor(np.ones(3, dtype=np.float32))
    for y in [x + 1, 2.0 * x, x / 3, 1 - x, x ** 2, 2 ** x, x + np.arange(3)]:
        assert y.dtype == np.float32


def test_numpy_arrays_combine_on_either_side():
    x = tg.tensor(np.ones(3), requires_grad=True)
    a = np.array([1.0, 2.0, 3.0])
    for y in [a + x, a - x, a * x, a / x, a ** x, x + a]:
        assert isinstance(y, tg.Tensor)
    (a @ x).backward()
    np.testing.assert_array_equal(x.grad, a)


# -- accessors ----------------------------------------------------------------------------
def test_accessors():
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == np.float64 and x.name == "x"
    assert x.requires_grad and x.grad is None and x.op is None and x.parents == ()
    assert x.numpy() is x.data
    assert isinstance(tg.tensor([[3.0]]).item(), float) and tg.tensor([[3.0]]).item() == 3.0
    with pytest.raises(ValueError, match=r"item.*\(2,3\)"):
        x.item()
    y = x * 2
    assert y.op == "mul" and y.parents[0] is x and y.requires_grad
    d = y.detach()
    assert d.op is None and not d.requires_grad and d.parents == () and np.shares_memory(d.data, y.data)
    assert "op=mul" in repr(y)


def test_tensor_of_tensor_copies():
    x = tg.tensor([1.0, 2.0])
    y = tg.tensor(x)
    y.data[0] = 5
    assert x.data[0] == 1.0


def test_reshape_and_transpose_forms():
    x = tg.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, -1)).shape == (4, 6)
    assert x.transpose().shape == (4, 3, 2) and x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.transpose((2, 1, 0)).shape == (4, 3, 2) and x.T.shape == (4, 3, 2)


# -- errors ---------------------------------------------------------------------------------
def test_matmul_error_names_both_shapes_and_the_mismatch():
    with pytest.raises(ValueError) as info:
        tg.tensor(np.ones((2, 3))) @ tg.tensor(np.ones((4, 5)))
    msg = str(info.value)
    assert "matmul" in msg and "(2,3)" in msg and "(4,5)" in msg and "3" in msg and "4" in msg


def test_matmul_of_a_scalar_is_an_error():
    with pytest.raises(ValueError, match="matmul.*at least 1 dimension"):
        tg.tensor(2.0) @ tg.tensor(np.ones(3))


def test_matmul_batch_mismatch():
    with pytest.raises(ValueError, match=r"matmul: batch dimensions.*\(2\).*\(3\)"):
        tg.tensor(np.ones((2, 4, 5))) @ tg.tensor(np.ones((3, 5, 6)))


@pytest.mark.parametrize("op", ["__add__", "__sub__", "__mul__", "__truediv__", "__pow__"])
def test_broadcast_errors_name_the_op_and_shapes(op):
    a, b = tg.tensor(np.ones((2, 3))), tg.tensor(np.ones((4,)))
    with pytest.raises(ValueError, match=r"do not broadcast") as info:
        getattr(a, op)(b)
    assert "(2,3)" in str(info.value) and "(4)" in str(info.value)


def test_reshape_errors():
    x = tg.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"reshape.*\(2,3\).*6 elements.*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(TypeError, match="reshape"):
        x.reshape("a", 2)


def test_transpose_errors():
    with pytest.raises(ValueError, match="transpose.*permutation"):
        tg.tensor(np.ones((2, 3, 4))).transpose(0, 0, 1)


@pytest.mark.parametrize("method", ["sum", "mean", "max"])
def test_reduction_axis_errors(method):
    x = tg.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"{method}: axis 2 is out of range.*\(2,3\)"):
        getattr(x, method)(axis=2)
    with pytest.raises(ValueError, match="repeats"):
        getattr(x, method)(axis=(0, -2))
    with pytest.raises(TypeError, match="axis"):
        getattr(x, method)(axis="0")


def test_max_of_empty_tensor():
    with pytest.raises(ValueError, match="max.*empty"):
        tg.tensor(np.ones((0, 3))).max()


def test_index_errors():
    x = tg.tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match=r"index.*\(2,3\)"):
        x[5]
    with pytest.raises(ValueError, match=r"index"):  # the same error is also a ValueError
        x[np.array([0, 7])]
    with pytest.raises(TypeError, match="integer or boolean"):
        x[np.array([0.5])]
    with pytest.raises(TypeError, match="float"):
        x[1.0]
    with pytest.raises(TypeError, match="not a Tensor"):
        x[tg.tensor([0.0])]


def test_concat_and_stack_errors():
    a, b = tg.tensor(np.ones((2, 3))), tg.tensor(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape \(2,4\) but tensor 0 has shape \(2,3\)"):
        tg.stack([a, b])
    with pytest.raises(ValueError, match=r"concat: tensor 1 has shape \(2,4\).*except axis 0"):
        tg.concat([a, b], axis=0)
    with pytest.raises(ValueError, match="at least one"):
        tg.concat([])
    with pytest.raises(TypeError, match="list or tuple"):
        tg.stack(a)
    with pytest.raises(ValueError, match="axis 5 is out of range"):
        tg.concat([a, a], axis=5)


def test_unsupported_operand_type():
    with pytest.raises(TypeError, match="add: unsupported operand of type str"):
        tg.tensor(1.0) + "x"


# -- broadcasting property ---------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=3), seed=st.integers(0, 1000))
def test_broadcast_gradients_are_summed_back_to_each_input_shape(shapes, seed):
    rng = np.random.default_rng(seed)
    a = tg.tensor(rng.normal(size=shapes.input_shapes[0]), requires_grad=True)
    b = tg.tensor(rng.normal(size=shapes.input_shapes[1]), requires_grad=True)
    out = a * b
    g = rng.normal(size=out.shape)
    out.backward(g)
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    # d<g, a*b>/da[j] = sum of g*b over the output elements that read a[j]: an explicit loop.
    full_b = np.broadcast_to(b.data, out.shape)
    expected = np.zeros(a.shape)
    for idx in np.ndindex(*out.shape):
        tail = idx[len(idx) - a.ndim:] if a.ndim else ()
        source = tuple(0 if s == 1 else i for i, s in zip(tail, a.shape))
        expected[source] += g[idx] * full_b[idx]
    np.testing.assert_allclose(a.grad, expected, rtol=1e-10, atol=1e-12)


def test_comparisons_give_boolean_arrays_and_identity_equality():
    x = tg.tensor(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x > 1.5, [False, True, True])
    np.testing.assert_array_equal(x <= tg.tensor(np.array([1.0, 1.0, 4.0])), [True, False, True])
    assert (x >= 2).sum() == 2 and (x < 2).sum() == 1
    assert x == x and x != tg.tensor(np.array([1.0, 2.0, 3.0]))  # identity: tensors are dict keys
    assert len({x: 1, x.detach(): 2}) == 2


def test_len_bool_size_and_pos():
    x = tg.tensor(np.ones((3, 2)))
    assert len(x) == 3 and x.size == 6 and (+x) is x
    with pytest.raises(TypeError, match="0-d"):
        len(tg.tensor(1.0))
    assert bool(tg.tensor([2.0])) and not bool(tg.tensor(0.0))
    with pytest.raises(ValueError, match=r"ambiguous"):
        bool(x)


def test_reflected_matmul_and_methods():
    a = np.array([[1.0, 2.0]])
    x = tg.tensor(np.array([[3.0], [4.0]]), requires_grad=True)
    y = a @ x
    assert y.op == "matmul" and y.item() == 11.0
    np.testing.assert_allclose(tg.tensor([-4.0]).abs().data, [4.0])
    np.testing.assert_allclose(tg.tensor([4.0]).sqrt().data, [2.0])
    np.testing.assert_allclose(tg.maximum(tg.tensor([1.0, 5.0]), tg.tensor([3.0, 2.0])).data, [3.0, 5.0])
    assert x.attrs == {} and x.is_leaf and not y.is_leaf


def test_repr_mentions_name_dtype_and_grad():
    x = tg.tensor(np.ones(2), requires_grad=True, name="x")
    text = repr(x)
    assert "requires_grad=True" in text and "name='x'" in text and "dtype=float64" in text


@pytest.mark.parametrize("axes", [(0, 5), (1, 2), (-3, 0), (0, 0)])
def test_transpose_refuses_axes_that_are_not_a_permutation(axes):
    x = tg.tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match=r"transpose: axes .*\(2,3\)|transpose: axes .*shape \(2, ?3\)"):
        x.transpose(*axes)


def test_transpose_negative_axes_and_type_errors():
    x = tg.tensor(np.ones((2, 3, 4)))
    assert x.transpose(-1, 0, 1).shape == (4, 2, 3)
    with pytest.raises(TypeError, match="transpose: axes must be integers"):
        x.transpose(0, 1.0, 2)
    with pytest.raises(ValueError, match="transpose"):
        x.transpose(2, 3, 4)


def test_numpy_bool_scalars_are_operands_like_python_bools():
    x = tg.tensor(np.array([1.0, 2.0]), dtype=np.float32)
    np.testing.assert_array_equal((x * np.bool_(True)).data, (x * True).data)
    assert (x * np.bool_(True)).dtype == np.float32


def test_where_takes_branches_and_keeps_inf_out_of_the_gradient():
    a = tg.tensor(np.array([1.0, np.inf, 3.0]), requires_grad=True)
    b = tg.tensor(np.array([10.0, 20.0, np.nan]), requires_grad=True)
    cond = np.array([True, False, True])
    out = tg.where(cond, a, b)
    np.testing.assert_array_equal(out.data, [1.0, 20.0, 3.0])
    (out * 2).sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 0.0, 2.0])
    np.testing.assert_array_equal(b.grad, [0.0, 2.0, 0.0])
    assert tg.where(np.array([[True], [False]]), a, 0.0).shape == (2, 3)  # broadcasting, a number as b
    with pytest.raises(TypeError, match="where: cond must be a boolean"):
        tg.where(np.array([1, 0, 1]), a, b)
    with pytest.raises(ValueError, match=r"where: cond \(2\).*do not broadcast"):
        tg.where(np.array([True, False]), a, b)


def test_clip_min_and_minimum():
    x = tg.tensor(np.array([-2.0, -0.5, 0.5, 2.0]), requires_grad=True)
    y = x.clip(-0.5, 1.0)
    np.testing.assert_array_equal(y.data, [-0.5, -0.5, 0.5, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])  # bounds included, clipped values get 0
    assert x.clip(hi=0).data.max() == 0 and x.clip(lo=0).data.min() == 0
    with pytest.raises(ValueError, match="clip: lo"):
        x.clip(1.0, -1.0)
    with pytest.raises(ValueError, match="clip: give lo, hi or both"):
        x.clip()
    t = tg.tensor(np.array([[3.0, 1.0, 1.0], [0.0, 5.0, 2.0]]), requires_grad=True)
    m = t.min(axis=1)
    np.testing.assert_array_equal(m.data, [1.0, 0.0])
    m.sum().backward()
    np.testing.assert_array_equal(t.grad, [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])  # ties split evenly
    np.testing.assert_array_equal(tg.minimum(t, 2.0).data, np.minimum(t.data, 2.0))
    with pytest.raises(ValueError, match="min: cannot take the min of an empty tensor"):
        tg.tensor(np.ones((0, 2))).min()


def test_clip_bounds_must_be_real_numbers():
    x = tg.tensor(np.ones(3))
    with pytest.raises(TypeError, match="clip: bounds must be real numbers, got str"):
        x.clip("0", 1.0)
