"""SequenceClassifier (last valid state, pooling) and SequenceTagger (bidirectional)."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.nn import functional as F


def test_classifier_reads_each_sequences_last_valid_state():
    m = models.SequenceClassifier(6, 5, 3, cell="gru", rng=0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=(7, 3))
    lengths = np.array([7, 2, 4])
    logits = m(x, lengths=lengths)
    for b, L in enumerate(lengths):
        alone = m(x[:L, b:b + 1])
        np.testing.assert_allclose(logits.data[b], alone.data[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_pooling_ignores_padding(pool):
    m = models.SequenceClassifier(3, 4, 2, tokens=False, pool=pool, rng=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 2, 3))
    padded = x.copy()
    padded[3:, 1] = 100.0  # garbage past the length must not matter
    a = m(x, lengths=[5, 3])
    b = m(padded, lengths=[5, 3])
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6)
    alone = m(x[:3, 1:2])
    np.testing.assert_allclose(a.data[1], alone.data[0], rtol=1e-5, atol=1e-6)


def test_classifier_learns_whether_a_token_occurs():
    """Variable-length sequences: class 1 iff token 1 occurs. Accuracy 1.0 on the training set
    (observed after ~40 steps; the bound needs 0.95). Checked under OPENBLAS_CORETYPE=Prescott,
    Sandybridge, Haswell and Zen."""
    rng = np.random.default_rng(0)
    B, T = 64, 8
    x = rng.integers(2, 5, size=(T, B))
    lengths = rng.integers(2, T + 1, size=B)
    y = rng.integers(0, 2, size=B)
    for b in np.flatnonzero(y):
        x[rng.integers(0, lengths[b]), b] = 1
    x[:, :][np.arange(T)[:, None] >= lengths[None, :]] = 1  # padding holds the telltale token: must be ignored
    m = models.SequenceClassifier(5, 16, 2, cell="lstm", rng=0)
    opt = tg.optim.Adam(m.parameters(), lr=0.03)
    models.fit(m, [(x, lengths, y)], lambda m, b: F.cross_entropy(m(b[0], lengths=b[1]), b[2]), opt,
               steps=80, progress=False)
    acc = (m(x, lengths=lengths).data.argmax(-1) == y).mean()
    assert acc >= 0.95


def test_bidirectional_tagger_uses_two_named_templates_and_respects_lengths():
    m = models.SequenceTagger(6, 4, 3, bidirectional=True, cell="lstm", rng=0)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 6, size=(5, 2))
    logits = m(x, lengths=[5, 3])
    assert logits.shape == (5, 2, 3)
    assert tg.Graph(logits).instances() == {"forward": 5, "backward": 5}
    alone = m(x[:3, 1:2])
    np.testing.assert_allclose(logits.data[:3, 1], alone.data[:, 0], rtol=1e-5, atol=1e-6)


def test_backward_direction_reads_the_sequence_reversed():
    m = models.SequenceTagger(6, 4, 3, bidirectional=True, cell="gru", rng=0)
    x = np.array([[1], [2], [3]])
    hs_back, _ = m.rnn_backward(m.embed(x[::-1]))
    hs_fwd, _ = m.rnn(m.embed(x))
    want = m.out(tg.concat([hs_fwd, hs_back[::-1]], axis=2))
    np.testing.assert_allclose(m(x).data, want.data, rtol=1e-6)


def test_reverse_index_is_an_involution_within_lengths():
    from tinygraph.models.tagger import reverse_index
    idx = reverse_index(np.array([3, 1, 4]), 4)
    assert idx.T.tolist() == [[2, 1, 0, 3], [0, 1, 2, 3], [3, 2, 1, 0]]
    cols = np.arange(3)[None, :]
    assert np.array_equal(idx[idx, cols], np.broadcast_to(np.arange(4)[:, None], (4, 3)))


def test_bad_inputs_are_clear():
    m = models.SequenceClassifier(6, 4, 3, rng=0)
    with pytest.raises(ValueError, match=r"SequenceClassifier.*\(T, B\)"):
        m(np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="pool"):
        models.SequenceClassifier(6, 4, 3, pool="sum")
    with pytest.raises(ValueError, match="cell"):
        models.SequenceTagger(6, 4, 3, cell="transformer")
