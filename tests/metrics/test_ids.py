import numpy as np
import pytest

from embvar.errors import DataError
from embvar.metrics import knn_overlap, match_ids, procrustes_distance


def test_match_ids_row_permuted_copy_matches_exactly(rng):
    X = rng.normal(size=(100, 4))
    ids = np.arange(1000, 1100)
    perm = rng.permutation(100)
    match = match_ids(ids, ids[perm])
    Y = X[perm]
    assert np.array_equal(X[match.index_a], Y[match.index_b])
    assert procrustes_distance(X[match.index_a], Y[match.index_b]) == 0.0
    assert knn_overlap(X[match.index_a], Y[match.index_b], k=5).min() == 1.0
    assert match.coverage_a == match.coverage_b == 1.0


def test_match_ids_partial_overlap_reports_coverage():
    match = match_ids(["a", "b", "c", "d"], ["d", "x", "b"])
    assert match.ids.tolist() == ["b", "d"]
    assert match.index_a.tolist() == [1, 3] and match.index_b.tolist() == [2, 0]
    assert match.n_common == 2
    assert match.coverage_a == 0.5 and match.coverage_b == pytest.approx(2 / 3)


def test_match_ids_empty_intersection_raises():
    with pytest.raises(DataError, match="^ids_a and ids_b must share at least one"):
        match_ids([1, 2], [3, 4])


def test_match_ids_repeated_id_raises():
    with pytest.raises(DataError, match="^ids_b must hold distinct ids; 1 ids repeat"):
        match_ids([1, 2], [2, 2, 3])


def test_match_ids_empty_input_raises():
    with pytest.raises(DataError, match="^ids_a must be a non-empty 1-D array"):
        match_ids([], [1])
