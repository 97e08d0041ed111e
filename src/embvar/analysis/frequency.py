"""Per-entity stability against how often the entity occurs in training.

An entity seen a few times gets few gradient updates, so its vector stays
near wherever its random start put it; rare entities are expected to be
the least stable. For each entity two measures over pairs of runs:

- :func:`entity_overlap`: the mean share of its k nearest neighbours two
  runs have in common (1 = same neighbours);
- :func:`aligned_displacement`: how far its vector moves between two runs
  once the second table is rotated and scaled onto the first (orthogonal
  Procrustes), in units of the root-mean-square row norm (the mean of its
  square over entities is the squared Procrustes distance), or of the
  entity's own length (``relative``).

:func:`stability_by_frequency` bins entities by training frequency
(0, 1, 2-3, 4-7, ... interactions) and gives the rank correlation of
stability with frequency over every entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from embvar.analysis.resampling import percentile_interval
from embvar.checks import check_int
from embvar.errors import ShapeMismatchError
from embvar.metrics import neighbor_overlap, procrustes_rotation

__all__ = [
    "entity_overlap",
    "aligned_displacement",
    "frequency_bins",
    "stability_by_frequency",
]


def entity_overlap(
    indices: Sequence[np.ndarray], pairs: Sequence[tuple[int, int]]
) -> np.ndarray:
    """Return each entity's k-NN overlap, averaged over pairs of runs.

    Parameters
    ----------
    indices : sequence of ndarray of shape (n_entities, k)
        Each run's neighbour lists (e.g. from ``knn_indices``).
    pairs : sequence of (i, j)
        Pairs of runs, by position in ``indices``.

    Returns
    -------
    ndarray of shape (n_entities,)
    """
    if not pairs:
        raise ShapeMismatchError("pairs must list at least one pair of runs; got none.")
    total = np.zeros(indices[0].shape[0])
    for i, j in pairs:
        total += neighbor_overlap(indices[i], indices[j])
    return total / len(pairs)


def aligned_displacement(X: Any, Y: Any, *, relative: bool = False) -> np.ndarray:
    """Return each row's distance between ``X`` and ``Y`` aligned onto it.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities in two runs.
    relative : bool, default=False
        Divide each row's distance by the mean of its two aligned norms,
        so that long (often trained) and short rows compare: 0 = the same
        vector, 2 = opposite vectors of equal length.

    Returns
    -------
    ndarray of shape (n_entities,)
        ``sqrt(n) * ||x_i - s * y_i R||`` with both tables centred and of
        unit Frobenius norm, ``R`` the Procrustes rotation of ``Y`` onto
        ``X`` and ``s = ||X^T Y||_*`` the optimal scale. The mean of the
        squares over rows is the squared Procrustes distance; a row at 1
        moves as far as a typical row is long. With ``relative``,
        ``||x_i - s y_i R|| / ((||x_i|| + ||s y_i R||) / 2)`` (0 where both
        rows are 0).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(20, 3))
    >>> Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    >>> float(aligned_displacement(X, 2 * X @ Q).max()) < 1e-9
    True
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.shape != Y.shape or X.ndim != 2:
        raise ShapeMismatchError(
            "X and Y must be 2-D tables of the same shape; got "
            f"{X.shape} and {Y.shape}."
        )
    X = X - X.mean(axis=0)
    Y = Y - Y.mean(axis=0)
    X = X / (np.linalg.norm(X) or 1.0)
    Y = Y / (np.linalg.norm(Y) or 1.0)
    R = procrustes_rotation(X, Y, center=False)
    s = float(np.linalg.svd(X.T @ Y, compute_uv=False).sum())
    Ya = s * (Y @ R)
    moved = np.linalg.norm(X - Ya, axis=1)
    if relative:
        size = 0.5 * (np.linalg.norm(X, axis=1) + np.linalg.norm(Ya, axis=1))
        return np.divide(moved, size, out=np.zeros_like(moved), where=size > 0)
    return np.sqrt(X.shape[0]) * moved


def frequency_bins(counts: Any) -> list[tuple[int, int]]:
    """Return bins ``(lo, hi)`` of counts: 0, 1, 2-3, 4-7, ... up to the max."""
    top = int(np.max(counts)) if np.size(counts) else 0
    bins = [(0, 0)]
    lo = 1
    while lo <= top:
        bins.append((lo, 2 * lo - 1))
        lo *= 2
    return bins


def stability_by_frequency(
    counts: Any,
    stability: Any,
    *,
    metric: str,
    n_resamples: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Return mean stability per frequency bin and its rank correlation.

    Parameters
    ----------
    counts : array-like of int, shape (n_entities,)
        Training interactions per entity.
    stability : array-like of shape (n_entities,)
        Per-entity stability (e.g. :func:`entity_overlap`).
    metric : str
        The stability measure's name, for the report.
    n_resamples : int, default=500
        Bootstrap resamples of the entities (for the bins' and the
        correlation's intervals).
    level : float, default=0.95
    seed : int, default=0

    Returns
    -------
    dict
        ``{"metric", "bins": [{"label", "lo", "hi", "n", "mean",
        "interval"}], "spearman": {"rho", "p_value", "interval", "n"}}``;
        empty bins are left out.

    Notes
    -----
    Entities of one study are not independent (they share runs), so the
    intervals, which resample entities, describe the spread of entities
    rather than the uncertainty over seeds. The correlation's resamples
    correlate the entities' ranks in the full sample (no re-ranking).
    """
    c = np.asarray(counts).reshape(-1)
    s = np.asarray(stability, dtype=np.float64).reshape(-1)
    if c.shape != s.shape:
        raise ShapeMismatchError(
            f"counts and stability must have one value per entity; got {c.shape} "
            f"and {s.shape}."
        )
    n_resamples = check_int("n_resamples", n_resamples, 1)
    keep = np.isfinite(s)
    c, s = c[keep], s[keep]
    rng = np.random.default_rng(seed)
    bins = []
    for lo, hi in frequency_bins(c):
        inside = s[(c >= lo) & (c <= hi)]
        if inside.size == 0:
            continue
        draws = rng.integers(0, inside.size, size=(n_resamples, inside.size))
        bins.append(
            {
                "label": str(lo) if lo == hi else f"{lo}–{hi}",
                "lo": lo,
                "hi": hi,
                "n": int(inside.size),
                "mean": float(inside.mean()),
                "interval": percentile_interval(inside[draws].mean(axis=1), level),
            }
        )

    # Rank correlation over every entity, with a bootstrap interval.
    spearman: dict[str, Any] = {
        "rho": None,
        "p_value": None,
        "interval": [None, None],
        "n": int(c.size),
    }
    if c.size > 2 and np.ptp(c) > 0 and np.ptp(s) > 0:
        rho, p = stats.spearmanr(c, s)
        # Resample entities and correlate their ranks in the full sample
        # (Pearson on fixed ranks: no re-ranking per resample).
        rc, rs = stats.rankdata(c), stats.rankdata(s)
        picks = rng.integers(0, c.size, size=(n_resamples, c.size))
        boot = _row_pearson(rc[picks], rs[picks])
        spearman = {
            "rho": float(rho),
            "p_value": float(p),
            "interval": percentile_interval(boot, level),
            "n": int(c.size),
        }
    return {"metric": metric, "bins": bins, "spearman": spearman}


def _row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / den
