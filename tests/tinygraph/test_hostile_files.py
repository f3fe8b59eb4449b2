"""Hostile and unusual checkpoint files and paths (issue 13, "Checkpoints").

Every bad file gives a ValueError naming the path, quickly, without hanging and
without allocating what the file claims; save refuses what it cannot store
with a clear error and keeps the old file's mode, writing through symlinks.
"""
import io
import json
import os
import stat
import struct
import threading
import zipfile

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import serialization


def write_checkpoint(path, meta_obj=None, meta_text=None, arrays=()):
    """A zip of .npy members with a hand-made metadata member."""
    text = meta_text if meta_text is not None else json.dumps(meta_obj)
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in dict(arrays).items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr))
            z.writestr(name + ".npy", buf.getvalue())
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.frombuffer(text.encode(), dtype=np.uint8))
        z.writestr("__tinygraph__.npy", buf.getvalue())


def meta(tree):
    return {"format": "tinygraph-checkpoint", "version": 1, "tree": tree}


def expect_value_error(path, match=""):
    with pytest.raises(ValueError, match=f"load: .*{path.name}.*{match}"):
        tg.load(path)


# -- load -----------------------------------------------------------------------------------

def test_deeply_nested_metadata(tmp_path):
    path = tmp_path / "deep.npz"
    text = '{"format": "tinygraph-checkpoint", "version": 1, "tree": ' + '{"list": [' * 990 + '{"value": 1}' + ']}' * 990 + "}"
    write_checkpoint(path, meta_text=text)
    expect_value_error(path, "nested deeper|corrupt")
    text = '{"format": "tinygraph-checkpoint", "version": 1, "tree": ' + '{"list": [' * 50000 + "1" + "]}" * 50000 + "}"
    write_checkpoint(path, meta_text=text)
    expect_value_error(path)          # json's RecursionError becomes a ValueError


def test_depth_limit_is_overridable(tmp_path):
    path = tmp_path / "d.npz"
    obj = {"a": 1}
    for _ in range(150):
        obj = {"x": obj}
    serialization.MAX_DEPTH, old = 200, serialization.MAX_DEPTH
    try:
        tg.save(obj, path)
    finally:
        serialization.MAX_DEPTH = old
    expect_value_error(path, "nested deeper than 100")
    assert tg.load(path, max_depth=200)["x"]["x"]["x"] is not None


def test_header_claiming_8_tib(tmp_path):
    path = tmp_path / "huge.npz"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117).encode() + b"\n" + b"\0" * 64
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("W.npy", npy)
    expect_value_error(path, "claims shape")


def test_giant_npy_header(tmp_path):
    path = tmp_path / "header.npz"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), " + " " * 200_000 + "}"
    npy = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header) + 1) + header.encode() + b"\n" + b"\0" * 8
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("W.npy", npy)
    expect_value_error(path)


def test_decompression_bomb_is_refused_and_the_limit_is_overridable(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, W=np.zeros(2**25, dtype=np.uint8))     # 32 MiB of zeros, a few KiB on disk
    assert path.stat().st_size < 2**20
    expect_value_error(path, "decompression bomb")
    assert tg.load(path, max_ratio=1e9)["W"].size == 2**25
    with pytest.raises(ValueError, match="above the limit of 1000"):
        tg.load(path, max_bytes=1000, max_ratio=1e9)


def test_every_single_bit_flip_gives_a_value_error_or_a_clean_load(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"W": np.arange(12.0).reshape(3, 4), "step": 3, "name": "run"}, path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    flipped = tmp_path / "flipped.npz"
    positions = sorted(set(rng.integers(0, len(data), size=400).tolist()) | set(range(0, 64)))
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        flipped.write_bytes(bytes(bad))
        try:
            out = tg.load(flipped)
        except ValueError as exc:
            assert "flipped.npz" in str(exc)
        else:
            assert isinstance(out, dict)


def test_fifo_is_refused_without_hanging(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "pipe.npz"
    os.mkfifo(path)
    result = {}

    def run():
        try:
            tg.load(path)
        except ValueError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():  # unblock the reader so the test run can end, then fail
        with open(path, "wb"):
            pass
        pytest.fail("load hung on a FIFO")
    assert "not a regular file" in result["error"] and "pipe.npz" in result["error"]


@pytest.mark.parametrize("tree, match", [
    ({"list": [{"value": 1}]}, "malformed value|top level"),
    ({"list": []}, "top level"),
    ({"dict": [[3, {"value": None}]]}, "keys must be strings"),
    ({"dict": [["a", {"array": "missing"}]]}, "missing"),
    ({"int": 5}, "malformed int"),
    ("just a string", "malformed"),
])
def test_crafted_metadata(tmp_path, tree, match):
    path = tmp_path / "crafted.npz"
    write_checkpoint(path, meta(tree))
    expect_value_error(path, match)


def test_plain_zip_and_npz_with_pickled_objects(tmp_path):
    path = tmp_path / "objs.npz"
    np.savez(path, a=np.array([1, None], dtype=object))
    expect_value_error(path, "Python objects")
    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.npy", b"x")
        z.writestr("readme.txt", "hi")
    expect_value_error(path, "not a tinygraph checkpoint")


# -- save -----------------------------------------------------------------------------------

def test_resave_keeps_the_file_mode(tmp_path):
    path = tmp_path / "secret.npz"
    tg.save({"a": 1}, path)
    os.chmod(path, 0o600)
    tg.save({"a": 2}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tg.load(path)["a"] == 2


def test_save_through_a_symlink_writes_the_target(tmp_path):
    target = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    tg.save({"a": 1}, target)
    link.symlink_to(target)
    tg.save({"a": 2}, link)
    assert link.is_symlink() and tg.load(target)["a"] == 2
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "new.npz")
    tg.save({"a": 3}, dangling)
    assert dangling.is_symlink() and tg.load(tmp_path / "new.npz")["a"] == 3


def test_save_refuses_a_self_referencing_dict(tmp_path):
    d = {"a": 1}
    d["self"] = d
    with pytest.raises(ValueError, match="save: the dict at 'self' contains itself"):
        tg.save(d, tmp_path / "c.npz")
    shared = [1, 2]
    tg.save({"x": shared, "y": shared}, tmp_path / "c.npz")   # shared but not circular: fine
    assert tg.load(tmp_path / "c.npz")["y"] == [1, 2]


def test_save_refuses_deep_nesting_clearly(tmp_path):
    obj = {}
    for _ in range(400):
        obj = {"x": obj}
    with pytest.raises(ValueError, match="save: the structure is nested deeper than 100"):
        tg.save(obj, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_save_and_load_with_a_bytes_path(tmp_path):
    path = os.fsencode(str(tmp_path / "b.npz"))
    tg.save({"a": 1}, path)
    assert tg.load(path)["a"] == 1


def test_save_with_a_long_file_name(tmp_path):
    name = "n" * 240 + ".npz"        # 244 characters: valid, near the 255-byte limit
    tg.save({"a": 1}, tmp_path / name)
    assert tg.load(tmp_path / name)["a"] == 1
    assert os.listdir(tmp_path) == [name]
