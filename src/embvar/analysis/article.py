"""The reference article's examples 2 and 3, as written and corrected.

The article illustrates its claims with small Keras programs on random
data: a model (``Embedding``, ``Flatten``, ``Dense``) trained with Adam at
learning rate 1.0 and at 0.0001 (example 2), and the same model trained
five times with seeds 0..4, collecting the embedding weights each time
(example 3). As written, both build the model *once* and only call
``compile`` and ``fit`` again, so each later "run" continues training the
previous one, and the seed, set after the build, changes no initial value.

:func:`article_examples` runs both as written and corrected (a fresh model
for every run, the seed set before the build), and returns the numbers
that tell them apart:

- as written, run ``k + 1`` starts exactly where run ``k`` ended (their
  distance is 0), and the differences between consecutive runs shrink, the
  signature of one run converging, not of seeds;
- corrected, every run starts from its own initial values and the
  differences between runs do not shrink from one seed to the next.

The programs are reconstructed from the article's description (the random
data's sizes are ours); the mean absolute difference of the weights is the
measure the article prints.
"""

from __future__ import annotations

import itertools
import time
import warnings
from typing import Any

import numpy as np

from embvar.metrics import mean_abs_difference, procrustes_distance

__all__ = ["article_examples", "example_data", "SETTINGS"]

#: Sizes of the examples' random data and model.
SETTINGS: dict[str, Any] = {
    "vocab": 100,
    "dim": 10,
    "length": 10,
    "rows": 1000,
    "epochs": 10,
    "seeds": [0, 1, 2, 3, 4],
    # Seeds of the corrected example 2 (a fresh model per seed and rate).
    "rate_seeds": [0, 1, 2],
    "learning_rates": [1.0, 0.0001],
    "data_seed": 0,
}


def example_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return the examples' inputs (rows, length) and binary labels (rows, 1)."""
    rng = np.random.default_rng(seed)
    s = SETTINGS
    X = rng.integers(0, s["vocab"], size=(s["rows"], s["length"]))
    y = rng.integers(0, 2, size=(s["rows"], 1)).astype("float32")
    return X, y


def _build(as_written: bool):
    """Embedding -> Flatten -> Dense(1, sigmoid), as the article builds it."""
    import keras

    s = SETTINGS
    kwargs = {"input_length": s["length"]} if as_written else {}
    model = keras.Sequential(
        [
            keras.Input(shape=(s["length"],), dtype="int32"),
            keras.layers.Embedding(s["vocab"], s["dim"], **kwargs),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    return model


def _weights(model) -> np.ndarray:
    return np.array(model.layers[0].get_weights()[0], dtype=np.float64)


def _fit(model, X, y, learning_rate: float, epochs: int) -> None:
    import keras

    # No XLA, and 32 steps per graph call: the same updates as the article's
    # defaults, at less overhead per fit.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        jit_compile=False,
        steps_per_execution=32,
    )
    model.fit(X, y, epochs=epochs, verbose=0)


def _consecutive(tables: list[np.ndarray]) -> list[float]:
    return [
        mean_abs_difference(tables[i], tables[i - 1]) for i in range(1, len(tables))
    ]


def _pairwise(tables: list[np.ndarray]) -> dict[str, float]:
    pairs = list(itertools.combinations(range(len(tables)), 2))
    return {
        "mean_abs_difference": float(
            np.mean([mean_abs_difference(tables[a], tables[b]) for a, b in pairs])
        ),
        "procrustes": float(
            np.mean([procrustes_distance(tables[a], tables[b]) for a, b in pairs])
        ),
    }


def _trend(diffs: list[float]) -> float:
    """Last consecutive difference over the first: < 1 means shrinking."""
    return float(diffs[-1] / diffs[0]) if diffs and diffs[0] > 0 else float("nan")


def example3_as_written(X, y, epochs: int, seeds: list[int]) -> dict[str, Any]:
    """One model, built once; ``tf.random.set_seed(seed)``, compile, fit, 5 times."""
    import keras
    import tensorflow as tf

    # Seeded once before the build so that the report is reproducible; the
    # article sets no seed before it.
    keras.backend.clear_session()
    keras.utils.set_random_seed(SETTINGS["data_seed"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _build(as_written=True)
    starts, ends = [], []
    for seed in seeds:
        tf.random.set_seed(seed)
        starts.append(_weights(model))
        _fit(model, X, y, 0.001, epochs)
        ends.append(_weights(model))
    diffs = _consecutive(ends)
    return {
        "consecutive_mean_abs_difference": diffs,
        "trend": _trend(diffs),
        "start_equals_previous_end": [
            mean_abs_difference(starts[i], ends[i - 1]) for i in range(1, len(ends))
        ],
        "pairwise": _pairwise(ends),
        "warnings": sorted({str(w.message).split("\n")[0] for w in caught}),
    }


def example3_corrected(X, y, epochs: int, seeds: list[int]) -> dict[str, Any]:
    """A fresh model per seed, the seed set before the build."""
    import keras

    starts, ends = [], []
    for seed in seeds:
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = _build(as_written=False)
        starts.append(_weights(model))
        _fit(model, X, y, 0.001, epochs)
        ends.append(_weights(model))
    diffs = _consecutive(ends)
    return {
        "consecutive_mean_abs_difference": diffs,
        "trend": _trend(diffs),
        "initial_pairwise_mean_abs_difference": _pairwise(starts)[
            "mean_abs_difference"
        ],
        "pairwise": _pairwise(ends),
    }


def example2_as_written(X, y, epochs: int) -> dict[str, Any]:
    """One model: Adam at lr 1.0, then compile and fit again at lr 0.0001."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(SETTINGS["seeds"][0])
    model = _build(as_written=True)
    start = _weights(model)
    high, low = SETTINGS["learning_rates"]
    _fit(model, X, y, high, epochs)
    after_high = _weights(model)
    _fit(model, X, y, low, epochs)
    after_low = _weights(model)
    return {
        "difference_printed": mean_abs_difference(after_high, after_low),
        "moved_at_high_rate": mean_abs_difference(start, after_high),
        "low_rate_starts_from": "the weights the high rate ended with",
    }


def example2_corrected(X, y, epochs: int, seeds: list[int]) -> dict[str, Any]:
    """A fresh model per rate and seed, every rate from the same initial values."""
    import keras

    high, low = SETTINGS["learning_rates"]
    finals: dict[float, list[np.ndarray]] = {high: [], low: []}
    moved: dict[float, list[float]] = {high: [], low: []}
    for seed in seeds:
        for lr in (high, low):
            keras.backend.clear_session()
            keras.utils.set_random_seed(seed)
            model = _build(as_written=False)
            start = _weights(model)
            _fit(model, X, y, lr, epochs)
            finals[lr].append(_weights(model))
            moved[lr].append(mean_abs_difference(start, finals[lr][-1]))
    between = [
        mean_abs_difference(a, b)
        for a, b in zip(finals[high], finals[low], strict=True)
    ]
    return {
        "difference_same_seed": float(np.mean(between)),
        "moved": {str(lr): float(np.mean(v)) for lr, v in moved.items()},
        "seed_spread": {str(lr): _pairwise(v) for lr, v in finals.items()},
    }


def article_examples(*, quick: bool = False) -> dict[str, Any]:
    """Run examples 2 and 3 as written and corrected; return their numbers.

    Parameters
    ----------
    quick : bool
        Train 3 epochs instead of 10, with 3 seeds instead of 5 (2 instead of
        3 for the corrected example 2).

    Returns
    -------
    dict
        ``{"settings", "example2": {"as_written", "corrected"},
        "example3": {"as_written", "corrected"}, "findings": [str],
        "seconds"}``.
    """
    t0 = time.perf_counter()
    epochs = 3 if quick else SETTINGS["epochs"]
    seeds = SETTINGS["seeds"][:3] if quick else SETTINGS["seeds"]
    rate_seeds = SETTINGS["rate_seeds"][:2] if quick else SETTINGS["rate_seeds"]
    X, y = example_data(SETTINGS["data_seed"])
    ex3_w = example3_as_written(X, y, epochs, seeds)
    ex3_c = example3_corrected(X, y, epochs, seeds)
    ex2_w = example2_as_written(X, y, epochs)
    ex2_c = example2_corrected(X, y, epochs, rate_seeds)
    high, low = SETTINGS["learning_rates"]
    findings = [
        "Example 3 as written: each run starts exactly where the previous one ended "
        f"(difference {max(ex3_w['start_equals_previous_end']):.3g}); the differences "
        "between consecutive runs go "
        + ", ".join(f"{d:.3f}" for d in ex3_w["consecutive_mean_abs_difference"])
        + f" (last/first {ex3_w['trend']:.2f}): one run converging.",
        "Example 3 corrected (fresh model per seed): "
        + ", ".join(f"{d:.3f}" for d in ex3_c["consecutive_mean_abs_difference"])
        + f" (last/first {ex3_c['trend']:.2f}); every pair of seeds differs by "
        f"{ex3_c['pairwise']['mean_abs_difference']:.3f} on average.",
        f"Example 2 as written prints {ex2_w['difference_printed']:.4f}: the change of "
        f"the lr={high:g} weights during {epochs} more epochs at lr={low:g}.",
        f"Example 2 corrected: from the same initial values, lr={high:g} and "
        f"lr={low:g} end {ex2_c['difference_same_seed']:.3f} apart; seeds differ by "
        f"{ex2_c['seed_spread'][str(high)]['mean_abs_difference']:.3f} at lr={high:g} "
        f"and {ex2_c['seed_spread'][str(low)]['mean_abs_difference']:.3f} at "
        f"lr={low:g}.",
    ]
    return {
        "settings": {**SETTINGS, "epochs": epochs, "seeds": seeds},
        "example2": {"as_written": ex2_w, "corrected": ex2_c},
        "example3": {"as_written": ex3_w, "corrected": ex3_c},
        "findings": findings,
        "seconds": round(time.perf_counter() - t0, 2),
    }
