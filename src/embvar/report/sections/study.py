"""Sections about the study itself: summary, the three levels, the least
stable entities, and the methods.
"""

from __future__ import annotations

import re
from typing import Any

from embvar.report import figures as fg
from embvar.report.methods import LEVELS, METRICS, metric_info, split_key
from embvar.report.sections._common import (
    IDENTICAL,
    FigureBlock,
    Section,
    _first,
    _main_group_index,
    _metric_keys,
    fmt_pm,
    group_labels,
    section,
)

__all__ = ["summary", "levels", "entities", "methods"]


# -- summary ----------------------------------------------------------------------


def _claims(report: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    claims, path = _first(report, "claims.claims", "claims", "attribution.claims")
    if isinstance(claims, dict):
        claims = [
            {"id": k, **v} if isinstance(v, dict) else {"id": k, "verdict": v}
            for k, v in claims.items()
        ]
    out = []
    for c in claims or []:
        if isinstance(c, dict):
            metric = c.get("metric")
            out.append(
                {**c, "metric_name": metric_info(str(metric)).name if metric else None}
            )
    return out, path


@section("summary", "summary")
def summary(report: dict[str, Any]) -> Section | None:
    """The answer first: generated sentences, three headline numbers, claims.

    Reads ``summary`` (list of str), the main group of ``groups``, ``runs``
    (for failed / diverged / unfinished runs) and ``claims``: a list of
    ``{"id": "C1", "claim": str, "verdict": "supported" | "contradicted" |
    "inconclusive", "metric": str, "effect": float, "interval": [lo, hi],
    "detail": str}`` (or ``{"claims": [...]}``, or a dict by id).
    """
    sentences = report.get("summary")
    if not sentences:
        from embvar.report.summary import summary_sentences

        try:
            sentences = summary_sentences(report)
        except (KeyError, TypeError, ValueError):
            sentences = []
    cards = []
    how = None
    compared = report.get("kind") == "compare"
    gi = _main_group_index(report)
    if gi is not None:
        g = report["groups"][gi]
        # The overlaps between runs reseeded in every source (what retraining
        # gives), where the group has such pairs; else over all its pairs.
        reseeded = g.get("reseeded") if isinstance(g.get("reseeded"), dict) else {}
        use_reseeded = bool(reseeded.get("n_pairs"))
        another = "another run with new seeds" if use_reseeded else "another run"
        item = "an item"
        if compared:
            # ``embvar compare``: tables of files (or of recorded runs), not a
            # study's seed replicates.
            another, item, how = _compared_words(g)
        for level in ("geometry", "function"):
            for key in _metric_keys(g, level):
                base, k = split_key(key)
                stat = g[level][key]
                path = f"groups[{gi}].{level}.{key}.mean"
                if use_reseeded and (reseeded.get(level) or {}).get(key):
                    stat = reseeded[level][key]
                    path = f"groups[{gi}].reseeded.{level}.{key}.mean"
                if base == "knn_overlap" and stat["mean"] is not None:
                    cards.append(
                        {
                            "value": f"{100 * stat['mean']:.0f}%",
                            "text": f"of {item}'s {k} nearest neighbours are the "
                            f"same in {another}",
                            "path": path,
                        }
                    )
                elif base == "topk_overlap" and stat["mean"] is not None:
                    cards.append(
                        {
                            "value": f"{100 * stat['mean']:.0f}%",
                            "text": f"of a user's top-{k} recommendations are the "
                            f"same in {another}",
                            "path": path,
                        }
                    )
                elif base == "test_rmse" and stat.get("sd") is not None:
                    cards.append(
                        {
                            "value": f"{stat['mean']:.4f} ± {stat['sd']:.2g}",
                            "text": f"test RMSE, mean ± sd over the {stat.get('n')} "
                            "runs: how much accuracy moves",
                            "path": f"groups[{gi}].{level}.{key}",
                        }
                    )
    runs = report.get("runs") or {}
    problems = []
    for d in runs.get("diverged") or []:
        problems.append(
            f"run {d.get('run_id')} diverged (non-finite loss) at epoch "
            f"{d.get('epoch')}, step {d.get('step')}; it is left out of "
            "every figure."
        )
    for d in runs.get("failed") or []:
        problems.append(f"run {d.get('run_id')} failed: {d.get('error')}")
    if runs.get("unfinished"):
        problems.append(
            f"{len(runs['unfinished'])} planned runs have not finished; "
            "run the study again to train them."
        )
    claims, claims_path = _claims(report)
    rules = (
        (report.get("claims") or {}).get("rules")
        if isinstance(report.get("claims"), dict)
        else None
    )
    if not (sentences or cards or claims or problems):
        return None
    return Section(
        "summary",
        "Summary",
        data={
            "sentences": sentences,
            "cards": cards[:3],
            "claims": claims,
            "claims_path": claims_path,
            "rules": rules,
            "problems": problems,
            "how": how,
        },
    )


def _compared_words(g: dict[str, Any]) -> tuple[str, str, str]:
    """What the headline cards of an ``embvar compare`` report measured.

    Returns the words for "the same in ..." and "of ...'s neighbours", and
    the sentence under the cards, for the report's main group ``g``.
    """
    n = g.get("n_runs") or len(g.get("run_ids") or [])
    names = [str(r) for r in g.get("run_ids") or []]
    table = str(g.get("table") or "")
    noun = (
        "an item"
        if table.startswith("item")
        else "a user"
        if table.startswith("user")
        else "an entity"
    )
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if n > 4 else "")
    label = str(g.get("label") or "")
    if label in ("", "files"):
        what, subject = "table", f"the {n} tables compared ({shown})"
    else:  # runs of a store, grouped by their settings
        what, subject = "run", f"the {n} runs of group {label} ({shown}), table {table}"
    other = f"the other {what}" if n == 2 else f"another of the {what}s"
    pairs = "" if n == 2 else ", averaged over every pair"
    shared = g.get("n_entities")
    rows = f", on the {shared} entities they all share" if shared else ""
    how = f"Measured on {subject}{pairs}{rows}. Identical {what}s would show 100%."
    return other, noun, how


# -- the three levels -------------------------------------------------------------


def _identical_pairs(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Pairs of distinct runs with the same tables, and the seeds they differ in."""
    seeds = {
        r["run_id"]: r.get("seeds", {})
        for r in (report.get("runs") or {}).get("table", [])
    }
    found = []
    for g in report.get("groups") or []:
        for p in g.get("pairs") or []:
            proc = p.get("procrustes")
            if proc is not None and proc < IDENTICAL:
                a, b = p["runs"]
                sa, sb = seeds.get(a, {}), seeds.get(b, {})
                differ = sorted(k for k in set(sa) | set(sb) if sa.get(k) != sb.get(k))
                found.append(
                    {"group": g.get("label", ""), "runs": [a, b], "differ": differ}
                )
    return found


_LEVEL_WORDS = {
    "parameters": "the raw coordinates (parameters)",
    "geometry": "the shape of the space (geometry)",
    "function": "what the model predicts (function)",
}


def _levels_reading(present: list[str]) -> str:
    """How Figure 1's panels run, naming only the levels it draws."""
    words = [_LEVEL_WORDS[lv] for lv in LEVELS if lv in present and lv in _LEVEL_WORDS]
    if not words:
        return ""
    if len(words) == 1:
        text = f"All panels measure {words[0]}."
    elif len(words) == 2:
        text = f"Panels run from {words[0]} to {words[1]}."
    else:
        text = f"Panels run from {words[0]} through {words[1]} to {words[2]}."
    missing = [lv for lv in LEVELS if lv not in present]
    if missing:
        text += f" Not measured here: {', '.join(missing)}."
    return text


def _cell(stat: Any, key: str) -> Any:
    """A summary with its ``mean ± sd`` text (4 decimals for RMSE, else 3)."""
    if not isinstance(stat, dict):
        return stat
    return {**stat, "pm_text": fmt_pm(stat, 4 if key == "test_rmse" else 3)}


@section("levels", "groups")
def levels(report: dict[str, Any]) -> Section | None:
    """Parameters, geometry and function side by side, per group of runs.

    Reads ``groups``: each ``{"label", "n_runs", "run_ids", "parameters",
    "geometry", "function", "pairs"}`` where each level maps a metric name
    to ``{"n", "mean", "sd", "min", "max"}`` (``test_rmse`` also has
    ``values``, one per run) and ``pairs`` holds ``{"runs": [a, b],
    <metric>: value}`` per pair of runs.
    """
    groups = report.get("groups") or []
    if not groups:
        return None
    columns: dict[str, list[str]] = {}
    for level in LEVELS:
        keys: list[str] = []
        for g in groups:
            keys += [k for k in _metric_keys(g, level) if k not in keys]
        if keys:
            columns[level] = keys
    rows = []
    labels = group_labels(groups)
    for gi, g in enumerate(groups):
        cells = {
            level: [_cell((g.get(level) or {}).get(k), k) for k in keys]
            for level, keys in columns.items()
        }
        rows.append(
            {
                "index": gi,
                "label": labels[gi],
                "n_runs": g.get("n_runs"),
                "cells": cells,
                "hyper": g.get("hyperparameters") or {},
            }
        )
    panels = []
    paths = []
    for level, keys in columns.items():
        for key in keys:
            info = metric_info(key, level)  # type: ignore[arg-type]
            values = []
            for g in groups:
                stat = (g.get(level) or {}).get(key) or {}
                if stat.get("values"):
                    values.append(stat["values"])
                elif any(key in p for p in g.get("pairs") or []):
                    values.append([p.get(key) for p in g["pairs"]])
                else:
                    values.append([stat.get("mean")])
            xlim = (
                (info.low, info.high)
                if info.low is not None and info.high is not None
                else None
            )
            panels.append(
                fg.StripPanel(f"{level.upper()}\n{info.name}", info.alike, values, xlim)
            )
            if key == "test_rmse":
                paths.append(f"groups[*].{level}.{key}.values")
            else:
                paths.append(f"groups[*].pairs[*].{key}")
    figs = []
    if panels:
        svg = fg.strip_chart(panels, [r["label"] for r in rows])
        figs.append(
            FigureBlock(
                svg,
                "Dot plot: one row per group of runs, one panel per metric.",
                "How far apart runs are, per group of seed replicates and per "
                "metric. Each dot is one pair of runs (for test RMSE, one run); the "
                f"black tick is the mean. {_levels_reading(list(columns))}",
                paths,
            )
        )
    info = {
        level: [metric_info(k, level) for k in keys]  # type: ignore[arg-type]
        for level, keys in columns.items()
    }
    return Section(
        "levels",
        "How much the runs differ, at three levels",
        lead="Two runs can differ in every coordinate and still be the same space "
        "turned around, or look alike and still recommend different things. "
        "So each group of runs that differ only in their seeds is measured "
        "three ways.",
        data={
            "columns": columns,
            "info": info,
            "rows": rows,
            "levels": {k: v for k, v in LEVELS.items() if k in columns},
            "identical": _identical_pairs(report),
            "missing": [lv for lv in LEVELS if lv not in columns],
        },
        figures=figs,
    )


# -- least stable entities -------------------------------------------------------


def _mark_shared(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of an entity row whose neighbours say if the other run has them too.

    Rows from :func:`embvar.report.entities.least_stable_entities` carry the
    flag (against all k neighbours); otherwise it is worked out from the
    neighbours listed.
    """
    a, b = row.get("neighbors_a") or [], row.get("neighbors_b") or []
    rows_a, rows_b = {n.get("row") for n in a}, {n.get("row") for n in b}
    return {
        **row,
        "neighbors_a": [
            {**n, "shared": n.get("shared", n.get("row") in rows_b)} for n in a
        ],
        "neighbors_b": [
            {**n, "shared": n.get("shared", n.get("row") in rows_a)} for n in b
        ],
    }


@section("entities", "entities")
def entities(report: dict[str, Any]) -> Section | None:
    """The least stable entities, with labels, frequencies and neighbours.

    Reads ``entities``, as :func:`embvar.report.entities.least_stable_entities`
    writes it for a study (items of the largest group) and ``embvar compare``
    for its tables: ``{"group", "table", "k", "n_entities", "n_pairs",
    "runs": [a, b], "dropped", "frequent_threshold", "n_frequent",
    "mean_overlap", "median_overlap", "share_zero", "histogram",
    "least_stable", "least_stable_frequent", "most_stable"}``.
    """
    e = report.get("entities")
    if not isinstance(e, dict) or not e.get("least_stable"):
        return None
    table = str(e.get("table") or "")
    noun = (
        "item"
        if table.startswith("item")
        else "user"
        if table.startswith("user")
        else "entity"
    )
    nouns = "entities" if noun == "entity" else f"{noun}s"
    figs = []
    hist = e.get("histogram") or {}
    if hist.get("edges") and hist.get("counts"):
        note = f"{100 * e.get('share_zero', 0):.0f}% keep none"
        if e.get("median_overlap") is not None:
            note = f"median {100 * e['median_overlap']:.0f}%, " + note
        figs.append(
            FigureBlock(
                fg.histogram_chart(
                    hist["edges"],
                    hist["counts"],
                    xlabel=f"k-NN overlap@{e.get('k')} of each {noun}, mean over "
                    f"{e.get('n_pairs')} pairs of runs (1 = same neighbours)",
                    ylabel=nouns,
                    note=note,
                ),
                f"Histogram of the {nouns}' neighbour stability.",
                f"How stable each {noun}'s neighbourhood is over the "
                f"{e.get('n_pairs')} pairs of runs of group {e.get('group')!s}: the "
                "share of its "
                f"{e.get('k')} nearest neighbours (cosine) that two runs have in "
                "common, averaged over the pairs.",
                ["entities.histogram"],
            )
        )
    tables = {}
    for key in ("least_stable", "least_stable_frequent", "most_stable"):
        tables[key] = [_mark_shared(row) for row in e.get(key) or []]
    # What the two runs whose neighbours are shown differ in.
    runs = {r.get("run_id"): r for r in (report.get("runs") or {}).get("table") or []}
    shown = []
    for run_id in (e.get("runs") or [])[:2]:
        factors = (runs.get(run_id) or {}).get("factors") or {}
        shown.append(
            {"id": run_id, "factors": ", ".join(f"{k} {v}" for k, v in factors.items())}
        )
    has_freq = any(r.get("frequency") is not None for r in e.get("least_stable") or [])
    return Section(
        "entities",
        f"Which {nouns} are least stable",
        lead=f"Each {noun}'s stability is the share of its nearest neighbours that "
        "two runs have in common, averaged over every pair of runs.",
        data={
            "e": e,
            "tables": tables,
            "shown": shown,
            "noun": noun,
            "nouns": nouns,
            "has_freq": has_freq,
            "freq_word": "training ratings"
            if noun in ("item", "user")
            else "occurrences in training",
        },
        figures=figs,
    )


# -- methods --------------------------------------------------------------------


def _used_metrics(report: dict[str, Any]) -> list[Any]:
    text = repr({k: v for k, v in report.items() if k not in ("runs", "summary")})
    used = []
    for key, info in METRICS.items():
        if re.search(rf"['\"]{re.escape(key)}(@\d+)?['\"]", text):
            used.append(info)
    return used


# What each source's seed drives; the Seeds paragraph lists those the study has.
_SEED_ROLES = {
    "init": "the initial values (set just before the model is built)",
    "order": "the per-epoch shuffle of the training data (the runner's own generator)",
    "noise": "dropout and negative sampling (the global seed, reset after the build)",
    "split": "the train/test split",
    "perturb": "moves one initial weight by one unit in the last place, as a control",
}


@section("methods", "study")
def methods(report: dict[str, Any]) -> Section | None:
    """How the numbers were made: metrics, design, seeds, every run.

    Reads ``study`` (``designs``, ``root_seed``), ``data``, ``runs.table``
    and every metric name that appears in the report.
    """
    study = report.get("study") or {}
    runs = (report.get("runs") or {}).get("table") or []
    used = _used_metrics(report)
    if not (study or runs or used):
        return None
    seed_names: list[str] = []
    for r in runs:
        for k in r.get("seeds") or {}:
            if k not in seed_names:
                seed_names.append(k)
    factor_names: list[str] = []
    for r in runs:
        for k in r.get("factors") or {}:
            if k not in factor_names:
                factor_names.append(k)
    designs = study.get("designs") if isinstance(study.get("designs"), list) else []
    perturbed = (
        "perturb" in seed_names
        or "perturb" in factor_names
        or any(
            "perturb" in (d.get("factors") or {})
            for d in designs
            if isinstance(d, dict)
        )
        or bool((report.get("attribution") or {}).get("perturbation"))
    )
    seed_roles = [
        (name, _SEED_ROLES[name])
        for name in _SEED_ROLES
        if name in seed_names or (name == "perturb" and perturbed)
    ]
    # Runs trained together as one replica group are each given the group's
    # time divided by its size: equal seconds, to the last bit, give them away.
    seconds = [r.get("seconds") for r in runs if isinstance(r.get("seconds"), float)]
    shared_seconds = len(seconds) != len(set(seconds))
    return Section(
        "methods",
        "Methods",
        data={
            "shared_seconds": shared_seconds,
            "seed_roles": seed_roles,
            "metrics": used,
            "study": study,
            "data": report.get("data"),
            "runs": runs,
            "seed_names": seed_names,
            "factor_names": factor_names,
            "levels": LEVELS,
        },
    )
