import numpy as np
import pytest
from scipy.spatial import procrustes

from embvar.errors import NonFiniteError, ShapeMismatchError
from embvar.metrics import (
    angular_shape_distance,
    procrustes_distance,
    procrustes_rotation,
)


def test_procrustes_distance_rotated_copy_is_zero(rng, rotation):
    X = rng.normal(size=(200, 16))
    Y = X @ rotation(16)
    assert procrustes_distance(X, Y) == pytest.approx(0.0, abs=1e-6)
    assert procrustes_distance(X, Y, scale=False) == pytest.approx(0.0, abs=1e-6)


def test_procrustes_distance_scaled_translated_copy_is_zero_when_scaled(rng, rotation):
    X = rng.normal(size=(100, 8))
    Y = 3.0 * X @ rotation(8) + 5.0
    assert procrustes_distance(X, Y) == pytest.approx(0.0, abs=1e-6)
    assert procrustes_distance(X, Y, scale=False) > 1.0


def test_procrustes_distance_translation_needs_center(rng):
    X = rng.normal(size=(50, 4))
    assert procrustes_distance(X, X + 10.0) == pytest.approx(0.0, abs=1e-6)
    assert procrustes_distance(X, X + 10.0, center=False) > 0.1


def test_procrustes_distance_square_matches_scipy_disparity(rng):
    for _ in range(5):
        X = rng.normal(size=(60, 5))
        Y = X + rng.normal(scale=0.7, size=X.shape)
        _, _, disparity = procrustes(X, Y)
        assert procrustes_distance(X, Y) ** 2 == pytest.approx(disparity, rel=1e-9)


def test_procrustes_distance_unscaled_matches_direct_fit(rng):
    X = rng.normal(size=(80, 6))
    Y = rng.normal(size=(80, 6))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    R = procrustes_rotation(X, Y)
    expected = np.linalg.norm(Xc - Yc @ R)
    assert procrustes_distance(X, Y, scale=False) == pytest.approx(expected)


def test_procrustes_distance_is_symmetric(rng):
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    for scale in (True, False):
        assert procrustes_distance(X, Y, scale=scale) == pytest.approx(
            procrustes_distance(Y, X, scale=scale)
        )


def test_procrustes_distance_by_hand():
    # Centred X = [[-1], [1]], Y = [[1], [-1]]: a reflection (orthogonal),
    # so the distance is 0; Y = 0 leaves all of ||X||^2 = 2 unexplained.
    X = np.array([[0.0], [2.0]])
    assert procrustes_distance(X, X[::-1]) == pytest.approx(0.0)
    Y = np.zeros((2, 1))
    assert procrustes_distance(X, Y, scale=False) == pytest.approx(np.sqrt(2.0))
    assert procrustes_distance(X, Y) == pytest.approx(1.0)


def test_procrustes_distance_range_with_scale(rng):
    X, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    assert 0.0 <= procrustes_distance(X, Y) <= 1.0


def test_procrustes_distance_rows_mismatch_raises():
    with pytest.raises(ShapeMismatchError, match="^X and Y must have one row"):
        procrustes_distance(np.ones((3, 2)), np.ones((4, 2)))


def test_procrustes_distance_nonfinite_raises():
    X = np.ones((3, 2))
    X[1, 0] = np.nan
    with pytest.raises(NonFiniteError, match="^Y must be finite; 1 of 3 rows"):
        procrustes_distance(np.ones((3, 2)), X)


def test_angular_shape_distance_rotated_copy_is_zero(rng, rotation):
    X = rng.normal(size=(100, 8))
    assert angular_shape_distance(X, -2 * X @ rotation(8)) == pytest.approx(
        0.0, abs=1e-6
    )


def test_angular_shape_distance_orthogonal_shapes_is_right_angle():
    # Centred columns e1-like and e2-like that share no direction.
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    Y = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert angular_shape_distance(X, Y) == pytest.approx(np.pi / 2)


def test_procrustes_rotation_recovers_rotation(rng, rotation):
    X = rng.normal(size=(50, 5))
    Q = rotation(5)
    assert np.allclose(procrustes_rotation(X, X @ Q), Q.T)
