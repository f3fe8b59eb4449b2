"""The one place where an index ``t[...]`` is checked and put in canonical form.

numpy reads the same index in several spellings: ``x[[0, 0, 1]]``,
``x[(0, 0, 1),]``, ``x[np.array([0, 0, 1])]``, and inside a tuple a tuple or a
list is an integer array (``x[((0, 0), (1, 1))]`` picks two elements). The
gradient of an index scatters back with ``np.add.at`` only for *advanced*
indices, so every spelling of an integer or boolean array must be recognised
as one. ``normalize_index`` turns every index into a canonical form that the
forward, the check and the backward all read the same way:

* a plain ``int`` stays an ``int`` (the common ``xs[t]``, kept cheap);
* a ``slice`` with int/None bounds stays a ``slice`` (``x[1:3]``);
* otherwise a ``tuple`` whose items are ``int``, ``slice``, ``None``,
  ``Ellipsis``, Python ``bool`` or an ``np.ndarray`` of dtype ``intp`` or
  ``bool`` (every list, tuple, nested sequence and integer array becomes one).

So an index is advanced exactly when the canonical tuple holds an ndarray,
which is what ``tinygraph.ops.is_advanced_index`` tests.
"""
from __future__ import annotations

import numbers

import numpy as np

_BASIC = (slice, type(None), type(Ellipsis))


def normalize_index(index, where="index"):
    """``index`` in canonical form (see the module docstring), or a clear TypeError.

    Parameters
    ----------
    index : anything numpy accepts as an index of a float array
    where : str
        The operation named in error messages.
    """
    kind = type(index)
    if kind is int:
        return index
    if kind is slice and _plain_slice(index):  # x[1:3]: basic, nothing to convert
        return index
    if isinstance(index, tuple):
        items = index
    elif isinstance(index, list):
        # numpy reads a list at the top level as one integer (or boolean) array
        items = (index,)
    else:
        items = (index,)
    return tuple([_item(item, where) for item in items])


def _plain_slice(s):
    start, stop, step = s.start, s.stop, s.step
    return ((start is None or type(start) is int) and (stop is None or type(stop) is int)
            and (step is None or type(step) is int))


def _item(item, where):
    kind = type(item)
    if kind is int or kind is slice and _plain_slice(item) or item is None or item is Ellipsis:
        return item
    if isinstance(item, _BASIC):
        if isinstance(item, slice):
            for part in (item.start, item.stop, item.step):
                if part is not None and not _is_int(part):
                    raise TypeError(f"{where}: slice bounds must be integers or None, got {item!r}")
        return item
    if isinstance(item, (bool, np.bool_)):
        return bool(item)
    if _is_int(item):
        return int(item)
    if type(item).__name__ == "Tensor" or hasattr(item, "requires_grad"):
        raise TypeError(
            f"{where}: index with a numpy integer array or Python ints, not a Tensor "
            f"(indices are not differentiable)"
        )
    if isinstance(item, (float, np.floating)):
        raise TypeError(f"{where}: a float ({item!r}) is not a valid index")
    if isinstance(item, (np.ndarray, list, tuple)):
        try:
            arr = np.asarray(item)
        except ValueError:
            raise TypeError(f"{where}: index sequence {_short(item)} is ragged; expected a rectangular "
                            f"integer or boolean array") from None
        if arr.dtype == np.bool_:
            return arr
        if arr.dtype.kind in "iu":
            return arr.astype(np.intp, copy=False)
        if arr.size == 0:
            # numpy reads an empty list as an empty float array; it indexes nothing
            return arr.astype(np.intp)
        raise TypeError(f"{where}: index arrays must be integer or boolean, got dtype {arr.dtype} "
                        f"in {_short(item)}")
    raise TypeError(f"{where}: {type(item).__name__} {_short(item)} is not a valid index; expected ints, "
                    f"slices, None, Ellipsis or integer/boolean arrays")


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) or (
        isinstance(x, numbers.Integral) and not isinstance(x, bool))


def _short(x):
    text = repr(x)
    return text if len(text) < 60 else text[:57] + "..."
