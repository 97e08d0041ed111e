"""The report sections end to end, on a store of synthetic runs (no training).

Each run's item table is a shared structure plus a random offset per init
level (large) and per order level (small) that shrinks over the epochs, so
the answers are known: init moves the embeddings more than order, the
difference shrinks with training, the perturbed twin is closest.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from embvar.analysis.evidence import article_claims
from embvar.analysis.runs import StudyRuns
from embvar.analysis.sections import crossed_groups, study_sections
from embvar.config import parse_study, plan_runs
from embvar.report.document import _data_loader, to_json_safe
from embvar.store import Store
from embvar.study import prepare_all

N_USERS, N_ITEMS, DIM, EPOCHS = 30, 60, 4, 3


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sections")
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(N_USERS), 12)
    items = np.concatenate(
        [rng.choice(N_ITEMS, 12, replace=False) for _ in range(N_USERS)]
    )
    pd.DataFrame(
        {"user": users, "item": items, "rating": rng.integers(1, 6, users.size)}
    ).to_csv(folder / "ratings.csv", index=False)
    study = parse_study(
        {
            "name": "synthetic",
            "root_seed": 3,
            "data": {"source": str(folder / "ratings.csv")},
            "model": {"dim": DIM},
            "training": {"epochs": EPOCHS},
            "design": [
                {"name": "seeds", "factors": {"init": [0, 1, 2], "order": [0, 1, 2]}},
                {
                    "name": "perturb",
                    "factors": {"init": [0, 1], "order": [0], "perturb": [1]},
                },
                {
                    "name": "learning_rate",
                    "replicates": 3,
                    "factors": {"learning_rate": [0.001, 0.01]},
                },
            ],
        }
    )
    specs = plan_runs(study)
    store = Store(folder / "out")
    store.set_meta("study", study.model_dump(mode="json"))
    prepare_all(specs, store)
    store.register(specs)
    base = rng.normal(size=(N_ITEMS, DIM))
    offsets = {s: rng.normal(size=(5, N_ITEMS, DIM)) for s in ("init", "order")}
    for spec in specs:
        # What Store.save_run reads of a training result (no TensorFlow here).
        result = SimpleNamespace(
            run_id=spec.run_id,
            snapshots={},
            history=[],
            status="done",
            diverged=None,
            seconds=0.0,
        )
        lr_noise = 3.0 if spec.training.learning_rate == 0.01 else 1.0
        for epoch in range(EPOCHS + 1):
            shrink = 1.0 / (1 + epoch)
            V = base + lr_noise * shrink * (
                1.0 * offsets["init"][spec.levels["init"]]
                + 0.3 * offsets["order"][spec.levels["order"]] * (epoch > 0)
            )
            if spec.perturb:
                V = V + 1e-3
            result.snapshots[epoch] = {
                "user_embedding": np.full((N_USERS, DIM), 0.1, np.float32)
                + 0.01 * spec.levels["init"],
                "item_embedding": V.astype(np.float32),
            }
            result.history.append(
                {
                    "epoch": epoch,
                    "loss": 1.0,
                    "train_rmse": 1.0,
                    "test_rmse": 1.0 - 0.01 * epoch + 0.001 * spec.levels["init"],
                    "seconds": 0.0,
                }
            )
        store.save_run(result)
    yield store
    store.close()


@pytest.fixture(scope="module")
def sections(synthetic_store):
    runs = StudyRuns(synthetic_store, _data_loader())
    return runs, study_sections(runs, seed=0)


def test_crossed_groups_finds_seeds_design(synthetic_store):
    runs = StudyRuns(synthetic_store, _data_loader())
    crossed = crossed_groups(runs)
    assert crossed[0]["design"] == "seeds" and crossed[0]["sources"] == [
        "init",
        "order",
    ]
    assert len(crossed[0]["records"]) == 9


def test_attribution_planted_init_effect_dominates(sections):
    _, out = sections
    att = out["attribution"]
    proc = next(d for d in att["distance"] if d["metric"] == "procrustes")
    by = {e["source"]: e["mean"] for e in proc["by_source"]}
    assert by["init"] > by["order"] > 0 and by["all"] >= by["init"]
    rows = {
        r["source"]: r
        for r in next(p for p in att["permanova"] if p["metric"] == "procrustes")[
            "rows"
        ]
    }
    assert rows["init"]["share"] > rows["order"]["share"]
    comps = {c["source"]: c for c in att["scalar"][0]["components"]}
    assert comps["init"]["share"] > 0.9  # test RMSE depends on init only
    assert len(att["run_ids"]) == 9


def test_attribution_perturbation_control_small(sections):
    _, out = sections
    pert = next(
        p for p in out["attribution"]["perturbation"] if p["metric"] == "procrustes"
    )
    assert pert["n_twins"] == 2 and pert["ratio"] < 0.05
    assert len(pert["runs"]) == 2


def test_dynamics_init_difference_shrinks(sections):
    _, out = sections
    series = {(s["kind"], s["metric"]): s for s in out["dynamics"]["series"]}
    init = series[("init", "procrustes")]
    assert init["epochs"] == list(range(EPOCHS + 1))
    assert init["summary"]["reference_kind"] == "initial"
    assert init["summary"]["remaining"] < 1.0
    assert ("perturb", "procrustes") in series and ("all", "procrustes") in series
    order = series[("order", "procrustes")]
    assert order["mean"][0] == pytest.approx(0.0, abs=1e-6)


def test_frequency_items_and_users(sections):
    _, out = sections
    entries = {(f["entity"], f["pairs_kind"], f["metric"]): f for f in out["frequency"]}
    assert ("item", "all", "knn_overlap@10") in entries
    assert ("item", "order", "relative_displacement") in entries
    assert ("user", "all", "relative_displacement") in entries
    item = entries[("item", "all", "knn_overlap@10")]
    assert sum(b["n"] for b in item["bins"]) == N_ITEMS
    assert item["n_pairs"] == 18  # 3 x 3 cross: pairs that differ in both


def test_tradeoff_levels_and_front(sections):
    _, out = sections
    lr = [lv for lv in out["tradeoff"]["levels"] if lv["design"] == "learning_rate"]
    assert sorted(lv["label"] for lv in lr) == [
        "learning_rate=0.001",
        "learning_rate=0.01",
    ]
    stable = max(lr, key=lambda lv: lv["knn_overlap@10"]["mean"])
    assert stable["label"] == "learning_rate=0.001" and stable["non_dominated"]


def test_sections_are_strict_json(sections):
    _, out = sections
    json.dumps(to_json_safe(out), allow_nan=False)


def test_article_claims_missing_designs_inconclusive(sections):
    runs, _ = sections
    claims = {c["id"]: c for c in article_claims(runs)["claims"]}
    assert set(claims) == {f"C{i}" for i in range(1, 8)}
    assert claims["C2"]["verdict"] == "inconclusive"
    assert claims["C2"]["detail"].startswith("not measured")
    # The seeds design is there: C1 and C5 are measured on it.
    assert claims["C1"]["parts"] and claims["C5"]["parts"]
    assert claims["C5"]["parts"][0]["runs"]
