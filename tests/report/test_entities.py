"""The least stable entities, computed from a store with planted tables."""

from __future__ import annotations

import json

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
