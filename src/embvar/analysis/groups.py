"""First analysis of a study: how much do seed replicates vary, per group?

A *group* is the set of finished runs that share every hyperparameter and
differ only in their seeds. For each group this module reports, at the
three levels of variation:

- function: test RMSE (mean, spread) and the overlap of each user's top-10
  recommendations (items the user rated in training excluded);
- parameters: the relative Frobenius distance and the mean absolute
  difference of the item tables, row for row (no alignment);
- geometry: the orthogonal Procrustes distance of the item tables (centred,
  scale-normalised) and the overlap of each item's 10 nearest neighbours
  (cosine);

each averaged over every pair of runs in the group, with the pairs and the
run ids behind every number.

A group may mix pairs of runs that share a seed (a crossed init x order
design holds pairs with the same init seed) with pairs that differ in every
seed. Only the latter are what a practitioner gets by training again with
new seeds, so each group also reports, under ``reseeded``, the same figures
over the pairs that differ in every *reseed source*: every seed source whose
seed differs between some two runs of the study with the same model kind,
less the sources the model never draws from (the built-in factorization
draws nothing while training, so its ``noise`` seed changes nothing; see
:mod:`embvar.seeds`). Seeds are compared as recorded in ``spec["seeds"]``.

Each group also says how far training moved its item table from its
initial values (``training_movement``): a table that stays close to its
random start has not been trained, whatever its pairs' distances say.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from embvar.data.prepared import PreparedData
from embvar.metrics import (
    knn_indices,
    mean_abs_difference,
    neighbor_overlap,
    procrustes_distance,
    relative_frobenius,
    topk_items,
)
from embvar.seeds import SOURCES
from embvar.store import RunRecord, Store

__all__ = [
    "RunView",
    "load_run_views",
    "group_runs",
    "group_summary",
    "summarize",
    "reseed_sources",
    "INERT_SOURCES",
    "MOVED_THRESHOLD",
]

SEED_KEYS = ("init", "order", "noise", "split", "perturb", "replicate", "repeat")

#: Seed sources a model kind never draws from: a difference there changes
#: nothing, so it does not count when asking whether two runs were reseeded.
INERT_SOURCES: dict[str, tuple[str, ...]] = {"factorization": ("noise",)}

#: Below this relative Frobenius distance between a run's initial (epoch 0)
#: and final item table, the table is still mostly its random start
#: (``2||V_T - V_0|| / (||V_0|| + ||V_T||) < 0.5``: the change is under half
#: the tables' mean norm); its pairs' distances then measure the random
#: initialisations, not what training learned.
MOVED_THRESHOLD = 0.5

_PAIR_METRICS = {
    "function": ("topk_overlap",),
    "parameters": ("relative_frobenius", "mean_abs_difference"),
    "geometry": ("procrustes", "knn_overlap"),
}


@dataclass
class RunView:
    """A finished run's final tables and the per-run products pairs reuse."""

    record: RunRecord
    tables: dict[str, np.ndarray]
    test_rmse: float
    knn: np.ndarray | None = None
    top: np.ndarray | None = None
    #: The item table at epoch 0 (before training), where the store has it.
    initial: np.ndarray | None = None


def stats(values: list[float]) -> dict[str, Any]:
    """Mean, standard deviation (ddof=1), min, max and count of ``values``."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "mean": None, "sd": None, "min": None, "max": None}
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "sd": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "min": float(a.min()),
        "max": float(a.max()),
    }


def seen_matrix(data: PreparedData) -> sp.csr_matrix:
    """Return the users x items matrix of training interactions (1 = seen)."""
    inter = data.interactions
    ones = np.ones(len(data.split.train), dtype=np.float32)
    return sp.csr_matrix(
        (ones, (data.train_users, data.train_items)),
        shape=(inter.n_users, inter.n_items),
    )


def group_runs(records: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Return finished (``done``) runs by group key, groups in plan order."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == "done":
            groups.setdefault(r.group_key, []).append(r)
    return groups


def load_run_views(store: Store, records: list[RunRecord]) -> list[RunView]:
    """Load each run's last snapshot, its final test RMSE and, where the store
    has an epoch-0 snapshot, its initial item table."""
    views = []
    for r in records:
        history = store.history(r.run_id)
        epochs = store.epochs(r.run_id)
        initial = None
        if epochs and epochs[0] == 0 and len(epochs) > 1:
            initial = store.load_snapshot(r.run_id, 0).get("item_embedding")
        views.append(
            RunView(
                r,
                store.load_snapshot(r.run_id),
                history[-1]["test_rmse"],
                initial=initial,
            )
        )
    return views


def reseed_sources(records: Iterable[RunRecord]) -> dict[str, list[str]]:
    """Return, per model kind, the seed sources a reseed changes.

    A source counts when its recorded seed (``spec["seeds"]``) differs
    between some two of ``records`` of that model kind, and the kind draws
    from it (see :data:`INERT_SOURCES`).
    """
    seeds: dict[str, dict[str, set[Any]]] = {}
    for r in records:
        kind = r.spec.get("model", {}).get("kind", "factorization")
        per = seeds.setdefault(kind, {})
        for s in SOURCES:
            per.setdefault(s, set()).add((r.spec.get("seeds") or {}).get(s))
    return {
        kind: [
            s
            for s in SOURCES
            if len(per[s]) > 1 and s not in INERT_SOURCES.get(kind, ())
        ]
        for kind, per in seeds.items()
    }


def _reseeded(a: RunRecord, b: RunRecord, sources: Sequence[str]) -> bool:
    """Whether two runs differ in the seed of every source in ``sources``."""
    sa, sb = a.spec.get("seeds") or {}, b.spec.get("seeds") or {}
    return bool(sources) and all(sa.get(s) != sb.get(s) for s in sources)


def _pair_levels(pairs: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """The per-level stats of ``pairs`` (each a pair's values by metric)."""
    out: dict[str, Any] = {}
    for level, names in _PAIR_METRICS.items():
        out[level] = {}
        for name in names:
            key = f"{name}@{k}" if name.endswith("overlap") else name
            out[level][key] = stats([p[key] for p in pairs if key in p])
    return out


def _movement(views: list[RunView]) -> dict[str, Any]:
    """How far training moved each run's item table from its epoch-0 values."""
    values = [
        None
        if v.initial is None or v.initial.shape != v.tables["item_embedding"].shape
        else relative_frobenius(v.initial, v.tables["item_embedding"])
        for v in views
    ]
    known = [x for x in values if x is not None]
    mean = float(np.mean(known)) if known else None
    return {
        "table": "item_embedding",
        "metric": "relative_frobenius",
        "from_epoch": 0,
        "values": values,
        "n": len(known),
        "mean": mean,
        "threshold": MOVED_THRESHOLD,
        "barely_moved": None if mean is None else bool(mean < MOVED_THRESHOLD),
    }


def group_summary(
    views: list[RunView],
    data: PreparedData,
    *,
    k: int = 10,
    seen: sp.csr_matrix | None = None,
    sources: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Return the group's figures, with every pair's values and run ids.

    ``sources`` are the reseed sources (see :func:`reseed_sources`; default:
    those whose seed varies within the group, less the model's inert ones).
    ``reseeded`` holds the figures over the pairs that differ in all of them
    (``n_pairs`` 0 where none does); ``training_movement`` how far training
    moved the item tables from epoch 0; each pair says whether it is
    ``reseeded``.
    """
    if sources is None:
        kind = views[0].record.spec.get("model", {}).get("kind", "factorization")
        sources = reseed_sources(v.record for v in views).get(kind, [])
    seen = seen_matrix(data) if seen is None else seen
    for v in views:
        V = v.tables["item_embedding"]
        if v.knn is None:
            v.knn = knn_indices(V, k, metric="cosine")
        if v.top is None:
            v.top = topk_items(
                v.tables["user_embedding"],
                V,
                k,
                exclude=seen,
                item_bias=v.tables.get("item_bias"),
            )
    pairs = []
    for a, b in itertools.combinations(views, 2):
        A, B = a.tables["item_embedding"], b.tables["item_embedding"]
        pairs.append(
            {
                "runs": [a.record.run_id, b.record.run_id],
                "relative_frobenius": relative_frobenius(A, B),
                "mean_abs_difference": mean_abs_difference(A, B),
                "procrustes": procrustes_distance(A, B),
                f"knn_overlap@{k}": float(neighbor_overlap(a.knn, b.knn).mean()),
                f"topk_overlap@{k}": float(neighbor_overlap(a.top, b.top).mean()),
                "reseeded": _reseeded(a.record, b.record, sources),
            }
        )
    reseeded = [p for p in pairs if p["reseeded"]]
    first = views[0].record.spec
    return {
        "group": views[0].record.group_key,
        "label": group_label(first),
        "hyperparameters": hyperparameters(first),
        "designs": sorted({d for v in views for d in v.record.spec["designs"]}),
        "run_ids": [v.record.run_id for v in views],
        "n_runs": len(views),
        "function": {
            "test_rmse": {
                **stats([v.test_rmse for v in views]),
                "values": [v.test_rmse for v in views],
            },
            f"topk_overlap@{k}": stats([p[f"topk_overlap@{k}"] for p in pairs]),
        },
        "parameters": {
            key: stats([p[key] for p in pairs])
            for key in ("relative_frobenius", "mean_abs_difference")
        },
        "geometry": {
            "procrustes": stats([p["procrustes"] for p in pairs]),
            f"knn_overlap@{k}": stats([p[f"knn_overlap@{k}"] for p in pairs]),
        },
        "reseeded": {
            "sources": list(sources),
            "n_pairs": len(reseeded),
            **_pair_levels(reseeded, k),
        },
        "training_movement": _movement(views),
        "pairs": pairs,
    }


def hyperparameters(spec: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a group (everything but seeds)."""
    return {
        "dim": spec["model"]["dim"],
        "initializer": spec["model"]["initializer"],
        "optimizer": spec["training"]["optimizer"],
        "learning_rate": spec["training"]["learning_rate"],
        "batch_size": spec["training"]["batch_size"],
        "epochs": spec["training"]["epochs"],
        "l2": spec["model"]["l2"],
        "weight_decay": spec["training"]["weight_decay"],
        "fraction": spec["data"]["fraction"],
        "perturb": spec.get("perturb", 0),
    }


def group_label(spec: dict[str, Any]) -> str:
    """A short label: the factor values that are not seeds, or 'defaults'."""
    parts = [f"{k}={v}" for k, v in spec["factors"].items() if k not in SEED_KEYS]
    if spec.get("perturb"):
        parts.append(f"perturb={spec['perturb']}")
    return ", ".join(parts) or "defaults"


def summarize(
    store: Store, data_for, *, k: int = 10, run_ids: set[str] | None = None
) -> list[dict[str, Any]]:
    """Return the summary of every group with at least two finished runs.

    ``data_for(spec_dict)`` returns the PreparedData a run trained on;
    ``run_ids`` limits the summary to the runs of the current plan (a store
    may hold runs of an earlier version of the study file).
    """
    out = []
    seen_cache: dict[str, sp.csr_matrix] = {}
    records_all = [r for r in store.runs() if run_ids is None or r.run_id in run_ids]
    sources = reseed_sources(records_all)
    for records in group_runs(records_all).values():
        if len(records) < 2:
            continue
        data = data_for(records[0].spec)
        if data.key not in seen_cache:
            seen_cache[data.key] = seen_matrix(data)
        views = load_run_views(store, records)
        kind = records[0].spec.get("model", {}).get("kind", "factorization")
        out.append(
            group_summary(
                views,
                data,
                k=k,
                seen=seen_cache[data.key],
                sources=sources.get(kind, []),
            )
        )
    return out
