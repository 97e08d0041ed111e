"""Bootstrap over runs and seed levels: known answers."""

import numpy as np
import pytest

from embvar.analysis.resampling import (
    estimate,
    level_weights,
    mean_samples,
    pair_mean,
    pair_mean_samples,
    percentile_interval,
    weighted_pair_mean,
)
from embvar.errors import ConfigError, ShapeMismatchError


def test_pair_mean_upper_triangle():
    D = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    assert pair_mean(D) == pytest.approx(2.0)


def test_pair_mean_one_run_is_nan():
    assert np.isnan(pair_mean(np.zeros((1, 1))))


def test_pair_mean_samples_constant_distances_give_constant_samples():
    D = np.ones((5, 5)) - np.eye(5)
    s = pair_mean_samples(D, 200, seed=1)
    assert s.size > 190 and np.allclose(s, 1.0)


def test_pair_mean_samples_never_compare_a_run_with_itself():
    # A nonzero diagonal must not leak into resamples that draw a run twice.
    D = np.full((4, 4), 1.0)
    np.fill_diagonal(D, 100.0)
    assert pair_mean_samples(D, 300, seed=0).max() == pytest.approx(1.0)


def test_pair_mean_samples_centre_near_point_estimate():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    D = np.linalg.norm(X[:, None] - X[None], axis=-1)
    s = pair_mean_samples(D, 2000, seed=0)
    low, high = percentile_interval(s)
    assert low < pair_mean(D) < high


def test_pair_mean_samples_non_square_rejected():
    with pytest.raises(ShapeMismatchError, match="D must be a square matrix"):
        pair_mean_samples(np.zeros((2, 3)))


def test_mean_samples_mean_of_resamples_close_to_mean():
    x = np.arange(10.0)
    assert mean_samples(x, 4000, seed=0).mean() == pytest.approx(4.5, abs=0.1)


def test_level_weights_products_of_counts():
    levels = {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1, 0, 1])}
    W = level_weights(levels, 50, np.random.default_rng(0))
    assert W.shape == (50, 4)
    # Each source's two levels are drawn twice in all: the weights sum to 4.
    assert np.allclose(W.sum(axis=1), 4.0)


def test_weighted_pair_mean_unit_weights_is_plain_mean():
    D = np.array([[0.0, 1.0, 5.0], [1.0, 0.0, 3.0], [5.0, 3.0, 0.0]])
    mask = np.ones((3, 3), bool) & ~np.eye(3, dtype=bool)
    assert weighted_pair_mean(D, mask, np.ones((1, 3)))[0] == pytest.approx(3.0)


def test_percentile_interval_drops_non_finite():
    assert percentile_interval([np.nan, 1.0, 1.0]) == [1.0, 1.0]
    assert percentile_interval([np.nan]) == [None, None]


def test_percentile_interval_bad_level_rejected():
    with pytest.raises(ConfigError, match="level must be a finite number"):
        percentile_interval([1.0], level=1.5)


def test_estimate_nan_value_is_none():
    assert estimate(float("nan"), [1.0])["mean"] is None
