"""Per-entity stability across K runs: which entities move, and how much."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from embvar.errors import ShapeMismatchError
from embvar.metrics.consensus import (
    GeneralizedProcrustesResult,
    generalized_procrustes,
)
from embvar.metrics.neighbors import Method, Metric, NeighborSets, neighbor_sets

__all__ = ["ENTITY_COLUMNS", "entity_stability_table"]

#: Columns of the table :func:`entity_stability_table` returns.
ENTITY_COLUMNS = ("id", "label", "frequency", "knn_overlap", "displacement")


def entity_stability_table(
    tables: Sequence[Any],
    *,
    ids: Any = None,
    labels: Any = None,
    frequency: Any = None,
    k: int = 10,
    metric: Metric = "cosine",
    method: Method = "auto",
    neighbors: NeighborSets | None = None,
    consensus: GeneralizedProcrustesResult | None = None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return one row per entity with its stability across K runs.

    Parameters
    ----------
    tables : sequence of array-like of shape (n_entities, dim)
        The same entities, row for row, in K >= 2 runs.
    ids : array-like of shape (n_entities,), optional
        Entity ids; default the row numbers.
    labels : array-like of shape (n_entities,), optional
        Readable names (titles, words); default empty.
    frequency : array-like of shape (n_entities,), optional
        Training frequency of each entity (ratings, token counts).
    k, metric, method
        Neighbour search, as in :func:`~embvar.metrics.knn_indices`.
    neighbors : NeighborSets, optional
        Neighbours already found with :func:`~embvar.metrics.neighbor_sets`.
    consensus : GeneralizedProcrustesResult, optional
        Alignment already done with
        :func:`~embvar.metrics.generalized_procrustes`.
    names : sequence of str, optional
        Run names for error messages.

    Returns
    -------
    table : pandas.DataFrame
        Columns ``id``, ``label``, ``frequency`` (NaN if not given),
        ``knn_overlap`` (mean over the K(K-1)/2 pairs of runs, in [0, 1])
        and ``displacement`` (mean over runs of the cosine distance to the
        generalized-Procrustes consensus, in [0, 2]), in row order.
        ``table.nsmallest(20, "knn_overlap")`` lists the least stable.

    Raises
    ------
    ShapeMismatchError
        If fewer than two tables are given, or a per-entity array does not
        have one value per row.
    """
    if len(tables) < 2:
        raise ShapeMismatchError(
            f"tables must hold at least two runs to compare; got {len(tables)}."
        )
    if neighbors is None:
        neighbors = neighbor_sets(tables, k, metric=metric, method=method, names=names)
    if consensus is None:
        consensus = generalized_procrustes(tables, names=names)
    n = consensus.consensus.shape[0]

    # Mean k-NN overlap of each entity over all pairs of runs.
    K = len(neighbors.indices)
    overlap = np.zeros(n)
    for a in range(K):
        for b in range(a + 1, K):
            overlap += neighbors.overlap(a, b)
    overlap /= K * (K - 1) / 2

    return pd.DataFrame(
        {
            "id": _column("ids", ids, n, np.arange(n)),
            "label": _column("labels", labels, n, np.full(n, "", dtype=object)),
            "frequency": _column("frequency", frequency, n, np.full(n, np.nan)),
            "knn_overlap": overlap,
            "displacement": consensus.mean_displacement,
        },
        columns=list(ENTITY_COLUMNS),
    )


def _column(name: str, values: Any, n: int, default: np.ndarray) -> np.ndarray:
    if values is None:
        return default
    values = np.asarray(values)
    if values.shape != (n,):
        raise ShapeMismatchError(
            f"{name} must have one value per entity ({n}); got shape {values.shape}."
        )
    return values
