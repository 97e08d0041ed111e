"""The function level of word embeddings: benchmark scores per run, and spread.

A run's word vectors are scored on WordSim353 and SimLex-999 (Spearman
correlation of cosine similarities with human judgements) and on the
``questions-words`` analogies (accuracy by vector offset), through
:mod:`embvar.metrics.words`. Across the runs of a group the spread of each
score is what varies; the pairs and questions out of the vocabulary are
counted and reported beside it.

A stemmed corpus (the text8 excerpt gensim ships was Porter-stemmed)
misses most benchmark words as written; :func:`stemmed_benchmarks` writes
copies of the benchmark files with every word stemmed the same way, pairs
that collapse to one stem and analogy questions whose four stems are not
distinct left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embvar.analysis.tables import finite_stats
from embvar.metrics import SIMILARITY_DATASETS, analogy_accuracy, word_similarity

__all__ = [
    "WORD_SCORES",
    "Benchmarks",
    "default_benchmarks",
    "stemmed_benchmarks",
    "word_scores",
    "word_function",
    "looks_like_words",
]

#: The function-level keys this module writes, as report.json names them.
WORD_SCORES = ("wordsim353", "simlex999", "analogy")

# Benchmarks: {"wordsim353": path or name, "simlex999": ..., "analogy": path or None}
Benchmarks = dict[str, str | None]


def default_benchmarks() -> Benchmarks:
    """The benchmark files as gensim ships them."""
    return {"wordsim353": "wordsim353", "simlex999": "simlex999", "analogy": None}


def looks_like_words(ids: np.ndarray, *, min_pairs: int = 10) -> bool:
    """Return whether ids are words: at least ``min_pairs`` WordSim353 pairs known."""
    vocab = [str(i) for i in np.asarray(ids).tolist()]
    if sum(w.isalpha() for w in vocab[:1000]) < 0.5 * min(len(vocab), 1000):
        return False
    probe = np.ones((len(vocab), 1), dtype=np.float32)
    with warnings.catch_warnings():  # the probe's similarities are constant
        warnings.simplefilter("ignore")
        found = word_similarity(probe, vocab, "wordsim353").n_evaluated
    return found >= min_pairs


def stemmed_benchmarks(folder: str | Path) -> Benchmarks:
    """Write Porter-stemmed copies of the benchmark files into ``folder``.

    Returns the paths, for :func:`word_function`. Stemming uses gensim's
    Porter stemmer, the one that stemmed gensim's text8 excerpt.
    """
    from gensim.parsing.porter import PorterStemmer
    from gensim.test.utils import datapath

    stem = PorterStemmer().stem
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: Benchmarks = {}
    for name, file in SIMILARITY_DATASETS.items():
        lines = []
        for line in Path(datapath(file)).read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if line.startswith("#") or len(parts) < 3:
                continue
            a, b = stem(parts[0].lower()), stem(parts[1].lower())
            if a != b:
                lines.append(f"{a}\t{b}\t{parts[2]}\n")
        path = folder / f"{name}.stemmed.tsv"
        path.write_text("".join(lines), encoding="utf-8")
        out[name] = str(path)
    lines = []
    for line in Path(datapath("questions-words.txt")).read_text().splitlines():
        if line.startswith(":"):
            lines.append(line + "\n")
            continue
        words = [stem(w.lower()) for w in line.split()]
        if len(words) == 4 and len(set(words)) == 4:
            lines.append(" ".join(words) + "\n")
    path = folder / "questions-words.stemmed.txt"
    path.write_text("".join(lines), encoding="utf-8")
    out["analogy"] = str(path)
    return out


def word_scores(
    table: np.ndarray,
    words: Sequence[str],
    benchmarks: Benchmarks | None = None,
    *,
    restrict_vocab: int | None = 30_000,
) -> dict[str, dict[str, Any]]:
    """Return one run's benchmark scores, each with its coverage.

    Returns
    -------
    dict
        ``{"wordsim353": {"value", "n_evaluated", "n_oov", "n_total"},
        "simlex999": ..., "analogy": ...}``; ``value`` is Spearman's rho or
        the accuracy, NaN if nothing could be evaluated.
    """
    benchmarks = benchmarks or default_benchmarks()
    out: dict[str, dict[str, Any]] = {}
    for name in ("wordsim353", "simlex999"):
        r = word_similarity(table, words, benchmarks[name] or name)
        out[name] = {
            "value": r.spearman,
            "n_evaluated": r.n_evaluated,
            "n_oov": r.n_oov,
            "n_total": r.n_pairs,
        }
    a = analogy_accuracy(
        table, words, path=benchmarks.get("analogy"), restrict_vocab=restrict_vocab
    )
    out["analogy"] = {
        "value": a.accuracy,
        "n_evaluated": a.n_evaluated,
        "n_oov": a.n_oov,
        "n_total": a.n_questions,
    }
    return out


def word_function(
    tables: Sequence[np.ndarray],
    words: Sequence[str],
    benchmarks: Benchmarks | None = None,
) -> dict[str, dict[str, Any]]:
    """Return the function level of a group: each score's spread over runs.

    Parameters
    ----------
    tables : sequence of ndarray of shape (n_words, dim)
        The runs' tables, rows the same words in the same order.
    words : sequence of str
        The word of each row.
    benchmarks : dict, optional
        Benchmark files (see :func:`stemmed_benchmarks`); default gensim's.

    Returns
    -------
    dict
        ``{score: {"n", "mean", "sd", "min", "max", "values": [one per
        run], "n_evaluated", "n_oov", "n_total"}}`` for each of
        :data:`WORD_SCORES`.
    """
    per_run = [word_scores(T, words, benchmarks) for T in tables]
    out = {}
    for name in WORD_SCORES:
        values = [r[name]["value"] for r in per_run]
        first = per_run[0][name]
        out[name] = {
            **finite_stats(values),
            "values": [None if not np.isfinite(v) else float(v) for v in values],
            "n_evaluated": first["n_evaluated"],
            "n_oov": first["n_oov"],
            "n_total": first["n_total"],
        }
    return out
