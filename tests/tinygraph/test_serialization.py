"""tinygraph.save / tinygraph.load: pickle-free .npz round trips, atomic writes,
clear errors for bad files, and a train-save-load-resume run equal bit for bit."""
import json
import math
import os
import pathlib
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygraph as tg
from tinygraph import serialization
from tinygraph import nn, optim
from tinygraph.nn import functional as F


def assert_same_structure(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same_structure(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_structure(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_nested_checkpoint_round_trips(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=1))
    opt = optim.Adam(model.parameters(), lr=0.01)
    F.mse_loss(model(np.ones((2, 3))), np.zeros((2, 2), dtype=np.float32)).backward()
    opt.step()
    ckpt = {
        "model": model.state_dict(),
        "optim": opt.state_dict(),
        "step": 100,
        "meta": {"name": "run-1", "lr_schedule": [0.1, 0.01], "betas": (0.9, 0.999), "done": False,
                 "note": None, "big": 2**70, "neg": -3, "inf": float("inf"), "nan": float("nan"), "empty": {},
                 "unicode": "héllo ✓"},
        "arrays": {"int": np.arange(5, dtype=np.int16), "f16": np.ones((2, 0), np.float16),
                   "bool": np.array([True, False]), "scalar": np.array(3.5), "text": np.array(["ab", "c"])},
    }
    path = tmp_path / "ckpt.npz"
    tg.save(ckpt, path)
    back = tg.load(path)
    expected = dict(ckpt, model=dict(ckpt["model"]))  # state_dict is an OrderedDict; load gives plain dicts
    assert_same_structure(back, expected)


def test_tensors_and_numpy_scalars_are_saved_as_arrays(tmp_path):
    t = tg.tensor(np.arange(3.0), requires_grad=True)
    tg.save({"t": t, "s": np.float32(2.5), "model": nn.Linear(2, 1, rng=0)}, tmp_path / "x.npz")
    back = tg.load(tmp_path / "x.npz")
    np.testing.assert_array_equal(back["t"], t.data)
    assert back["s"].shape == () and back["s"].dtype == np.float32 and back["s"] == 2.5
    assert set(back["model"]) == {"W", "b"}


def test_save_a_module_and_load_into_a_fresh_one(tmp_path):
    src = nn.Sequential(nn.Embedding(6, 3, rng=0), nn.Linear(3, 2, rng=1))
    path = str(tmp_path / "model.npz")
    tg.save(src, path)
    state = tg.load(path)
    assert list(state) == ["0.weight", "1.W", "1.b"]
    dst = nn.Sequential(nn.Embedding(6, 3, rng=5), nn.Linear(3, 2, rng=6))
    dst.load_state_dict(state)
    for p, q in zip(src.parameters(), dst.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.dtype == np.float32


def test_files_are_plain_npz_readable_without_pickle(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"model": {"W": np.eye(2)}, "step": 3}, path)
    assert zipfile.is_zipfile(path)
    with np.load(path, allow_pickle=False) as npz:
        assert "model/W" in npz.files  # arrays are named after their key path
        np.testing.assert_array_equal(npz["model/W"], np.eye(2))
        for name in npz.files:
            assert not npz[name].dtype.hasobject
        meta = json.loads(npz["__tinygraph__"].tobytes().decode("utf-8"))
    assert meta["format"] == "tinygraph-checkpoint"


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=6), json_like | st.builds(np.arange, st.integers(0, 4)), max_size=4))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_round_trip_of_arbitrary_nested_structures(tmp_path, obj):
    path = tmp_path / "h.npz"
    tg.save(obj, path)
    assert_same_structure(tg.load(path), obj)


def test_pathlib_and_str_paths_and_exact_file_name(tmp_path):
    tg.save({"a": 1}, tmp_path / "no_suffix")
    assert os.listdir(tmp_path) == ["no_suffix"]
    assert tg.load(str(tmp_path / "no_suffix")) == {"a": 1}


# -- atomicity ------------------------------------------------------------------------------
def _partial_writer(*args, **kwargs):
    f = args[0]
    f.write(b"PK\x03\x04 half a zip")  # the failure happens after some bytes hit the disk
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize("failure", ["write", "replace", "interrupt"])
def test_a_failed_save_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(4.0), "step": 1}, path)
    old_bytes = path.read_bytes()
    if failure == "write":
        monkeypatch.setattr(serialization, "_write_npz", _partial_writer)
        expected = OSError
    elif failure == "replace":
        def broken_replace(src, dst):
            raise OSError("rename failed (simulated)")
        monkeypatch.setattr(os, "replace", broken_replace)
        expected = OSError
    else:
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt
        monkeypatch.setattr(serialization, "_write_npz", interrupted)
        expected = KeyboardInterrupt
    with pytest.raises(expected):
        tg.save({"w": np.zeros(1000), "step": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert tg.load(path)["step"] == 1


def test_save_writes_through_fsync_then_replace(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", os.path.dirname(a))), real_replace(a, b))[1])
    tg.save({"a": 1}, tmp_path / "c.npz")
    assert calls[0] == "fsync"
    assert calls[1] == ("replace", str(tmp_path))  # the temporary file lives in the same folder


def test_save_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="save: cannot write .*missing.*does not exist"):
        tg.save({"a": 1}, tmp_path / "missing" / "c.npz")
    with pytest.raises(TypeError, match="save: expected a Module or a dict, got list"):
        tg.save([1, 2], tmp_path / "c.npz")
    with pytest.raises(TypeError, match=r"save: the array at 'model/W' has dtype object"):
        tg.save({"model": {"W": np.array([None, 1])}}, tmp_path / "c.npz")
    with pytest.raises(TypeError, match=r"save: dict keys must be strings, got int 3 at 'state'"):
        tg.save({"state": {3: np.zeros(1)}}, tmp_path / "c.npz")
    with pytest.raises(TypeError, match=r"save: cannot save a set at 'tags'"):
        tg.save({"tags": {"a"}}, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []  # nothing written, no temp files


# -- loading bad files ------------------------------------------------------------------------
def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=f"load: no such file: .*{path.name}"):
        tg.load(path)


def test_load_truncated_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 10):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"load: .*{path.name}.* (corrupt|truncated|not a tinygraph)"):
            tg.load(path)


def test_load_foreign_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"load: .*notes.txt.* is not a tinygraph checkpoint \(not an .npz/zip file\)"):
        tg.load(text)
    # a plain .npz of arrays (issue 8): a dict of its arrays; object arrays (pickle) stay refused
    plain = tmp_path / "plain.npz"
    np.savez(plain, W=np.eye(2), b=np.arange(3, dtype=np.int32))
    back = tg.load(plain)
    assert sorted(back) == ["W", "b"] and back["b"].dtype == np.int32
    np.testing.assert_array_equal(back["W"], np.eye(2))
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, W=np.arange(6.0).reshape(2, 3).T)   # compressed, Fortran order
    np.testing.assert_array_equal(tg.load(packed)["W"], np.arange(6.0).reshape(2, 3).T)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, W=np.eye(2), obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"pickled.npz.*obj.*Python objects.*never unpickles"):
        tg.load(pickled)
    npy = tmp_path / "a.npy"
    np.save(npy, np.eye(2))
    with pytest.raises(ValueError, match=r"a.npy.* is not a tinygraph checkpoint"):
        tg.load(npy)
    other_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "not numpy")
    with pytest.raises(ValueError, match=r"other.zip.* not a tinygraph checkpoint"):
        tg.load(other_zip)
    with pytest.raises(IsADirectoryError, match="load: .* is a directory"):
        tg.load(tmp_path)


def test_load_rejects_newer_format_versions(tmp_path):
    path = tmp_path / "future.npz"
    meta = json.dumps({"format": "tinygraph-checkpoint", "version": 99, "tree": {"dict": []}})
    np.savez(path, __tinygraph__=np.frombuffer(meta.encode(), dtype=np.uint8))
    with pytest.raises(ValueError, match="future.npz.* format version 99"):
        tg.load(path)


# -- train, save, load, resume --------------------------------------------------------------------
def _make_model(seed):
    return nn.Sequential(nn.Linear(3, 8, rng=seed), nn.Tanh(), nn.Linear(8, 1, rng=seed + 1))


def _batches(n):
    rng = np.random.default_rng(42)
    for _ in range(n):
        x = rng.normal(size=(16, 3)).astype(np.float32)
        yield x, np.sin(x.sum(axis=1, keepdims=True))


def _train(model, opt, batches):
    for x, y in batches:
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


def test_train_save_load_resume_matches_an_uninterrupted_run_bit_for_bit(tmp_path):
    batches = list(_batches(20))
    straight = _make_model(0)
    opt = optim.Adam(straight.parameters(), lr=0.01, weight_decay=1e-4)
    _train(straight, opt, batches)

    first = _make_model(0)
    opt1 = optim.Adam(first.parameters(), lr=0.01, weight_decay=1e-4)
    _train(first, opt1, batches[:10])
    tg.save({"model": first.state_dict(), "optim": opt1.state_dict(), "step": 10}, tmp_path / "ckpt.npz")
    del first, opt1

    ckpt = tg.load(tmp_path / "ckpt.npz")
    resumed = _make_model(7)  # different initial weights: everything must come from the file
    opt2 = optim.Adam(resumed.parameters(), lr=0.5)  # different lr: restored from the file too
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optim"])
    assert ckpt["step"] == 10 and opt2.lr == 0.01
    _train(resumed, opt2, batches[ckpt["step"]:])

    for (name, p), (_, q) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert q.dtype == np.float32
        assert np.array_equal(p.data, q.data), name
    assert pathlib.Path(tmp_path / "ckpt.npz").exists()


@pytest.mark.parametrize("keys", [("file",), ("allow_pickle", "w"), ("a.npy", "a"), ("x", "x.npy", "x.npy.npy"),
                                  ("__tinygraph__",)])
def test_keys_that_clash_with_numpy_names_round_trip(tmp_path, keys):
    data = {key: np.arange(3.0) + i for i, key in enumerate(keys)}
    path = tmp_path / "odd.npz"
    tg.save(data, path)
    back = tg.load(path)
    assert set(back) == set(keys)
    for key in keys:
        np.testing.assert_array_equal(back[key], data[key])
    with np.load(path, allow_pickle=False) as npz:  # still a plain .npz
        assert len(npz.files) == len(keys) + 1
