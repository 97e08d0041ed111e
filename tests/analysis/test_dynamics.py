"""Trajectories of the difference between runs over the epochs."""

import numpy as np
import pytest

from embvar.analysis.dynamics import trajectory
from embvar.errors import ShapeMismatchError


def test_trajectory_exponential_shrink_known_summary():
    # d(e) = 0.2 + 0.8 * 0.5**e: from 1.0 at epoch 0 down towards 0.2.
    epochs = np.arange(11)
    d = 0.2 + 0.8 * 0.5**epochs
    out = trajectory(np.tile(d, (3, 1)), epochs, metric="procrustes", n_resamples=50)
    s = out["summary"]
    assert s["reference_kind"] == "initial" and s["reference"] == pytest.approx(1.0)
    assert s["remaining"] == pytest.approx(d[-1])
    assert s["epochs_to_half"] == 1
    assert s["stopped"] is True
    assert out["mean"] == pytest.approx(d.tolist())


def test_trajectory_runs_that_start_equal_use_peak():
    # Order-only pairs: 0 at epoch 0, rising to a peak at epoch 3, then 0.6.
    epochs = np.arange(6)
    d = np.array([0.0, 0.5, 0.9, 1.0, 0.7, 0.6])
    s = trajectory(d[None, :], epochs, metric="procrustes", n_resamples=20)["summary"]
    assert s["reference_kind"] == "peak" and s["reference_epoch"] == 3
    assert s["remaining"] == pytest.approx(0.6)
    assert s["stopped"] is False


def test_trajectory_similarity_summarised_as_distance():
    epochs = np.arange(3)
    overlap = np.array([[0.0, 0.5, 0.6]])
    out = trajectory(overlap, epochs, metric="knn_overlap@10", n_resamples=20)
    assert out["mean"] == pytest.approx([0.0, 0.5, 0.6])
    assert out["summary"]["initial"] == pytest.approx(1.0)
    assert out["summary"]["final"] == pytest.approx(0.4)
    assert out["higher_is_alike"] is True


def test_trajectory_interval_brackets_mean():
    rng = np.random.default_rng(0)
    V = 1.0 + 0.1 * rng.normal(size=(20, 4))
    out = trajectory(V, np.arange(4), metric="procrustes", n_resamples=500)
    for lo, m, hi in zip(out["lo"], out["mean"], out["hi"], strict=True):
        assert lo <= m <= hi


def test_trajectory_wrong_shape_rejected():
    with pytest.raises(ShapeMismatchError, match="values must have shape"):
        trajectory(np.zeros((2, 3)), np.arange(4), metric="procrustes")
