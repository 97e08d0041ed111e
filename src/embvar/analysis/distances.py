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

from embvar.checks import check_choice, check_int, check_matrix
from embvar.errors import ShapeMismatchError
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
    "query_knn",
    "query_rows",
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
    query_rows : ndarray of int, optional
        If set, the k-NN overlap is measured on these items only (their
        neighbours still searched among all items): an unbiased estimate of
        the mean over all items at a fraction of the cost.
    """

    run_id: str
    tables: dict[str, np.ndarray]
    mu: float = 0.0
    test_pairs: tuple[np.ndarray, np.ndarray] | None = None
    query_rows: np.ndarray | None = None
    _knn: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def items(self) -> np.ndarray:
        return self.tables["item_embedding"]

    def knn(self, k: int = K) -> np.ndarray:
        """Return (and keep) the k nearest items by cosine of each item.

        Of each item in ``query_rows`` only, when set: shape (n_queries, k).
        """
        if k not in self._knn:
            if self.query_rows is None:
                self._knn[k] = knn_indices(self.items, k, metric="cosine")
            else:
                self._knn[k] = query_knn(self.items, self.query_rows, k)
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
        if not _same_rows(a.query_rows, b.query_rows):
            raise ShapeMismatchError(
                "both runs of a pair must measure the k-NN overlap on the same "
                f"items; got query_rows of {a.run_id!r} and {b.run_id!r} that differ."
            )
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


def _same_rows(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a is b or np.array_equal(a, b)


def query_rows(n: int, size: int, seed: int = 0) -> np.ndarray | None:
    """Return a seeded sorted sample of ``size`` of ``n`` rows (None: all)."""
    if size >= n:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    return np.sort(rng.choice(n, size, replace=False))


def query_knn(X: Any, rows: Any, k: int = K, *, block: int = 512) -> np.ndarray:
    """Return the k nearest rows of ``X`` (cosine) of each row in ``rows``.

    Parameters
    ----------
    X : array-like of shape (n_entities, dim)
    rows : array-like of int, shape (n_queries,)
        The query rows; their neighbours are searched among all rows, the
        row itself excluded.
    k : int
        Neighbours per query, in [1, n_entities - 1].
    block : int
        Queries per matrix product.

    Returns
    -------
    ndarray of shape (n_queries, k), int64
        Most similar first. Rows of zero norm have similarity 0 to all.
    """
    # TODO(#3): the metrics library searches every row; this query subset
    # lives here until knn_indices takes one.
    X = check_matrix("X", X, min_rows=2)
    rows = np.asarray(rows, dtype=np.int64)
    n = X.shape[0]
    k = check_int("k", k, 1, n - 1, context=f" (the table has {n} rows)")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    Z = np.divide(
        X, norms, out=np.zeros_like(X, dtype=np.float32), where=norms > 0
    ).astype(np.float32)
    out = np.empty((rows.size, k), dtype=np.int64)
    for start in range(0, rows.size, block):
        q = rows[start : start + block]
        S = Z[q] @ Z.T
        S[np.arange(q.size), q] = -np.inf
        out[start : start + block] = _top_k(S, k)
    return out


def _top_k(S: np.ndarray, k: int, width: int = 1024) -> np.ndarray:
    """Column indices of each row's k largest values, largest first.

    The columns are cut into slices of ``width``; the k positions (within
    a slice) whose maximum over the slices is largest hold every one of the
    k largest values, so only ``k * n_slices`` candidates are ranked.
    """
    q, n = S.shape
    width = max(min(width, n), k)
    full, rest = divmod(n, width)
    peak = S[:, : full * width].reshape(q, full, width).max(axis=1)
    if rest:
        peak[:, :rest] = np.maximum(peak[:, :rest], S[:, full * width :])
    pos = np.argpartition(peak, width - k, axis=1)[:, width - k :]
    starts = width * np.arange(full + (1 if rest else 0))
    cand = (pos[:, None, :] + starts[None, :, None]).reshape(q, -1)
    vals = np.take_along_axis(S, np.minimum(cand, n - 1), axis=1)
    vals[cand >= n] = -np.inf
    best = np.argpartition(vals, vals.shape[1] - k, axis=1)[:, -k:]
    order = np.argsort(-np.take_along_axis(vals, best, axis=1), axis=1, kind="stable")
    return np.take_along_axis(np.take_along_axis(cand, best, axis=1), order, axis=1)


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
