import numpy as np
import pytest

from embvar.errors import ShapeMismatchError
from embvar.metrics import generalized_procrustes, procrustes_distance


def test_generalized_procrustes_rotated_copies_have_zero_displacement(rng, rotation):
    X = rng.normal(size=(120, 6))
    tables = [X, X @ rotation(6), 3.0 * X @ rotation(6) + 2.0]
    result = generalized_procrustes(tables)
    assert result.converged
    assert result.displacement.max() == pytest.approx(0.0, abs=1e-9)
    assert result.residual == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(result.aligned[0], result.aligned[2])


def test_generalized_procrustes_two_runs_match_pairwise_procrustes(rng):
    X, Y = rng.normal(size=(80, 4)), rng.normal(size=(80, 4))
    result = generalized_procrustes([X, Y])
    # Two unit-norm tables rotated onto their mean: the residual is half of
    # the unscaled Procrustes distance squared of the standardized pair.
    Xs = (X - X.mean(0)) / np.linalg.norm(X - X.mean(0))
    Ys = (Y - Y.mean(0)) / np.linalg.norm(Y - Y.mean(0))
    expected = procrustes_distance(Xs, Ys, scale=False) ** 2 / 2
    assert result.residual == pytest.approx(expected, rel=1e-8)


def test_generalized_procrustes_residual_matches_aligned_tables(rng):
    base = rng.normal(size=(200, 5))
    tables = [base + 0.4 * rng.normal(size=base.shape) for _ in range(4)]
    result = generalized_procrustes(tables)
    direct = sum(np.sum((A - result.consensus) ** 2) for A in result.aligned)
    assert result.residual == pytest.approx(direct, rel=1e-9)
    for R in result.rotations:
        assert np.allclose(R.T @ R, np.eye(5))


def test_generalized_procrustes_noisy_entities_move_most(rng, rotation):
    base = rng.normal(size=(300, 8))
    tables = []
    for _ in range(5):
        T = base + 0.05 * rng.normal(size=base.shape)
        T[:30] += 1.0 * rng.normal(size=(30, 8))  # the first 30 are unstable
        tables.append(T @ rotation(8))
    moved = generalized_procrustes(tables).mean_displacement
    assert moved[:30].min() > moved[30:].max()


def test_generalized_procrustes_shape_mismatch_raises():
    with pytest.raises(ShapeMismatchError, match="^every table must have the shape"):
        generalized_procrustes([np.ones((4, 2)), np.ones((4, 3))])
