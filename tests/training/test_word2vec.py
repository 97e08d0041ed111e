import numpy as np
import pytest
from gensim.models import Word2Vec

from embvar.config import parse_study, plan_runs
from embvar.data.prepared import prepare_data
from embvar.training.word2vec import train_word2vec_run


@pytest.fixture
def corpus_file(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    lines = [" ".join(rng.choice(words, 30)) for _ in range(60)]
    path = tmp_path / "c.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _specs(corpus, factors, **model):
    raw = {
        "name": "w",
        "data": {"source": str(corpus), "kind": "text", "min_count": 1},
        "model": {"kind": "word2vec", "dim": 8, **model},
        "training": {"epochs": 2, "learning_rate": 0.025},
        "design": [{"name": "d", "factors": factors}],
    }
    return plan_runs(parse_study(raw))


def _train(spec):
    corpus = prepare_data(spec.data, spec.seeds["split"])
    return train_word2vec_run(spec, corpus), corpus


def test_word2vec_one_thread_is_deterministic(corpus_file):
    spec = _specs(corpus_file, {"repeat": [0]})[0]
    a, _ = _train(spec)
    b, _ = _train(spec)
    for epoch in (0, 2):
        np.testing.assert_array_equal(
            a.snapshots[epoch]["word_embedding"], b.snapshots[epoch]["word_embedding"]
        )
    assert [h["epoch"] for h in a.history] == [0, 1, 2]


def test_word2vec_initial_vectors_are_gensims_in_vocabulary_order(corpus_file):
    spec = _specs(corpus_file, {"init": [3]})[0]
    result, corpus = _train(spec)
    reference = Word2Vec(vector_size=8, min_count=1, sg=1, seed=spec.seeds["init"])
    reference.build_vocab(corpus.sentences())
    rows = [reference.wv.key_to_index[w] for w in corpus.words.tolist()]
    np.testing.assert_array_equal(
        result.snapshots[0]["word_embedding"], reference.wv.vectors[rows]
    )
    assert not result.snapshots[0]["context_embedding"].any()


def test_word2vec_noise_and_order_seeds_change_training_not_init(corpus_file):
    base, noise, order = (
        _specs(corpus_file, {"noise": [0, 1]})[:1]
        + _specs(corpus_file, {"noise": [1]})
        + _specs(corpus_file, {"order": [1]})
    )
    runs = [_train(s)[0] for s in (base, noise, order)]
    first = runs[0].snapshots
    for other in runs[1:]:
        np.testing.assert_array_equal(
            other.snapshots[0]["word_embedding"], first[0]["word_embedding"]
        )
        assert not np.allclose(
            other.snapshots[2]["word_embedding"], first[2]["word_embedding"]
        )
