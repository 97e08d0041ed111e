"""Per-entity stability against training frequency."""

import numpy as np
import pytest

from embvar.analysis.frequency import (
    aligned_displacement,
    entity_overlap,
    frequency_bins,
    stability_by_frequency,
)
from embvar.errors import ShapeMismatchError
from embvar.metrics import procrustes_distance


def test_frequency_bins_powers_of_two():
    assert frequency_bins([0, 1, 9]) == [(0, 0), (1, 1), (2, 3), (4, 7), (8, 15)]


def test_aligned_displacement_rotated_copy_is_zero():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    Q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert aligned_displacement(X, 3.0 * X @ Q + 1.0).max() < 1e-9


def test_aligned_displacement_mean_square_is_procrustes_squared():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    d = aligned_displacement(X, Y)
    assert np.mean(d**2) == pytest.approx(procrustes_distance(X, Y) ** 2)


def test_aligned_displacement_moved_row_stands_out():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 5))
    Y = X.copy()
    Y[7] += 5.0
    d = aligned_displacement(X, Y)
    assert int(np.argmax(d)) == 7


def test_entity_overlap_averages_pairs():
    a = np.array([[1, 2], [0, 2], [0, 1]])
    b = np.array([[1, 2], [2, 0], [2, 1]])
    assert entity_overlap([a, b, a], [(0, 1), (0, 2)]).tolist() == [1.0, 1.0, 0.75]


def test_entity_overlap_no_pairs_rejected():
    with pytest.raises(ShapeMismatchError, match="pairs must list at least one"):
        entity_overlap([np.zeros((2, 1))], [])


def test_stability_by_frequency_planted_monotone_relation():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 200, size=2000)
    stability = np.log1p(counts) / np.log(201) + 0.05 * rng.normal(size=2000)
    out = stability_by_frequency(counts, stability, metric="m", n_resamples=100)
    assert out["spearman"]["rho"] > 0.9
    assert out["spearman"]["interval"][0] > 0.85
    means = [b["mean"] for b in out["bins"]]
    assert means == sorted(means)
    assert sum(b["n"] for b in out["bins"]) == 2000


def test_stability_by_frequency_no_relation_interval_contains_zero():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 50, size=1000)
    out = stability_by_frequency(counts, rng.random(1000), metric="m", n_resamples=200)
    low, high = out["spearman"]["interval"]
    assert low < 0 < high


def test_aligned_displacement_relative_scale_free():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 3))
    X[0] *= 100.0  # a long row
    Y = X * (1 + 0.1 * rng.normal(size=(40, 1)))  # each row rescaled a little
    rel = aligned_displacement(X, Y, relative=True)
    assert rel.max() < 0.5
    assert aligned_displacement(X, X, relative=True).max() < 1e-9
