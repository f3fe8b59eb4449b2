"""Checkpoints as ``.npz`` files: no pickle, written atomically.

Layout of a file written by ``save``: every numpy array of the saved
structure is one ``.npy`` member of the zip (named after its key path where
that is a plain name, so ``numpy.load(path)["model/W"]`` works), and the member
``__tinygraph__`` holds UTF-8 JSON describing the nested structure: dicts,
lists, tuples, Python scalars (int, float, bool, str, None) inline, arrays by
member name. Everything reads back with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import math
import os
import re
import uuid
import zipfile
from collections.abc import Mapping

import numpy as np

from .nn.module import Module
from .tensor import Tensor

META_KEY = "__tinygraph__"
FORMAT = "tinygraph-checkpoint"
VERSION = 1
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")


# -----------------------------------------------------------------------------
# Structure <-> (JSON tree, arrays)
# -----------------------------------------------------------------------------
def _encode(obj, path, arrays):
    """The JSON tree of ``obj``; arrays go into ``arrays`` (member name -> ndarray)."""
    where = "/".join(path) or "<root>"
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        arr = np.asarray(obj.data if isinstance(obj, Tensor) else obj)
        if arr.dtype.hasobject or arr.dtype.kind not in "biufcUS":
            raise TypeError(f"save: the array at {where!r} has dtype {arr.dtype}, which cannot be saved without pickle")
        name = "/".join(path)
        # numpy.load finds member "k" also under "k.npy": names ending in .npy would be ambiguous
        if (not (path and all(_PLAIN_NAME.match(p) for p in path)) or name in arrays or name == META_KEY
                or name.endswith(".npy")):
            name = f"arr_{len(arrays)}"
            while name in arrays:
                name += "_"
        arrays[name] = arr
        return {"array": name}
    if obj is None or isinstance(obj, (bool, str)):
        return {"value": obj}
    if isinstance(obj, int):
        return {"int": str(obj)}  # a string: JSON readers elsewhere may round big ints through doubles
    if isinstance(obj, float):
        # repr round-trips every float exactly; nan and inf spelled out, since strict JSON lacks them.
        return {"float": repr(obj) if math.isfinite(obj) else str(obj)}
    if isinstance(obj, Mapping):
        items = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"save: dict keys must be strings, got {type(key).__name__} {key!r} at {where!r} "
                    f"(convert keys with str() before saving)"
                )
            items.append([key, _encode(value, path + (key,), arrays)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, path + (str(i),), arrays) for i, v in enumerate(obj)]}
    if isinstance(obj, Module):
        return _encode(obj.state_dict(), path, arrays)
    raise TypeError(
        f"save: cannot save a {type(obj).__name__} at {where!r}; expected numpy arrays, Tensors, dicts with "
        f"string keys, lists, tuples, int, float, bool, str or None"
    )


def _decode(node, arrays, path):
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"malformed structure entry at {path!r}")
    (kind, value), = node.items()
    if kind == "array":
        if value not in arrays:
            raise ValueError(f"the array member {value!r} for {path!r} is missing")
        return arrays[value]
    if kind == "value":
        return value
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    if kind == "dict":
        return {k: _decode(v, arrays, f"{path}/{k}") for k, v in value}
    if kind == "list":
        return [_decode(v, arrays, f"{path}/{i}") for i, v in enumerate(value)]
    if kind == "tuple":
        return tuple(_decode(v, arrays, f"{path}/{i}") for i, v in enumerate(value))
    raise ValueError(f"unknown structure entry {kind!r} at {path!r}")


# -----------------------------------------------------------------------------
# save
# -----------------------------------------------------------------------------
def save(obj, path):
    """Write a Module's ``state_dict()`` or a (nested) dict to ``path`` as an ``.npz`` file.

    The file is written to a temporary file in the same folder, flushed and
    fsynced, then moved over ``path`` with ``os.replace``: an interrupted or
    failed save leaves any previous file at ``path`` intact and no temporary
    file behind. The name is used exactly as given (no suffix is added).

    Parameters
    ----------
    obj : Module or dict
        A Module is saved as its ``state_dict()``. A dict may nest dicts
        (string keys), lists, tuples, numpy arrays, Tensors (their data),
        Modules (their state dict) and Python int/float/bool/str/None, e.g.
        ``{"model": model.state_dict(), "optim": opt.state_dict(), "step": 100}``.
    path : str or os.PathLike

    Raises
    ------
    TypeError
        For anything that cannot be stored without pickle (naming its key path).
    FileNotFoundError
        If the folder of ``path`` does not exist.
    """
    if isinstance(obj, Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a Module or a dict, got {type(obj).__name__}")
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"save: path must be a str or os.PathLike, got {type(path).__name__}") from None
    arrays = {}
    tree = _encode(obj, (), arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[META_KEY] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: cannot write {path!r}: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: cannot write {path!r}: it is a directory")
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        # os.open with 0o666 lets the umask decide the mode, as for any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Anything, KeyboardInterrupt included: drop the partial file, keep the old one.
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)


def _write_npz(f, arrays):
    """The zip of ``.npy`` members that ``numpy.savez`` writes, without passing the names as
    keyword arguments (a key such as ``file`` or ``allow_pickle`` would collide with its parameters)."""
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, arr in arrays.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def _fsync_folder(folder):
    # Makes the rename itself durable; not possible on every OS/filesystem.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -----------------------------------------------------------------------------
# load
# -----------------------------------------------------------------------------
def load(path):
    """Read a checkpoint written by ``save``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        The saved structure: arrays come back as numpy arrays (with their
        dtype and shape; a Tensor or numpy scalar as an array), nested dicts,
        lists, tuples and Python scalars as they were saved.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a tinygraph checkpoint (not an ``.npz``, truncated,
        corrupt, or an ``.npz`` written by something else); the message names the path.
    """
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"load: path must be a str or os.PathLike, got {type(path).__name__}") from None
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: {path!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path!r} is a directory, not a checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise ValueError(f"load: {path!r} is not a tinygraph checkpoint (not an .npz/zip file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            if META_KEY not in names:
                raise ValueError(
                    f"load: {path!r} is an .npz file but not a tinygraph checkpoint (no {META_KEY!r} entry); "
                    f"read it with numpy.load(path, allow_pickle=False)"
                )
            meta = json.loads(npz[META_KEY].tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"load: {path!r} has a {META_KEY!r} entry that is not tinygraph metadata")
            if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
                raise ValueError(
                    f"load: {path!r} is checkpoint format version {meta.get('version')!r}; "
                    f"this tinygraph reads versions up to {VERSION}"
                )
            arrays = {name: npz[name] for name in names if name != META_KEY}
        result = _decode(meta["tree"], arrays, "")
    except ValueError as exc:
        if str(exc).startswith("load: "):
            raise
        raise ValueError(f"load: {path!r} is corrupt or not a tinygraph checkpoint: {exc}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, UnicodeDecodeError, TypeError) as exc:
        raise ValueError(
            f"load: {path!r} is corrupt or truncated ({type(exc).__name__}: {exc})"
        ) from None
    return result
