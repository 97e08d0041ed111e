"""How K runs' versions of one embedding table differ: every pair, every entity.

The analysis behind ``embvar compare`` and behind the groups of studies
whose model is not the built-in factorization (skip-gram, gensim's
Word2Vec, a user's builder). It takes tables whose rows are already the
same entities in the same order (see :func:`align_tables`) and returns
plain dictionaries in the shape of ``report.json``:

- :func:`table_levels`: the parameter and geometry metrics of every pair of
  runs, with their mean and spread;
- :func:`entity_summary`: each entity's neighbour stability, the least and
  most stable entities with a few of their neighbours in two runs (for
  stability against frequency, see :mod:`embvar.analysis.frequency`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from embvar.analysis.groups import stats
from embvar.errors import DataError
from embvar.metrics import (
    NeighborSets,
    angular_shape_distance,
    eigenspace_overlap,
    generalized_procrustes,
    linear_cka,
    neighbor_sets,
    pairwise_metrics,
    pip_loss,
    procrustes_distance,
    spearman_pairwise_similarity,
)

__all__ = [
    "finite_stats",
    "align_tables",
    "table_levels",
    "entity_summary",
    "distinct_runs",
]

# pairwise_metrics' names -> the names report.json uses.
_REPORT_NAMES = {
    "procrustes": "procrustes",
    "angular_shape": "angular_shape_distance",
    "linear_cka": "cka",
    "pip_loss": "pip_loss",
    "eigenspace_overlap": "eigenspace_overlap",
    "relative_frobenius": "relative_frobenius",
    "mean_abs_difference": "mean_abs_difference",
}
_PARAMETERS = ("relative_frobenius", "mean_abs_difference")
_PAIR_FUNCTIONS = {
    "procrustes": procrustes_distance,
    "angular_shape_distance": angular_shape_distance,
    "cka": linear_cka,
    "pip_loss": pip_loss,
    "eigenspace_overlap": eigenspace_overlap,
}


def finite_stats(values: Sequence[float | None]) -> dict[str, Any]:
    """:func:`embvar.analysis.groups.stats` of the finite values (None, NaN out)."""
    return stats([v for v in values if v is not None and np.isfinite(v)])


def align_tables(
    tables: Sequence[np.ndarray], ids: Sequence[np.ndarray], names: Sequence[str]
) -> tuple[list[np.ndarray], np.ndarray, list[dict[str, Any]]]:
    """Return the tables restricted to the ids they all share, row for row.

    Parameters
    ----------
    tables : sequence of ndarray of shape (n_k, dim_k)
    ids : sequence of ndarray of shape (n_k,)
        Distinct ids of each table's rows.
    names : sequence of str
        Run names, for the coverage and for errors.

    Returns
    -------
    aligned : list of ndarray of shape (n_common, dim_k)
        Rows in the order of the first table.
    common : ndarray of shape (n_common,)
        The shared ids.
    coverage : list of dict
        Per run: ``{"name", "n_entities", "n_matched", "coverage"}``.

    Raises
    ------
    DataError
        If the runs share no id.
    """
    common = np.asarray(ids[0])
    for name, other in zip(names[1:], ids[1:], strict=True):
        keep = np.isin(common, np.asarray(other))
        if not keep.any():
            raise DataError(
                f"{names[0]} and {name} share no entity id, so there is nothing to "
                f"compare (first ids: {np.asarray(ids[0])[:3].tolist()} and "
                f"{np.asarray(other)[:3].tolist()}); check that both use the same "
                "ids (words, item ids) or ids files."
            )
        common = common[keep]
    if len(common) < 3:
        raise DataError(
            f"the runs share only {len(common)} entity ids ({common.tolist()}); at "
            "least 3 are needed to compare neighbourhoods."
        )
    aligned, coverage = [], []
    for name, T, own in zip(names, tables, ids, strict=True):
        own = np.asarray(own)
        order = np.argsort(own, kind="stable")
        rows = order[np.searchsorted(own, common, sorter=order)]
        aligned.append(np.asarray(T)[rows])
        coverage.append(
            {
                "name": name,
                "n_entities": int(len(own)),
                "n_matched": int(len(common)),
                "coverage": float(len(common) / len(own)),
            }
        )
    return aligned, common, coverage


def table_levels(
    tables: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    k: int = 10,
    n_similarity_pairs: int = 20_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Return every pairwise parameter and geometry metric of K aligned runs.

    Parameters
    ----------
    tables : sequence of ndarray of shape (n_entities, dim_k)
        The same entities, row for row, in K >= 2 runs. Dimensions may
        differ; the parameter level is then left out.
    names : sequence of str
        Run names (run ids or file names).
    k : int, default=10
        Neighbours for the k-NN overlap.
    n_similarity_pairs : int, default=20000
        Entity pairs sampled for the similarity correlation.
    seed : int, default=0
        Seed of that sample.

    Returns
    -------
    dict
        ``{"parameters": {metric: stats}, "geometry": {metric: stats},
        "pairs": [{"runs": [a, b], metric: value, ...}], "neighbors":
        NeighborSets}``; the last is for :func:`entity_summary` and is not
        JSON.
    """
    K = len(tables)
    n = int(tables[0].shape[0])
    k = min(k, n - 1)
    same_dim = len({int(T.shape[1]) for T in tables}) == 1
    pair_index = list(itertools.combinations(range(K), 2))
    values: dict[str, list[float]] = {}

    # Products-based metrics for all pairs in one pass where the dims agree.
    if same_dim:
        matrices = pairwise_metrics(tables, list(_REPORT_NAMES), names=list(names))
        for name, M in matrices.items():
            values[_REPORT_NAMES[name]] = [float(M[a, b]) for a, b in pair_index]
    else:
        for key, fn in _PAIR_FUNCTIONS.items():
            values[key] = [float(fn(tables[a], tables[b])) for a, b in pair_index]

    # Neighbours once per run; similarity correlation on a seeded sample.
    neighbors = neighbor_sets(tables, k, metric="cosine", names=list(names))
    knn_key = f"knn_overlap@{k}"
    values[knn_key] = [float(neighbors.overlap(a, b).mean()) for a, b in pair_index]
    values["knn_jaccard@" + str(k)] = [
        float(neighbors.overlap(a, b, kind="jaccard").mean()) for a, b in pair_index
    ]
    values["similarity_correlation"] = [
        spearman_pairwise_similarity(
            tables[a], tables[b], n_pairs=n_similarity_pairs, seed=seed
        )
        for a, b in pair_index
    ]

    pairs = [
        {"runs": [names[a], names[b]], **{m: v[i] for m, v in values.items()}}
        for i, (a, b) in enumerate(pair_index)
    ]
    return {
        "parameters": {m: finite_stats(values[m]) for m in _PARAMETERS if m in values},
        "geometry": {
            m: finite_stats(v) for m, v in values.items() if m not in _PARAMETERS
        },
        "pairs": pairs,
        "neighbors": neighbors,
    }


def distinct_runs(
    tables: Sequence[np.ndarray],
) -> tuple[list[int], list[tuple[int, int]]]:
    """Return the runs whose table equals no earlier run's, and the twins.

    Two runs with the same table (a seed the model never draws from, a
    deterministic repeat) would count as perfect agreement in per-entity
    figures; one of them is enough.
    """
    keep: list[int] = []
    twins: list[tuple[int, int]] = []
    for i, T in enumerate(tables):
        twin = next(
            (
                j
                for j in keep
                if T.shape == tables[j].shape
                and np.allclose(T, tables[j], rtol=1e-6, atol=1e-7)
            ),
            None,
        )
        if twin is None:
            keep.append(i)
        else:
            twins.append((i, twin))
    return keep, twins


def entity_summary(
    tables: Sequence[np.ndarray],
    names: Sequence[str],
    ids: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    frequency: np.ndarray | None = None,
    group: str = "",
    table: str = "embeddings",
    k: int = 10,
    n_rows: int = 10,
    n_neighbors: int = 5,
    neighbors: NeighborSets | None = None,
) -> tuple[dict[str, Any] | None, np.ndarray | None]:
    """Return the per-entity stability summary of K aligned runs.

    Parameters
    ----------
    tables : sequence of ndarray of shape (n_entities, dim)
        The same entities, row for row.
    names : sequence of str
        Run names.
    ids : ndarray of shape (n_entities,)
        Entity ids.
    labels : ndarray of shape (n_entities,), optional
        Readable names; default the ids.
    frequency : ndarray of shape (n_entities,), optional
        Training frequency (token counts, ratings); ties in stability list
        the more frequent entity first, and ``least_stable_frequent`` keeps
        the entities in the top quarter by frequency (at least 10).
    group, table : str
        Labels written into the summary.
    k, n_rows, n_neighbors : int
        Neighbours per entity, entities per list, neighbours shown.
    neighbors : NeighborSets, optional
        The runs' neighbours already found (as :func:`table_levels` returns
        them), to reuse.

    Returns
    -------
    summary : dict or None
        The ``entities`` section of ``report.json`` (see
        :func:`embvar.report.entities.least_stable_entities` for the keys),
        or None when fewer than two runs differ.
    overlap : ndarray of shape (n_entities,) or None
        Each entity's k-NN overlap, averaged over pairs of distinct runs.
    """
    keep, twins = distinct_runs(tables)
    n = int(tables[0].shape[0])
    if len(keep) < 2 or n <= k:
        return None, None
    runs = [names[i] for i in keep]
    kept = [tables[i] for i in keep]
    ids = np.asarray(ids).astype(str)
    labels = ids if labels is None else np.asarray(labels).astype(str)
    freq = np.zeros(n) if frequency is None else np.asarray(frequency, dtype=np.float64)

    # Mean k-NN overlap per entity; displacement after generalized Procrustes.
    if neighbors is None or neighbors.k != k:
        neighbors = neighbor_sets(kept, k, metric="cosine", names=runs)
    else:
        neighbors = NeighborSets(
            [neighbors.indices[i] for i in keep],
            k,
            neighbors.metric,
            neighbors.method,
        )
    pair_index = list(itertools.combinations(range(len(kept)), 2))
    overlap = np.mean([neighbors.overlap(a, b) for a, b in pair_index], axis=0)
    displacement = None
    if len({T.shape[1] for T in kept}) == 1:
        displacement = generalized_procrustes(kept, names=runs).mean_displacement
    shown = next(
        (p for p in pair_index if neighbors.overlap(*p).mean() < 1.0), pair_index[0]
    )

    def row(r: int) -> dict[str, Any]:
        return {
            "row": int(r),
            "id": str(ids[r]),
            "label": str(labels[r]),
            "detail": "",
            "frequency": None if frequency is None else int(freq[r]),
            "overlap": float(overlap[r]),
            "displacement": None if displacement is None else float(displacement[r]),
            "neighbors_a": [
                {"row": int(j), "label": str(labels[j])}
                for j in neighbors.indices[shown[0]][r, :n_neighbors]
            ],
            "neighbors_b": [
                {"row": int(j), "label": str(labels[j])}
                for j in neighbors.indices[shown[1]][r, :n_neighbors]
            ],
        }

    # Least stable first; ties: most frequent first (lexsort: last key first).
    order = np.lexsort((-freq, overlap))
    threshold = int(max(10, np.percentile(freq, 75))) if frequency is not None else 0
    frequent = order[freq[order] >= threshold] if frequency is not None else order
    most = np.lexsort((-freq, -overlap))
    counts, edges = np.histogram(overlap, bins=np.linspace(0.0, 1.0, 21))
    summary = {
        "group": group,
        "table": table,
        "k": k,
        "n_entities": n,
        "n_pairs": len(pair_index),
        "runs": [runs[shown[0]], runs[shown[1]]],
        "dropped": [{"run": names[i], "same_as": names[j]} for i, j in twins],
        "frequent_threshold": threshold if frequency is not None else None,
        "n_frequent": int(len(frequent)),
        "mean_overlap": float(overlap.mean()),
        "share_zero": float(np.mean(overlap == 0.0)),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "least_stable": [row(r) for r in order[:n_rows]],
        "least_stable_frequent": (
            [row(r) for r in frequent[:n_rows]] if frequency is not None else []
        ),
        "most_stable": [row(r) for r in most[: max(1, n_rows // 2)]],
    }
    return summary, overlap
