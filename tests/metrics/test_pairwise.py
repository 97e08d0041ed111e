import numpy as np
import pytest

from embvar.errors import ConfigError, NonFiniteError, ShapeMismatchError
from embvar.metrics import (
    PAIRWISE_METRICS,
    angular_shape_distance,
    cross_products,
    eigenspace_overlap,
    linear_cka,
    mean_abs_difference,
    pairwise_metrics,
    pip_loss,
    procrustes_distance,
    relative_frobenius,
)

SINGLE = {
    "procrustes": procrustes_distance,
    "procrustes_unscaled": lambda X, Y: procrustes_distance(X, Y, scale=False),
    "angular_shape": angular_shape_distance,
    "linear_cka": linear_cka,
    "pip_loss": pip_loss,
    "eigenspace_overlap": eigenspace_overlap,
    "relative_frobenius": relative_frobenius,
    "mean_abs_difference": mean_abs_difference,
}


def test_pairwise_metrics_match_the_pair_functions(rng):
    base = rng.normal(size=(500, 6)) + 0.5
    tables = [base + 0.5 * rng.normal(size=base.shape) for _ in range(4)]
    tables[2] = tables[2].astype(np.float32)
    matrices = pairwise_metrics(tables)
    assert set(matrices) == set(PAIRWISE_METRICS) == set(SINGLE)
    for name, function in SINGLE.items():
        M = matrices[name]
        assert np.array_equal(M, M.T)
        for j, k in [(0, 1), (1, 3), (2, 0)]:
            expected = function(tables[j], tables[k])
            assert M[j, k] == pytest.approx(expected, rel=1e-6), name


def test_pairwise_metrics_diagonal_is_identity_value(rng):
    tables = [rng.normal(size=(100, 3)) for _ in range(3)]
    matrices = pairwise_metrics(tables)
    assert np.all(np.diag(matrices["procrustes"]) == 0.0)
    assert np.allclose(np.diag(matrices["linear_cka"]), 1.0)


def test_pairwise_metrics_reuses_cross_products(rng):
    tables = [rng.normal(size=(60, 4)) for _ in range(3)]
    products = cross_products(tables)
    assert products.centered.shape == (3, 3, 4, 4)
    a = pairwise_metrics(products, ["linear_cka"])
    assert np.array_equal(a["linear_cka"], pairwise_metrics(tables)["linear_cka"])


def test_pairwise_metrics_unknown_name_raises(rng):
    with pytest.raises(ConfigError, match="^metrics must be one of 'procrustes'"):
        pairwise_metrics([np.ones((3, 2))] * 2, ["cca"])


def test_pairwise_metrics_nonfinite_names_the_run():
    bad = np.ones((4, 2))
    bad[2, 1] = np.nan
    with pytest.raises(NonFiniteError, match="^seed=7 must be finite; 1 of 4 rows"):
        pairwise_metrics([np.ones((4, 2)), bad], names=["seed=3", "seed=7"])


def test_cross_products_shape_mismatch_raises():
    with pytest.raises(ShapeMismatchError, match="^every table must have the shape"):
        cross_products([np.ones((4, 2)), np.ones((5, 2))])
