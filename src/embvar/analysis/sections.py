"""The report's analysis sections, computed from a study's finished runs.

:func:`study_sections` returns the ``report.json`` keys this package
writes, each with the run ids behind its numbers:

``attribution``
    For the largest crossed group of seed replicates (runs that differ
    only in their seeds, every combination of the varied sources' levels
    once): variance components of the test RMSE, the mean of each metric
    over runs that differ in one source only, PERMANOVA per source and the
    one-ulp perturbation control. Other crossed groups under ``designs``.
``dynamics``
    For the same group, each metric at every epoch over pairs that differ
    in one source only, in every source, and perturbed twins.
``frequency``
    Per-entity stability of that group against training frequency.
``tradeoff``
    Per hyperparameter level of every design: accuracy and stability, and
    the levels no other level of the design beats on both.
``claims``, ``article_examples``
    When the study asks for them (``[analysis]`` in the study file).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from embvar.analysis import attribution as att
from embvar.analysis.distances import (
    METRICS,
    SIMILARITIES,
    K,
    as_distance,
    pair_value,
    query_rows,
)
from embvar.analysis.dynamics import trajectory
from embvar.analysis.frequency import (
    aligned_displacement,
    entity_overlap,
    stability_by_frequency,
)
from embvar.analysis.runs import StudyRuns
from embvar.analysis.tradeoff import level_summary, mark_fronts
from embvar.errors import DataError
from embvar.metrics import knn_indices
from embvar.store import RunRecord

__all__ = [
    "study_sections",
    "crossed_groups",
    "attribution_section",
    "dynamics_section",
    "frequency_section",
    "tradeoff_section",
]

logger = logging.getLogger(__name__)

# Pairs per kind followed over every epoch (each costs a k-NN search per
# epoch for each of its runs).
_DYNAMIC_RUNS = 4
# Pairs of runs averaged for the per-entity stability.
_FREQUENCY_PAIRS = 60
# Items whose k-NN overlap the dynamics follow (a seeded sample, for speed).
_DYNAMIC_QUERIES = 2000


def crossed_groups(runs: StudyRuns) -> list[dict[str, Any]]:
    """Return every crossed group of seed replicates, largest first.

    A crossed group is a group (same hyperparameters, unperturbed) of at
    least 4 finished runs whose varied seed sources form a full cross, each
    combination of levels once.
    """
    out = []
    seen: set[str] = set()
    for design in runs.designs():
        members = [r for r in runs.in_design(design) if not r.spec.get("perturb")]
        for key, group in StudyRuns.groups(members).items():
            if key in seen or len(group) < 4:
                continue
            sources = StudyRuns.varied_sources(group)
            if not sources:
                continue
            combos = {tuple(r.spec["levels"][s] for s in sources) for r in group}
            cells = int(
                np.prod([len({r.spec["levels"][s] for r in group}) for s in sources])
            )
            if len(combos) == len(group) == cells:
                seen.add(key)
                out.append(
                    {
                        "design": design,
                        "group": key,
                        "records": group,
                        "sources": sources,
                        "label": runs.label(group[0], design),
                    }
                )
    out.sort(key=lambda g: -len(g["records"]))
    return out


# -- attribution ----------------------------------------------------------------------


def attribution_section(
    runs: StudyRuns, crossed: dict[str, Any], *, seed: int = 0
) -> dict[str, Any]:
    """Return the attribution of one crossed group (see the module docstring)."""
    records = crossed["records"]
    sources = crossed["sources"]
    ids = [r.run_id for r in records]
    levels = StudyRuns.levels(records, sources)
    out: dict[str, Any] = {
        "design": crossed["design"],
        "group": crossed["label"],
        "sources": sources,
        "run_ids": ids,
        "levels": {s: levels[s].tolist() for s in sources},
        "scalar": [],
        "distance": [],
        "permanova": [],
        "perturbation": [],
    }

    # Scalar outcome: the final test RMSE.
    y = np.array([runs.test_rmse(i) for i in ids])
    try:
        vc = att.variance_components(y, levels, seed=seed)
        out["scalar"].append({"outcome": "test_rmse", "values": y.tolist(), **vc})
    except DataError as exc:
        out["scalar"].append(
            {
                "outcome": "test_rmse",
                "values": y.tolist(),
                "components": [],
                "note": str(exc),
            }
        )

    # Embeddings: distances between runs, by source, PERMANOVA, perturbation.
    twins = _twins(runs, records)
    for metric in METRICS:
        M = runs.matrix(records, metric)
        D = as_distance(M, metric)
        out["distance"].append(
            {
                "metric": metric,
                "matrix": M.tolist(),
                "by_source": att.source_distances(M, levels, run_ids=ids, seed=seed),
            }
        )
        out["permanova"].append(
            {
                "metric": metric,
                "form": "1 - value" if metric in SIMILARITIES else "value",
                **att.permanova(D, levels, seed=seed),
            }
        )
        if twins:
            classes = att.class_samples(D, levels, seed=seed)
            reseed, reseed_samples = classes["all"][0], classes["all"][1]
            perturbed = [
                as_distance(
                    pair_value(runs.embeddings(t), runs.embeddings(p), metric), metric
                )
                for p, t in twins
            ]
            out["perturbation"].append(
                {
                    "metric": metric,
                    "form": "1 - value" if metric in SIMILARITIES else "value",
                    **att.perturbation_share(
                        perturbed, reseed, reseed_samples, seed=seed
                    ),
                    "runs": [[t.run_id, p.run_id] for p, t in twins],
                    "values": [float(v) for v in perturbed],
                }
            )
    return out


def _twins(
    runs: StudyRuns, records: Sequence[RunRecord]
) -> list[tuple[RunRecord, RunRecord]]:
    """(perturbed, unperturbed twin) pairs whose twin is in ``records``."""
    members = {r.run_id for r in records}
    out = []
    for r in runs.done:
        if r.spec.get("perturb"):
            twin = runs.twin(r)
            if twin is not None and twin.run_id in members:
                out.append((r, twin))
    return out


# -- dynamics -------------------------------------------------------------------------


def _line(
    records: Sequence[RunRecord], sources: Sequence[str], source: str
) -> list[RunRecord]:
    """Runs sharing the first run's other levels, differing in ``source``."""
    first = records[0].spec["levels"]
    line = [
        r
        for r in records
        if all(r.spec["levels"][s] == first[s] for s in sources if s != source)
    ]
    return line[:_DYNAMIC_RUNS]


def _diagonal(records: Sequence[RunRecord], sources: Sequence[str]) -> list[RunRecord]:
    """Runs that pairwise differ in every source (greedy, in plan order)."""
    chosen: list[RunRecord] = []
    for r in records:
        if all(
            all(r.spec["levels"][s] != c.spec["levels"][s] for s in sources)
            for c in chosen
        ):
            chosen.append(r)
        if len(chosen) == _DYNAMIC_RUNS:
            break
    return chosen


def dynamics_section(
    runs: StudyRuns, crossed: dict[str, Any], *, seed: int = 0
) -> dict[str, Any]:
    """Return every metric per epoch over pairs that differ in one source."""
    records = crossed["records"]
    sources = crossed["sources"]
    kinds: dict[str, list[tuple[RunRecord, RunRecord]]] = {}
    for s in sources:
        kinds[s] = list(itertools.combinations(_line(records, sources, s), 2))
    if len(sources) > 1:
        kinds["all"] = list(itertools.combinations(_diagonal(records, sources), 2))
    twins = _twins(runs, records)
    if twins:
        kinds["perturb"] = [(t, p) for p, t in twins]
    kinds = {k: v for k, v in kinds.items() if v}
    involved = {r.run_id: r for pairs in kinds.values() for pair in pairs for r in pair}
    epochs = sorted(set.intersection(*(set(runs.epochs(i)) for i in involved)))

    # values[kind][metric] has shape (n_pairs, n_epochs).
    values = {
        k: {m: np.full((len(p), len(epochs)), np.nan) for m in METRICS}
        for k, p in kinds.items()
    }
    # The k-NN overlap of every epoch on one seeded sample of items.
    first = next(iter(involved.values()))
    sample = query_rows(runs.data(first).interactions.n_items, _DYNAMIC_QUERIES, seed)
    for e_index, epoch in enumerate(epochs):
        emb = {
            i: runs.embeddings(r, epoch, query_rows=sample) for i, r in involved.items()
        }
        for kind, pairs in kinds.items():
            for p_index, (a, b) in enumerate(pairs):
                for m in METRICS:
                    values[kind][m][p_index, e_index] = pair_value(
                        emb[a.run_id], emb[b.run_id], m
                    )
    series = []
    for kind, pairs in kinds.items():
        label = (
            "perturbed twin"
            if kind == "perturb"
            else ("every source" if kind == "all" else f"{kind} only")
        )
        for m in METRICS:
            series.append(
                {
                    "group": label,
                    "kind": kind,
                    **trajectory(values[kind][m], epochs, metric=m, seed=seed),
                    "pairs": [[a.run_id, b.run_id] for a, b in pairs],
                    "sampled_items": None if sample is None else int(sample.size),
                }
            )
    return {
        "design": crossed["design"],
        "group": crossed["label"],
        "epochs": epochs,
        "series": series,
    }


# -- frequency ------------------------------------------------------------------------


def frequency_section(
    runs: StudyRuns, crossed: dict[str, Any], *, seed: int = 0
) -> list[dict[str, Any]]:
    """Return per-entity stability against training frequency.

    One entry per entity kind (items, users), stability measure (k-NN
    overlap; relative aligned displacement, the distance after Procrustes
    alignment over the entity's own length) and kind of pair: runs that differ in
    every varied source (a full reseed, what a user who retrains gets) and,
    for items, runs that differ in each source only. The kinds are kept
    apart because an entity that training never touches keeps its initial
    vector: it is as stable as can be between runs that share their init,
    and as unstable as can be between runs that do not.
    """
    records = crossed["records"]
    sources = crossed["sources"]
    classes = att.pair_classes(StudyRuns.levels(records, sources))
    rng = np.random.default_rng(seed)
    emb = [runs.embeddings(r) for r in records]
    counts = {
        "item": runs.item_counts(records[0]),
        "user": runs.user_counts(records[0]),
    }
    tables = {"item": "item_embedding", "user": "user_embedding"}
    knn = {
        "item": [e.knn(K) for e in emb],
        "user": [knn_indices(e.tables["user_embedding"], K) for e in emb],
    }
    wanted = [("item", "all"), *[("item", s) for s in sources], ("user", "all")]
    out = []
    for entity, kind in wanted:
        if kind not in classes:
            continue
        pairs = [tuple(p) for p in np.argwhere(np.triu(classes[kind], 1))]
        if not pairs:
            continue
        if len(pairs) > _FREQUENCY_PAIRS:
            pick = np.sort(rng.choice(len(pairs), _FREQUENCY_PAIRS, replace=False))
            pairs = [pairs[i] for i in pick]
        table = tables[entity]
        overlap = entity_overlap(knn[entity], pairs)
        moved = np.mean(
            [
                aligned_displacement(
                    emb[i].tables[table], emb[j].tables[table], relative=True
                )
                for i, j in pairs
            ],
            axis=0,
        )
        used = [[records[i].run_id, records[j].run_id] for i, j in pairs]
        label = "every source differs" if kind == "all" else f"{kind} only differs"
        for metric, value in (
            (f"knn_overlap@{K}", overlap),
            ("relative_displacement", moved),
        ):
            out.append(
                {
                    "entity": entity,
                    "pairs_kind": kind,
                    "design": crossed["design"],
                    "group": f"{crossed['label']}, {entity}s, {label}",
                    **stability_by_frequency(
                        counts[entity], value, metric=metric, seed=seed
                    ),
                    "n_pairs": len(pairs),
                    "pairs": used,
                }
            )
    return out


# -- trade-off ------------------------------------------------------------------------


def tradeoff_section(runs: StudyRuns, *, seed: int = 0) -> dict[str, Any] | None:
    """Return accuracy and stability per hyperparameter level of each design."""
    stability = [f"knn_overlap@{K}", "prediction_disagreement"]
    levels_all: list[dict[str, Any]] = []
    designs = []
    for design in runs.designs():
        members = [r for r in runs.in_design(design) if not r.spec.get("perturb")]
        diverged = [
            r
            for r in runs.in_design(design, include_diverged=True)
            if r.status == "diverged"
        ]
        groups = {k: g for k, g in StudyRuns.groups(members).items() if len(g) >= 2}
        if len(groups) < 2:
            continue
        levels = []
        for key, group in groups.items():
            ids = [r.run_id for r in group]
            summary = level_summary(
                [runs.test_rmse(i) for i in ids],
                {m: runs.matrix(group, m) for m in stability},
                seed=seed,
            )
            levels.append(
                {
                    "label": runs.label(group[0], design),
                    "design": design,
                    "group": key,
                    "factors": {
                        k: v
                        for k, v in group[0].spec["factors"].items()
                        if k not in ("init", "order", "noise", "split", "replicate")
                    },
                    "run_ids": ids,
                    "n_runs": len(ids),
                    "diverged": sum(r.group_key == key for r in diverged),
                    **summary,
                }
            )
        mark_fronts(levels, stability, primary=stability[0])
        designs.append(
            {
                "design": design,
                "levels": [lv["label"] for lv in levels],
                "non_dominated": {
                    m: [lv["label"] for lv in levels if lv["non_dominated_by"][m]]
                    for m in stability
                },
            }
        )
        levels_all += levels
    if not levels_all:
        return None
    return {
        "accuracy": "test_rmse",
        "stability": stability,
        "levels": levels_all,
        "designs": designs,
    }


# -- everything -----------------------------------------------------------------------


def study_sections(
    runs: StudyRuns,
    *,
    claims: str = "none",
    article_examples: bool = False,
    quick: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Return every analysis section this package adds to ``report.json``."""
    out: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        value = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - t0, 2)
        logger.info("analysis %s: %.1f s", name, timings[name])
        return value

    crossed = crossed_groups(runs)
    if crossed:
        main = crossed[0]
        out["attribution"] = timed(
            "attribution", attribution_section, runs, main, seed=seed
        )
        out["attribution"]["designs"] = [
            {
                k: v
                for k, v in attribution_section(runs, c, seed=seed).items()
                if k != "designs"
            }
            for c in crossed[1:]
        ]
        out["dynamics"] = timed("dynamics", dynamics_section, runs, main, seed=seed)
        out["frequency"] = timed("frequency", frequency_section, runs, main, seed=seed)
    tradeoff = timed("tradeoff", tradeoff_section, runs, seed=seed)
    if tradeoff is not None:
        out["tradeoff"] = tradeoff
    if claims == "article":
        from embvar.analysis.evidence import article_claims

        out["claims"] = timed(
            "claims", article_claims, runs, dynamics=out.get("dynamics"), seed=seed
        )
    if article_examples:
        from embvar.analysis.article import article_examples as examples

        out["article_examples"] = timed("article_examples", examples, quick=quick)
    out["analysis_seconds"] = timings
    return out
