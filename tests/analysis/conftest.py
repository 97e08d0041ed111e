"""Shared fixtures of the analysis tests: crossed designs with planted effects.

Set ``EMBVAR_TEST_SEED`` to run the planted-effect tests on another seed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(int(os.environ.get("EMBVAR_TEST_SEED", "0")))


def crossed_levels(a: int = 4, b: int = 4) -> dict[str, np.ndarray]:
    """Levels of an a x b crossed design, one run per combination."""
    return {"init": np.repeat(np.arange(a), b), "order": np.tile(np.arange(b), a)}


def planted_points(
    rng: np.random.Generator,
    levels: dict[str, np.ndarray],
    scale: dict[str, float],
    noise: float,
    dim: int = 5,
) -> np.ndarray:
    """One point per run: a random offset per level of each source, plus noise."""
    n = len(next(iter(levels.values())))
    X = noise * rng.normal(size=(n, dim))
    for source, values in levels.items():
        offsets = rng.normal(size=(int(values.max()) + 1, dim))
        X += scale.get(source, 0.0) * offsets[values]
    return X


def distances(X: np.ndarray) -> np.ndarray:
    return np.linalg.norm(X[:, None, :] - X[None, :, :], axis=-1)
