"""The audit's conclusions: time ratios, verdict, recipe, and their short forms.

Everything here works on the cell results the audit collected (plain
dicts, as written to ``determinism.json``), so a report can redo or show
them without TensorFlow.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

__all__ = [
    "add_time_ratios",
    "audit_verdict",
    "determinism_summary",
    "factor_costs",
    "print_audit",
    "reproduction_recipe",
]


def determinism_summary(document: dict[str, Any]) -> dict[str, Any]:
    """Return the short form of an audit that ``report.json`` carries.

    The verdict, the recipe, every cell without its per-replicate details,
    and the pitfalls that were found.
    """
    keys = (
        "id",
        "label",
        "reproducible",
        "same_as_baseline",
        "time_ratio",
        "seconds_median",
        "errors",
        "first_difference",
    )
    cells = []
    for c in document["cells"]:
        cell = {k: c.get(k) for k in keys}
        local = c.get("localized")
        if local:
            cell["localized"] = {
                k: local.get(k)
                for k in ("epoch", "first_step", "kinds", "variables", "note")
            }
        cells.append(cell)
    pitfalls = document.get("pitfalls") or {}
    return {
        "target": document["target"]["label"],
        "run_id": document["target"].get("run_id"),
        "created": document["created"],
        "sentences": document["verdict"]["sentences"],
        "reproducible_cells": document["verdict"]["reproducible_cells"],
        "recommended": document["verdict"]["recommended"],
        "gpu": document["gpu"],
        "cells": cells,
        "costs": document.get("costs"),
        "pitfalls_found": pitfalls.get("found", []),
        "pitfalls": [p for p in pitfalls.get("pitfalls", []) if p.get("found")],
        "recipe": (document.get("recipe") or {}).get("code"),
    }


def add_time_ratios(results: list[dict], baseline_id: str) -> None:
    """Set each result's ``seconds_median`` and ``time_ratio`` to the baseline's."""
    base = next(r for r in results if r["id"] == baseline_id)
    base_s = _median(base["seconds"])
    for r in results:
        r["seconds_median"] = _median(r["seconds"])
        ok = base_s and r["seconds_median"] and not r["errors"]
        r["time_ratio"] = r["seconds_median"] / base_s if ok else None


def factor_costs(results: list[dict]) -> dict[str, Any]:
    """Time with a setting over time without, the others equal (geometric mean)."""
    cpu = {
        (r["op_determinism"], r["threads"], r["onednn"]): r
        for r in results
        if r["device"] == "cpu" and r["seconds_median"]
    }
    factors = {
        "op_determinism_on": lambda k: ((True, *k[1:]), (False, *k[1:])),
        "one_thread": lambda k: ((k[0], 1, k[2]), (k[0], None, k[2])),
        "onednn_on": lambda k: ((*k[:2], True), (*k[:2], False)),
    }
    out = {}
    for name, pair in factors.items():
        ratios = []
        for key in cpu:
            on, off = pair(key)
            if key == on and off in cpu:
                ratios.append(cpu[on]["seconds_median"] / cpu[off]["seconds_median"])
        out[name] = {
            "ratio": statistics.geometric_mean(ratios) if ratios else None,
            "pairs": len(ratios),
        }
    return out


def audit_verdict(
    results: list[dict],
    baseline_id: str,
    gpu: dict,
    pitfall_doc: dict | None,
    costs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return which cells were reproducible, the one to recommend, and why.

    The recommended cell is a reproducible one with op determinism on (the
    setting TensorFlow's guarantee rests on) and as few other changes from
    the baseline as possible, the faster first; without one, the fewest
    changes among the reproducible cells.
    """
    base = next(r for r in results if r["id"] == baseline_id)
    good = [r for r in results if r["reproducible"]]
    bad = [r for r in results if r["reproducible"] is False]
    failed = [r for r in results if r["reproducible"] is None]

    def changes(r: dict) -> int:
        keys = ("threads", "onednn", "device")
        return sum(r[k] != base[k] for k in keys)

    pick = sorted(
        good,
        key=lambda r: (not r["op_determinism"], changes(r), r["time_ratio"] or 1e9),
    )
    sentences = []
    n = len(results)
    if good and len(good) == n:
        sentences.append(
            f"All {n} settings gave bitwise-identical runs in separate processes here."
        )
    elif good:
        sentences.append(
            f"{len(good)} of {n} settings gave bitwise-identical runs in separate "
            f"processes here: {'; '.join(r['label'] for r in good)}."
        )
    for r in bad:
        fd = r["first_difference"]
        loc = r.get("localized") or {}
        where = f"epoch {fd['first_epoch']}"
        if loc.get("first_step") is not None:
            where += f", step {loc['first_step']}"
        worst: dict[str, Any] = max(
            fd.get("variables", []),
            key=lambda v: (v["kind"] == "embedding", v.get("max_abs") or 0),
            default={},
        )
        size = (
            f" (largest difference {worst['max_abs']:.3g}, {worst['max_ulp']} ULP, "
            f"in {worst['path']})"
            if worst.get("max_ulp") is not None
            else ""
        )
        sentences.append(f"With {r['label']}, replicates differ from {where}{size}.")
    for r in failed:
        sentences.append(f"With {r['label']}, runs failed: {r['errors'][0]}.")
    same = [r for r in results if r["same_as_baseline"]]
    if n == 1:
        pass
    elif len(same) == n:
        sentences.append("Every setting gave the same bits as the baseline.")
    else:
        others = [r["label"] for r in results if r["same_as_baseline"] is False]
        sentences.append(
            f"These settings change the bits relative to the baseline "
            f"({base['label']}): {'; '.join(others)}."
        )
    words = {
        "op_determinism_on": "op determinism",
        "one_thread": "one intra-op thread instead of all",
        "onednn_on": "oneDNN on instead of off",
    }
    priced = [
        f"{words[k]} {v['ratio']:.2f}x"
        for k, v in (costs or {}).items()
        if v.get("ratio") is not None
    ]
    if priced:
        sentences.append(
            "Training time with a setting over time without, measured "
            "in this audit: " + "; ".join(priced) + "."
        )
    if gpu.get("note"):
        sentences.append(gpu["note"].strip())
    if pitfall_doc and pitfall_doc["found"]:
        sentences.append("Pitfalls found: " + ", ".join(pitfall_doc["found"]) + ".")
    return {
        "reproducible_cells": [r["id"] for r in good],
        "non_reproducible_cells": [r["id"] for r in bad],
        "failed_cells": [r["id"] for r in failed],
        "recommended": pick[0]["id"] if pick else None,
        "sentences": sentences,
    }


def reproduction_recipe(cell: dict[str, Any], builtin: bool) -> dict[str, Any]:
    """Return the lines of code that set a cell's settings in a user's script.

    ``cell`` is a cell's JSON (``Cell.to_json``); ``builtin`` says the audited
    run was embvar's own runner.
    """
    lines = ["import os"]
    if cell["onednn"] is not None:
        flag = int(cell["onednn"])
        lines.append(
            f'os.environ["TF_ENABLE_ONEDNN_OPTS"] = "{flag}"'
            "  # before TensorFlow is imported"
        )
    if cell["device"] == "cpu":
        lines.append('os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the CPU, as audited')
    lines += ["", "import keras", "import tensorflow as tf", ""]
    if cell["threads"]:
        lines.append(
            f"tf.config.threading.set_intra_op_parallelism_threads({cell['threads']})"
            "  # before any op runs"
        )
    if cell["op_determinism"]:
        lines.append("tf.config.experimental.enable_op_determinism()")
    lines += [
        "",
        "def run(seed):",
        "    keras.backend.clear_session()",
        "    keras.utils.set_random_seed(seed)  # before the model is built",
        "    model = build_model()  # a fresh model for every run",
        "    ...  # fit(..., shuffle=False) on an order drawn from",
        "    #       numpy.random.default_rng(seed), or seed your shuffle",
    ]
    note = (
        "Identical bits hold for the same TensorFlow, Keras and NumPy versions "
        "on the same kind of CPU with these settings; compare manifests "
        "(embvar.manifest.diff_manifests) when another machine disagrees."
    )
    if builtin:
        note += (
            " embvar's own runner already seeds each source in this order "
            "(training/fit.py)."
        )
    return {
        "cell": cell["id"],
        "label": cell["label"],
        "code": "\n".join(lines),
        "note": note,
    }


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v]
    return statistics.median(values) if values else None


def print_audit(
    document: dict[str, Any],
    console: Any,
    path: Path | None = None,
    html: Path | None = None,
) -> None:
    """Print an audit's cells, verdict, recipe and pitfalls on a rich console."""
    from rich.table import Table

    table = Table(title=f"Determinism audit: {document['target']['label']}")
    for column in (
        "setting",
        "replicates identical",
        "same bits as baseline",
        "time ratio",
    ):
        table.add_column(column)
    words = {True: "yes", False: "NO", None: "failed"}
    for c in document["cells"]:
        where = ""
        fd = c.get("first_difference")
        if fd:
            loc = c.get("localized") or {}
            where = f" (from epoch {fd['first_epoch']}"
            where += (
                f", step {loc['first_step']})"
                if loc.get("first_step") is not None
                else ")"
            )
        ratio = f"{c['time_ratio']:.2f}" if c.get("time_ratio") else "-"
        table.add_row(
            c["label"],
            words[c["reproducible"]] + where,
            "-" if c["vs_baseline"] is None else words[c["same_as_baseline"]],
            ratio,
        )
    console.print(table)
    for sentence in document["verdict"]["sentences"]:
        console.print(sentence, markup=False)
    pits = document.get("pitfalls") or {}
    for p in pits.get("pitfalls", []):
        if p["found"]:
            where = f" (at {p['where'][0]})" if p.get("where") else ""
            console.print(
                f"pitfall: {p['title']}{where}: {p['cause']} Fix: {p['fix']}",
                markup=False,
            )
    if pits.get("unexplained"):
        console.print(pits["unexplained"], markup=False)
    recipe = document.get("recipe")
    if recipe:
        console.print(f"\nTo reproduce ({recipe['label']}):", markup=False)
        console.print(recipe["code"], markup=False, highlight=False)
    if path is not None:
        console.print(f"\nwritten: {path}", markup=False)
    if html is not None:
        console.print(f"report:  {html}", markup=False)
