"""Train one run of a Keras model other than the factorization, seeded the same way.

The built-in skip-gram model and a user's builder (see
:mod:`embvar.models.custom`) go through :func:`train_keras_run`, which keeps
the order of events of :mod:`embvar.training.fit`:

1. ``keras.backend.clear_session()``;
2. the ``init`` seed is set, then the model is built (the builder runs here);
3. the ``perturb`` control, if asked, moves one weight of the first table by
   one unit in the last place;
4. the ``noise`` seed is set, and every ``SeedGenerator`` of the model's
   layers (dropout and other random layers) is reseeded from it: Keras 3
   gives each such layer its generator state when the layer is created,
   from Python's ``random``, i.e. from the *init* seed, and resetting the
   global seed afterwards does not reach it; the data-side noise (negative
   samples, subsampling) comes from a NumPy generator of the same seed;
5. each epoch the rows are permuted by a generator of the ``order`` seed
   and trained in that order (``shuffle=False``), through the training hook
   if the study names one.

A snapshot holds every named table after each epoch (epoch 0: the initial
values). On text data the history's RMSE columns are empty; on
interactions they hold the model's train and test RMSE.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from embvar.config import RunSpec
from embvar.models.custom import EpochData, builder_params, default_fit
from embvar.models.factorization import make_optimizer
from embvar.seeds import order_generator
from embvar.training.fit import RunResult

__all__ = [
    "train_keras_run",
    "noise_generator",
    "reseed_layer_generators",
    "table_snapshot",
]

logger = logging.getLogger(__name__)


def noise_generator(seed: int) -> np.random.Generator:
    """Return the generator of the data-side noise (negatives, subsampling)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))


def reseed_layer_generators(model: keras.Model, seed: int) -> int:
    """Give every layer's ``SeedGenerator`` a state drawn from ``seed``.

    Generators are visited in the order of the model's layers, so the same
    model and seed always give the same states. Returns how many were set.
    """
    states = np.random.SeedSequence(seed, spawn_key=(2,))
    count = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(layer, "_seed_generators", []):
            dtype = keras.backend.standardize_dtype(generator.state.dtype)
            value = int(states.spawn(1)[0].generate_state(1)[0] >> 2) or 1
            generator.state.assign(np.array([value, 0], dtype=dtype))
            count += 1
    return count


def table_snapshot(model: keras.Model, names: list[str]) -> dict[str, np.ndarray]:
    """Return float32 copies of the named layers' first weights."""
    return {
        name: np.array(
            keras.ops.convert_to_numpy(model.get_layer(name).weights[0]),
            dtype=np.float32,
        )
        for name in names
    }


def _perturb(model: keras.Model, name: str, index: int) -> None:
    variable = model.get_layer(name).weights[0]
    table = keras.ops.convert_to_numpy(variable).copy()
    flat = table.reshape(-1)
    k = (index - 1) % flat.size
    flat[k] = np.nextafter(flat[k], np.float32(np.inf))
    variable.assign(table)


def train_keras_run(
    spec: RunSpec,
    data: Any,
    *,
    on_epoch: Callable[[int, int], None] | None = None,
    snapshot_epochs: set[int] | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
) -> RunResult:
    """Train one run of the skip-gram model or of a user's builder.

    Parameters
    ----------
    spec : RunSpec
        ``model.kind`` is ``"skipgram"`` or ``"package.module:function"``.
    data : TextCorpus or PreparedData
        What :func:`embvar.data.prepared.prepare_data` returned for the
        run's data spec.
    on_epoch : callable(epoch, epochs), optional
        Called after each epoch, for progress bars.
    snapshot_epochs : set of int, optional
        Epochs to snapshot (default: all, from 0).
    callbacks : list of keras.callbacks.Callback, optional
        Passed to every ``fit``.

    Returns
    -------
    RunResult
    """
    start = time.perf_counter()
    result = RunResult(run_id=spec.run_id)
    epochs = spec.training.epochs
    wanted = set(range(epochs + 1)) if snapshot_epochs is None else snapshot_epochs
    text = spec.data.kind == "text"
    shape = (
        {"n_words": data.n_words}
        if text
        else {
            "n_users": data.interactions.n_users,
            "n_items": data.interactions.n_items,
            "mu": data.mu,
        }
    )
    params = builder_params(spec, shape)

    # 1-2. A fresh session; the initial values from the init seed alone.
    keras.backend.clear_session()
    keras.utils.set_random_seed(spec.seeds["init"])
    model, names = _build(spec, data, params)
    # 3. The perturbation control.
    if spec.perturb:
        _perturb(model, names[0], spec.perturb)
    # 4. Whatever training draws comes from the noise seed.
    keras.utils.set_random_seed(spec.seeds["noise"])
    reseed_layer_generators(model, spec.seeds["noise"])
    noise = noise_generator(spec.seeds["noise"])
    order = order_generator(spec.seeds["order"])
    if not model.compiled:
        model.compile(
            optimizer=make_optimizer(spec.training),
            loss=_default_loss(text),
            # XLA halves the skip-gram's step time on the CPU here; a user's
            # layers may not compile, so their models run eagerly-traced.
            jit_compile=spec.model.kind == "skipgram",
        )
    fit = default_fit
    if spec.model.fit is not None:
        from embvar.models.custom import load_function

        fit = load_function(spec.model.fit, "model.fit")

    def record(epoch: int, loss: float, seconds: float) -> bool:
        tables = table_snapshot(model, names)
        finite = all(np.isfinite(t).all() for t in tables.values())
        if epoch in wanted or not finite:
            result.snapshots[epoch] = tables
        train = test = float("nan")
        if finite and not text:
            train = _rmse(model, data.train_users, data.train_items, data.train_ratings)
            test = _rmse(model, data.test_users, data.test_items, data.test_ratings)
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
        # 5. This epoch's rows: noise draws, then the order permutation.
        t0 = time.perf_counter()
        rows = _epoch_rows(spec, data, text, noise, order)
        batch = EpochData(
            inputs=rows[0],
            targets=rows[1],
            batch_size=spec.training.batch_size,
            epoch=epoch,
            params=params,
            callbacks=list(callbacks or []),
        )
        loss = float(fit(model, batch))
        finite = record(epoch, loss, time.perf_counter() - t0)
        if not finite or not math.isfinite(loss):
            result.status = "diverged"
            result.diverged = {"epoch": epoch, "step": -1}
            logger.warning("run %s diverged at epoch %d", spec.run_id, epoch)
            break
        if on_epoch is not None:
            on_epoch(epoch, epochs)
    result.seconds = time.perf_counter() - start
    return result


def _build(spec: RunSpec, data: Any, params: dict[str, Any]):
    if spec.model.kind == "skipgram":
        from embvar.models.skipgram import SKIPGRAM_TABLES, build_skipgram

        return build_skipgram(data.n_words, spec.model), list(SKIPGRAM_TABLES)
    from embvar.models.custom import build_custom

    return build_custom(spec, params)


def _default_loss(text: bool) -> Any:
    if text:
        from embvar.models.skipgram import skipgram_loss

        return skipgram_loss()
    return "mse"


def _epoch_rows(
    spec: RunSpec,
    data: Any,
    text: bool,
    noise: np.random.Generator,
    order: np.random.Generator,
) -> tuple[list[np.ndarray], np.ndarray]:
    if text:
        from embvar.data.text import skipgram_epoch

        epoch = skipgram_epoch(
            data,
            window=spec.model.window,
            negatives=spec.model.negatives,
            threshold=spec.model.subsample,
            noise=noise,
            order=order,
        )
        return [epoch.targets, epoch.contexts], epoch.labels
    perm = order.permutation(len(data.train_users))
    return [data.train_users[perm], data.train_items[perm]], data.train_ratings[perm]


def _rmse(model: keras.Model, users, items, ratings) -> float:
    if len(ratings) == 0:
        return float("nan")
    pred = np.asarray(
        model.predict([users, items], batch_size=8192, verbose=0), dtype=np.float64
    ).reshape(-1)
    err = pred - ratings
    return float(np.sqrt(np.mean(err * err)))
