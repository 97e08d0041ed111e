"""The exact training and test arrays a run sees, a pure function of its spec."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from embvar.config import DataSpec
from embvar.data.interactions import Interactions, read_interactions_table
from embvar.data.movielens import detect_layout, load_movielens
from embvar.data.split import Split, split_interactions, subsample_train

__all__ = ["PreparedData", "prepare_data", "load_source", "data_key"]


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Interactions plus the split one run trains and tests on."""

    interactions: Interactions
    split: Split
    key: str

    @property
    def train_users(self) -> np.ndarray:
        return self.interactions.users[self.split.train]

    @property
    def train_items(self) -> np.ndarray:
        return self.interactions.items[self.split.train]

    @property
    def train_ratings(self) -> np.ndarray:
        return self.interactions.ratings[self.split.train]

    @property
    def test_users(self) -> np.ndarray:
        return self.interactions.users[self.split.test]

    @property
    def test_items(self) -> np.ndarray:
        return self.interactions.items[self.split.test]

    @property
    def test_ratings(self) -> np.ndarray:
        return self.interactions.ratings[self.split.test]

    @property
    def mu(self) -> float:
        """Mean training rating, the model's constant offset."""
        return float(np.mean(self.train_ratings, dtype=np.float64))


def data_key(spec: DataSpec, split_seed: int) -> str:
    """Return the hash naming the prepared data of ``spec`` and ``split_seed``."""
    blob = json.dumps({**spec.model_dump(), "split_seed": split_seed}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@lru_cache(maxsize=4)
def load_source(source: str) -> Interactions:
    """Return the interactions a data source names (cached per process)."""
    if source == "movielens":
        return load_movielens()
    from pathlib import Path

    path = Path(source)
    if detect_layout(path) != "table":
        return load_movielens(path)
    if not path.is_file():
        return load_movielens(path)  # raises the missing-file error
    return read_interactions_table(path)


def prepare_data(spec: DataSpec, split_seed: int) -> PreparedData:
    """Return the data a run with this data spec and split seed sees."""
    interactions = load_source(spec.source)
    split = split_interactions(interactions, spec.test_fraction, split_seed)
    split = subsample_train(split, spec.fraction, split_seed)
    return PreparedData(interactions, split, data_key(spec, split_seed))
