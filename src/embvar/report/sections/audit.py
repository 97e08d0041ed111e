"""Sections of the determinism audit and of ``embvar compare``: the audit's
results, the environment manifest, and the files compared.
"""

from __future__ import annotations

from typing import Any

from embvar.report.sections._common import Section, _first, section

__all__ = ["determinism", "manifest", "compare", "audit_document"]


# -- determinism and environment ----------------------------------------------------


def audit_document(report: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The determinism audit in a report: its ``determinism`` entry, or the
    report itself when it is an audit's ``determinism.json``."""
    d = report.get("determinism")
    if isinstance(d, dict):
        return d, "determinism"
    if isinstance(report.get("cells"), list) and "verdict" in report:
        return report, ""
    return None, "determinism"


def _sentences(d: dict[str, Any]) -> list[str]:
    verdict = d.get("verdict")
    if isinstance(verdict, dict):
        return [str(x) for x in verdict.get("sentences") or []]
    if isinstance(verdict, str):
        return [verdict]
    return [str(x) for x in d.get("sentences") or []]


def _difference(cell: dict[str, Any]) -> dict[str, Any] | None:
    """Where a cell's replicates first parted: epoch, step, the worst variable."""
    first = cell.get("first_difference")
    if not isinstance(first, dict):
        return None
    local = cell.get("localized") if isinstance(cell.get("localized"), dict) else {}
    variables = local.get("variables") or first.get("variables") or []
    worst = max(
        (v for v in variables if isinstance(v, dict)),
        key=lambda v: v.get("max_ulp") or 0,
        default=None,
    )
    return {
        "epoch": first.get("first_epoch", first.get("epoch")),
        "step": local.get("first_step", first.get("step")),
        "n_variables": len(variables),
        "kinds": first.get("kinds") or [],
        "worst": worst,
        "note": local.get("note"),
    }


@section("determinism", "determinism")
def determinism(report: dict[str, Any]) -> Section | None:
    """The determinism audit: which settings made repeated runs bitwise identical.

    Reads ``determinism`` (the short form :func:`embvar.determinism.audit.
    determinism_summary` puts in a study's report), or a whole
    ``determinism.json``: ``{"target": {"label", "run_id"} | str, "verdict":
    {"sentences", "recommended", ...}, "gpu": {"present", "note"}, "cells":
    [{"id", "label", "reproducible", "same_as_baseline", "time_ratio",
    "first_difference": {"first_epoch", "variables": [{"path", "kind",
    "max_abs", "max_ulp"}]}, "localized": {"first_step", ...}}], "recipe":
    {"code"} | str, "pitfalls": {"pitfalls": [{"name", "title", "found",
    "cause", "fix", "evidence"}]} | [...], "pitfalls_found": [name]}``.
    """
    d, path = audit_document(report)
    if d is None:
        return None
    # An audit read from its own determinism.json (embvar report DIR) has its
    # numbers there, at the top level.
    json_file = d.get("source_file")
    prefix = f"{path}." if path and not json_file else ""
    cells = [c for c in d.get("cells") or [] if isinstance(c, dict)]
    rows = []
    for c in cells:
        rows.append(
            {
                "label": c.get("label") or c.get("id") or "",
                "reproducible": c.get("reproducible", c.get("identical")),
                "same_as_baseline": c.get("same_as_baseline"),
                "time_ratio": c.get("time_ratio"),
                "seconds": c.get("seconds_median"),
                "difference": _difference(c),
                "errors": c.get("errors") or [],
                "recommended": c.get("id") is not None
                and c.get("id")
                == (
                    (d.get("verdict") or {}).get("recommended")
                    if isinstance(d.get("verdict"), dict)
                    else d.get("recommended")
                ),
            }
        )
    recipe = d.get("recipe")
    if isinstance(recipe, dict):
        recipe = recipe.get("code")
    pitfalls = d.get("pitfalls")
    if isinstance(pitfalls, dict):
        pitfalls = pitfalls.get("pitfalls")
    pitfalls = [p for p in pitfalls or [] if isinstance(p, dict)]
    found_names = d.get("pitfalls_found") or []
    target = d.get("target")
    if isinstance(target, dict):
        target = target.get("label") or target.get("run_id")
    run_id = d.get("run_id")
    if isinstance(d.get("target"), dict):
        run_id = run_id or d["target"].get("run_id")
    gpu = d.get("gpu") if isinstance(d.get("gpu"), dict) else {}
    # A whole audit document has its verdict in the summary just above.
    sentences = _sentences(d) if path else []
    if not (rows or sentences or pitfalls):
        return None
    return Section(
        "determinism",
        "Reproducibility: the determinism audit",
        lead="The same run trained several times, each in a fresh process, under "
        "each combination of settings, and every variable (embeddings, other "
        "weights, optimizer state) compared bit for bit after every epoch.",
        data={
            "sentences": sentences,
            "rows": rows,
            "recipe": recipe,
            "pitfalls": pitfalls,
            "found_names": found_names,
            "target": target,
            "run_id": run_id,
            "gpu_note": gpu.get("note") or "",
            "json_file": json_file,
            "prefix": prefix,
        },
    )


def _flatten(obj: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif (
        isinstance(obj, list) and obj and all(isinstance(v, (dict, list)) for v in obj)
    ):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = (
            ", ".join(map(str, obj))
            if isinstance(obj, list)
            else ("–" if obj is None else str(obj))
        )
    return out


@section("manifest", "manifest")
def manifest(report: dict[str, Any]) -> Section | None:
    """The environment: versions, CPU, threads, environment variables, devices.

    Reads ``manifest`` (or ``determinism.manifest``): a dict, nested dicts
    allowed, or a list of such dicts (one per machine or run), shown side by
    side with the differing rows marked.
    """
    value, path = _first(report, "manifest", "determinism.manifest")
    if value is None:
        return None
    manifests = value if isinstance(value, list) else [value]
    # The process section (pid, time) differs by construction; leave it out.
    flat = [
        _flatten({k: v for k, v in m.items() if k != "process"})
        for m in manifests
        if isinstance(m, dict)
    ]
    if not flat:
        return None
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    rows = [
        {
            "key": k,
            "cells": [f.get(k, "–") for f in flat],
            "differs": len({f.get(k) for f in flat}) > 1,
        }
        for k in keys
    ]
    return Section(
        "manifest",
        "Environment",
        lead="What the runs ran on. A result that differs between two machines is "
        "explained by what differs between their manifests.",
        data={"rows": rows, "n": len(flat), "path": path},
    )


# -- compare (embedding files) ----------------------------------------------------


@section("compare", "compare")
def compare(report: dict[str, Any]) -> Section | None:
    """The embedding files an ``embvar compare`` report was made from.

    Reads ``compare``: ``{"files": [{"path", "format", "n_rows", "dim",
    "name"}], "coverage": {"n_common": int, "per_file": [share, ...]}}``.
    """
    c = report.get("compare")
    if not isinstance(c, dict):
        return None
    files = c.get("files") or c.get("inputs") or []
    if not files:
        return None
    return Section(
        "compare",
        "The embedding files compared",
        lead="Rows of different files are matched on their entity ids; only the "
        "entities every file has are compared.",
        data={"files": files, "coverage": c.get("coverage") or {}},
    )
