import numpy as np
import pytest

from embvar.config import DataSpec
from embvar.data.text import (
    draw_negatives,
    keep_probabilities,
    load_corpus,
    negative_table,
    prepare_text,
    skipgram_epoch,
    window_pairs,
)
from embvar.errors import DataError


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("b a c a\nc b a\n\nd a b\n")  # a:4, b:3, c:2, d:1
    return path


def test_vocabulary_sorted_by_count_then_word(corpus_file):
    corpus = prepare_text(DataSpec(source=str(corpus_file), kind="text", min_count=1))
    assert corpus.words.tolist() == ["a", "b", "c", "d"]
    assert corpus.counts.tolist() == [4, 3, 2, 1]
    # b a c a | c b a | d a b, as rows; the empty line is no sentence.
    assert corpus.tokens.tolist() == [1, 0, 2, 0, 2, 1, 0, 3, 0, 1]
    assert corpus.offsets.tolist() == [0, 4, 7, 10]
    assert corpus.sentences()[2] == ["d", "a", "b"]


def test_vocabulary_ties_break_on_the_word(tmp_path):
    path = tmp_path / "ties.txt"
    path.write_text("zeta alpha mid zeta alpha mid\n")
    corpus = prepare_text(DataSpec(source=str(path), kind="text", min_count=1))
    assert corpus.words.tolist() == ["alpha", "mid", "zeta"]


def test_min_count_drops_rare_words_from_the_stream(corpus_file):
    corpus = prepare_text(DataSpec(source=str(corpus_file), kind="text", min_count=2))
    assert corpus.words.tolist() == ["a", "b", "c"]
    assert corpus.sentences()[2] == ["a", "b"]
    with pytest.raises(DataError, match="lower data.min_count"):
        load_corpus(str(corpus_file), 5)


def test_text8_excerpt_is_the_known_corpus():
    corpus = prepare_text(DataSpec(source="text8", kind="text"))
    assert corpus.n_sentences == 250
    assert corpus.n_words == 7978  # words seen at least 5 times
    assert corpus.words[:3].tolist() == ["state", "time", "american"]
    assert corpus.counts[0] == 1438


def test_keep_probability_is_word2vec_formula():
    counts = np.array([1000, 10, 1])
    t = 1e-3 * counts.sum()
    p = keep_probabilities(counts, 1e-3)
    assert p[0] == pytest.approx((np.sqrt(1000 / t) + 1) * t / 1000)
    assert p[2] == 1.0
    assert keep_probabilities(counts, 0.0).tolist() == [1.0, 1.0, 1.0]


def test_window_pairs_stay_in_their_sentence():
    tokens = np.array([0, 1, 2, 3, 4], dtype=np.int32)
    offsets = np.array([0, 3, 5])  # sentences 0 1 2 | 3 4

    class Full:  # a generator whose windows are all the largest
        def integers(self, low, high, size):
            return np.full(size, high - 1)

    centre, context = window_pairs(tokens, offsets, 2, Full())
    pairs = sorted(zip(centre.tolist(), context.tolist(), strict=True))
    assert pairs == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (3, 4), (4, 3)]


def test_negatives_follow_the_count_power_distribution():
    counts = np.array([1000, 100, 10, 1])
    table = negative_table(counts)
    drawn = draw_negatives(200_000, 1, table, np.random.default_rng(0))
    p = counts**0.75 / (counts**0.75).sum()
    freq = np.bincount(drawn.ravel(), minlength=4) / drawn.size
    np.testing.assert_allclose(freq, p, atol=3e-3)


def test_skipgram_epoch_sources_are_separate(corpus_file):
    corpus = prepare_text(DataSpec(source=str(corpus_file), kind="text", min_count=1))

    def epoch(noise, order):
        return skipgram_epoch(
            corpus,
            window=2,
            negatives=3,
            threshold=0.0,
            noise=np.random.default_rng(noise),
            order=np.random.default_rng(order),
        )

    a, same, other_order, other_noise = (
        epoch(0, 0),
        epoch(0, 0),
        epoch(0, 1),
        epoch(1, 0),
    )
    np.testing.assert_array_equal(a.contexts, same.contexts)
    assert a.contexts.shape[1] == 4 and (a.labels[:, 0] == 1).all()
    assert not a.labels[:, 1:].any()

    def rows(e):
        return sorted(map(tuple, np.column_stack([e.targets, e.contexts]).tolist()))

    # Another order permutes the same rows; other noise draws other rows.
    assert rows(other_order) == rows(a)
    assert not np.array_equal(other_order.targets, a.targets)
    assert rows(other_noise) != rows(a)
