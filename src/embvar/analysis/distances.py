"""How much two runs of a factorization model differ, for every pair of runs.

The analysis compares runs at three levels with one metric each by
default (:data:`METRICS`):

- geometry: ``procrustes``, the orthogonal Procrustes distance of the item
  tables (0 = same shape up to rotation, translation and scale);
- geometry: ``knn_overlap@10``, the mean share of each item's 10 nearest
  neighbours (cosine) that the two runs share (1 = same neighbours);
- function: ``prediction_disagreement``, the mean absolute difference of
  the two runs' predicted ratings on the test pairs (0 = same predictions).

A metric's *distance form* is the value itself where lower means more
alike, and ``1 - value`` for a similarity; attribution and PERMANOVA use
the distance form, reports show the value.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embvar.checks import check_choice
from embvar.metrics import (
    knn_indices,
    linear_cka,
    neighbor_overlap,
    prediction_disagreement,
    procrustes_distance,
)

__all__ = [
    "METRICS",
    "SIMILARITIES",
    "RunEmbeddings",
    "pair_value",
    "pairwise_matrix",
    "as_distance",
    "K",
]

#: Neighbours per entity of the k-NN overlap.
K = 10

#: The metrics computed for every pair of runs, in report order.
METRICS: tuple[str, ...] = ("procrustes", f"knn_overlap@{K}", "prediction_disagreement")

#: Metrics where a higher value means more alike.
SIMILARITIES: frozenset[str] = frozenset({f"knn_overlap@{K}", "cka"})

_ALL = (*METRICS, "cka")


@dataclass
class RunEmbeddings:
    """One run's tables at one epoch, with the products pairs reuse.

    Attributes
    ----------
    run_id : str
    tables : dict of str to ndarray
        ``user_embedding`` (n_users, dim), ``item_embedding`` (n_items,
        dim) and, with biases, ``user_bias`` / ``item_bias`` (n, 1).
    mu : float
        The run's global mean rating.
    test_pairs : tuple of ndarray, optional
        (users, items) the prediction disagreement is measured on.
    """

    run_id: str
    tables: dict[str, np.ndarray]
    mu: float = 0.0
    test_pairs: tuple[np.ndarray, np.ndarray] | None = None
    _knn: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def items(self) -> np.ndarray:
        return self.tables["item_embedding"]

    def knn(self, k: int = K) -> np.ndarray:
        """Return (and keep) each item's k nearest items by cosine."""
        if k not in self._knn:
            self._knn[k] = knn_indices(self.items, k, metric="cosine")
        return self._knn[k]

    def bias(self, name: str) -> np.ndarray | None:
        table = self.tables.get(name)
        return None if table is None else table.reshape(-1)


def pair_value(a: RunEmbeddings, b: RunEmbeddings, metric: str) -> float:
    """Return one metric for one pair of runs.

    Parameters
    ----------
    a, b : RunEmbeddings
        The same entities, row for row.
    metric : {"procrustes", "knn_overlap@10", "prediction_disagreement", "cka"}

    Returns
    -------
    float
    """
    check_choice("metric", metric, _ALL)
    if metric == "procrustes":
        return procrustes_distance(a.items, b.items)
    if metric == "cka":
        return linear_cka(a.items, b.items)
    if metric.startswith("knn_overlap@"):
        k = int(metric.split("@")[1])
        return float(neighbor_overlap(a.knn(k), b.knn(k)).mean())
    return prediction_disagreement(
        a.tables["user_embedding"],
        a.items,
        b.tables["user_embedding"],
        b.items,
        pairs=a.test_pairs,
        user_bias1=a.bias("user_bias"),
        item_bias1=a.bias("item_bias"),
        global_bias1=a.mu,
        user_bias2=b.bias("user_bias"),
        item_bias2=b.bias("item_bias"),
        global_bias2=b.mu,
    )


def pairwise_matrix(
    runs: Sequence[RunEmbeddings],
    metric: str,
    pairs: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Return the symmetric matrix of ``metric`` between runs.

    Parameters
    ----------
    runs : sequence of RunEmbeddings
    metric : str
        One of :data:`METRICS` (or ``"cka"``).
    pairs : sequence of (i, j), optional
        Only these pairs (others stay NaN); default every pair.

    Returns
    -------
    ndarray of shape (n_runs, n_runs)
        The diagonal holds the value of identical runs (1 for a
        similarity, 0 otherwise).
    """
    n = len(runs)
    out = np.full((n, n), np.nan)
    np.fill_diagonal(out, 1.0 if metric in SIMILARITIES else 0.0)
    todo = itertools.combinations(range(n), 2) if pairs is None else pairs
    for i, j in todo:
        out[i, j] = out[j, i] = pair_value(runs[i], runs[j], metric)
    return out


def as_distance(values: Any, metric: str) -> np.ndarray:
    """Return ``values`` of ``metric`` in distance form (0 = identical)."""
    v = np.asarray(values, dtype=np.float64)
    return 1.0 - v if metric in SIMILARITIES else v
