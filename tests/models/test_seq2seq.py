"""models.Seq2Seq: encoder state starts the decoder, teacher forcing, attention, greedy and beam decoding."""
import numpy as np
import pytest

import tinygraph as tg
from tinygraph import models
from tinygraph.nn import functional as F


def make(attention=None, cell="gru", **kw):
    return models.Seq2Seq(6, 7, 8, cell=cell, attention=attention, rng=0, **kw)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_encoder_final_state_starts_the_decoder(cell):
    m = make(cell=cell)
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(0, 6, size=(5, 2)), rng.integers(0, 7, size=(3, 2))
    logits = m(src, tgt)
    _, state = m.encoder(m.src_embed(src))
    hs, _ = m.decoder(m.tgt_embed(tgt), state)
    np.testing.assert_allclose(logits.data, m.out(hs).data, rtol=1e-6)


@pytest.mark.parametrize("attention", [None, "dot", "additive"])
def test_src_lengths_equal_running_alone(attention):
    m = make(attention)
    rng = np.random.default_rng(1)
    src, tgt = rng.integers(0, 6, size=(6, 2)), rng.integers(0, 7, size=(4, 2))
    logits = m(src, tgt, src_lengths=[6, 3])
    alone = m(src[:3, 1:2], tgt[:, 1:2])
    np.testing.assert_allclose(logits.data[:, 1], alone.data[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_attention_weights_are_readable_per_step(attention):
    m = make(attention)
    src, tgt = np.ones((5, 3), dtype=int), np.ones((4, 3), dtype=int)
    logits = m(src, tgt, src_lengths=[5, 2, 4])
    w = m.last_attention
    assert w.shape == (4, 3, 5)
    np.testing.assert_allclose(w.sum(axis=2), 1.0, rtol=1e-5)
    assert np.all(w[:, 1, 2:] == 0) and np.all(w[:, 2, 4:] == 0)
    assert tg.Graph(logits).instances() == {"encoder": 5, "decoder": 4, "attention": 4}


def test_attention_gradients_check_in_float64():
    with tg.default_dtype(np.float64):
        m = make("additive")
    src, tgt = np.array([[1, 2], [3, 4], [5, 0]]), np.array([[1, 2], [3, 4]])
    params = [m.attention.W_k, m.attention.W_q, m.combine.W]
    assert tg.gradcheck(lambda *ps: F.cross_entropy(m(src, tgt, src_lengths=[3, 2]), tgt), params)


def test_scheduled_sampling_zero_is_teacher_forcing_and_one_feeds_predictions():
    m = make("dot")
    rng = np.random.default_rng(3)
    src, tgt = rng.integers(0, 6, size=(4, 2)), rng.integers(0, 7, size=(5, 2))
    forced = m(src, tgt)
    np.testing.assert_allclose(m(src, tgt, sampling=0.0).data, forced.data)
    own = m(src, tgt, sampling=1.0, rng=0)
    # with sampling=1 every step after the first reads the previous greedy prediction, like decoding
    greedy_inputs = np.concatenate([tgt[:1], own.data.argmax(-1)[:-1]])
    np.testing.assert_allclose(own.data, m(src, greedy_inputs).data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("attention", [None, "dot"])
def test_greedy_decode_matches_argmax_and_stops_at_eos(attention):
    m = make(attention)
    src = np.random.default_rng(4).integers(0, 6, size=(5, 3))
    out = m.decode(src, max_len=8, bos=0, eos=1)
    for b in range(3):
        tokens = [0]
        for _ in range(8):
            nxt = int(m(src[:, b:b + 1], np.array(tokens)[:, None]).data[-1, 0].argmax())
            if nxt == 1:
                break
            tokens.append(nxt)
        assert out[b].tolist() == tokens[1:]


def test_beam_size_one_is_greedy_and_a_wider_beam_scores_at_least_as_well():
    m = make("dot")
    src = np.random.default_rng(5).integers(0, 6, size=(4, 4))

    def score(b, seq, eos=1):
        tgt_in = np.array([0] + list(seq))[:, None]
        tgt_out = np.array(list(seq) + [eos])
        logp = F.log_softmax(m(src[:, b:b + 1], tgt_in), axis=-1).data[:, 0]
        return logp[np.arange(len(tgt_out)), tgt_out].sum()

    greedy = m.decode(src, 6, bos=0, eos=1)
    beam1 = [m.decode(src[:, b:b + 1], 6, bos=0, eos=1, beam_size=1)[0] for b in range(4)]
    assert all(np.array_equal(g, h) for g, h in zip(greedy, beam1))
    beam = m.decode(src, 6, bos=0, eos=1, beam_size=4)
    for b in range(4):
        finished_greedy = len(greedy[b]) < 6
        if finished_greedy and len(beam[b]) < 6:
            assert score(b, beam[b]) >= score(b, greedy[b]) - 1e-5


def test_bad_arguments():
    m = make()
    with pytest.raises(ValueError, match="attention"):
        make("cosine")
    with pytest.raises(ValueError, match="beam_size"):
        m.decode(np.ones((2, 1), dtype=int), 3, 0, 1, beam_size=0)
    with pytest.raises(ValueError, match="batch size"):
        m(np.ones((2, 2), dtype=int), np.ones((2, 3), dtype=int))
    with pytest.raises(ValueError, match="sampling"):
        m(np.ones((2, 2), dtype=int), np.ones((2, 2), dtype=int), sampling=2)


def test_drawing_has_named_clusters_for_encoder_decoder_and_attention():
    m = make("dot")
    logits = m(np.ones((3, 1), dtype=int), np.ones((2, 1), dtype=int))
    src = tg.drawing.source(tg.draw(logits))
    for label in ("encoder t=0", "encoder t=2", "decoder t=1", "attention t=1"):
        assert f'label="{label}"' in src
