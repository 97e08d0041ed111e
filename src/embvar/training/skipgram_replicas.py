"""Train many runs of the built-in skip-gram model at once, as one replica group.

Each replica ``r`` is the independent run of its spec
(:func:`~embvar.training.keras_run.train_keras_run`), step for step:

- its initial tables are drawn under its ``init`` seed (and moved by the
  ``perturb`` control) exactly as the independent run's model draws them;
- each epoch its rows come from :func:`~embvar.data.text.skipgram_epoch`
  with its own ``noise`` generator (subsampling, window sizes, negatives)
  and its own ``order`` generator (the permutation), cut into consecutive
  batches of ``batch_size``; replicas' epochs differ in length, and each
  replica's optimizer counts its own steps;
- the step is the fused kernel of :mod:`embvar.training.skipgram_kernel`;
- a replica whose epoch loss or tables stop being finite is marked
  diverged at the end of that epoch, as the independent run is, and its
  result handed on.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from embvar.config import RunSpec
from embvar.data.text import TextCorpus, skipgram_epoch
from embvar.seeds import order_generator
from embvar.training.fit import RunResult

__all__ = ["train_skipgram_replicas", "skipgram_initial_tables"]

logger = logging.getLogger(__name__)


def skipgram_initial_tables(spec: RunSpec, n_words: int) -> dict[str, np.ndarray]:
    """Return the tables the independent run of ``spec`` starts from.

    The same draws as :func:`~embvar.models.skipgram.build_skipgram` under
    the run's ``init`` seed, without building a Keras model: the seed is
    set, the word table's initializer made (it takes its seed from Python's
    ``random`` when it is made) and called on the table's shape; the
    context table starts at zero; the ``perturb`` control then moves one
    word weight up by one unit in the last place, as
    :func:`~embvar.training.keras_run.train_keras_run` does.
    """
    import keras

    from embvar.models.factorization import draw_table, make_initializer

    keras.utils.set_random_seed(spec.seeds["init"])
    word = draw_table(make_initializer(spec.model), (n_words, spec.model.dim))
    if spec.perturb:
        flat = word.reshape(-1)
        k = (spec.perturb - 1) % flat.size
        flat[k] = np.nextafter(flat[k], np.float32(np.inf))
    return {
        "word_embedding": word,
        "context_embedding": np.zeros((n_words, spec.model.dim), np.float32),
    }


def train_skipgram_replicas(
    specs: Sequence[RunSpec],
    data: TextCorpus,
    *,
    on_epoch: Callable[[int, int], None] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    snapshot_epochs: set[int] | None = None,
) -> list[RunResult]:
    """Train the skip-gram runs ``specs`` together, as replicas in one kernel.

    Parameters
    ----------
    specs : sequence of RunSpec
        Runs that share one :func:`~embvar.training.replicas.replica_key`.
    data : TextCorpus
        The corpus every replica trains on.
    on_epoch, on_result, snapshot_epochs
        As for :func:`~embvar.training.replicas.train_replicas`.

    Returns
    -------
    list of RunResult
        In the order of ``specs``, with the fields ``train_keras_run`` fills;
        ``seconds`` is the group's time divided by the number of replicas.
    """
    from embvar.training.keras_run import noise_generator
    from embvar.training.skipgram_kernel import SkipgramKernelModel

    start = time.perf_counter()
    specs = list(specs)
    R = len(specs)
    model_spec = specs[0].model
    epochs = specs[0].training.epochs
    wanted = set(range(epochs + 1)) if snapshot_epochs is None else snapshot_epochs
    results = [RunResult(run_id=s.run_id) for s in specs]
    import keras

    keras.backend.clear_session()
    model = SkipgramKernelModel(
        [skipgram_initial_tables(s, data.n_words) for s in specs], specs
    )
    noises = [noise_generator(s.seeds["noise"]) for s in specs]
    orders = [order_generator(s.seeds["order"]) for s in specs]
    running = list(range(R))
    width = 1 + model_spec.negatives

    def record(epoch: int, r: int, tables, loss: float, seconds: float) -> bool:
        """Add replica ``r``'s epoch to its result, as ``train_keras_run`` does."""
        tables = {name: np.array(t[r]) for name, t in tables.items()}
        finite = all(np.isfinite(t).all() for t in tables.values())
        if epoch in wanted or not finite:
            results[r].snapshots[epoch] = tables
        results[r].history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "train_rmse": float("nan"),
                "test_rmse": float("nan"),
                "seconds": seconds,
            }
        )
        return finite and math.isfinite(loss)

    def finish(r: int) -> None:
        results[r].seconds = (time.perf_counter() - start) / R
        if on_result is not None:
            on_result(results[r])

    stacked = model.values()
    for r in running:
        record(0, r, stacked, float("nan"), 0.0)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        targets, contexts = [], []
        for r in range(R):
            if r not in running:
                targets.append(np.zeros(0, np.int32))
                contexts.append(np.zeros((0, width), np.int32))
                continue
            rows = skipgram_epoch(
                data,
                window=model_spec.window,
                negatives=model_spec.negatives,
                threshold=model_spec.subsample,
                noise=noises[r],
                order=orders[r],
            )
            targets.append(rows.targets)
            contexts.append(rows.contexts)
        means = model.run_epoch(targets, contexts)
        seconds = (time.perf_counter() - t0) / R
        stacked = model.values()
        for r in list(running):
            if not record(epoch, r, stacked, float(means[r]), seconds):
                results[r].status = "diverged"
                results[r].diverged = {"epoch": epoch, "step": -1}
                logger.warning("run %s diverged at epoch %d", specs[r].run_id, epoch)
                model.stop(r)
                running.remove(r)
                finish(r)
        if not running:
            return results
        if on_epoch is not None:
            on_epoch(epoch, epochs)
    for r in running:
        finish(r)
    return results
