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
from embvar.data.split import (
    Split,
    hold_out_users,
    split_interactions,
    subsample_train,
)

__all__ = ["PreparedData", "prepare_data", "load_source", "data_key"]


@dataclass(frozen=True, eq=False)
class PreparedData:
    """Interactions plus the split one run trains and tests on."""

    interactions: Interactions
    split: Split
    key: str
    # Rows of the users ``data.holdout_users`` left out of the split (what
    # ``model.pretrained = "holdout"`` pre-trains on); None if none were.
    holdout: np.ndarray | None = None

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
    """Return the data a run with this data spec and split seed sees.

    For ``spec.kind == "text"`` that is a :class:`~embvar.data.text.TextCorpus`.
    """
    if spec.kind == "text":
        from embvar.data.text import prepare_text

        return prepare_text(spec, key=data_key(spec, split_seed))
    interactions = load_source(spec.source)
    split = split_interactions(interactions, spec.test_fraction, split_seed)
    holdout = None
    if spec.holdout_users > 0:
        split, holdout = hold_out_users(
            interactions, split, spec.holdout_users, split_seed
        )
    split = subsample_train(split, spec.fraction, split_seed)
    return PreparedData(interactions, split, data_key(spec, split_seed), holdout)


def save_prepared(data: PreparedData, folder) -> None:
    """Write the id mappings, the split and the labels a study's runs saw.

    If ``folder`` already holds them, check instead that they are identical
    (a changed data file under a finished study is an error, not a silent
    mix of two data sets).
    """
    from pathlib import Path

    from embvar.data.text import TextCorpus, save_text

    if isinstance(data, TextCorpus):
        return save_text(data, folder)

    from embvar.errors import DataError
    from embvar.faults import fault_point
    from embvar.store import load_array, save_array, write_text_atomic

    folder = Path(folder)
    meta_path = folder / "meta.json"
    inter = data.interactions
    meta = {
        "key": data.key,
        "fingerprint": inter.fingerprint(),
        "name": inter.name,
        "n_users": inter.n_users,
        "n_items": inter.n_items,
        "n_train": int(len(data.split.train)),
        "n_test": int(len(data.split.test)),
    }
    if meta_path.is_file():
        try:
            saved = json.loads(meta_path.read_text(encoding="utf-8"))
            saved["fingerprint"], saved["name"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise DataError(
                f"{str(meta_path)!r} must be the JSON record embvar wrote of the "
                f"study's data; it cannot be read ({exc!r}). Use a new study directory."
            ) from exc
        if saved["fingerprint"] != meta["fingerprint"] or not np.array_equal(
            load_array(folder / "train.npy"), data.split.train
        ):
            raise DataError(
                f"the data in {str(folder)!r} differs from what the study's earlier "
                f"runs trained on ({saved['name']}); use a new study directory."
            )
        return
    ids = {"user_ids": inter.user_ids, "item_ids": inter.item_ids}
    for name, arr in ids.items():
        arr = np.asarray(arr)
        save_array(
            folder / f"{name}.npy", arr if arr.dtype != object else arr.astype(str)
        )
    save_array(folder / "train.npy", data.split.train)
    save_array(folder / "test.npy", data.split.test)
    # Training interactions per row, so that readers of the study (the
    # projector export) need not find the original data file again.
    save_array(folder / "item_frequency.npy", inter.item_frequency(data.split.train))
    save_array(folder / "user_frequency.npy", inter.user_frequency(data.split.train))
    labels = {k: v.tolist() for k, v in inter.item_labels.items()}
    write_text_atomic(folder / "labels.json", json.dumps(labels))
    fault_point("prepare")  # testing hook, see embvar.faults
    # meta.json last: its presence says the folder is complete.
    write_text_atomic(meta_path, json.dumps(meta, indent=1))
