"""Seeding contract of one run: which source changes what, and when."""

import numpy as np
import pytest

from embvar.config import parse_study, plan_runs
from embvar.data.prepared import prepare_data
from embvar.training import train_run

RAW = {
    "name": "fit",
    "data": {"fraction": 0.2},
    "model": {"dim": 8},
    "training": {"epochs": 2, "learning_rate": 0.01, "batch_size": 2048},
    "design": [{"factors": {"init": [0, 1], "order": [0, 1], "perturb": [0, 1]}}],
}


@pytest.fixture(scope="module")
def runs():
    specs = plan_runs(parse_study(RAW))
    data = prepare_data(specs[0].data, specs[0].seeds["split"])
    by_levels = {(s.levels["init"], s.levels["order"], s.perturb): s for s in specs}
    results = {
        key: train_run(spec, data)
        for key, spec in by_levels.items()
        if key in {(0, 0, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1)}
    }
    return by_levels, data, results


def _item(result, epoch):
    return result.snapshots[epoch]["item_embedding"]


def test_train_run_identical_seeds_bitwise_identical(runs):
    specs, data, results = runs
    again = train_run(specs[(0, 0, 0)], data)
    for epoch in (0, 2):
        for name, table in results[(0, 0, 0)].snapshots[epoch].items():
            assert np.array_equal(table, again.snapshots[epoch][name]), (epoch, name)


def test_train_run_order_only_same_start_different_end(runs):
    _, _, results = runs
    a, b = results[(0, 0, 0)], results[(0, 1, 0)]
    assert np.array_equal(_item(a, 0), _item(b, 0))
    assert np.array_equal(
        a.snapshots[0]["user_embedding"], b.snapshots[0]["user_embedding"]
    )
    assert not np.array_equal(_item(a, 2), _item(b, 2))


def test_train_run_init_only_differs_at_epoch_zero(runs):
    _, _, results = runs
    assert not np.array_equal(
        _item(results[(0, 0, 0)], 0), _item(results[(1, 0, 0)], 0)
    )


def test_train_run_perturb_moves_one_weight_by_one_ulp(runs):
    _, _, results = runs
    a, p = _item(results[(0, 0, 0)], 0), _item(results[(0, 0, 1)], 0)
    diff = np.flatnonzero(a != p)
    assert diff.size == 1
    assert p.flat[diff[0]] == np.nextafter(a.flat[diff[0]], np.float32(np.inf))


def test_train_run_records_every_epoch_and_learns(runs):
    _, _, results = runs
    r = results[(0, 0, 0)]
    assert sorted(r.snapshots) == [0, 1, 2]
    assert [h["epoch"] for h in r.history] == [0, 1, 2]
    assert r.history[-1]["test_rmse"] < r.history[0]["test_rmse"]
    assert r.status == "done"
    assert all(t.dtype == np.float32 for t in r.snapshots[2].values())


def test_train_run_huge_learning_rate_marked_diverged():
    raw = {
        **RAW,
        "training": {
            **RAW["training"],
            "learning_rate": 1e2,
            "optimizer": "sgd",
            "epochs": 3,
        },
        "model": {"dim": 8, "init_stddev": 5.0, "initializer": "normal"},
        "design": [{"factors": {"init": [0]}}],
    }
    spec = plan_runs(parse_study(raw))[0]
    result = train_run(spec, prepare_data(spec.data, spec.seeds["split"]))
    assert result.status == "diverged"
    assert result.diverged["epoch"] == 1
    assert result.diverged["step"] >= 0
