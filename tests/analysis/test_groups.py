"""Group figures over reseeded pairs, and how far training moved the tables.

A hand-built store: the four runs of the MovieLens quick plan's ``seeds``
design (init 0/1 x order 0/1) with planted tables, so which pairs differ in
every seed, and how far each table moved from epoch 0, are known.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from embvar.analysis.groups import (
    MOVED_THRESHOLD,
    group_summary,
    load_run_views,
    reseed_sources,
    summarize,
)
from embvar.config import load_study, plan_runs
from embvar.data.prepared import prepare_data, save_prepared
from embvar.metrics import relative_frobenius
from embvar.store import Store
from embvar.training.fit import RunResult


def _history(rmse: float) -> list[dict]:
    return [
        {"epoch": e, "loss": 0.5, "train_rmse": 0.9, "test_rmse": rmse, "seconds": 0.1}
        for e in (0, 1)
    ]


# Final table = SCALE[i] x the run's epoch-0 table: relative Frobenius
# distance 2 |s - 1| / (1 + s), so 1.1 -> 0.0952 and 3.0 -> 1.0.
SCALE = [1.1, 1.1, 3.0, 3.0]


@pytest.fixture(scope="module")
def store4(tmp_path_factory):
    directory = tmp_path_factory.mktemp("groups")
    study = load_study("movielens", quick=True)
    specs = [s for s in plan_runs(study) if "seeds" in s.designs][:4]
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    save_prepared(data, directory / "data" / data.key)
    rng = np.random.default_rng(0)
    n_items, n_users, dim = data.interactions.n_items, data.interactions.n_users, 8
    users = rng.normal(size=(n_users, dim)).astype(np.float32)
    by_init = {}
    with Store(directory) as store:
        store.register(specs)
        for i, spec in enumerate(specs):
            init = spec.levels["init"]
            if init not in by_init:
                by_init[init] = rng.normal(size=(n_items, dim)).astype(np.float32)
            # Same init: the same start, a small order-specific change.
            start = by_init[init] + 0.01 * rng.normal(size=(n_items, dim)).astype(
                np.float32
            )
            final = (SCALE[i] * start).astype(np.float32)
            snaps = {
                0: {"item_embedding": start, "user_embedding": users},
                1: {"item_embedding": final, "user_embedding": users},
            }
            assert store.claim(spec.run_id, "test")
            store.save_run(RunResult(spec.run_id, snaps, _history(0.9 + i / 100)))
    return SimpleNamespace(directory=directory, specs=specs, data=data)


def test_reseed_sources_varied_seeds_less_inert_noise():
    def rec(kind, init, order, noise):
        return SimpleNamespace(
            spec={
                "model": {"kind": kind},
                "seeds": {"init": init, "order": order, "noise": noise, "split": 7},
            }
        )

    records = [rec("factorization", 1, 2, 3), rec("factorization", 4, 2, 5)]
    records += [rec("my.mod:build", 1, 2, 3), rec("my.mod:build", 4, 6, 5)]
    # Split never varies; the factorization draws nothing from noise.
    assert reseed_sources(records) == {
        "factorization": ["init"],
        "my.mod:build": ["init", "order", "noise"],
    }


def test_group_summary_reseeded_pairs_are_those_differing_in_every_seed(store4):
    with Store(store4.directory, create=False) as store:
        records = {r.run_id: r for r in store.runs()}
        views = load_run_views(store, [records[s.run_id] for s in store4.specs])
    g = group_summary(views, store4.data)
    levels = [(s.levels["init"], s.levels["order"]) for s in store4.specs]
    assert levels == [(0, 0), (0, 1), (1, 0), (1, 1)]
    ids = [s.run_id for s in store4.specs]
    flagged = {frozenset(p["runs"]) for p in g["pairs"] if p["reseeded"]}
    assert flagged == {frozenset((ids[0], ids[3])), frozenset((ids[1], ids[2]))}
    r = g["reseeded"]
    assert r["sources"] == ["init", "order"] and r["n_pairs"] == 2
    for level, key in (
        ("geometry", "procrustes"),
        ("geometry", "knn_overlap@10"),
        ("parameters", "relative_frobenius"),
        ("function", "topk_overlap@10"),
    ):
        want = np.mean([p[key] for p in g["pairs"] if p["reseeded"]])
        assert r[level][key]["mean"] == pytest.approx(want)
        assert r[level][key]["n"] == 2
    # Same-init pairs start alike and stay alike; reseeded pairs do not.
    same = [p["knn_overlap@10"] for p in g["pairs"][:1]]
    assert r["geometry"]["knn_overlap@10"]["mean"] < 0.2 < same[0]
    # The all-pairs figures are still there, over all 6 pairs.
    assert g["geometry"]["knn_overlap@10"]["n"] == 6


def test_group_summary_training_movement_from_epoch_0(store4):
    with Store(store4.directory, create=False) as store:
        records = {r.run_id: r for r in store.runs()}
        views = load_run_views(store, [records[s.run_id] for s in store4.specs])
    g = group_summary(views[:2], store4.data)
    m = g["training_movement"]
    assert m["values"] == pytest.approx([2 * 0.1 / 2.1] * 2, rel=1e-5)
    assert m["threshold"] == MOVED_THRESHOLD == 0.5
    assert m["barely_moved"] is True and m["n"] == 2
    m = group_summary(views, store4.data)["training_movement"]
    assert m["mean"] == pytest.approx((2 * 0.1 / 2.1 + 1.0) / 2, rel=1e-5)
    assert m["barely_moved"] is False
    # Without an epoch-0 table the movement is unknown, not zero.
    views[0].initial = None
    m = group_summary(views[:1] + views[1:2], store4.data)["training_movement"]
    assert m["values"][0] is None and m["n"] == 1
    assert m["values"][1] == pytest.approx(
        relative_frobenius(views[1].initial, views[1].tables["item_embedding"])
    )


def test_group_summary_no_reseeded_pair_reports_zero_pairs(store4):
    with Store(store4.directory, create=False) as store:
        records = {r.run_id: r for r in store.runs()}
        # Runs 0 and 1 share the init seed.
        views = load_run_views(store, [records[s.run_id] for s in store4.specs[:2]])
    g = group_summary(views, store4.data, sources=["init", "order"])
    assert g["reseeded"]["n_pairs"] == 0
    assert g["reseeded"]["geometry"]["procrustes"]["mean"] is None
    assert [p["reseeded"] for p in g["pairs"]] == [False]


def test_summarize_takes_sources_from_the_whole_study(store4):
    with Store(store4.directory, create=False) as store:
        groups = summarize(
            store,
            lambda spec: store4.data,
            run_ids={s.run_id for s in store4.specs},
        )
    assert len(groups) == 1 and groups[0]["reseeded"]["n_pairs"] == 2
