"""Train one run: a fresh model, each source of randomness seeded on its own.

The order of events is what makes a run reproducible and its sources
separable:

1. ``keras.backend.clear_session()``: nothing survives from a previous run;
2. the ``init`` seed is set (Python ``random``, NumPy, TensorFlow), then the
   model is built, so the initial values depend on ``init`` alone;
3. the ``perturb`` control, if asked, moves one initial weight by one unit
   in the last place;
4. the ``noise`` seed is set, so whatever training draws depends on it
   alone;
5. each epoch the runner permutes the training rows with a generator seeded
   by ``order`` and calls ``fit(..., shuffle=False)``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from embvar.config import RunSpec
from embvar.data.prepared import PreparedData
from embvar.models.factorization import (
    TABLES,
    Pretrained,
    build_factorization,
    make_optimizer,
)
from embvar.seeds import order_generator
from embvar.training.allocator import tune_allocator

__all__ = ["RunResult", "train_run", "rmse", "predict_ratings", "perturb_weight"]

logger = logging.getLogger(__name__)

EpochCallback = Callable[[int, int], None]


@dataclass
class RunResult:
    """What one run produced.

    Attributes
    ----------
    snapshots : dict of int to dict of str to ndarray
        ``snapshots[epoch][table]``, float32, epoch 0 being the initial
        values.
    history : list of dict
        One entry per epoch: ``epoch``, ``loss``, ``train_rmse``,
        ``test_rmse``, ``seconds``.
    status : {"done", "diverged"}
    diverged : dict or None
        ``{"epoch": e, "step": s}`` of the first non-finite loss.
    """

    run_id: str
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    status: str = "done"
    diverged: dict[str, int] | None = None
    seconds: float = 0.0


def predict_ratings(
    tables: dict[str, np.ndarray], users, items, mu: float
) -> np.ndarray:
    """Return the model's predicted ratings from a snapshot's tables."""
    U, V = tables["user_embedding"], tables["item_embedding"]
    pred = np.einsum("nd,nd->n", U[users], V[items], dtype=np.float64) + mu
    if "user_bias" in tables:
        # Each bias added in float64, as the replica trainer's evaluation does.
        pred += tables["user_bias"][users, 0]
        pred += tables["item_bias"][items, 0]
    return pred


def rmse(tables: dict[str, np.ndarray], users, items, ratings, mu: float) -> float:
    """Return the root mean squared error of a snapshot on some ratings."""
    err = predict_ratings(tables, users, items, mu) - ratings
    return float(np.sqrt(np.mean(err * err)))


def perturb_weight(model: keras.Model, index: int) -> None:
    """Move one initial item-embedding weight up by one unit in the last place."""
    layer = model.get_layer("item_embedding")
    table = keras.ops.convert_to_numpy(layer.embeddings).copy()
    flat = table.reshape(-1)
    k = (index - 1) % flat.size
    flat[k] = np.nextafter(flat[k], np.float32(np.inf))
    layer.embeddings.assign(table)


class _DivergenceGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite batch loss and say where."""

    def __init__(self):
        super().__init__()
        self.step: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.step = int(batch)
            self.model.stop_training = True


def snapshot(model: keras.Model) -> dict[str, np.ndarray]:
    """Return copies of every table of a factorization model, float32."""
    out = {}
    for name in TABLES:
        try:
            layer = model.get_layer(name)
        except ValueError:
            continue
        out[name] = np.array(
            keras.ops.convert_to_numpy(layer.embeddings), dtype=np.float32
        )
    return out


def train_run(
    spec: RunSpec,
    data: PreparedData,
    *,
    pretrained: Pretrained | None = None,
    on_epoch: EpochCallback | None = None,
    snapshot_epochs: set[int] | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> RunResult:
    """Train one run of the built-in factorization model.

    Parameters
    ----------
    spec : RunSpec
        The run's settings and seeds.
    data : PreparedData
        The split this run trains and tests on.
    pretrained : Pretrained, optional
        Initial rows, for ``initializer = "pretrained"``.
    on_epoch : callable(epoch, epochs), optional
        Called after each epoch, for progress bars.
    snapshot_epochs : set of int, optional
        Epochs to snapshot (default: all, from 0).
    callbacks : list of keras.callbacks.Callback, optional
        Passed to every ``fit`` call (one per epoch), after the divergence
        guard; the determinism audit records the run's state through one.

    Returns
    -------
    RunResult
    """
    start = time.perf_counter()
    tune_allocator()
    result = RunResult(run_id=spec.run_id)
    epochs = spec.training.epochs
    wanted = set(range(epochs + 1)) if snapshot_epochs is None else snapshot_epochs
    interactions = data.interactions
    mu = data.mu

    # 1-2. A fresh session, then the initial values from the init seed alone.
    keras.backend.clear_session()
    keras.utils.set_random_seed(spec.seeds["init"])
    model = build_factorization(
        interactions.n_users,
        interactions.n_items,
        spec.model,
        mu=mu,
        pretrained=pretrained,
    )
    # 3. The perturbation control.
    if spec.perturb:
        perturb_weight(model, spec.perturb)
    # 4. Whatever training draws comes from the noise seed.
    keras.utils.set_random_seed(spec.seeds["noise"])
    model.compile(
        optimizer=make_optimizer(spec.training), loss="mse", jit_compile=False
    )

    users = data.train_users
    items = data.train_items
    ratings = data.train_ratings
    order = order_generator(spec.seeds["order"])
    guard = _DivergenceGuard()

    def record(epoch: int, loss: float, seconds: float) -> bool:
        tables = snapshot(model)
        finite = all(np.isfinite(t).all() for t in tables.values())
        if epoch in wanted or not finite:
            result.snapshots[epoch] = tables
        if finite:
            train = rmse(tables, users, items, ratings, mu)
            test = rmse(tables, data.test_users, data.test_items, data.test_ratings, mu)
        else:
            train = test = float("nan")
        result.history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "train_rmse": train,
                "test_rmse": test,
                "seconds": seconds,
            }
        )
        return finite

    record(0, float("nan"), 0.0)
    for epoch in range(1, epochs + 1):
        # 5. This epoch's order, from the order seed alone.
        perm = order.permutation(len(users))
        t0 = time.perf_counter()
        hist = model.fit(
            [users[perm], items[perm]],
            ratings[perm],
            batch_size=spec.training.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=[guard, *(callbacks or [])],
        )
        loss = (
            float(hist.history["loss"][-1])
            if hist.history.get("loss")
            else float("nan")
        )
        finite = record(epoch, loss, time.perf_counter() - t0)
        if guard.step is not None or not finite or not math.isfinite(loss):
            result.status = "diverged"
            result.diverged = {
                "epoch": epoch,
                "step": guard.step if guard.step is not None else -1,
            }
            logger.warning(
                "run %s diverged at epoch %d step %s", spec.run_id, epoch, guard.step
            )
            break
        if on_epoch is not None:
            on_epoch(epoch, epochs)
    result.seconds = time.perf_counter() - start
    return result
