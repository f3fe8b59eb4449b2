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
import stat
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

# Limits for reading untrusted files (each overridable per call of ``load``).
MAX_BYTES = 2**30     # total uncompressed size of the members (1 GiB)
MAX_RATIO = 100       # uncompressed size / file size, checked once the members exceed 16 MiB
MAX_DEPTH = 100       # nesting of dicts, lists and tuples (save refuses deeper structures too)
_RATIO_FLOOR = 16 * 2**20


# -----------------------------------------------------------------------------
# Structure <-> (JSON tree, arrays)
# -----------------------------------------------------------------------------
def _encode(obj, path, arrays, active=None):
    """The JSON tree of ``obj``; arrays go into ``arrays`` (member name -> ndarray).
    ``active``: ids of the containers on the current path (a container inside itself)."""
    where = "/".join(path) or "<root>"
    if active is None:
        active = set()
    if len(path) > MAX_DEPTH:
        raise ValueError(f"save: the structure is nested deeper than {MAX_DEPTH} levels at {where[:200]!r}...; "
                         f"flatten it (load refuses deeper files)")
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
    if isinstance(obj, (Mapping, list, tuple)):
        if id(obj) in active:
            raise ValueError(f"save: the {type(obj).__name__} at {where!r} contains itself; a checkpoint must be a "
                             f"tree (no container inside itself)")
        active.add(id(obj))
        try:
            return _encode_container(obj, path, arrays, active, where)
        finally:
            active.discard(id(obj))
    if isinstance(obj, Module):
        return _encode(obj.state_dict(), path, arrays, active)
    raise TypeError(
        f"save: cannot save a {type(obj).__name__} at {where!r}; expected numpy arrays, Tensors, dicts with "
        f"string keys, lists, tuples, int, float, bool, str or None"
    )


def _encode_container(obj, path, arrays, active, where):
    if isinstance(obj, Mapping):
        items = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"save: dict keys must be strings, got {type(key).__name__} {key!r} at {where!r} "
                    f"(convert keys with str() before saving)"
                )
            items.append([key, _encode(value, path + (key,), arrays, active)])
        return {"dict": items}
    kind = "list" if isinstance(obj, list) else "tuple"
    return {kind: [_encode(v, path + (str(i),), arrays, active) for i, v in enumerate(obj)]}


def _decode(node, arrays, path, depth=0, max_depth=MAX_DEPTH):
    """The structure a JSON tree stands for; every entry is checked (the file may be hostile)."""
    if depth > max_depth:
        raise ValueError(f"the structure is nested deeper than {max_depth} levels (max_depth)")
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"malformed structure entry at {path!r}")
    (kind, value), = node.items()
    if kind == "array":
        if not isinstance(value, str) or value not in arrays:
            raise ValueError(f"the array member {value!r} for {path!r} is missing")
        return arrays[value]
    if kind == "value":
        if value is not None and not isinstance(value, (bool, str)):
            raise ValueError(f"malformed value entry at {path!r}")
        return value
    if kind in ("int", "float"):
        if not isinstance(value, str) or len(value) > 4300:
            raise ValueError(f"malformed {kind} entry at {path!r}")
        return int(value) if kind == "int" else float(value)
    if kind == "dict":
        if not isinstance(value, list) or not all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
                                                  for e in value):
            raise ValueError(f"malformed dict entry at {path!r} (keys must be strings)")
        return {k: _decode(v, arrays, f"{path}/{k}", depth + 1, max_depth) for k, v in value}
    if kind in ("list", "tuple"):
        if not isinstance(value, list):
            raise ValueError(f"malformed {kind} entry at {path!r}")
        items = [_decode(v, arrays, f"{path}/{i}", depth + 1, max_depth) for i, v in enumerate(value)]
        return items if kind == "list" else tuple(items)
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
    path = _fspath("save", path)
    arrays = {}
    tree = _encode(obj, (), arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[META_KEY] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)

    given = path
    if os.path.islink(path):
        # write the link's target (the link stays a link), like any editor saving through it
        path = os.path.realpath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: cannot write {given!r}: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: cannot write {given!r}: it is a directory")
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        old_mode = None
    # A short temporary name: one built from the file's own name could exceed the
    # file-system's name limit (255 bytes) when the name itself is close to it.
    tmp = os.path.join(folder, f".tg-{uuid.uuid4().hex[:16]}.tmp")
    try:
        # os.open with 0o666 lets the umask decide the mode, as for any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            if old_mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), old_mode)  # replacing a file keeps its permissions (e.g. 0600)
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
def _fspath(where, path):
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{where}: path must be a str or os.PathLike, got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if "\x00" in path:
        raise ValueError(f"{where}: path {path!r} contains a NUL character")
    return path


def load(path, *, max_bytes=MAX_BYTES, max_ratio=MAX_RATIO, max_depth=MAX_DEPTH):
    """Read a checkpoint written by ``save``, or a plain ``.npz`` of arrays.

    Every file is treated as untrusted: nothing is unpickled, and a file that
    is not what it claims to be gives a ``ValueError`` naming the path (never
    a hang, a RecursionError, a MemoryError or an unrelated exception).

    Parameters
    ----------
    path : str, bytes or os.PathLike
    max_bytes : int
        Refuse files whose arrays and metadata would take more than this many
        bytes once read (default 1 GiB), checked before anything is read.
    max_ratio : float
        Refuse compressed files that would grow more than this many times
        their size on disk (a decompression bomb), once above 16 MiB.
    max_depth : int
        Refuse structures nested deeper than this (default 100, as ``save``).

    Returns
    -------
    dict
        The saved structure: arrays come back as numpy arrays (with their
        dtype and shape; a Tensor or numpy scalar as an array), nested dicts,
        lists, tuples and Python scalars as they were saved. A plain ``.npz``
        (``numpy.savez``, ``numpy.savez_compressed``) gives a dict of its arrays,
        keyed by their names.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a checkpoint or a plain ``.npz`` of numeric arrays
        (not a regular file, not a zip of ``.npy`` members, truncated, corrupt,
        holding object arrays that would need pickle, or beyond a limit); the
        message names the path.
    """
    path = _fspath("load", path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path!r}") from None
    except OSError as exc:
        raise ValueError(f"load: cannot read {path!r}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"load: {path!r} is a directory, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):
        # a FIFO, socket or device: reading it could block forever or never end
        raise ValueError(f"load: {path!r} is not a regular file (a FIFO, socket or device), so not a checkpoint")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
            if magic != b"PK\x03\x04":
                raise ValueError(f"load: {path!r} is not a tinygraph checkpoint (not an .npz/zip file)")
            f.seek(0)
            return _load_zip(f, path, info.st_size, max_bytes, max_ratio, max_depth)
    except ValueError as exc:
        if str(exc).startswith("load: "):
            raise
        raise ValueError(f"load: {path!r} is corrupt or not a tinygraph checkpoint: {exc}") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (RecursionError, MemoryError) as exc:
        raise ValueError(f"load: {path!r} is corrupt or hostile ({type(exc).__name__})") from None
    except Exception as exc:  # a hostile file can make zipfile/zlib/numpy raise nearly anything
        raise ValueError(f"load: {path!r} is corrupt or truncated ({type(exc).__name__}: {exc})") from None


def _load_zip(f, path, file_size, max_bytes, max_ratio, max_depth):
    with zipfile.ZipFile(f) as archive:
        members = archive.infolist()
        names = [m.filename for m in members]
        if not members or not all(n.endswith(".npy") for n in names) or len(set(names)) != len(names):
            raise ValueError(f"load: {path!r} is a zip file but not a tinygraph checkpoint or a plain .npz "
                             f"(its members must all be distinct .npy arrays)")
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise ValueError(f"load: {path!r} would take {total} bytes once read, above the limit of {max_bytes} "
                             f"(pass max_bytes= to load it anyway)")
        if total > _RATIO_FLOOR and total > max_ratio * max(file_size, 1):
            raise ValueError(f"load: {path!r} would grow from {file_size} to {total} bytes, more than "
                             f"{max_ratio} times (a decompression bomb?); pass max_ratio= to load it anyway")
        arrays = {m.filename[:-4]: _read_member(archive, m, path) for m in members}
    if META_KEY not in arrays:
        # a plain .npz of arrays, e.g. weights exported with numpy.savez
        return arrays
    raw = arrays.pop(META_KEY)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"load: {path!r} has a {META_KEY!r} entry that is not tinygraph metadata")
    meta = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"load: {path!r} has a {META_KEY!r} entry that is not tinygraph metadata")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise ValueError(
            f"load: {path!r} is checkpoint format version {version!r}; "
            f"this tinygraph reads versions up to {VERSION}"
        )
    result = _decode(meta.get("tree"), arrays, "", 0, max_depth)
    if not isinstance(result, dict):
        raise ValueError(f"load: {path!r} holds a {type(result).__name__} at the top level; a checkpoint is a dict")
    return result


def _read_member(archive, member, path):
    """One ``.npy`` member as an array, its header checked against the member's real size
    before any memory is allocated; object dtypes (pickle) are refused."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version} in member {member.filename!r}")
        if dtype.hasobject:
            raise ValueError(f"load: {path!r} member {member.filename!r} holds Python objects (dtype {dtype}), "
                             f"which only pickle can read; tinygraph never unpickles")
        count = 1
        for n in shape:
            count *= int(n)
        nbytes = count * dtype.itemsize
        header = f.tell()
        if header + nbytes != member.file_size:
            raise ValueError(f"member {member.filename!r} claims shape {tuple(shape)} of {dtype} "
                             f"({nbytes} bytes) but holds {member.file_size - header}")
        buf = bytearray(nbytes)
        if f.readinto(memoryview(buf)) != nbytes:
            raise ValueError(f"member {member.filename!r} is truncated")
    arr = np.frombuffer(buf, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")
