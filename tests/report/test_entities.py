"""The least stable entities, computed from a store with planted tables."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embvar.report.entities import least_stable_entities, report_entities
from tests.report.conftest import SCRAMBLED


def _group(planted, run_ids=None):
    return {
        "label": "defaults",
        "run_ids": run_ids or planted.run_ids,
        "n_runs": len(run_ids or planted.run_ids),
    }


def test_least_stable_entities_finds_the_scrambled_items(planted_study):
    from embvar.store import Store

    with Store(planted_study.directory, create=False) as store:
        e = least_stable_entities(store, _group(planted_study), planted_study.data)
    inter = planted_study.data.interactions
    assert e["n_entities"] == inter.n_items and e["n_pairs"] == 6
    assert e["dropped"] == []
    worst = {row["row"] for row in e["least_stable"][: len(SCRAMBLED)]}
    assert worst == set(SCRAMBLED.tolist())
    # Rotated copies keep every other item's neighbours.
    assert e["most_stable"][0]["overlap"] == 1.0
    row = e["least_stable"][0]
    assert row["label"] == str(inter.item_labels["title"][row["row"]])
    assert row["frequency"] == int(
        inter.item_frequency(planted_study.data.split.train)[row["row"]]
    )
    assert len(row["neighbors_a"]) == 5 and {"row", "label", "shared"} <= set(
        row["neighbors_a"][0]
    )
    json.dumps(e, allow_nan=False)


def test_least_stable_entities_drops_a_duplicate_run(planted_study):
    from embvar.store import Store

    ids = planted_study.run_ids
    with Store(planted_study.directory, create=False) as store:
        e = least_stable_entities(
            store, _group(planted_study, [ids[0], ids[1], ids[0]]), planted_study.data
        )
    assert e["dropped"] == [{"run": ids[0], "same_as": ids[0]}]
    assert e["n_pairs"] == 1


def test_least_stable_entities_one_run_is_none(planted_study):
    from embvar.store import Store

    with Store(planted_study.directory, create=False) as store:
        assert (
            least_stable_entities(
                store,
                _group(planted_study, planted_study.run_ids[:1]),
                planted_study.data,
            )
            is None
        )


def test_report_entities_picks_the_largest_group(planted_study):
    from embvar.store import Store

    small = {"label": "small", "run_ids": planted_study.run_ids[:2], "n_runs": 2}
    with Store(planted_study.directory, create=False) as store:
        e = report_entities(
            store,
            [small, _group(planted_study)],
            lambda spec: planted_study.data,
            n_rows=3,
        )
    assert e["group"] == "defaults" and len(e["least_stable"]) == 3


def _init_store(directory, data):
    """Four 2 x 2 (init x order) runs: rows never rated keep a per-init table.

    Every run's table is rotated by its own orthogonal matrix, so cosine
    neighbours are unchanged within an init. Rows ``unseen`` are random per
    *init* (as an untrained row keeps its initial values): the same in
    same-init runs, unrelated across inits. Rows ``fresh`` are random in
    every run.
    """
    from embvar.config import load_study, plan_runs
    from embvar.data.prepared import save_prepared
    from embvar.store import Store
    from embvar.training.fit import RunResult

    study = load_study("movielens", quick=True)
    specs = [s for s in plan_runs(study) if "seeds" in s.designs][:4]
    save_prepared(data, directory / "data" / data.key)
    rng = np.random.default_rng(1)
    n_items, n_users, dim = data.interactions.n_items, data.interactions.n_users, 8
    centres = rng.normal(size=(40, dim))
    base = centres[rng.integers(0, 40, n_items)] + 0.05 * rng.normal(
        size=(n_items, dim)
    )
    freq = data.interactions.item_frequency(data.split.train)
    unseen = np.flatnonzero(freq == freq.min())[:5]
    fresh = np.setdiff1d(np.arange(n_items), unseen)[:5]
    per_init = {i: 3.0 * rng.normal(size=(len(unseen), dim)) for i in (0, 1)}
    users = rng.normal(size=(n_users, dim)).astype(np.float32)
    with Store(directory) as store:
        store.register(specs)
        for spec in specs:
            T = base.copy()
            T[unseen] = per_init[spec.levels["init"]]
            T[fresh] = 3.0 * rng.normal(size=(len(fresh), dim))
            R, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
            T = (T @ R).astype(np.float32)
            snap = {"item_embedding": T, "user_embedding": users}
            assert store.claim(spec.run_id, "test")
            store.save_run(
                RunResult(
                    spec.run_id,
                    {1: snap},
                    [
                        {
                            "epoch": 1,
                            "loss": 0.5,
                            "train_rmse": 0.9,
                            "test_rmse": 0.9,
                            "seconds": 0.1,
                        }
                    ],
                )
            )
    return [s.run_id for s in specs], unseen, fresh


def test_least_stable_entities_ranks_on_reseeded_pairs(planted_study, tmp_path):
    from embvar.store import Store

    ids, unseen, fresh = _init_store(tmp_path, planted_study.data)
    # Runs 0 = (init 0, order 0) ... 3 = (init 1, order 1): 0-3 and 1-2 differ
    # in every seed.
    pairs = [
        {"runs": [ids[a], ids[b]], "reseeded": {a, b} in ({0, 3}, {1, 2})}
        for a, b in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
    ]
    base = {"label": "defaults", "run_ids": ids, "n_runs": 4}
    n_rows = len(unseen) + len(fresh)
    with Store(tmp_path, create=False) as store:
        every = least_stable_entities(
            store,
            {**base, "pairs": [{**p, "reseeded": False} for p in pairs]},
            planted_study.data,
            n_rows=n_rows,
        )
        reseeded = least_stable_entities(
            store,
            {**base, "pairs": pairs, "reseeded": {"sources": ["init", "order"]}},
            planted_study.data,
            n_rows=n_rows,
        )
    assert every["pairs_used"] == "all" and every["n_pairs"] == 6
    assert reseeded["pairs_used"] == "reseeded" and reseeded["n_pairs"] == 2
    assert reseeded["reseed_sources"] == ["init", "order"]
    assert reseeded["all_pairs"] == {
        "n_pairs": 6,
        "mean_overlap": pytest.approx(every["mean_overlap"]),
    }
    # All pairs: an unseen row keeps every neighbour in the 2 same-init pairs,
    # so its mean is at least 2/6 and the fresh rows alone rank last.
    rows_all = {r["row"]: r["overlap"] for r in every["least_stable"]}
    assert set(fresh.tolist()) <= set(list(rows_all)[: len(fresh)])
    # Reseeded pairs: unseen rows keep (almost) nothing, like the fresh ones.
    rows = {r["row"]: r["overlap"] for r in reseeded["least_stable"]}
    assert set(unseen.tolist()) | set(fresh.tolist()) == set(rows)
    assert all(rows[u] < 0.2 for u in unseen.tolist())
    u = reseeded["unseen"]
    assert every["unseen"]["mean_overlap"] >= 2 / 6 - 1e-9
    assert u["mean_overlap"] < every["unseen"]["mean_overlap"]
    assert u["mean_overlap_all_pairs"] == pytest.approx(every["unseen"]["mean_overlap"])
    assert u["n_entities"] == int(
        (
            planted_study.data.interactions.item_frequency(
                planted_study.data.split.train
            )
            == 0
        ).sum()
    )
