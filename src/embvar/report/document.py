"""``report.json``: every figure of a study, with the runs behind it.

The JSON document is the source of truth; the terminal summary and the HTML
report are drawn from it. Non-finite numbers are written as ``null`` so the
file is strict JSON.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from embvar import __version__
from embvar.config import DataSpec, RunSpec, Study
from embvar.data.prepared import PreparedData, prepare_data
from embvar.store import Store, write_text_atomic

__all__ = ["build_report", "write_report", "read_report", "to_json_safe", "REPORT_NAME"]

REPORT_NAME = "report.json"


def to_json_safe(obj: Any) -> Any:
    """Return ``obj`` with NumPy scalars made plain and NaN/inf made None."""
    if isinstance(obj, dict):
        return {str(k): to_json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _data_loader():
    cache: dict[tuple[str, int], PreparedData] = {}

    def data_for(spec: dict[str, Any]) -> PreparedData:
        key = (json.dumps(spec["data"], sort_keys=True), spec["seeds"]["split"])
        if key not in cache:
            cache[key] = prepare_data(DataSpec(**spec["data"]), spec["seeds"]["split"])
        return cache[key]

    return data_for


def runs_section(specs: list[RunSpec], planned: list[Any]) -> dict[str, Any]:
    """The report's ``runs``: counts, diverged and failed runs, one row per run."""
    return {
        "planned": len(specs),
        "done": sum(r.status == "done" for r in planned),
        "diverged": [
            {
                "run_id": r.run_id,
                "epoch": r.diverged_epoch,
                "step": r.diverged_step,
                "factors": r.spec["factors"],
            }
            for r in planned
            if r.status == "diverged"
        ],
        "failed": [
            {"run_id": r.run_id, "error": r.error}
            for r in planned
            if r.status == "failed"
        ],
        "unfinished": [r.run_id for r in planned if r.status in ("pending", "running")],
        "table": [
            {
                "run_id": r.run_id,
                "status": r.status,
                "factors": r.spec["factors"],
                "designs": r.spec["designs"],
                "seeds": r.spec["seeds"],
                "seconds": r.seconds,
            }
            for r in planned
        ],
    }


def build_report(store: Store, study: Study, specs: list[RunSpec]) -> dict[str, Any]:
    """Return the report document of a study directory."""
    if any(s.model.kind != "factorization" for s in specs):
        # Word models and users' builders: tables analysed by name.
        from embvar.analysis.families import build_family_report

        return to_json_safe(build_family_report(store, study, specs))
    from embvar.analysis.groups import summarize
    from embvar.report.summary import summary_sentences

    data_for = _data_loader()
    records = {r.run_id: r for r in store.runs()}
    planned = [records[s.run_id] for s in specs if s.run_id in records]
    first = data_for(planned[0].spec) if planned else None
    report: dict[str, Any] = {
        "embvar_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "study": {
            "name": study.name,
            "description": study.description,
            "root_seed": study.root_seed,
            "quick": bool(store.get_meta("quick", False)),
            "designs": [d.model_dump() for d in study.design],
        },
        "directory": str(store.root),
        "data": None
        if first is None
        else {
            "name": first.interactions.name,
            "n_users": first.interactions.n_users,
            "n_items": first.interactions.n_items,
            "n_train": int(len(first.split.train)),
            "n_test": int(len(first.split.test)),
        },
        "runs": runs_section(specs, planned),
        "groups": summarize(store, data_for, run_ids={s.run_id for s in specs}),
    }
    from embvar.report.entities import report_entities

    report["entities"] = report_entities(store, report["groups"], data_for)
    from embvar.analysis.runs import StudyRuns
    from embvar.analysis.sections import study_sections

    report.update(
        study_sections(
            StudyRuns(store, data_for),
            claims=study.analysis.claims,
            article_examples=study.analysis.article_examples,
            quick=report["study"]["quick"],
            seed=study.root_seed % 2**32,
        )
    )
    if (store.root / "determinism.json").is_file():
        # The determinism audit of this study (`embvar determinism`), in short.
        from embvar.determinism.audit import determinism_summary, read_determinism

        audit = read_determinism(store.root)
        if audit is not None:
            report["determinism"] = determinism_summary(audit)
    report["summary"] = summary_sentences(report)
    return to_json_safe(report)


def report_key(store: Store, study: Study, specs: list[RunSpec]) -> str:
    """Return a digest of everything a study's report is computed from.

    The study's settings, every planned run's status and attempts, the
    study's determinism audit where it has one, and the source of the code
    that analyses and draws (``analysis/``, ``metrics/``, ``report/``): the
    same key means the same report.
    """
    import hashlib

    h = hashlib.sha256()
    h.update(json.dumps(study.model_dump(mode="json"), sort_keys=True).encode())
    records = {r.run_id: r for r in store.runs()}
    for spec in specs:
        r = records.get(spec.run_id)
        state = None if r is None else [r.status, r.attempts, r.diverged_epoch]
        h.update(json.dumps([spec.run_id, state]).encode())
    package = Path(__file__).resolve().parents[1]
    for folder in ("analysis", "metrics", "report"):
        for code in sorted((package / folder).rglob("*")):
            if code.suffix in (".py", ".j2", ".css") and code.is_file():
                h.update(code.relative_to(package).as_posix().encode())
                h.update(code.read_bytes())
    audit = store.root / "determinism.json"  # the report summarises it
    if audit.is_file():
        h.update(audit.read_bytes())
    h.update(__version__.encode())
    return h.hexdigest()


def current_report(store: Store, key: str) -> tuple[dict, Path] | None:
    """Return the study's written report if it was written under ``key``
    (:func:`report_key`): nothing it depends on has changed since."""
    from embvar.errors import EmbvarError
    from embvar.report.html import HTML_NAME

    if store.get_meta("report_key") != key or not (store.root / HTML_NAME).is_file():
        return None
    try:
        return read_report(store.root), store.root / REPORT_NAME
    except EmbvarError:
        return None


def write_report(
    store: Store, study: Study, specs: list[RunSpec], key: str | None = None
) -> tuple[dict, Path]:
    """Build the report, write it atomically to ``report.json`` and ``report.html``.

    ``key`` is the :func:`report_key` recorded with it, taken before the
    analysis (a run finishing meanwhile must not be counted as analysed).
    """
    key = key if key is not None else report_key(store, study, specs)
    report = build_report(store, study, specs)
    path = store.root / REPORT_NAME
    # A unique temporary name: two processes finishing one study may both write.
    write_text_atomic(path, json.dumps(report, indent=1, allow_nan=False))
    from embvar.report.html import HTML_NAME, write_html

    write_html(report, store.root / HTML_NAME)
    store.set_meta("report_key", key)
    return report, path


def read_report(directory: str | Path) -> dict[str, Any]:
    """Return the ``report.json`` of a study directory."""
    from embvar.errors import StoreError

    path = Path(directory) / REPORT_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"cannot read {str(path)!r}: {exc}; run the study first."
        ) from exc
    if not isinstance(doc, dict):
        raise StoreError(
            f"{str(path)!r} must hold a JSON object; got {type(doc).__name__}; "
            "run the study again to rewrite it."
        )
    return doc
