"""The least stable entities of a study: labels, frequencies, neighbours.

For the study's main group of seed replicates (the group with the most
runs), every item's k nearest neighbours (cosine) are found in every run,
and the item's *stability* is its neighbour overlap averaged over the pairs
of runs that differ in every seed (the group's ``reseeded`` pairs, see
:mod:`embvar.analysis.groups`), or over all pairs where the group has none.
Pairs that share the init seed would make items training never touches
(no ratings: their rows keep their initial values) look perfectly stable,
though a new init seed leaves them nothing in common. The report
lists the items that keep the fewest neighbours, with their titles and
training frequencies, and shows a few of their neighbours in two runs side
by side, so a reader sees what "unstable" means for one movie.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from embvar.data.prepared import PreparedData
from embvar.metrics.entities import entity_stability_table
from embvar.metrics.neighbors import neighbor_sets
from embvar.store import Store

__all__ = ["least_stable_entities", "report_entities", "TABLE"]

TABLE = "item_embedding"


def _frequent_threshold(freq: np.ndarray) -> int:
    """At least 10 training interactions, and in the top quarter by frequency."""
    return int(max(10, np.percentile(freq, 75)))


def _unseen(
    freq: np.ndarray, overlap: np.ndarray, overlap_all: np.ndarray
) -> dict[str, Any]:
    """The items with no training interaction: how many, and how stable.

    Training never updates their rows, so they keep their initial values:
    alike between runs that share the init seed, unrelated otherwise.
    """
    z = freq == 0
    n = int(z.sum())
    return {
        "n_entities": n,
        "mean_overlap": float(overlap[z].mean()) if n else None,
        "share_zero": float(np.mean(overlap[z] == 0.0)) if n else None,
        "mean_overlap_all_pairs": float(overlap_all[z].mean()) if n else None,
    }


def least_stable_entities(
    store: Store,
    group: dict[str, Any],
    data: PreparedData,
    *,
    k: int = 10,
    n_rows: int = 10,
    n_neighbors: int = 5,
) -> dict[str, Any] | None:
    """Return the per-item stability summary of one group of runs.

    Parameters
    ----------
    store : Store
        The study's run store, to load the runs' final item tables.
    group : dict
        One entry of ``report["groups"]``; its ``run_ids`` are used.
    data : PreparedData
        The data the group trained on (frequencies, labels, ids).
    k : int, default=10
        Neighbours per item.
    n_rows : int, default=10
        Items listed per table.
    n_neighbors : int, default=5
        Neighbours shown per item and run.

    Returns
    -------
    dict or None
        None when the group has fewer than two runs. Otherwise::

            {"group": label, "table": "item_embedding", "k": k,
             "n_entities": n, "n_pairs": P, "pairs_used": "reseeded" | "all",
             "reseed_sources": [...], "all_pairs": {"n_pairs", "mean_overlap"},
             "unseen": {"n_entities", "mean_overlap", "share_zero",
                        "mean_overlap_all_pairs"},
             "runs": [run_a, run_b],
             "dropped": [{"run", "same_as"}, ...],
             "frequent_threshold": f, "n_frequent": m, "mean_overlap": o,
             "median_overlap": o50,
             "share_zero": s0, "histogram": {"edges": [...], "counts": [...]},
             "least_stable": [row, ...], "least_stable_frequent": [row, ...],
             "most_stable": [row, ...]}

        with each row ``{"row", "id", "label", "detail", "frequency",
        "overlap", "displacement", "neighbors_a", "neighbors_b"}`` and each
        neighbour ``{"row", "label", "shared"}`` (``shared``: among the
        item's k neighbours in the other run too). ``overlap`` is the item's k-NN
        overlap averaged over the P pairs of runs it is ranked on: those the
        group marks ``reseeded`` (``pairs_used`` "reseeded"), or all pairs
        where the group marks none (``pairs_used`` "all"); ``all_pairs``
        gives the mean over every pair for comparison. ``displacement`` its
        mean cosine distance to the runs' generalized-Procrustes consensus
        (see :func:`embvar.metrics.entity_stability_table`); ``runs`` are
        the two runs whose neighbours are shown (the pair whose mean overlap
        is closest to the mean over all pairs: a typical pair); ``dropped``
        the runs left out because their table equals an earlier run's.

    Notes
    -----
    Ties in overlap are listed most frequent first: among items that keep
    none of their neighbours, a popular one says more than the many items
    rated once.
    """
    run_ids = list(group.get("run_ids", []))
    if len(run_ids) < 2:
        return None
    tables = [store.load_snapshot(r)[TABLE] for r in run_ids]
    n = tables[0].shape[0]

    # A run whose table equals an earlier one's (e.g. two runs that differ
    # only in a seed the model never draws from) would count as perfect
    # agreement; keep one of them.
    dropped = []
    keep = []
    for i, T in enumerate(tables):
        twin = next(
            (j for j in keep if np.allclose(T, tables[j], rtol=1e-6, atol=1e-7)), None
        )
        if twin is None:
            keep.append(i)
        else:
            dropped.append({"run": run_ids[i], "same_as": run_ids[twin]})
    run_ids = [run_ids[i] for i in keep]
    tables = [tables[i] for i in keep]
    if len(tables) < 2 or n <= k:
        return None

    inter = data.interactions
    freq = inter.item_frequency(data.split.train)
    titles = inter.item_labels.get("title")
    genres = inter.item_labels.get("genres")
    ids = np.asarray(inter.item_ids).astype(str)

    # Neighbours per run once; the per-entity table reuses them.
    neigh = neighbor_sets(tables, k, metric="cosine", names=run_ids)
    table = entity_stability_table(
        tables, ids=ids, frequency=freq, k=k, neighbors=neigh, names=run_ids
    )
    overlap_all = table["knn_overlap"].to_numpy()
    displacement = table["displacement"].to_numpy()

    # Rank on the pairs that differ in every seed where the group has them.
    every_pair = list(itertools.combinations(range(len(run_ids)), 2))
    marked = {
        frozenset(p["runs"])
        for p in group.get("pairs") or []
        if isinstance(p, dict) and p.get("reseeded")
    }
    pairs = [
        (a, b) for a, b in every_pair if frozenset((run_ids[a], run_ids[b])) in marked
    ]
    used = "reseeded" if pairs else "all"
    if not pairs:
        pairs = every_pair
        overlap = overlap_all
    else:
        overlap = np.mean([neigh.overlap(a, b) for a, b in pairs], axis=0)

    def label(r: int) -> str:
        if titles is not None and str(titles[r]) not in ("", "nan", "None"):
            return str(titles[r])
        return str(ids[r])

    # Show the neighbours of a typical pair: the one whose mean overlap is
    # closest to the mean over the pairs ranked on.
    pair_means = np.array([neigh.overlap(a, b).mean() for a, b in pairs])
    shown = pairs[int(np.argmin(np.abs(pair_means - pair_means.mean())))]

    A, B = neigh.indices[shown[0]], neigh.indices[shown[1]]

    def _neighbors(r: int, mine: np.ndarray, other: np.ndarray) -> list[dict[str, Any]]:
        theirs = set(other[r].tolist())
        return [
            {"row": int(j), "label": label(j), "shared": int(j) in theirs}
            for j in mine[r, :n_neighbors]
        ]

    def row(r: int) -> dict[str, Any]:
        return {
            "row": int(r),
            "id": str(ids[r]),
            "label": label(r),
            "detail": "" if genres is None else str(genres[r]),
            "frequency": int(freq[r]),
            "overlap": float(overlap[r]),
            "displacement": float(displacement[r]),
            "neighbors_a": _neighbors(r, A, B),
            "neighbors_b": _neighbors(r, B, A),
        }

    # Least stable first; ties: most frequent first (lexsort: last key first).
    order = np.lexsort((-freq, overlap))
    threshold = _frequent_threshold(freq)
    frequent = order[freq[order] >= threshold]
    most = np.lexsort((-freq, -overlap))
    counts, edges = np.histogram(overlap, bins=np.linspace(0.0, 1.0, 21))
    return {
        "group": group.get("label", ""),
        "table": TABLE,
        "k": k,
        "n_entities": int(n),
        "n_pairs": len(pairs),
        "pairs_used": used,
        "reseed_sources": list((group.get("reseeded") or {}).get("sources") or []),
        "all_pairs": {
            "n_pairs": len(every_pair),
            "mean_overlap": float(overlap_all.mean()),
        },
        "unseen": _unseen(freq, overlap, overlap_all),
        "runs": [run_ids[shown[0]], run_ids[shown[1]]],
        "dropped": dropped,
        "frequent_threshold": threshold,
        "n_frequent": int(len(frequent)),
        "mean_overlap": float(overlap.mean()),
        "median_overlap": float(np.median(overlap)),
        "share_zero": float(np.mean(overlap == 0.0)),
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        "least_stable": [row(r) for r in order[:n_rows]],
        "least_stable_frequent": [row(r) for r in frequent[:n_rows]],
        "most_stable": [row(r) for r in most[: max(1, n_rows // 2)]],
    }


def report_entities(
    store: Store, groups: list[dict[str, Any]], data_for: Any, **kwargs: Any
) -> dict[str, Any] | None:
    """Return :func:`least_stable_entities` of the group with the most runs.

    ``data_for(spec_dict)`` returns the PreparedData a run trained on, as
    in :func:`embvar.analysis.groups.summarize`; ``kwargs`` go to
    :func:`least_stable_entities`. None when there is no group.
    """
    if not groups:
        return None
    group = max(groups, key=lambda g: g.get("n_runs", 0))
    records = {r.run_id: r for r in store.runs()}
    first = records.get(group["run_ids"][0])
    if first is None:
        return None
    return least_stable_entities(store, group, data_for(first.spec), **kwargs)
