"""tinygraph.buffers.BufferPool: an array is handed out again only when its lease is over
(the holder is gone) AND nothing else refers to it (views, containers, closures,
uncollected cycles), never on reference counts alone."""
import gc

import numpy as np
import pytest

from tinygraph import buffers
from tinygraph.buffers import BufferPool


class Holder:
    """Stands for an unroll's workspace (what a pooled array is leased to)."""


def test_reference_counts_are_trusted_only_after_the_self_test():
    # on this interpreter (CPython) the self-test passes; the pool's rule relies on it
    assert buffers.REFCOUNTS_RELIABLE


def test_an_array_is_reused_once_its_holder_is_gone_and_nothing_refers_to_it():
    pool = BufferPool(keep=2)
    holder = Holder()
    a = pool.get("k", (3, 4), np.float32, holder)
    address = a.ctypes.data
    del a
    assert pool.in_use(pool.arrays("k")[0])  # the holder still lives: leased
    b = pool.get("k", (3, 4), np.float32, Holder())
    assert b.ctypes.data != address
    del holder, b
    c = pool.get("k", (3, 4), np.float32, Holder())
    assert c.ctypes.data in {a.ctypes.data for a in pool.arrays("k")}
    assert len(pool.arrays("k")) == 2


def test_the_lease_alone_keeps_an_array_out_of_reuse():
    pool = BufferPool()
    holder = Holder()
    first = pool.get("k", (8,), np.float64, holder)
    first[:] = 1.0
    del first  # nothing refers to it but the pool: only the lease protects it
    again = pool.get("k", (8,), np.float64, Holder())
    assert not np.shares_memory(again, pool.arrays("k")[0])
    assert holder is not None


@pytest.mark.parametrize("keep_alive", ["view", "closure", "list", "dict", "attribute", "cycle", "memoryview"])
def test_an_array_still_seen_elsewhere_is_never_handed_out(keep_alive):
    pool = BufferPool(keep=4)
    a = pool.get("k", (4, 5), np.float64, Holder())  # the holder dies at once
    a[:] = 7.0
    if keep_alive == "view":
        kept = a[1:, ::2]
    elif keep_alive == "closure":
        def make(view):
            return lambda: view.sum()
        kept = make(a[2])  # the view lives only in the closure's cell
    elif keep_alive == "list":
        kept = [a[0]]
    elif keep_alive == "dict":
        kept = {"x": a.T}
    elif keep_alive == "attribute":
        kept = Holder()
        kept.x = a.reshape(-1)
    elif keep_alive == "cycle":  # garbage the collector has not freed yet
        kept = Holder()
        kept.me, kept.x = kept, a[:, 1:]
    else:
        kept = memoryview(a)
    del a
    for _ in range(3):
        gc.collect()
        b = pool.get("k", (4, 5), np.float64, Holder())
        b[:] = -1.0
        assert all(not np.shares_memory(b, x) for x in pool.arrays("k")[:1])
        del b
    np.testing.assert_array_equal(pool.arrays("k")[0], 7.0)  # never overwritten
    if keep_alive == "closure":
        assert kept() == 35.0
    del kept
    gc.collect()
    again = pool.get("k", (4, 5), np.float64, Holder())  # now free: the first array again
    np.testing.assert_array_equal(again, 7.0)


def test_under_gc_churn_a_kept_view_is_never_overwritten():
    """Many leases and views come and go, with cycles and gc.collect() in between: every
    value still reachable keeps what was written into it."""
    pool = BufferPool(keep=3)
    rng = np.random.default_rng(0)
    alive = {}
    for step in range(300):
        holder = Holder()
        arr = pool.get("k", (6, 7), np.float64, holder)
        arr[:] = step
        if rng.random() < 0.3:  # keep a view alive in a closure, sometimes through a cycle
            view = arr[rng.integers(6)]

            def read(view=view):
                return view
            box = Holder()
            box.me, box.read = box, read
            alive[step] = box
        del arr, holder
        if rng.random() < 0.2:
            gc.collect()
        for old in [k for k in alive if rng.random() < 0.1]:
            del alive[old]
        for k, box in alive.items():
            np.testing.assert_array_equal(box.read(), k)


def test_unreliable_reference_counts_mean_no_reuse(monkeypatch):
    monkeypatch.setattr(buffers, "REFCOUNTS_RELIABLE", False)
    pool = BufferPool()
    a = pool.get("k", (3,), np.float64, Holder())
    address = a.ctypes.data
    del a
    gc.collect()
    assert pool.get("k", (3,), np.float64, Holder()).ctypes.data != address or len(pool.arrays("k")) == 2


def test_keep_shapes_clear_and_errors():
    pool = BufferPool(keep=2)
    assert pool.get("k", (5,), np.float64, Holder()).shape == (5,)
    assert pool.get("k", (2, 2), np.float32, Holder()).dtype == np.float32
    assert pool.get("k", (3,), np.float64, Holder()).shape == (3,)
    assert len(pool.arrays("k")) == 2 and pool.nbytes > 0
    e = pool.arrays("k")[0]
    pool.clear()
    assert pool.nbytes == 0 and pool.keys() == []
    with pytest.raises(ValueError, match="not an array of this pool"):
        pool.in_use(e)
