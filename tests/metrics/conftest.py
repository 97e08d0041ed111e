"""Shared fixtures of the metrics tests.

Set ``EMBVAR_TEST_SEED`` to run the random known-answer tests on another
seed (for example, sweep it over 0-99 to look for a rare failure).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(int(os.environ.get("EMBVAR_TEST_SEED", "0")))


@pytest.fixture
def rotation(rng: np.random.Generator) -> Callable[[int], np.ndarray]:
    """Draw a random orthogonal matrix of a given size (QR, signs fixed)."""

    def draw(dim: int) -> np.ndarray:
        Q, R = np.linalg.qr(rng.normal(size=(dim, dim)))
        return Q * np.sign(np.diag(R))

    return draw


@pytest.fixture
def clustered(rng: np.random.Generator) -> Callable[..., np.ndarray]:
    """Draw rows around a few centres: planted structure plus noise."""

    def draw(n: int, dim: int, n_clusters: int = 10) -> np.ndarray:
        centres = rng.normal(size=(n_clusters, dim))
        labels = rng.integers(0, n_clusters, size=n)
        return centres[labels] + 0.5 * rng.normal(size=(n, dim))

    return draw
