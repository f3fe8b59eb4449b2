"""Masked losses: a mask drops positions; the mean is over the kept ones."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph.nn import functional as F

rng = np.random.default_rng(3)


def numpy_ce(logits, targets):
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]


def test_cross_entropy_mask_means_over_kept_positions_and_matches_the_subset():
    T, B, C = 5, 3, 4
    logits = rng.normal(size=(T, B, C))
    targets = rng.integers(0, C, size=(T, B))
    lengths = np.array([5, 2, 3])
    mask = np.arange(T)[:, None] < lengths[None, :]            # (T, B) valid steps
    x = tg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, targets, mask=mask)
    want = numpy_ce(logits, targets)[mask].mean()
    np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
    loss.backward()
    assert np.all(x.grad[~mask] == 0)
    tg.gradcheck(lambda x: F.cross_entropy(x, targets, mask=mask), [tg.tensor(logits, requires_grad=True)])


def test_cross_entropy_mask_blocks_nan_in_dropped_rows():
    logits = rng.normal(size=(3, 4))
    logits[1] = np.nan
    x = tg.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, np.array([0, 1, 2]), mask=np.array([1, 0, 1]))
    assert np.isfinite(loss.item())
    loss.backward()
    assert np.all(np.isfinite(x.grad)) and np.all(x.grad[1] == 0)


def test_cross_entropy_mask_and_ignore_index_combine_and_time_mask_lines_up_left():
    logits = rng.normal(size=(4, 2, 3))
    targets = np.array([[0, -1], [1, 2], [-1, 0], [2, 2]])
    step_mask = np.array([True, True, False, True])            # (T,) drops whole steps
    loss = F.cross_entropy(tg.tensor(logits), targets, ignore_index=-1, mask=step_mask, reduction="none")
    keep = (targets != -1) & step_mask[:, None]
    per = numpy_ce(logits, np.where(keep, targets, 0)) * keep
    np.testing.assert_allclose(loss.data, per, rtol=1e-12)
    mean = F.cross_entropy(tg.tensor(logits), targets, ignore_index=-1, mask=step_mask)
    np.testing.assert_allclose(mean.item(), per.sum() / keep.sum(), rtol=1e-12)


def test_all_masked_gives_zero():
    loss = F.cross_entropy(tg.tensor(rng.normal(size=(2, 3))), np.array([0, 1]), mask=np.zeros(2, bool))
    assert loss.item() == 0.0


@pytest.mark.parametrize("bad, error", [("pad", TypeError), (1.5, TypeError), (True, TypeError)])
def test_ignore_index_type_is_checked(bad, error):
    with pytest.raises(error, match="ignore_index"):
        F.cross_entropy(tg.tensor(np.zeros((2, 3))), np.array([0, 1]), ignore_index=bad)


@pytest.mark.parametrize("mask, error", [
    (np.array([0, 2]), ValueError), (np.array(["a", "b"]), TypeError), (np.ones((3,)), ValueError),
    (np.ones((2, 1, 1)), ValueError),
])
def test_bad_masks_are_clear_errors(mask, error):
    with pytest.raises(error, match="mask"):
        F.cross_entropy(tg.tensor(np.zeros((2, 3))), np.array([0, 1]), mask=mask)


def test_mse_mask_over_leading_axes():
    T, B, O = 4, 3, 2
    pred, target = rng.normal(size=(T, B, O)), rng.normal(size=(T, B, O))
    mask = rng.random((T, B)) < 0.6
    mask[0, 0] = True
    p = tg.tensor(pred, requires_grad=True)
    loss = F.mse_loss(p, target, mask=mask)
    sq = (pred - target) ** 2
    np.testing.assert_allclose(loss.item(), sq[mask].mean(), rtol=1e-12)   # mean over kept elements
    loss.backward()
    assert np.all(p.grad[~mask] == 0)
    np.testing.assert_allclose(F.mse_loss(tg.tensor(pred), target, mask=np.ones((T, B))).item(), sq.mean())
    none = F.mse_loss(tg.tensor(pred), target, mask=mask, reduction="none")
    np.testing.assert_allclose(none.data, sq * mask[..., None])
    tg.gradcheck(lambda p: F.mse_loss(p, target, mask=mask), [tg.tensor(pred, requires_grad=True)])


def test_mse_mask_blocks_nan_targets():
    pred = tg.tensor(np.zeros(3), requires_grad=True)
    loss = F.mse_loss(pred, np.array([1.0, np.nan, 2.0]), mask=np.array([True, False, True]))
    np.testing.assert_allclose(loss.item(), 2.5)
    loss.backward()
    np.testing.assert_allclose(pred.grad, [-1.0, 0.0, -2.0])


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_with_zero_classes_names_the_op(fn):
    with pytest.raises(ValueError, match=fn.__name__ + r".*no classes"):
        fn(tg.tensor(np.zeros((3, 0))))
    with pytest.raises(ValueError, match="cross_entropy.*no classes"):
        F.cross_entropy(tg.tensor(np.zeros((3, 0))), np.zeros(3, int))
