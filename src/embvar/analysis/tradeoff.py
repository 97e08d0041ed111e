"""Accuracy against stability, per hyperparameter level.

Each level of a design (a group of seed replicates sharing every
hyperparameter) gets its accuracy (test RMSE over its runs) and its
stability (k-NN overlap and prediction disagreement over its pairs of
runs) side by side, each with a bootstrap interval over runs. A level is
*non-dominated* for a stability metric when no other level of the same
design is at least as accurate and at least as stable, and strictly better
on one of the two: those are the settings worth choosing between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from embvar.analysis.distances import SIMILARITIES
from embvar.analysis.resampling import (
    DEFAULT_RESAMPLES,
    mean_samples,
    pair_mean,
    pair_mean_samples,
    percentile_interval,
)

__all__ = ["non_dominated", "level_summary", "mark_fronts"]


def non_dominated(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Return, per point ``(a, b)`` with both to minimise, whether none beats it.

    A point is dominated when another is ``<=`` on both coordinates and
    ``<`` on at least one. Points with a non-finite coordinate are never
    non-dominated and dominate nothing.

    Examples
    --------
    >>> non_dominated([(1, 3), (2, 2), (3, 3), (2, 1)])
    [True, False, False, True]
    """
    P = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(P).all(axis=1)
    out = []
    for i in range(len(P)):
        if not ok[i]:
            out.append(False)
            continue
        others = P[ok & (np.arange(len(P)) != i)]
        beaten = np.any(np.all(others <= P[i], axis=1) & np.any(others < P[i], axis=1))
        out.append(not bool(beaten))
    return out


def _stat(value: float, samples: np.ndarray, sd: float | None) -> dict[str, Any]:
    return {
        "mean": float(value) if np.isfinite(value) else None,
        "sd": sd,
        "interval": percentile_interval(samples),
    }


def level_summary(
    test_rmse: Any,
    matrices: Mapping[str, Any],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Return one level's accuracy and stability, each with an interval.

    Parameters
    ----------
    test_rmse : array-like of shape (n_runs,)
        Final test RMSE of each run of the level.
    matrices : mapping of metric name to array-like (n_runs, n_runs)
        Each stability metric between the level's runs.
    n_resamples, seed
        Bootstrap over runs.

    Returns
    -------
    dict
        ``{"test_rmse": stat, <metric>: stat, ...}`` where a stat is
        ``{"mean", "sd", "interval"}`` (``sd`` over runs for the RMSE, over
        pairs for a metric).
    """
    y = np.asarray(test_rmse, dtype=np.float64)
    out = {
        "test_rmse": _stat(
            float(y.mean()),
            mean_samples(y, n_resamples, seed),
            float(y.std(ddof=1)) if y.size > 1 else None,
        )
    }
    for name, D in matrices.items():
        D = np.asarray(D, dtype=np.float64)
        vals = D[np.triu_indices(D.shape[0], 1)]
        out[name] = _stat(
            pair_mean(D),
            pair_mean_samples(D, n_resamples, seed),
            float(vals.std(ddof=1)) if vals.size > 1 else None,
        )
    return out


def mark_fronts(
    levels: list[dict[str, Any]], stability: Sequence[str], *, primary: str
) -> list[dict[str, Any]]:
    """Add ``non_dominated_by`` (per metric) and ``non_dominated`` to levels.

    Parameters
    ----------
    levels : list of dict
        Each with ``test_rmse`` and every metric of ``stability`` as stats
        (from :func:`level_summary`); compared with each other only.
    stability : sequence of str
        Stability metrics to pair with accuracy.
    primary : str
        The metric whose front sets ``non_dominated``.

    Returns
    -------
    list of dict
        The same dicts, updated in place.
    """
    for name in stability:
        sign = -1.0 if name in SIMILARITIES else 1.0
        points = [(_mean(lv["test_rmse"]), sign * _mean(lv.get(name))) for lv in levels]
        for lv, flag in zip(levels, non_dominated(points), strict=True):
            lv.setdefault("non_dominated_by", {})[name] = flag
    for lv in levels:
        lv["non_dominated"] = bool(lv.get("non_dominated_by", {}).get(primary, False))
    return levels


def _mean(stat: Any) -> float:
    if isinstance(stat, dict):
        stat = stat.get("mean")
    return float("nan") if stat is None else float(stat)
