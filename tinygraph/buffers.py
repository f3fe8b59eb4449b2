"""Big arrays reused from one unroll to the next (the speed layer; the textbook path never uses it).

A training loop unrolls the same template over same-shaped batches again and
again. Allocating the big per-unroll arrays afresh each time costs more than
the arithmetic on them: freed blocks of that size go back to the OS and come
back as fresh pages to fault in. A ``BufferPool`` hands the same arrays out
again instead.

The reuse rule has two independent conditions, both required:

1. **The lease is over.** Every array is handed out to a *holder* (the
   object that owns it for one unroll, e.g. the unroll's workspace, which the
   graph's nodes keep alive). The pool keeps only a weak reference to the
   holder; while the holder lives, the array is not handed out again, whatever
   reference counts say.
2. **Nothing else refers to the array.** Every numpy view keeps a reference to
   the array that owns its memory, and so does every container, closure or
   attribute that holds it. The pool asks ``sys.getrefcount`` whether its own
   list slot is the only reference. Reference cycles that the garbage
   collector has not freed yet count as references (so ``gc`` pressure can
   only make the pool allocate more, never reuse too early).

Reference counts are trusted only after a self-test at import shows they
behave as this rule needs (a view and a container each add one); on an
interpreter where they do not (``REFCOUNTS_RELIABLE`` false) the pool never
reuses and simply allocates. Memory seen only through a raw address
(``a.ctypes.data``, a C extension that kept a pointer) is invisible to any
such rule: do not keep raw pointers into pooled arrays.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np


def _refcount(arrays, k):
    return sys.getrefcount(arrays[k])


def _calibrate():
    """What ``_refcount`` reports for an array held only by its list slot, and whether
    views and containers show up in it (else reference counts cannot be trusted)."""
    arrays = [np.empty(4)]
    alone = _refcount(arrays, 0)
    view = arrays[0][1:]
    with_view = _refcount(arrays, 0)
    del view
    box = {"held": arrays[0]}
    with_box = _refcount(arrays, 0)
    del box
    reliable = (sys.implementation.name == "cpython" and with_view > alone and with_box > alone
                and _refcount(arrays, 0) == alone)
    return alone, reliable


_ONLY_THE_POOL, REFCOUNTS_RELIABLE = _calibrate()


class _Lease:
    __slots__ = ("array", "holder")

    def __init__(self, array, holder):
        self.array = array
        self.holder = weakref.ref(holder)


class BufferPool:
    """Arrays reused across unrolls under the rule in the module docstring.

    ``get(key, shape, dtype, holder)`` returns an uninitialised array (like
    ``numpy.empty``; the caller overwrites it). At most ``keep`` arrays are kept
    per key (2 covers the usual loop that still holds the previous step's loss
    while building the next graph). The pool keeps its arrays alive between
    unrolls: ``clear()`` (or ``Template.release_buffers()``) gives the memory back.
    """

    def __init__(self, keep=2):
        self.keep = int(keep)
        self._leases = {}

    def get(self, key, shape, dtype, holder):
        """An array of ``shape`` and ``dtype`` for ``key``, leased to ``holder`` (any object
        that supports weak references) until ``holder`` is gone."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        leases = self._leases.setdefault(key, [])
        for lease in leases:
            if lease.array.shape == shape and lease.array.dtype == dtype and self._free(lease):
                lease.holder = weakref.ref(holder)
                return lease.array
        array = np.empty(shape, dtype=dtype)
        if len(leases) >= self.keep:
            # forget one, preferring one of another shape (the pool only drops its reference)
            stale = [k for k, lease in enumerate(leases) if lease.array.shape != shape or lease.array.dtype != dtype]
            del leases[stale[0] if stale else 0]
        leases.append(_Lease(array, holder))
        return array

    @staticmethod
    def _free(lease):
        if not REFCOUNTS_RELIABLE or lease.holder() is not None:
            return False
        # the lease's slot is the only reference: the ``arrays`` list below adds none of its own
        return _refcount([lease.array], 0) <= _ONLY_THE_POOL + 1

    def in_use(self, array):
        """Whether ``array`` (one of the pool's arrays) may not be handed out again yet."""
        for leases in self._leases.values():
            for lease in leases:
                if lease.array is array:
                    return not self._free(lease)
        raise ValueError("in_use: not an array of this pool")

    @property
    def nbytes(self):
        """Bytes held by the pool's arrays."""
        return sum(lease.array.nbytes for leases in self._leases.values() for lease in leases)

    def arrays(self, key):
        """The arrays the pool keeps for ``key`` (a new list)."""
        return [lease.array for lease in self._leases.get(key, ())]

    def keys(self):
        return list(self._leases)

    def clear(self):
        """Forget every array (they are freed once nothing else refers to them)."""
        self._leases.clear()

    # The pool is a cache of scratch memory, and its leases hold weak references:
    # a copy (pickle, deepcopy) of a model starts with an empty pool.
    def __getstate__(self):
        return {"keep": self.keep}

    def __setstate__(self, state):
        self.keep = state["keep"]
        self._leases = {}

    def __repr__(self):
        return f"BufferPool({sum(len(v) for v in self._leases.values())} arrays, {self.nbytes / 2**20:.1f} MiB)"
