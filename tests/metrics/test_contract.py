"""Every pairwise metric through the same symmetry, range and invariance checks."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from embvar import metrics
from embvar.errors import NonFiniteError, ShapeMismatchError


@dataclass(frozen=True)
class Spec:
    function: Callable[[np.ndarray, np.ndarray], float]
    low: float
    high: float
    identical: float  # value for two identical tables
    rotation: bool = False
    scale: bool = False
    translation: bool = False
    invertible: bool = False


def mean_overlap(X, Y):
    return float(metrics.knn_overlap(X, Y, k=5).mean())


def spearman(X, Y):
    return metrics.spearman_pairwise_similarity(X, Y, n_pairs=2000)


SPECS = {
    "procrustes": Spec(
        metrics.procrustes_distance,
        0,
        1,
        0,
        rotation=True,
        scale=True,
        translation=True,
    ),
    "procrustes_unscaled": Spec(
        lambda X, Y: metrics.procrustes_distance(X, Y, scale=False),
        0,
        np.inf,
        0,
        rotation=True,
        translation=True,
    ),
    "angular_shape": Spec(
        metrics.angular_shape_distance,
        0,
        np.pi / 2,
        0,
        rotation=True,
        scale=True,
        translation=True,
    ),
    "linear_cka": Spec(
        metrics.linear_cka, 0, 1, 1, rotation=True, scale=True, translation=True
    ),
    "knn_overlap": Spec(mean_overlap, 0, 1, 1, rotation=True, scale=True),
    "spearman": Spec(spearman, -1, 1, 1, rotation=True, scale=True),
    "eigenspace_overlap": Spec(
        metrics.eigenspace_overlap,
        0,
        1,
        1,
        rotation=True,
        scale=True,
        invertible=True,
    ),
    "pip_loss": Spec(metrics.pip_loss, 0, np.inf, 0, rotation=True),
    "relative_frobenius": Spec(metrics.relative_frobenius, 0, 2, 0),
    "mean_abs_difference": Spec(metrics.mean_abs_difference, 0, np.inf, 0),
}


@pytest.fixture
def pair(rng, clustered):
    X = clustered(300, 8)
    return X, X + 0.8 * rng.normal(size=X.shape)


def close(a, b):
    return a == pytest.approx(b, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_metric_is_symmetric_and_in_range(name, pair):
    spec, (X, Y) = SPECS[name], pair
    value = spec.function(X, Y)
    assert close(value, spec.function(Y, X))
    assert spec.low <= value <= spec.high
    assert close(spec.function(X, X), spec.identical)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_metric_invariances_hold_where_claimed(name, pair, rotation, rng):
    spec, (X, Y) = SPECS[name], pair
    value = spec.function(X, Y)
    A = rng.normal(size=(8, 8)) + 3 * np.eye(8)
    transforms = {
        "rotation": Y @ rotation(8),
        "scale": 4.0 * Y,
        "translation": Y + 3.0,
        "invertible": Y @ A,
    }
    for invariance, moved in transforms.items():
        if getattr(spec, invariance):
            assert close(spec.function(X, moved), value), invariance


@pytest.mark.parametrize("name", sorted(SPECS))
def test_metric_rejects_nonfinite_input(name, pair):
    spec, (X, Y) = SPECS[name], pair
    Y = Y.copy()
    Y[5, 2] = np.inf
    with pytest.raises(NonFiniteError, match="must be finite; 1 of"):
        spec.function(X, Y)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_metric_rejects_complex_and_ragged_input(name, pair):
    # Complex tables were cast to real with only a ComplexWarning; ragged
    # rows raised NumPy's own ValueError.
    spec, (X, Y) = SPECS[name], pair
    with pytest.raises(ShapeMismatchError, match="must hold real numbers; got dtype"):
        spec.function(X, Y.astype(np.complex64))
    with pytest.raises(ShapeMismatchError, match="got rows of different lengths"):
        spec.function(X, [[1.0, 2.0], [3.0]])


def test_neighbor_overlap_rejects_indices_that_are_not_integers(pair):
    X, _ = pair
    with pytest.raises(ShapeMismatchError, match="indices_b must hold integer row"):
        metrics.neighbor_overlap(metrics.knn_indices(X, 5), X[:, :5])
