import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from embvar.errors import DataError, ShapeMismatchError
from embvar.metrics import analogy_accuracy, word_similarity


@pytest.fixture(scope="module")
def benchmark_vocab():
    """Lower-cased words of WordSim353 and of the analogy questions."""
    words = set()
    with open(datapath("wordsim353.tsv"), encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                words.update(w.lower() for w in line.split("\t")[:2])
    with open(datapath("questions-words.txt"), encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith(":"):
                words.update(w.lower() for w in line.split())
    return sorted(words)


def test_word_similarity_matches_gensim(rng, benchmark_vocab):
    vocab = benchmark_vocab[::2]  # leave half the words out of vocabulary
    E = rng.normal(size=(len(vocab), 16)).astype(np.float32)
    kv = KeyedVectors(16)
    kv.add_vectors(vocab, E)
    pearson, spearman, oov_percent = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))

    result = word_similarity(E, vocab, "wordsim353")
    assert result.spearman == pytest.approx(spearman.statistic, abs=1e-6)
    assert result.pearson == pytest.approx(pearson.statistic, abs=1e-6)
    assert result.oov_ratio * 100 == pytest.approx(oov_percent)
    assert result.n_pairs == 353 and result.n_evaluated + result.n_oov == 353


def test_word_similarity_simlex_counts_oov_pairs():
    result = word_similarity(np.eye(2), ["old", "new"], "simlex999")
    assert result.n_pairs == 999 and result.n_evaluated == 1
    assert result.n_oov == 998 and np.isnan(result.spearman)


def test_word_similarity_custom_file_by_hand(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("# a comment\ncat\tdog\t9\ncat\tcar\t1\ndog\tcar\t2\nx\ty\t5\n")
    E = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    result = word_similarity(E, ["Cat", "dog", "car"], str(path))
    # cos(cat, dog) > cos(dog, car) > cos(cat, car) ranks as the scores do.
    assert result.spearman == pytest.approx(1.0)
    assert (result.n_evaluated, result.n_oov) == (3, 1)


def test_analogy_accuracy_matches_gensim(rng, benchmark_vocab, tmp_path):
    # Every 20th question of each section keeps gensim's loop fast.
    kept, count = [], 0
    with open(datapath("questions-words.txt"), encoding="utf-8") as handle:
        for line in handle:
            count = 0 if line.startswith(":") else count + 1
            if count % 20 == 0:
                kept.append(line)
    questions = tmp_path / "questions.txt"
    questions.write_text("".join(kept) + "man woman king queen\n")
    vocab = benchmark_vocab
    E = rng.normal(size=(len(vocab), 8))
    # Plant one analogy so that the accuracy is not zero.
    E[vocab.index("queen")] = (
        E[vocab.index("king")] - E[vocab.index("man")] + E[vocab.index("woman")]
    )
    kv = KeyedVectors(8)
    kv.add_vectors(vocab, E)
    score, sections = kv.evaluate_word_analogies(questions)
    result = analogy_accuracy(E, vocab, path=questions)
    total = sections[-1]
    assert result.n_correct == len(total["correct"])
    assert result.n_evaluated == len(total["correct"]) + len(total["incorrect"])
    assert result.accuracy == pytest.approx(score) and result.n_correct >= 1


def test_analogy_accuracy_planted_analogy_by_hand(tmp_path):
    path = tmp_path / "questions.txt"
    path.write_text(": family\nman woman king queen\nman woman king zebra\n")
    vocab = ["man", "woman", "king", "queen", "apple"]
    E = np.array(
        [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0, 0, 0]]
    )
    result = analogy_accuracy(E, vocab, path=path)
    assert (result.n_correct, result.n_evaluated, result.n_oov) == (1, 1, 1)
    assert result.sections == {"family": (1, 1)}
    assert result.semantic_accuracy == 1.0 and np.isnan(result.syntactic_accuracy)


def test_analogy_accuracy_restrict_vocab_counts_rare_words_oov(tmp_path):
    path = tmp_path / "questions.txt"
    path.write_text(": x\na b c d\n")
    result = analogy_accuracy(np.eye(4), list("abcd"), path=path, restrict_vocab=3)
    assert result.n_oov == 1 and result.n_evaluated == 0


def test_word_similarity_vocab_length_raises():
    with pytest.raises(ShapeMismatchError, match="^vocab must give one word per row"):
        word_similarity(np.eye(3), ["a", "b"])


def test_word_similarity_unknown_dataset_raises():
    with pytest.raises(DataError, match="^dataset must be one of 'wordsim353'"):
        word_similarity(np.eye(2), ["a", "b"], "men3000")


def test_analogy_accuracy_malformed_line_raises(tmp_path):
    path = tmp_path / "questions.txt"
    path.write_text(": x\na b c\n")
    with pytest.raises(DataError, match="line 2 must hold four words"):
        analogy_accuracy(np.eye(3), list("abc"), path=path)
