import numpy as np
import pytest

from embvar.errors import ConfigError
from embvar.metrics import spearman_pairwise_similarity, spearman_similarity_matrix
from embvar.metrics.similarity import sample_pairs


def test_spearman_pairwise_similarity_rotated_scaled_copy_is_one(rng, rotation):
    X = rng.normal(size=(100, 5))
    Y = X @ rotation(5) * rng.uniform(0.5, 2.0, size=(100, 1))
    assert spearman_pairwise_similarity(X, Y, n_pairs=2000) == pytest.approx(1.0)


def test_spearman_pairwise_similarity_independent_runs_near_zero(rng):
    X, Y = rng.normal(size=(300, 10)), rng.normal(size=(300, 10))
    assert abs(spearman_pairwise_similarity(X, Y, n_pairs=5000)) < 0.1


def test_spearman_pairwise_similarity_seed_fixes_pairs(rng):
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    a = spearman_pairwise_similarity(X, Y, n_pairs=100, seed=1)
    assert a == spearman_pairwise_similarity(Y, X, n_pairs=100, seed=1)


def test_sample_pairs_never_pairs_an_entity_with_itself():
    i, j = sample_pairs(3, 1000, seed=0)
    assert not np.any(i == j)
    assert set(np.unique(j)) == {0, 1, 2}


def test_spearman_pairwise_similarity_bad_n_pairs_raises():
    with pytest.raises(ConfigError, match="^n_pairs must be an integer >= 1"):
        spearman_pairwise_similarity(np.ones((3, 2)), np.ones((3, 2)), n_pairs=0)


def test_spearman_similarity_matrix_matches_pairwise_calls(rng):
    base = rng.normal(size=(80, 4))
    tables = [base + rng.normal(scale=s, size=base.shape) for s in (0.1, 0.5, 1.0)]
    rho = spearman_similarity_matrix(tables, n_pairs=500, seed=2)
    assert np.array_equal(rho, rho.T) and np.all(np.diag(rho) == 1.0)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        expected = spearman_pairwise_similarity(
            tables[a], tables[b], n_pairs=500, seed=2
        )
        assert rho[a, b] == pytest.approx(expected, rel=1e-12)
