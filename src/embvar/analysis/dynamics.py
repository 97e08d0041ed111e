"""Over training: does the difference between two runs wash out, and how fast?

For a set of pairs of runs (e.g. runs that differ in their init seed only)
a metric is measured at every epoch, from the initial values (epoch 0) to
the last. :func:`trajectory` summarises the curve of its mean over pairs:

- ``reference``: the difference training starts from, the epoch-0 value
  where the runs start apart, else the curve's peak (runs that start equal
  and drift apart, such as runs that differ in data order only);
- ``remaining``: the final difference as a share of the reference (1: no
  shrinking; 0: washed out), with a bootstrap interval over pairs;
- ``epochs_to_half``: the first epoch by which half of the shrinking from
  the reference to the final value is done;
- ``last_change``: the relative change over the last epoch, and
  ``stopped``: whether it is below ``tolerance`` (the shrinking has
  stopped, or the difference has stopped growing).

The summary is in distance form (0 = identical: ``1 - overlap`` for the
k-NN overlap); the per-epoch ``mean`` / ``lo`` / ``hi`` are the metric's
own values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embvar.analysis.distances import SIMILARITIES, as_distance
from embvar.analysis.resampling import DEFAULT_RESAMPLES, percentile_interval
from embvar.checks import check_float, check_int
from embvar.errors import ShapeMismatchError

__all__ = ["trajectory", "TOLERANCE"]

#: A relative change per epoch below this counts as stopped.
TOLERANCE = 0.01


def trajectory(
    values: Any,
    epochs: Any,
    *,
    metric: str,
    n_resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    tolerance: float = TOLERANCE,
    seed: int = 0,
) -> dict[str, Any]:
    """Return a metric's mean per epoch over pairs of runs, and its summary.

    Parameters
    ----------
    values : array-like of shape (n_pairs, n_epochs)
        The metric for each pair of runs at each epoch.
    epochs : array-like of shape (n_epochs,)
        The epochs, increasing; epoch 0 is the initial values.
    metric : str
        The metric's name (a similarity such as ``knn_overlap@10`` is
        turned into distance form for the summary).
    n_resamples : int, default=2000
        Bootstrap resamples of the pairs.
    level : float, default=0.95
        Coverage of the intervals.
    tolerance : float, default=0.01
        The relative change per epoch below which the curve has stopped.
    seed : int, default=0
        Seed of the resampling.

    Returns
    -------
    dict
        ``{"metric", "epochs", "mean", "lo", "hi", "n_pairs", "summary"}``
        with ``summary`` ``{"form": "distance", "initial", "reference",
        "reference_epoch", "reference_kind", "final", "remaining",
        "remaining_interval", "epochs_to_half", "last_change", "stopped",
        "tolerance"}``.

    Notes
    -----
    Pairs that share a run are not independent; the interval resamples
    pairs and so is somewhat too narrow when many pairs share runs.
    """
    V = np.asarray(values, dtype=np.float64)
    e = np.asarray(epochs)
    if V.ndim != 2 or V.shape[1] != e.size or V.shape[0] < 1:
        raise ShapeMismatchError(
            "values must have shape (n_pairs, n_epochs) with one column per epoch "
            f"({e.size}); got shape {V.shape}."
        )
    n_resamples = check_int("n_resamples", n_resamples, 1)
    tolerance = check_float("tolerance", tolerance, 0.0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, V.shape[0], size=(n_resamples, V.shape[0]))
    boot = np.nanmean(V[idx], axis=1)  # (n_resamples, n_epochs)
    mean = np.nanmean(V, axis=0)
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(boot, [tail, 100 - tail], axis=0)

    dist = as_distance(mean, metric)
    dist_boot = as_distance(boot, metric)
    summary = _summary(dist, dist_boot, e, level, tolerance)
    return {
        "metric": metric,
        "epochs": [int(x) for x in e],
        "mean": mean.tolist(),
        "lo": lo.tolist(),
        "hi": hi.tolist(),
        "n_pairs": int(V.shape[0]),
        "higher_is_alike": metric in SIMILARITIES,
        "summary": summary,
    }


def _summary(
    d: np.ndarray, boot: np.ndarray, epochs: np.ndarray, level: float, tolerance: float
) -> dict[str, Any]:
    # The reference: the start where runs start apart, else the peak.
    initial = float(d[0])
    peak_at = int(np.nanargmax(d))
    starts_apart = initial > 0 and initial >= 0.5 * float(d[peak_at])
    ref_at = 0 if starts_apart else peak_at
    ref = float(d[ref_at])
    final = float(d[-1])

    # What remains of the reference at the end, with its interval.
    with np.errstate(divide="ignore", invalid="ignore"):
        remaining = final / ref if ref > 0 else float("nan")
        ratios = boot[:, -1] / boot[:, ref_at]

    # When half of the shrinking (reference -> final) was done.
    half = None
    if ref > final:
        target = final + 0.5 * (ref - final)
        after = np.flatnonzero((np.arange(d.size) >= ref_at) & (d <= target))
        half = int(epochs[after[0]]) if after.size else None

    # Has the curve stopped moving?
    last_change = None
    stopped = None
    if d.size >= 2 and final > 0:
        last_change = float((d[-1] - d[-2]) / final)
        stopped = bool(abs(last_change) < tolerance)
    return {
        "form": "distance",
        "initial": initial,
        "reference": ref,
        "reference_epoch": int(epochs[ref_at]),
        "reference_kind": "initial" if starts_apart else "peak",
        "final": final,
        "remaining": remaining,
        "remaining_interval": percentile_interval(ratios, level),
        "epochs_to_half": half,
        "last_change": last_change,
        "stopped": stopped,
        "tolerance": tolerance,
    }
