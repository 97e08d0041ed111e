import numpy as np
import pytest

from embvar.errors import ShapeMismatchError
from embvar.metrics import (
    ENTITY_COLUMNS,
    entity_stability_table,
    generalized_procrustes,
    neighbor_sets,
)


def test_entity_stability_table_flags_unstable_entities(rng, rotation, clustered):
    base = clustered(200, 8)
    tables = []
    for _ in range(3):
        T = base + 0.02 * rng.normal(size=base.shape)
        T[:10] = 3 * rng.normal(size=(10, 8))  # re-drawn in every run
        tables.append(T @ rotation(8))
    table = entity_stability_table(
        tables, ids=np.arange(200) + 7, frequency=np.arange(200), k=5
    )
    assert list(table.columns) == list(ENTITY_COLUMNS)
    assert len(table) == 200 and table["id"].iloc[0] == 7
    least = table.nsmallest(10, "knn_overlap")["id"] - 7
    assert set(least) == set(range(10))
    assert table["displacement"].iloc[:10].min() > table["displacement"].iloc[10:].max()


def test_entity_stability_table_reuses_precomputed_results(rng):
    tables = [rng.normal(size=(50, 4)) for _ in range(3)]
    sets = neighbor_sets(tables, k=4)
    gpa = generalized_procrustes(tables)
    table = entity_stability_table(tables, neighbors=sets, consensus=gpa)
    assert np.allclose(table["displacement"], gpa.mean_displacement)
    expected = (sets.overlap(0, 1) + sets.overlap(0, 2) + sets.overlap(1, 2)) / 3
    assert np.allclose(table["knn_overlap"], expected)
    assert table["frequency"].isna().all()


def test_entity_stability_table_one_run_raises():
    with pytest.raises(ShapeMismatchError, match="^tables must hold at least two"):
        entity_stability_table([np.ones((5, 2))])


def test_entity_stability_table_labels_length_raises(rng):
    tables = [rng.normal(size=(20, 3)) for _ in range(2)]
    with pytest.raises(ShapeMismatchError, match=r"^labels must have one value"):
        entity_stability_table(tables, labels=["a"], k=3)
