"""Bootstrap intervals over seeds: resample runs or seed levels, not entities.

The independent units of a study are its runs (and, in a crossed design,
the levels of each seed source); the entities of one run are not
independent of each other. Every interval in the analysis therefore
resamples runs or levels with replacement, and recomputes the statistic
on the resampled set:

- a mean over *pairs of runs* (a group's mean distance) is recomputed over
  the pairs of distinct original runs of a resample, so a run drawn twice
  is never compared with itself; with counts ``c`` of each run in a
  resample, the mean is ``c^T D c / ((sum c)^2 - sum c^2)`` for a distance
  matrix ``D`` with zero diagonal;
- in a crossed design each source's levels are resampled on their own, and
  a run's weight is the product of its levels' counts.

Intervals are percentile intervals of the resampled statistic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from embvar.checks import check_float, check_int
from embvar.errors import ShapeMismatchError

__all__ = [
    "DEFAULT_RESAMPLES",
    "MIN_RUNS",
    "pair_mean",
    "pair_mean_samples",
    "mean_samples",
    "run_counts",
    "level_weights",
    "weighted_pair_mean",
    "percentile_interval",
    "estimate",
]

#: Resamples per bootstrap interval unless a caller asks for another number.
DEFAULT_RESAMPLES = 2000

#: Fewest runs a bootstrap over runs gives an interval for.
MIN_RUNS = 3


def _square(name: str, D: Any) -> np.ndarray:
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ShapeMismatchError(
            f"{name} must be a square matrix of shape (n_runs, n_runs); "
            f"got shape {D.shape}."
        )
    return D


def pair_mean(D: Any) -> float:
    """Return the mean of ``D`` over pairs of distinct runs (upper triangle).

    Parameters
    ----------
    D : array-like of shape (n_runs, n_runs)
        A symmetric matrix of values per pair of runs.

    Returns
    -------
    float
        NaN for fewer than two runs.
    """
    D = _square("D", D)
    if D.shape[0] < 2:
        return float("nan")
    return float(D[np.triu_indices(D.shape[0], 1)].mean())


def run_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Return how often each of ``n`` runs is drawn in each resample.

    Returns
    -------
    counts : ndarray of shape (n_resamples, n), int
        Each row sums to ``n``.
    """
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples)


def pair_mean_samples(
    D: Any, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Return bootstrap resamples of a group's mean over pairs of runs.

    Parameters
    ----------
    D : array-like of shape (n_runs, n_runs)
        Symmetric values per pair of runs (the diagonal is ignored).
    n_resamples : int
        Resamples of the runs, with replacement.
    seed : int
        Seed of the resampling.

    Returns
    -------
    samples : ndarray of shape (m,)
        One mean per resample that drew at least two distinct runs
        (``m <= n_resamples``); empty for fewer than :data:`MIN_RUNS` runs
        (two runs have one pair: nothing to resample).
    """
    D = _square("D", D).copy()
    n = D.shape[0]
    n_resamples = check_int("n_resamples", n_resamples, 1)
    if n < MIN_RUNS:
        return np.empty(0)
    np.fill_diagonal(D, 0.0)
    c = run_counts(n, n_resamples, np.random.default_rng(seed)).astype(np.float64)
    num = np.einsum("bi,ij,bj->b", c, D, c)
    den = n * n - np.einsum("bi,bi->b", c, c)
    keep = den > 0
    return num[keep] / den[keep]


def mean_samples(
    values: Any, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Return bootstrap resamples of the mean of per-run ``values``.

    Empty for fewer than two values (one run: nothing to resample).
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    n_resamples = check_int("n_resamples", n_resamples, 1)
    if x.size < 2:
        return np.empty(0)
    c = run_counts(x.size, n_resamples, np.random.default_rng(seed))
    return c @ x / x.size


def level_weights(
    levels: Mapping[str, Any], n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Return run weights for resamples of each source's levels on their own.

    Parameters
    ----------
    levels : mapping of str to array-like of shape (n_runs,)
        Each source's level per run.
    n_resamples : int
        Resamples.
    rng : numpy.random.Generator

    Returns
    -------
    weights : ndarray of shape (n_resamples, n_runs)
        The product, over sources, of how often the run's level was drawn.
    """
    sizes = {len(np.asarray(v)) for v in levels.values()}
    if len(sizes) != 1:
        raise ShapeMismatchError(
            f"every source's levels must list one level per run; got lengths {sizes}."
        )
    n = sizes.pop()
    W = np.ones((n_resamples, n))
    for values in levels.values():
        uniq, index = np.unique(np.asarray(values), return_inverse=True)
        counts = run_counts(len(uniq), n_resamples, rng)
        W *= counts[:, index]
    return W


def weighted_pair_mean(D: Any, mask: Any, W: np.ndarray) -> np.ndarray:
    """Return, per row of ``W``, the weighted mean of ``D`` over ``mask``'s pairs.

    Parameters
    ----------
    D : array-like of shape (n_runs, n_runs)
    mask : array-like of bool, shape (n_runs, n_runs)
        The pairs to average (symmetric, False on the diagonal).
    W : ndarray of shape (n_resamples, n_runs)
        Run weights, e.g. from :func:`level_weights`.

    Returns
    -------
    means : ndarray of shape (n_resamples,)
        NaN where a resample gives the pairs no weight.
    """
    D = _square("D", D)
    M = np.asarray(mask, dtype=np.float64)
    num = np.einsum("bi,ij,bj->b", W, M * np.nan_to_num(D), W)
    den = np.einsum("bi,ij,bj->b", W, M, W)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def percentile_interval(samples: Any, level: float = 0.95) -> list[float | None]:
    """Return the ``level`` percentile interval of ``samples`` as [low, high].

    Non-finite samples are dropped; ``[None, None]`` if none is left.
    """
    level = check_float("level", level, 0.0, 1.0, low_inclusive=False)
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return [None, None]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(s, [tail, 100.0 - tail])
    return [float(low), float(high)]


def estimate(value: float, samples: Any, level: float = 0.95) -> dict[str, Any]:
    """Return ``{"mean": value, "interval": [low, high], "resamples": m}``."""
    s = np.asarray(samples, dtype=np.float64)
    return {
        "mean": None if not np.isfinite(value) else float(value),
        "interval": percentile_interval(s, level),
        "resamples": int(np.isfinite(s).sum()),
    }
