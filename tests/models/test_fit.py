"""models.fit and History: steps, clipping, validation, early stopping, checkpoints, exact resume, Ctrl-C."""
import json
import os

import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.nn import functional as F


def setup():
    m = models.LanguageModel(6, 8, rng=0)
    return m, tg.optim.Adam(m.parameters(), lr=0.01)


def batches(epoch):
    rng = np.random.default_rng(epoch)
    for _ in range(7):
        yield rng.integers(0, 6, size=(9, 4))


def loss_fn(m, b):
    return F.cross_entropy(m(b[:-1])[0], b[1:])


VAL = np.arange(24).reshape(12, 2) % 6


def val(m):
    return {"loss": loss_fn(m, VAL).item()}


def weights(m):
    return {k: v.copy() for k, v in m.state_dict().items()}


def test_history_has_one_loss_per_step_and_validation(tmp_path):
    m, opt = setup()
    h = models.fit(m, batches, loss_fn, opt, steps=20, val=val, val_every=5, progress=False)
    assert h.steps == 20 and len(h.time) == 20 and all(np.diff(h.time) >= 0)
    assert [s for s, _ in h.val["loss"]] == [5, 10, 15, 20]
    path = h.plot(tmp_path / "curve.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    h.save_json(tmp_path / "h.json")
    assert models.History.from_dict(json.load(open(tmp_path / "h.json"))).loss == h.loss


def test_epochs_reiterate_a_list():
    m, opt = setup()
    data = list(batches(0))
    h = models.fit(m, data, loss_fn, opt, epochs=3, progress=False)
    assert h.steps == 21


def test_resume_gives_identical_weights(tmp_path):
    """Straight through vs stopped at step 13 (a checkpoint every 5 steps, the last at 13) and resumed."""
    m1, o1 = setup()
    models.fit(m1, batches, loss_fn, o1, steps=30, progress=False)
    ckpt = tmp_path / "run.npz"
    m2, o2 = setup()
    models.fit(m2, batches, loss_fn, o2, steps=13, checkpoint=ckpt, checkpoint_every=5, progress=False)
    m3, o3 = setup()  # a fresh process would build everything anew
    h = models.fit(m3, batches, loss_fn, o3, steps=30, checkpoint=ckpt, checkpoint_every=5, progress=False)
    assert h.steps == 30
    w1, w3 = weights(m1), weights(m3)
    assert all(np.array_equal(w1[k], w3[k]) for k in w1)


def test_ctrl_c_keeps_the_last_checkpoint_and_resume_is_exact(tmp_path):
    m1, o1 = setup()
    models.fit(m1, batches, loss_fn, o1, steps=25, progress=False)

    def interrupt(step, loss):
        if step == 12:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.npz"
    m2, o2 = setup()
    h = models.fit(m2, batches, loss_fn, o2, steps=25, checkpoint=ckpt, checkpoint_every=5, progress=False,
                   callback=interrupt)
    assert h.stopped == "interrupted" and h.steps == 12
    saved = models.load_checkpoint(ckpt)
    assert saved["fit"]["step"] == 10  # the last complete checkpoint, untouched by the interruption
    assert [f for f in os.listdir(tmp_path)] == ["run.npz"]  # no temporary file left behind
    m3, o3 = setup()
    h3 = models.fit(m3, batches, loss_fn, o3, steps=25, checkpoint=ckpt, checkpoint_every=5, progress=False)
    assert h3.steps == 25
    w1, w3 = weights(m1), weights(m3)
    assert all(np.array_equal(w1[k], w3[k]) for k in w1)


def test_early_stopping_stops_when_validation_stops_improving():
    m, opt = setup()
    values = iter([3.0, 2.0, 2.5, 2.6, 2.7, 1.0])
    h = models.fit(m, batches, loss_fn, opt, steps=100, val=lambda m: next(values), val_every=2, patience=3,
                   progress=False)
    assert h.stopped == "early_stopping" and h.steps == 10 and h.best_step == 4  # 3 rounds (6, 8, 10) after the best


def test_clipping_bounds_the_update():
    m, opt = setup()
    seen = []
    original = tg.optim.Adam.step

    def spy(self):
        total = np.sqrt(sum(float((p.grad ** 2).sum()) for p in self.params if p.grad is not None))
        seen.append(total)
        original(self)

    opt.step = spy.__get__(opt)
    models.fit(m, batches, lambda m, b: loss_fn(m, b) * 1000.0, opt, steps=3, max_norm=0.5, progress=False)
    assert max(seen) <= 0.5 + 1e-4


def test_no_progress_bar_when_not_a_terminal(capsys):
    m, opt = setup()
    models.fit(m, batches, loss_fn, opt, steps=3, progress=True)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


@pytest.mark.parametrize("kwargs, words", [
    (dict(), "steps= or epochs="),
    (dict(steps=0), "steps"),
    (dict(steps=3, max_norm=-1), "max_norm"),
])
def test_bad_arguments(kwargs, words):
    m, opt = setup()
    with pytest.raises(ValueError, match=words):
        models.fit(m, batches, loss_fn, opt, progress=False, **kwargs)


def test_a_non_checkpoint_file_is_refused(tmp_path):
    m, opt = setup()
    tg.save({"x": np.zeros(2)}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a fit checkpoint"):
        models.fit(m, batches, loss_fn, opt, steps=3, checkpoint=tmp_path / "other.npz", progress=False)


def test_written_files_have_ordinary_permissions(tmp_path):
    """Atomic writes go through a temporary file; the result must not keep mkstemp's 0600 mode."""
    m, opt = setup()
    h = models.fit(m, batches, loss_fn, opt, steps=2, progress=False)
    old = os.umask(0o022)
    try:
        h.plot(tmp_path / "c.png")
        h.save_json(tmp_path / "h.json")
    finally:
        os.umask(old)
    for name in ("c.png", "h.json"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o644, name


def test_epochs_only_validates_after_each_epoch():
    m, opt = setup()
    h = models.fit(m, list(batches(0)), loss_fn, opt, epochs=2, val=val, progress=False)
    assert h.steps == 14 and [s for s, _ in h.val["loss"]] == [7, 14]


@pytest.mark.parametrize("optimizer", [None, "adam", object()])
def test_an_optimizer_that_is_not_one_is_a_type_error(optimizer):
    m, _ = setup()
    with pytest.raises(TypeError, match=r"fit: optimizer must be .*zero_grad.*step"):
        models.fit(m, batches, loss_fn, optimizer, steps=2, progress=False)


def test_patience_without_val_is_refused():
    """Early stopping watches validation; without val= it would silently never stop early."""
    m, opt = setup()
    with pytest.raises(ValueError, match="fit: patience= needs val="):
        models.fit(m, batches, loss_fn, opt, steps=2, patience=2, progress=False)


def test_a_checkpoint_path_that_is_a_directory_is_named_by_fit(tmp_path):
    m, opt = setup()
    with pytest.raises(ValueError, match="fit: checkpoint .* is a directory"):
        models.fit(m, batches, loss_fn, opt, steps=2, checkpoint=tmp_path, progress=False)


def test_a_non_finite_loss_stops_fit_before_it_reaches_the_weights(tmp_path):
    """A nan/inf loss is an error naming the step; the weights and the last checkpoint are those
    before it (training on would fill the weights and the checkpoint with nan, silently)."""
    m, opt = setup()
    calls = {"n": 0}

    def exploding(model, batch):
        calls["n"] += 1
        loss = loss_fn(model, batch)
        return loss * np.inf if calls["n"] == 3 else loss

    ckpt = tmp_path / "run.npz"
    with pytest.raises(ValueError, match=r"fit: the loss is inf at step 3"):
        models.fit(m, batches, exploding, opt, steps=5, checkpoint=ckpt, checkpoint_every=1, progress=False)
    assert all(np.isfinite(v).all() for v in weights(m).values())
    assert models.load_checkpoint(ckpt)["fit"]["step"] == 2


def test_an_optimizer_over_another_models_parameters_is_refused():
    """It trained nothing, silently: the loss stayed where it was."""
    m, _ = setup()
    other = models.LanguageModel(6, 8, rng=1)
    with pytest.raises(ValueError, match="fit: the optimizer holds none of the model's parameters"):
        models.fit(m, batches, loss_fn, tg.optim.Adam(other.parameters()), steps=2, progress=False)
    # a subset (the rest frozen) is a legitimate choice
    h = models.fit(m, batches, loss_fn, tg.optim.Adam(m.out.parameters(), lr=0.01), steps=2, progress=False)
    assert len(h.loss) == 2


def test_a_generator_used_for_two_epochs_says_how_to_fix_it():
    m, opt = setup()
    with pytest.raises(ValueError, match="a generator or iterator is used up after one pass"):
        models.fit(m, (b for b in batches(0)), loss_fn, opt, epochs=2, progress=False)


@pytest.mark.parametrize("name", ["", "curve.pdf"])
def test_history_plot_names_a_bad_path(tmp_path, name):
    pytest.importorskip("matplotlib")
    m, opt = setup()
    h = models.fit(m, batches, loss_fn, opt, steps=1, progress=False)
    with pytest.raises(ValueError, match="History.plot: "):
        h.plot(tmp_path / name if name else tmp_path)
    assert sorted(os.listdir(tmp_path)) == []
