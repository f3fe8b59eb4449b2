"""Indexing: every spelling of an index gives numpy's value and the right gradient.

The reference gradient is independent of the engine: index an array of element
ids the same way and count, with ``np.bincount``, how often (and with what
weight) each element was picked.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph.ops import is_advanced_index
from tinygraph.ops.indexing import normalize_index


def reference_grad(shape, index, g):
    ids = np.arange(int(np.prod(shape))).reshape(shape)
    picked = ids[index]
    return np.bincount(np.ravel(picked), weights=np.ravel(g), minlength=ids.size).reshape(shape)


def check_index(shape, index, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=shape)
    x = tg.tensor(data, requires_grad=True)
    y = x[index]
    np.testing.assert_array_equal(y.data, data[index])
    g = rng.normal(size=y.shape)
    y.backward(g)
    np.testing.assert_allclose(x.grad, reference_grad(shape, index, g), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("index", [
    ((0, 0, 1), (1, 1, 2)),          # the issue's case: element (0, 1) twice
    ((0, 0),),                        # a tuple inside a tuple is an integer array
    (slice(None), (1, 1)),            # x[:, (1, 1)]
    [0, 0, 1],                        # top-level list
    ([1, 1], slice(0, 2)),
    (np.array([-1, 1]), np.array([2, -1])),   # negatives naming the same element
    (Ellipsis, (0, 0)),
    (None, (1, 1), 0),
    (np.array([True, True]), (0, 0)),
    ([[0, 1], [1, 0]], (2, 2)),       # nested lists: a 2-D integer array
])
def test_repeated_picks_accumulate_for_every_spelling(index):
    check_index((2, 3), index)


def test_issue_case_exact_numbers():
    x = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    x[((0, 0, 1), (1, 1, 2))].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 2, 0], [0, 0, 1]])


def test_canonical_form_marks_every_array_spelling_advanced():
    for index in [((0, 0),), [0, 0], (slice(None), (1, 1)), ([0],), (np.int64(1), [1, 1])]:
        canon = normalize_index(index)
        assert isinstance(canon, tuple) and is_advanced_index(canon), index
    for index in [(0, 1), (slice(None), 0), (Ellipsis, None), (np.int64(1),)]:
        assert not is_advanced_index(normalize_index(index)), index
    assert normalize_index(3) == 3


@pytest.mark.parametrize("index, error", [
    (1.5, TypeError), ((0, 1.0), TypeError), ([0.5, 1.0], TypeError), ("a", TypeError),
    ([[0, 1], [0]], TypeError), (slice(0.5, 2), TypeError),
])
def test_bad_indices_raise_clear_errors(index, error):
    x = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(error, match="index"):
        x[index]


def test_direct_apply_of_the_index_op_also_accumulates():
    x = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    tg.apply("index", x, index=((0, 0), (1, 1))).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 2, 0], [0, 0, 0]])


# -- hypothesis fuzz ---------------------------------------------------------------

@st.composite
def shape_and_index(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    n_adv = draw(st.integers(1, 3))  # common length of the integer-sequence items
    items = []
    for dim in shape:
        kind = draw(st.sampled_from(["int", "slice", "list", "tuple", "array", "bool", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-dim, dim - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-dim, dim))
            stop = draw(st.none() | st.integers(-dim, dim))
            step = draw(st.none() | st.sampled_from([1, 2, -1]))
            items.append(slice(start, stop, step))
        elif kind in ("list", "tuple", "array"):
            values = draw(st.lists(st.integers(-dim, dim - 1), min_size=n_adv, max_size=n_adv))
            items.append(values if kind == "list" else tuple(values) if kind == "tuple" else np.array(values))
        elif kind == "bool":
            items.append(np.array(draw(st.lists(st.booleans(), min_size=dim, max_size=dim))))
        else:
            items.append(slice(None))
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()) and items:
        # an Ellipsis standing for a run of full slices
        k = draw(st.integers(0, len(items) - 1))
        run = draw(st.integers(0, len(items) - k))
        if all(isinstance(i, slice) and i == slice(None) for i in items[k:k + run]):
            items[k:k + run] = [Ellipsis]
    top = draw(st.sampled_from(["tuple", "list"]))
    if top == "list" and len(items) == 1 and isinstance(items[0], list):
        return shape, items[0]
    return shape, tuple(items)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape_and_index(), st.integers(0, 2**16))
def test_fuzz_index_value_and_gradient_match_numpy(case, seed):
    shape, index = case
    try:
        np.zeros(shape)[index]
    except IndexError:
        with pytest.raises(IndexError):
            tg.tensor(np.zeros(shape), requires_grad=True)[index]
        return
    check_index(shape, index, seed)
