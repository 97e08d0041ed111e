"""Text corpora for word embeddings, and the skip-gram pairs one epoch sees.

The corpus is a file of sentences, one a line, words separated by
whitespace; ``"text8"`` is the excerpt of text8 gensim ships
(``head500.noblanks.cor``: 500 lines, 331,339 tokens, Porter-stemmed, stop
words removed). Everything here is a pure function of its inputs and the
generators it is given:

- the vocabulary is every word seen at least ``min_count`` times, ordered
  by count (descending), then by the word itself: the same order in every
  process, whatever ``PYTHONHASHSEED`` is;
- :func:`skipgram_epoch` draws one epoch's subsampling, window sizes and
  negative samples from the run's ``noise`` generator, then permutes the
  pairs with its ``order`` generator, so each source of randomness is
  separate, as for the built-in recommender.

Sentences longer than :data:`MAX_SENTENCE` tokens are cut into pieces of at
most that length, the limit gensim's Word2Vec applies, so both word models
see the same sentences.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from embvar.config import DataSpec
from embvar.errors import DataError

__all__ = [
    "BUILTIN_CORPORA",
    "MAX_SENTENCE",
    "TextCorpus",
    "SkipgramEpoch",
    "corpus_path",
    "load_corpus",
    "prepare_text",
    "save_text",
    "keep_probabilities",
    "subsample",
    "window_pairs",
    "negative_table",
    "draw_negatives",
    "skipgram_epoch",
]

#: Built-in corpora: name -> file in gensim's test data.
BUILTIN_CORPORA = {"text8": "head500.noblanks.cor"}

#: Longest sentence, in tokens (gensim's ``MAX_WORDS_IN_BATCH``).
MAX_SENTENCE = 10_000


@dataclass(frozen=True, eq=False)
class TextCorpus:
    """A tokenised corpus over its vocabulary.

    Attributes
    ----------
    words : ndarray of shape (n_words,), str
        The vocabulary, by count descending, then word; row ``r`` of a word
        table is ``words[r]``.
    counts : ndarray of shape (n_words,), int64
        Occurrences of each word in the corpus.
    tokens : ndarray of shape (n_tokens,), int32
        The corpus as word rows, sentence after sentence (words below
        ``min_count`` left out).
    offsets : ndarray of shape (n_sentences + 1,), int64
        Sentence ``s`` is ``tokens[offsets[s]:offsets[s + 1]]``.
    name : str
        Where the corpus came from.
    key : str
        Hash of the data spec, naming the saved copy in a study directory.
    """

    words: np.ndarray
    counts: np.ndarray
    tokens: np.ndarray
    offsets: np.ndarray
    name: str
    key: str

    @property
    def n_words(self) -> int:
        return int(len(self.words))

    @property
    def n_tokens(self) -> int:
        return int(len(self.tokens))

    @property
    def n_sentences(self) -> int:
        return int(len(self.offsets) - 1)

    def sentences(self) -> list[list[str]]:
        """The corpus as lists of words (vocabulary words only), for gensim."""
        words = self.words.tolist()
        bounds = self.offsets.tolist()
        rows = self.tokens.tolist()
        spans = zip(bounds[:-1], bounds[1:], strict=True)
        return [[words[r] for r in rows[a:b]] for a, b in spans]

    def fingerprint(self) -> str:
        """SHA-256 of the vocabulary and the token stream."""
        h = hashlib.sha256()
        h.update("\n".join(self.words.tolist()).encode())
        for a in (self.counts, self.tokens, self.offsets):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


@dataclass(frozen=True, eq=False)
class SkipgramEpoch:
    """The training rows of one skip-gram epoch, in training order.

    Attributes
    ----------
    targets : ndarray of shape (n_pairs,), int32
        Centre word of each row.
    contexts : ndarray of shape (n_pairs, 1 + negatives), int32
        The true context word, then the negative samples.
    labels : ndarray of shape (n_pairs, 1 + negatives), float32
        1 for the true context, 0 for the negatives.
    n_kept : int
        Tokens left after subsampling.
    """

    targets: np.ndarray
    contexts: np.ndarray
    labels: np.ndarray
    n_kept: int

    def __len__(self) -> int:
        return int(len(self.targets))


def corpus_path(source: str) -> Path:
    """Return the file a corpus source names (a built-in name or a path)."""
    if source in BUILTIN_CORPORA:
        from gensim.test.utils import datapath

        return Path(datapath(BUILTIN_CORPORA[source]))
    path = Path(source)
    if not path.is_file():
        raise DataError(
            f"data.source must be a built-in corpus ({', '.join(BUILTIN_CORPORA)}) "
            f"or a text file, one sentence a line; got {source!r}, which is neither."
        )
    return path


@lru_cache(maxsize=4)
def load_corpus(source: str, min_count: int) -> TextCorpus:
    """Return the corpus over words seen ``min_count`` times (cached per process).

    The key of the returned corpus is empty; :func:`prepare_text` sets it.
    """
    path = corpus_path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the corpus {str(path)!r}: {exc}.") from exc
    sentences = [line.split() for line in text.splitlines()]
    sentences = [s for s in sentences if s]
    counts = Counter(w for s in sentences for w in s)
    vocab = sorted(
        (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
    )
    if len(vocab) < 2:
        raise DataError(
            f"the corpus {str(path)!r} has {len(vocab)} words seen at least "
            f"min_count={min_count} times; lower data.min_count."
        )
    row = {w: i for i, w in enumerate(vocab)}
    pieces = []
    for s in sentences:
        kept = [row[w] for w in s if w in row]
        for start in range(0, len(kept), MAX_SENTENCE):
            piece = kept[start : start + MAX_SENTENCE]
            if piece:
                pieces.append(piece)
    lengths = np.array([len(p) for p in pieces], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    tokens = np.fromiter(
        (r for p in pieces for r in p), dtype=np.int32, count=int(offsets[-1])
    )
    corpus = TextCorpus(
        words=np.array(vocab, dtype=str),
        counts=np.array([counts[w] for w in vocab], dtype=np.int64),
        tokens=tokens,
        offsets=offsets,
        name=source if source in BUILTIN_CORPORA else str(path),
        key="",
    )
    return corpus


def prepare_text(spec: DataSpec, *, key: str | None = None) -> TextCorpus:
    """Return the corpus a text data spec describes, named ``key``.

    The default key is a hash of the spec.
    """
    corpus = load_corpus(spec.source, spec.min_count)
    if key is None:
        blob = json.dumps(spec.model_dump(), sort_keys=True)
        key = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return TextCorpus(
        corpus.words, corpus.counts, corpus.tokens, corpus.offsets, corpus.name, key
    )


def save_text(corpus: TextCorpus, folder: str | Path) -> None:
    """Write the vocabulary and counts a study's runs saw, or check them.

    Raises
    ------
    DataError
        If ``folder`` holds a different corpus (the file changed under a
        study).
    """
    from embvar.store import save_array

    folder = Path(folder)
    meta_path = folder / "meta.json"
    meta = {
        "key": corpus.key,
        "kind": "text",
        "fingerprint": corpus.fingerprint(),
        "name": corpus.name,
        "n_words": corpus.n_words,
        "n_tokens": corpus.n_tokens,
        "n_sentences": corpus.n_sentences,
    }
    if meta_path.is_file():
        try:
            saved = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{str(meta_path)!r} must be the JSON record embvar wrote of the "
                f"study's corpus; it cannot be read ({exc!r})."
            ) from exc
        if saved.get("fingerprint") != meta["fingerprint"]:
            raise DataError(
                f"the corpus in {str(folder)!r} differs from what the study's earlier "
                f"runs trained on ({saved.get('name')}); use a new study directory."
            )
        return
    save_array(folder / "words.npy", corpus.words)
    save_array(folder / "counts.npy", corpus.counts)
    # meta.json last: its presence says the folder is complete.
    tmp = folder / ".tmp-meta.json"
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    tmp.replace(meta_path)


def keep_probabilities(counts: np.ndarray, threshold: float) -> np.ndarray:
    """Return each word's probability of being kept by subsampling.

    Notes
    -----
    As in word2vec and gensim: with ``t = threshold * sum(counts)``, a word
    of count ``c`` is kept with probability ``min(1, (sqrt(c / t) + 1) t / c)``
    (Mikolov et al., 2013, "Distributed representations of words and
    phrases and their compositionality", NeurIPS). ``threshold = 0`` keeps
    every word.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if threshold <= 0:
        return np.ones_like(counts)
    t = threshold * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / t) + 1.0) * t / counts)


def subsample(
    corpus: TextCorpus, threshold: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return the tokens subsampling keeps, and the new sentence offsets."""
    keep = (
        rng.random(corpus.n_tokens)
        < keep_probabilities(corpus.counts, threshold)[corpus.tokens]
    )
    sentence = np.repeat(np.arange(corpus.n_sentences), np.diff(corpus.offsets))
    kept_per_sentence = np.bincount(sentence[keep], minlength=corpus.n_sentences)
    offsets = np.concatenate([[0], np.cumsum(kept_per_sentence)])
    return corpus.tokens[keep], offsets


def window_pairs(
    tokens: np.ndarray, offsets: np.ndarray, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Return the (centre, context) pairs of a corpus within each sentence.

    Each position draws its window ``b`` uniformly from ``1..window`` (the
    reduced window of word2vec, which weighs near contexts more); the
    centre is paired with every word at distance ``<= b`` on either side in
    its sentence. Pairs come out grouped by distance, not in text order.
    """
    n = len(tokens)
    sentence = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    reach = rng.integers(1, window + 1, size=n)
    centres, contexts = [], []
    for d in range(1, window + 1):
        if d >= n:
            break
        same = sentence[d:] == sentence[:-d]
        # Centre on the left, context d to its right; then the mirror.
        left = np.nonzero(same & (reach[:-d] >= d))[0]
        centres.append(tokens[left])
        contexts.append(tokens[left + d])
        right = np.nonzero(same & (reach[d:] >= d))[0] + d
        centres.append(tokens[right])
        contexts.append(tokens[right - d])
    if not centres:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return (
        np.concatenate(centres).astype(np.int32),
        np.concatenate(contexts).astype(np.int32),
    )


def negative_table(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """Return a lookup table of the noise distribution ``count^power``.

    Word ``w`` fills a share of the table's slots equal to its probability
    (to one slot), so a uniform slot draws ``w`` with that probability; as
    word2vec's unigram table, at least 100 slots per word of the vocabulary.
    """
    p = np.asarray(counts, dtype=np.float64) ** power
    size = int(min(1 << 26, max(1 << 20, 1 << int(np.ceil(np.log2(100 * len(p)))))))
    bounds = np.round(np.cumsum(p / p.sum()) * size).astype(np.int64)
    bounds[-1] = size
    return np.repeat(np.arange(len(p), dtype=np.int32), np.diff(bounds, prepend=0))


def draw_negatives(
    n: int, k: int, table: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Return ``(n, k)`` words drawn from a :func:`negative_table`."""
    return table[rng.integers(0, len(table), size=(n, k))]


def skipgram_epoch(
    corpus: TextCorpus,
    *,
    window: int,
    negatives: int,
    threshold: float,
    noise: np.random.Generator,
    order: np.random.Generator,
) -> SkipgramEpoch:
    """Return one epoch of skip-gram rows with negative samples, shuffled.

    Parameters
    ----------
    corpus : TextCorpus
    window : int
        Largest distance between a centre word and its context.
    negatives : int
        Negative samples per pair, from ``count^0.75``.
    threshold : float
        Subsampling threshold (0: none).
    noise : numpy.random.Generator
        The run's noise stream: subsampling, window sizes, negatives.
    order : numpy.random.Generator
        The run's order stream: the permutation of the rows.

    Returns
    -------
    SkipgramEpoch
    """
    # Noise: which tokens stay, how far each looks, which words are noise.
    tokens, offsets = subsample(corpus, threshold, noise)
    centre, context = window_pairs(tokens, offsets, window, noise)
    drawn = draw_negatives(len(centre), negatives, negative_table(corpus.counts), noise)

    # Order: one permutation of the rows.
    perm = order.permutation(len(centre))
    contexts = np.concatenate([context[perm, None], drawn[perm]], axis=1)
    labels = np.zeros(contexts.shape, dtype=np.float32)
    labels[:, 0] = 1.0
    return SkipgramEpoch(centre[perm], contexts, labels, int(len(tokens)))
