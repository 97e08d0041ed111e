"""Accuracy against stability: fronts and level summaries."""

import numpy as np
import pytest

from embvar.analysis.tradeoff import level_summary, mark_fronts, non_dominated


def test_non_dominated_known_front():
    assert non_dominated([(1, 3), (2, 2), (3, 3), (2, 1)]) == [True, False, False, True]


def test_non_dominated_ties_both_kept():
    assert non_dominated([(1, 1), (1, 1)]) == [True, True]


def test_non_dominated_non_finite_never_on_front():
    assert non_dominated([(np.nan, 0), (1, 1)]) == [False, True]


def test_level_summary_known_means():
    D = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])
    out = level_summary([0.9, 1.0, 1.1], {"knn_overlap@10": D}, n_resamples=100)
    assert out["test_rmse"]["mean"] == pytest.approx(1.0)
    assert out["test_rmse"]["sd"] == pytest.approx(0.1)
    assert out["knn_overlap@10"]["mean"] == pytest.approx(0.4)


def test_mark_fronts_similarity_maximised():
    levels = [
        {"label": "a", "test_rmse": {"mean": 0.9}, "knn_overlap@10": {"mean": 0.2}},
        {"label": "b", "test_rmse": {"mean": 1.0}, "knn_overlap@10": {"mean": 0.5}},
        {"label": "c", "test_rmse": {"mean": 1.0}, "knn_overlap@10": {"mean": 0.4}},
    ]
    mark_fronts(levels, ["knn_overlap@10"], primary="knn_overlap@10")
    assert [lv["non_dominated"] for lv in levels] == [True, True, False]
