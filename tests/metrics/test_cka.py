import numpy as np
import pytest

from embvar.errors import ShapeMismatchError
from embvar.metrics import linear_cka


def gram_cka(X, Y):
    """Reference: HSIC of the n x n linear Gram matrices (Kornblith eq. 3)."""
    n = X.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    return np.sum(K * L) / (np.linalg.norm(K) * np.linalg.norm(L))


def test_linear_cka_rotated_scaled_copy_is_one(rng, rotation):
    X = rng.normal(size=(150, 12))
    assert linear_cka(X, 0.3 * X @ rotation(12) - 4.0) == pytest.approx(1.0, abs=1e-6)


def test_linear_cka_matches_gram_construction(rng):
    for dims in ((5, 5), (4, 7)):
        X = rng.normal(size=(40, dims[0]))
        Y = X[:, :1] + rng.normal(size=(40, dims[1]))
        assert linear_cka(X, Y) == pytest.approx(gram_cka(X, Y), rel=1e-10)


def test_linear_cka_is_symmetric_and_in_range(rng):
    X, Y = rng.normal(size=(30, 3)), rng.normal(size=(30, 6))
    value = linear_cka(X, Y)
    assert value == pytest.approx(linear_cka(Y, X))
    assert 0.0 <= value <= 1.0


def test_linear_cka_constant_table_is_zero():
    assert linear_cka(np.ones((5, 2)), np.arange(10.0).reshape(5, 2)) == 0.0


def test_linear_cka_not_invariant_to_invertible_map(rng):
    X = rng.normal(size=(100, 4))
    A = np.diag([1.0, 1.0, 1.0, 20.0])
    assert linear_cka(X, X @ A) < 0.9


def test_linear_cka_rows_mismatch_raises():
    with pytest.raises(ShapeMismatchError, match="^X and Y must have one row"):
        linear_cka(np.ones((3, 2)), np.ones((2, 2)))
