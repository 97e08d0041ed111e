import numpy as np
import pytest

from embvar.errors import ShapeMismatchError
from embvar.metrics import eigenspace_instability, eigenspace_overlap, pip_loss


def test_eigenspace_overlap_invertible_map_is_one(rng):
    X = rng.normal(size=(100, 6))
    A = rng.normal(size=(6, 6)) + 3 * np.eye(6)
    assert eigenspace_overlap(X, X @ A) == pytest.approx(1.0, abs=1e-9)


def test_eigenspace_overlap_matches_svd_definition(rng):
    X, Y = rng.normal(size=(60, 4)), rng.normal(size=(60, 7))
    U = np.linalg.svd(X, full_matrices=False)[0]
    V = np.linalg.svd(Y, full_matrices=False)[0]
    expected = np.linalg.norm(U.T @ V) ** 2 / 7
    assert eigenspace_overlap(X, Y) == pytest.approx(expected, rel=1e-9)
    assert eigenspace_overlap(Y, X) == pytest.approx(expected, rel=1e-9)


def test_eigenspace_overlap_orthogonal_spaces_by_hand():
    X = np.array([[1.0], [0.0], [0.0]])
    Y = np.array([[0.0], [2.0], [0.0]])
    assert eigenspace_overlap(X, Y) == 0.0
    assert eigenspace_overlap(X, X + Y) == pytest.approx(0.2)  # cos^2 = 1/5


def test_pip_loss_matches_gram_construction(rng):
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 5))
    expected = np.linalg.norm(X @ X.T - Y @ Y.T)
    assert pip_loss(X, Y) == pytest.approx(expected, rel=1e-9)


def test_pip_loss_rotated_copy_is_zero(rng, rotation):
    X = rng.normal(size=(100, 8))
    # Relative to ||X^T X|| ~ 100 the subtraction keeps ~8 digits.
    assert pip_loss(X, X @ rotation(8)) == pytest.approx(0.0, abs=1e-5)


def test_eigenspace_instability_same_space_is_zero(rng):
    X = rng.normal(size=(80, 4))
    E, F = rng.normal(size=(80, 10)), rng.normal(size=(80, 10))
    A = rng.normal(size=(4, 4)) + 3 * np.eye(4)
    assert eigenspace_instability(X, X @ A, E, F) == pytest.approx(0.0, abs=1e-9)


def test_eigenspace_instability_matches_n_by_n_definition(rng):
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    E, F = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    U = np.linalg.svd(X, full_matrices=False)[0]
    V = np.linalg.svd(Y, full_matrices=False)[0]
    Sigma = np.linalg.matrix_power(E @ E.T, 3) + np.linalg.matrix_power(F @ F.T, 3)
    D = U @ U.T - V @ V.T
    expected = np.trace(D @ D @ Sigma) / np.trace(Sigma)
    value = eigenspace_instability(X, Y, E, F)
    assert value == pytest.approx(expected, rel=1e-8)
    assert value == pytest.approx(eigenspace_instability(Y, X, E, F), rel=1e-9)
    assert 0.0 <= value <= 1.0


def test_eigenspace_instability_reference_rows_mismatch_raises():
    with pytest.raises(ShapeMismatchError, match="^X_ref must have one row"):
        eigenspace_instability(
            np.ones((4, 2)), np.ones((4, 2)), np.ones((5, 3)), np.ones((5, 3))
        )
