"""Fixtures: a study directory whose runs are planted tables, not trained."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from embvar.config import load_study, plan_runs
from embvar.data.prepared import PreparedData, prepare_data, save_prepared
from embvar.store import Store
from embvar.training.fit import RunResult

# Rows of the item table that the planted runs scramble (the unstable items).
SCRAMBLED = np.arange(5)


@dataclass
class PlantedStudy:
    """A study directory with four finished runs of known tables."""

    directory: Path
    run_ids: list[str]
    tables: list[np.ndarray]
    rotations: list[np.ndarray]
    data: PreparedData


def _history(rmse: float) -> list[dict]:
    return [
        {"epoch": 1, "loss": 0.5, "train_rmse": 0.9, "test_rmse": rmse, "seconds": 0.1}
    ]


@pytest.fixture(scope="session")
def planted_study(tmp_path_factory) -> PlantedStudy:
    """Four runs of the MovieLens quick plan's ``seeds`` design.

    Run 0's item table has planted structure; runs 1-3 are it rotated by
    random orthogonal matrices, except that the rows in ``SCRAMBLED`` are
    replaced by fresh random vectors in every run, so exactly those items
    have unstable neighbourhoods.
    """
    directory = tmp_path_factory.mktemp("planted")
    study = load_study("movielens", quick=True)
    specs = [s for s in plan_runs(study) if "seeds" in s.designs][:4]
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    save_prepared(data, directory / "data" / data.key)
    rng = np.random.default_rng(0)
    n_items, n_users, dim = data.interactions.n_items, data.interactions.n_users, 8
    centres = rng.normal(size=(40, dim))
    base = centres[rng.integers(0, 40, n_items)] + 0.05 * rng.normal(
        size=(n_items, dim)
    )
    users = rng.normal(size=(n_users, dim)).astype(np.float32)
    tables, rotations = [], []
    with Store(directory) as store:
        store.set_meta("study_name", study.name)
        store.register(specs)
        for i, spec in enumerate(specs):
            R, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
            T = base @ R
            T[SCRAMBLED] = 3.0 * rng.normal(size=(len(SCRAMBLED), dim))
            T = T.astype(np.float32)
            tables.append(T)
            rotations.append(R)
            snap = {"item_embedding": T, "user_embedding": users @ R.astype(np.float32)}
            assert store.claim(spec.run_id, "test")
            store.save_run(
                RunResult(spec.run_id, {0: snap, 1: snap}, _history(0.9 + i / 100))
            )
    return PlantedStudy(directory, [s.run_id for s in specs], tables, rotations, data)
