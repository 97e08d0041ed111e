import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from embvar.errors import ConfigError, NonFiniteError, ShapeMismatchError
from embvar.metrics import (
    knn_indices,
    knn_overlap,
    knn_recall,
    neighbor_overlap,
    neighbor_sets,
)


def sklearn_neighbors(X, k, metric):
    if metric == "cosine":
        nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute")
        _, found = nn.fit(X).kneighbors(X)
        return found[:, 1:]
    # Inner product: rank by -x.y, self excluded by hand.
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1)[:, :k]


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("method", ["exact", "faiss"])
def test_knn_indices_matches_sklearn_brute_force(rng, metric, method):
    X = rng.normal(size=(700, 12))
    found = knn_indices(X, 7, metric=metric, method=method)
    expected = sklearn_neighbors(X, 7, metric)
    assert found.shape == (700, 7)
    assert neighbor_overlap(found, expected).min() == 1.0


def test_knn_indices_exact_is_sorted_best_first(rng):
    X = rng.normal(size=(300, 5))
    found = knn_indices(X, 6, method="exact")
    Z = X / np.linalg.norm(X, axis=1, keepdims=True)
    sims = np.einsum("id,ikd->ik", Z, Z[found])
    assert np.all(np.diff(sims, axis=1) <= 1e-6)
    assert not np.any(found == np.arange(300)[:, None])


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_knn_indices_exact_threads_agree(rng, n_threads):
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    reference = sklearn_neighbors(X.astype(np.float64), 5, "cosine")
    found = knn_indices(X, 5, method="exact", n_threads=n_threads)
    assert neighbor_overlap(found, reference).mean() > 0.999


def test_knn_indices_tiny_table_by_hand():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert knn_indices(X, 1).ravel().tolist() == [1, 0, 3, 2]
    assert knn_indices(X, 3)[0].tolist() == [1, 3, 2]


def test_knn_indices_approx_reaches_recall_target(rng, clustered):
    X = clustered(3000, 16)
    found = knn_indices(X, 10, method="approx", recall_target=0.95)
    assert knn_recall(X, found, n_queries=300) >= 0.9


def test_knn_indices_k_out_of_range_raises():
    with pytest.raises(ConfigError, match=r"^k must be an integer in \[1, 4\]"):
        knn_indices(np.ones((5, 2)), 5)


def test_knn_indices_unknown_method_raises():
    with pytest.raises(ConfigError, match="^method must be one of"):
        knn_indices(np.ones((5, 2)), 2, method="hnsw")


def test_knn_indices_nonfinite_raises():
    X = np.ones((5, 2))
    X[[1, 3], 0] = np.inf
    with pytest.raises(NonFiniteError, match="^X must be finite; 2 of 5 rows"):
        knn_indices(X, 2)


def test_knn_overlap_rotated_copy_is_one(rng, rotation):
    X = rng.normal(size=(400, 10))
    overlap = knn_overlap(X, 2.0 * X @ rotation(10), k=10)
    assert overlap.shape == (400,)
    assert overlap.min() == 1.0


def test_knn_overlap_is_symmetric_and_in_range(rng):
    X, Y = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    ab, ba = knn_overlap(X, Y, k=5), knn_overlap(Y, X, k=5)
    assert np.array_equal(ab, ba)
    assert ab.min() >= 0.0 and ab.max() <= 1.0


def test_neighbor_overlap_by_hand():
    A = np.array([[1, 2, 3], [4, 5, 6]])
    B = np.array([[3, 2, 9], [7, 8, 0]])
    assert neighbor_overlap(A, B).tolist() == [2 / 3, 0.0]
    assert neighbor_overlap(A, B, kind="jaccard").tolist() == [2 / 4, 0.0]


def test_neighbor_overlap_shape_mismatch_raises():
    with pytest.raises(ShapeMismatchError, match="^indices_a and indices_b must"):
        neighbor_overlap(np.zeros((3, 2), int), np.zeros((3, 3), int))


def test_neighbor_sets_pairwise_matrix(rng, rotation):
    X = rng.normal(size=(150, 6))
    sets = neighbor_sets([X, X @ rotation(6), rng.normal(size=(150, 6))], k=5)
    M = sets.pairwise_mean_overlap()
    assert sets.method == "exact" and sets.recall == [None, None, None]
    assert M[0, 1] == 1.0 and M[0, 2] < 0.5
    assert np.array_equal(M, M.T)


def test_neighbor_sets_approx_reports_recall(clustered):
    tables = [clustered(2000, 8) for _ in range(2)]
    sets = neighbor_sets(tables, k=5, method="approx", recall_target=0.9)
    assert all(r is not None and r >= 0.9 for r in sets.recall)


def test_neighbor_sets_row_mismatch_names_runs():
    with pytest.raises(ShapeMismatchError, match="^every table must have one row"):
        neighbor_sets([np.ones((4, 2)), np.ones((5, 2))], k=2, names=["a", "b"])


def test_neighbor_overlap_missing_entries_never_count():
    A = np.array([[3, -1, -1]])
    B = np.array([[3, 4, -1]])
    assert neighbor_overlap(A, B).tolist() == [1 / 3]


def test_neighbor_overlap_long_rows_match_short_row_method(rng):
    A = np.argsort(rng.random((50, 200)), axis=1)[:, :40]
    B = np.argsort(rng.random((50, 200)), axis=1)[:, :40]
    expected = [len(set(a) & set(b)) / 40 for a, b in zip(A, B, strict=True)]
    assert np.allclose(neighbor_overlap(A, B), expected)
    assert np.allclose(
        neighbor_overlap(A[:, :10], B[:, :10]),
        [len(set(a) & set(b)) / 10 for a, b in zip(A[:, :10], B[:, :10], strict=True)],
    )
