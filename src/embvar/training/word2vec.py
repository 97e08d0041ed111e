"""Train one run of gensim's Word2Vec (skip-gram, negative sampling), seeded.

The second word-model family of a study, beside the built-in Keras
skip-gram, on the same corpus and vocabulary. Each source of randomness is
separated as far as gensim allows:

- ``init``: gensim's ``seed``, which draws the initial word vectors
  (uniform in ``[-1/dim, 1/dim)``); the context vectors start at zero;
- ``noise``: after the vocabulary is built, the model's generator
  (``model.random``) is replaced by one seeded with the noise seed; every
  training thread takes its stream of subsampling, window and
  negative-sampling draws from it;
- ``order``: the sentences are fed in a new permutation each epoch, drawn
  from the order seed's generator.

With ``workers = 1`` a run is deterministic. With more workers gensim
trains sentences in parallel on shared tables without locks (Hogwild) and
hands out the noise streams in whatever order the threads ask, so the same
seeds give different vectors: the ``workers`` factor and the ``repeat``
factor of a study measure that.

gensim's own learning rate ``alpha`` is ``training.learning_rate``, decayed
linearly to ``1e-4`` over the run; the optimizer and batch size settings
do not apply. Snapshots store the tables in the corpus's vocabulary order
(``word_embedding`` = ``wv.vectors``, ``context_embedding`` = ``syn1neg``);
the history's loss is gensim's summed training loss of the epoch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import numpy as np

from embvar.config import RunSpec
from embvar.data.text import TextCorpus
from embvar.errors import DependencyError
from embvar.seeds import order_generator
from embvar.training.fit import RunResult

__all__ = ["train_word2vec_run", "ShuffledSentences"]

logger = logging.getLogger(__name__)


class ShuffledSentences:
    """The corpus as an iterable that yields a new order on every pass.

    Parameters
    ----------
    sentences : list of list of str
    order : numpy.random.Generator
        Draws one permutation per pass.
    """

    def __init__(self, sentences: list[list[str]], order: np.random.Generator):
        self.sentences = sentences
        self.order = order

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self) -> Iterator[list[str]]:
        for i in self.order.permutation(len(self.sentences)):
            yield self.sentences[i]


def train_word2vec_run(
    spec: RunSpec,
    corpus: TextCorpus,
    *,
    on_epoch: Callable[[int, int], None] | None = None,
    snapshot_epochs: set[int] | None = None,
) -> RunResult:
    """Train gensim's Word2Vec once with the run's seeds; snapshot per epoch.

    Parameters
    ----------
    spec : RunSpec
        ``model.kind = "word2vec"``; ``dim``, ``window``, ``negatives``,
        ``subsample``, ``workers``, ``training.epochs`` and
        ``training.learning_rate`` apply.
    corpus : TextCorpus
    on_epoch : callable(epoch, epochs), optional
    snapshot_epochs : set of int, optional
        Default: every epoch, from 0.

    Returns
    -------
    RunResult
    """
    try:
        from gensim.models import Word2Vec
        from gensim.models.callbacks import CallbackAny2Vec
    except ImportError as exc:  # pragma: no cover - gensim is a dependency
        raise DependencyError(
            "model.kind = 'word2vec' needs gensim; `pip install gensim`."
        ) from exc

    start = time.perf_counter()
    result = RunResult(run_id=spec.run_id)
    epochs = spec.training.epochs
    wanted = set(range(epochs + 1)) if snapshot_epochs is None else snapshot_epochs
    sentences = corpus.sentences()

    # init: the vocabulary (in corpus order) and the initial vectors.
    model = Word2Vec(
        vector_size=spec.model.dim,
        window=spec.model.window,
        min_count=1,
        sg=1,
        hs=0,
        negative=spec.model.negatives,
        sample=spec.model.subsample,
        alpha=spec.training.learning_rate,
        min_alpha=min(1e-4, spec.training.learning_rate),
        seed=spec.seeds["init"],
        workers=spec.model.workers,
        epochs=epochs,
    )
    model.build_vocab(sentences)
    # Our rows in gensim's order, so every snapshot is in vocabulary order.
    rows = np.array([model.wv.key_to_index[w] for w in corpus.words.tolist()])
    # noise: every draw while training.
    model.random = np.random.RandomState(spec.seeds["noise"])

    def record(epoch: int, loss: float, seconds: float) -> None:
        tables = {
            "word_embedding": np.array(model.wv.vectors[rows], dtype=np.float32),
            "context_embedding": np.array(model.syn1neg[rows], dtype=np.float32),
        }
        if epoch in wanted:
            result.snapshots[epoch] = tables
        result.history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "train_rmse": None,
                "test_rmse": None,
                "seconds": seconds,
            }
        )

    class Snapshots(CallbackAny2Vec):
        def __init__(self) -> None:
            self.epoch = 0
            self.t0 = time.perf_counter()
            self.loss = 0.0

        def on_epoch_begin(self, model) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, model) -> None:
            self.epoch += 1
            total = float(model.get_latest_training_loss())
            record(self.epoch, total - self.loss, time.perf_counter() - self.t0)
            self.loss = total
            if on_epoch is not None:
                on_epoch(self.epoch, epochs)

    record(0, float("nan"), 0.0)
    # order: a new permutation of the sentences every epoch.
    model.train(
        ShuffledSentences(sentences, order_generator(spec.seeds["order"])),
        total_examples=len(sentences),
        epochs=epochs,
        compute_loss=True,
        callbacks=[Snapshots()],
    )
    result.seconds = time.perf_counter() - start
    return result
