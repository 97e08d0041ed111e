"""Pairs of runs: metric values, sampled neighbours."""

import numpy as np
import pytest

from embvar.analysis.distances import (
    RunEmbeddings,
    as_distance,
    pair_value,
    pairwise_matrix,
    query_knn,
    query_rows,
)
from embvar.errors import ShapeMismatchError
from embvar.metrics import knn_indices


@pytest.mark.parametrize("n", [11, 500, 1024, 2500])
def test_query_knn_matches_exact_search(n):
    X = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)
    rows = np.arange(0, n, 3)
    k = min(10, n - 1)
    got = query_knn(X, rows, k)
    want = knn_indices(X, k)[rows]
    assert np.array_equal(np.sort(got, axis=1), np.sort(want, axis=1))
    assert not np.any(got == rows[:, None])  # never its own neighbour


def test_query_rows_seeded_sample_or_all():
    a, b = query_rows(100, 10, seed=1), query_rows(100, 10, seed=1)
    assert np.array_equal(a, b) and len(np.unique(a)) == 10
    assert query_rows(10, 20) is None


def _run(name, V, rows=None):
    U = np.ones((3, V.shape[1]))
    return RunEmbeddings(
        name, {"user_embedding": U, "item_embedding": V}, query_rows=rows
    )


def test_pairwise_matrix_rotated_copy_identical():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(40, 4))
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    runs = [_run("a", V), _run("b", V @ Q)]
    assert pairwise_matrix(runs, "procrustes")[0, 1] == pytest.approx(0.0, abs=1e-7)
    assert pairwise_matrix(runs, "knn_overlap@10")[0, 1] == pytest.approx(1.0)
    assert as_distance(pairwise_matrix(runs, "knn_overlap@10"), "knn_overlap@10")[
        0, 1
    ] == pytest.approx(0.0)


def test_pair_value_sampled_overlap_needs_same_rows():
    V = np.random.default_rng(1).normal(size=(40, 4))
    a = _run("a", V, rows=np.arange(10))
    b = _run("b", V, rows=np.arange(5))
    with pytest.raises(ShapeMismatchError, match="both runs of a pair must measure"):
        pair_value(a, b, "knn_overlap@10")
    assert pair_value(a, _run("c", V, rows=np.arange(10)), "knn_overlap@10") == 1.0
