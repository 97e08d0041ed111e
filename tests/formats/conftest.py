"""Shared fixtures of the format tests: a small table with word ids."""

from __future__ import annotations

import numpy as np
import pytest

from embvar.formats import Embeddings, make_embeddings


@pytest.fixture
def table() -> Embeddings:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    return make_embeddings(
        rng.normal(size=(30, 4)).astype(np.float32), words, source="t", format="npz"
    )
