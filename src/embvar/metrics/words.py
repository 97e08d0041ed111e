"""Function-level scores of word embeddings: similarity and analogy sets.

The benchmark files are the ones gensim ships in ``gensim/test/test_data``
(WordSim353, SimLex-999, and Mikolov et al.'s ``questions-words.txt``).
Running a score on each run gives its spread across runs. Pairs and
questions with a word outside the vocabulary are counted, never dropped
silently.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr

from embvar.checks import check_int
from embvar.errors import DataError, DependencyError, ShapeMismatchError
from embvar.metrics._inputs import check_table

__all__ = [
    "SIMILARITY_DATASETS",
    "WordSimilarityResult",
    "AnalogyResult",
    "word_similarity",
    "analogy_accuracy",
]

#: Word-similarity sets by name, and the file gensim ships for each.
SIMILARITY_DATASETS = {
    "wordsim353": "wordsim353.tsv",
    "simlex999": "simlex999.txt",
}

_ANALOGY_FILE = "questions-words.txt"


@dataclass(frozen=True)
class WordSimilarityResult:
    """Agreement of one run's cosine similarities with human judgements.

    Attributes
    ----------
    dataset : str
        Name or path of the word-pair set.
    spearman : float
        Spearman correlation over the pairs whose words are both in the
        vocabulary; NaN if fewer than two are.
    pearson : float
        Pearson correlation over the same pairs.
    n_pairs : int
        Pairs in the set.
    n_evaluated : int
        Pairs with both words in the vocabulary.
    n_oov : int
        Pairs with a word outside the vocabulary.
    """

    dataset: str
    spearman: float
    pearson: float
    n_pairs: int
    n_evaluated: int
    n_oov: int

    @property
    def oov_ratio(self) -> float:
        """Share of pairs left out for a word outside the vocabulary."""
        return self.n_oov / self.n_pairs if self.n_pairs else 0.0


@dataclass(frozen=True)
class AnalogyResult:
    """Accuracy of one run on the analogy questions "a : b :: c : ?".

    Attributes
    ----------
    accuracy : float
        ``n_correct / n_evaluated``; NaN if no question was evaluated.
    n_correct : int
        Questions whose nearest candidate is the expected word.
    n_evaluated : int
        Questions whose four words are all candidates.
    n_questions : int
        Questions in the file.
    n_oov : int
        Questions with a word outside the candidate vocabulary.
    sections : dict of str to (int, int)
        Per section of the file, ``(n_correct, n_evaluated)``.
    """

    accuracy: float
    n_correct: int
    n_evaluated: int
    n_questions: int
    n_oov: int
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def semantic_accuracy(self) -> float:
        """Accuracy over the sections not named ``gram*``."""
        return self._accuracy(lambda name: not name.startswith("gram"))

    @property
    def syntactic_accuracy(self) -> float:
        """Accuracy over the ``gram*`` sections."""
        return self._accuracy(lambda name: name.startswith("gram"))

    def _accuracy(self, keep) -> float:
        correct = sum(c for name, (c, _) in self.sections.items() if keep(name))
        total = sum(t for name, (_, t) in self.sections.items() if keep(name))
        return correct / total if total else float("nan")


def word_similarity(
    embeddings: Any,
    vocab: Sequence[str],
    dataset: str = "wordsim353",
    *,
    case_insensitive: bool = True,
) -> WordSimilarityResult:
    """Return the correlation of cosine similarities with human judgements.

    Parameters
    ----------
    embeddings : array-like of shape (n_words, dim)
        One run's word vectors.
    vocab : sequence of str of length n_words
        The word of each row; the first occurrence wins if a word repeats
        (after lower-casing, with ``case_insensitive``).
    dataset : str, default="wordsim353"
        ``"wordsim353"``, ``"simlex999"``, or the path of a file of lines
        ``word1<TAB>word2<TAB>score`` (``#`` starts a comment line).
    case_insensitive : bool, default=True
        Match words lower-cased.

    Returns
    -------
    WordSimilarityResult
        Spearman and Pearson correlations, with the pairs evaluated and
        out of vocabulary.

    Notes
    -----
    ``rho = spearman({cos(w1, w2)}, {human score})`` over the in-vocabulary
    pairs. Invariant to rotation of the table and rescaling of its rows.

    References
    ----------
    Finkelstein et al. (2002), "Placing search in context: the concept
    revisited", ACM TOIS 20 (WordSim353); Hill, Reichart & Korhonen (2015),
    "SimLex-999: evaluating semantic models with (genuine) similarity
    estimation", Computational Linguistics 41.
    """
    E, lookup = _check_words(embeddings, vocab, case_insensitive)
    path = _dataset_path(dataset)
    pairs = _read_pairs(path, case_insensitive)

    known = [
        (lookup[a], lookup[b], s) for a, b, s in pairs if a in lookup and b in lookup
    ]
    n_oov = len(pairs) - len(known)
    if len(known) < 2:
        nan = float("nan")
        return WordSimilarityResult(dataset, nan, nan, len(pairs), len(known), n_oov)

    rows_a, rows_b, human = (np.array(column) for column in zip(*known, strict=True))
    Z = _unit_rows(E)
    cosine = np.einsum("ij,ij->i", Z[rows_a], Z[rows_b])
    return WordSimilarityResult(
        dataset,
        float(spearmanr(cosine, human).statistic),
        float(pearsonr(cosine, human).statistic),
        len(pairs),
        len(known),
        n_oov,
    )


def analogy_accuracy(
    embeddings: Any,
    vocab: Sequence[str],
    *,
    path: str | os.PathLike[str] | None = None,
    restrict_vocab: int | None = 30_000,
    case_insensitive: bool = True,
    batch_size: int = 1024,
) -> AnalogyResult:
    """Return the accuracy on analogy questions by vector offset (3CosAdd).

    Parameters
    ----------
    embeddings : array-like of shape (n_words, dim)
        One run's word vectors, most frequent words first if
        ``restrict_vocab`` is used.
    vocab : sequence of str of length n_words
        The word of each row.
    path : path-like, optional
        An analogy file in the ``questions-words.txt`` format (``:`` starts
        a section; each other line is ``a b c d``). Default: the copy gensim
        ships.
    restrict_vocab : int or None, default=30000
        Only the first this many rows are candidates, and questions with a
        word beyond them count as out of vocabulary. None: all rows.
    case_insensitive : bool, default=True
        Match words lower-cased.
    batch_size : int, default=1024
        Questions scored per matrix product.

    Returns
    -------
    AnalogyResult
        Accuracy overall and per section, with the questions out of
        vocabulary.

    Notes
    -----
    For "a : b :: c : d", the answer is
    ``argmax_w cos(w, b - a + c)`` over the candidates other than a, b and
    c, on unit-normalised vectors, as in gensim's
    ``KeyedVectors.evaluate_word_analogies``. Invariant to rotation of the
    table and rescaling of its rows.

    References
    ----------
    Mikolov, Chen, Corrado & Dean (2013), "Efficient estimation of word
    representations in vector space", ICLR workshop.
    """
    E, lookup = _check_words(embeddings, vocab, case_insensitive)
    batch_size = check_int("batch_size", batch_size, 1)
    n_candidates = E.shape[0]
    if restrict_vocab is not None:
        restrict_vocab = check_int("restrict_vocab", restrict_vocab, 1)
        n_candidates = min(n_candidates, restrict_vocab)
    file = Path(path) if path is not None else _gensim_data(_ANALOGY_FILE)
    questions = _read_questions(file, case_insensitive)

    # Step 1: map words to rows; a word beyond the candidates is unknown.
    rows, names = [], []
    for section, words in questions:
        ids = [lookup.get(w, -1) for w in words]
        if all(0 <= i < n_candidates for i in ids):
            rows.append(ids)
            names.append(section)
    n_oov = len(questions) - len(rows)

    # Step 2: score each question against every candidate, a, b, c excluded.
    Z = _unit_rows(E[:n_candidates])
    correct = np.zeros(len(rows), dtype=bool)
    R = np.array(rows, dtype=np.int64).reshape(-1, 4)
    for start in range(0, len(R), batch_size):
        block = R[start : start + batch_size]
        target = Z[block[:, 1]] - Z[block[:, 0]] + Z[block[:, 2]]
        scores = target @ Z.T
        for column in range(3):
            scores[np.arange(len(block)), block[:, column]] = -np.inf
        correct[start : start + len(block)] = scores.argmax(axis=1) == block[:, 3]

    sections: dict[str, tuple[int, int]] = {}
    for section, ok in zip(names, correct, strict=True):
        hits, total = sections.get(section, (0, 0))
        sections[section] = (hits + int(ok), total + 1)
    n_correct = int(correct.sum())
    accuracy = n_correct / len(rows) if rows else float("nan")
    return AnalogyResult(
        accuracy, n_correct, len(rows), len(questions), n_oov, sections
    )


def _check_words(
    embeddings: Any, vocab: Sequence[str], case_insensitive: bool
) -> tuple[np.ndarray, dict[str, int]]:
    E = check_table("embeddings", embeddings)
    if len(vocab) != E.shape[0]:
        raise ShapeMismatchError(
            f"vocab must give one word per row of embeddings ({E.shape[0]}); "
            f"got {len(vocab)} words."
        )
    lookup: dict[str, int] = {}
    for row, word in enumerate(vocab):
        key = str(word).lower() if case_insensitive else str(word)
        lookup.setdefault(key, row)
    return E, lookup


def _unit_rows(E: np.ndarray) -> np.ndarray:
    Z = np.asarray(E, np.float64)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return np.divide(Z, norms, out=np.zeros_like(Z), where=norms > 0)


def _dataset_path(dataset: str) -> Path:
    if dataset in SIMILARITY_DATASETS:
        return _gensim_data(SIMILARITY_DATASETS[dataset])
    path = Path(dataset)
    if not path.is_file():
        names = ", ".join(repr(name) for name in SIMILARITY_DATASETS)
        raise DataError(
            f"dataset must be one of {names} or the path of a word-pair file; "
            f"got dataset={dataset!r}, which is neither."
        )
    return path


def _gensim_data(name: str) -> Path:
    try:
        from gensim.test.utils import datapath
    except ImportError as error:  # pragma: no cover - gensim is required
        raise DependencyError(
            f"the word benchmarks read {name} from gensim's test data; install "
            "gensim with `pip install gensim`."
        ) from error
    return Path(datapath(name))


def _read_pairs(path: Path, case_insensitive: bool) -> list[tuple[str, str, float]]:
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                a, b, score = parts[0], parts[1], float(parts[2])
            except (IndexError, ValueError) as error:
                raise DataError(
                    f"{path} line {number} must be word1<TAB>word2<TAB>score; "
                    f"got {line.strip()!r}."
                ) from error
            if case_insensitive:
                a, b = a.lower(), b.lower()
            pairs.append((a, b, score))
    return pairs


def _read_questions(path: Path, case_insensitive: bool) -> list[tuple[str, list[str]]]:
    questions = []
    section = ""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith(":"):
                section = line[1:].strip()
                continue
            words = line.split()
            if not words:
                continue
            if len(words) != 4:
                raise DataError(
                    f"{path} line {number} must hold four words a b c d; got "
                    f"{line.strip()!r}."
                )
            if case_insensitive:
                words = [w.lower() for w in words]
            questions.append((section, words))
    return questions
