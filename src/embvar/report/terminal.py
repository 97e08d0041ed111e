"""The terminal summary of a report: a rich table and the generated sentences.

Every text that comes from a study, a data set or a file name (labels,
titles, factor values) is printed as plain text, never as rich markup.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["print_summary", "print_runs", "summary_json"]


def _fmt(stat: dict[str, Any] | None, digits: int = 3) -> str:
    if not isinstance(stat, dict) or not all(
        isinstance(stat.get(k), int | float) for k in ("mean", "sd")
    ):
        return "-"
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a report list; anything else (an edited report) is skipped."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _sentences(report: dict[str, Any]) -> list[str]:
    value = report.get("summary")
    return [str(s) for s in value] if isinstance(value, list) else []


def print_summary(
    report: dict[str, Any],
    console: Console,
    path: str | None = None,
    html: str | None = None,
) -> None:
    """Print the groups table and the summary sentences of a report."""
    from embvar.report.sections import group_labels

    groups = _dicts(report.get("groups"))
    if groups:
        study = report.get("study")
        name = (
            (study.get("name") if isinstance(study, dict) else None)
            or report.get("title")
            or "report"
        )
        table = Table(title=Text(f"{name}: variation between seed replicates"))
        for col in (
            "group",
            "runs",
            "test RMSE",
            "Procrustes (items)",
            "kNN overlap@10",
            "top-10 overlap",
        ):
            table.add_column(col, justify="left" if col == "group" else "right")
        for g, label in zip(groups, group_labels(groups), strict=False):
            geo, fun = (
                v if isinstance(v, dict) else {}
                for v in (g.get("geometry"), g.get("function"))
            )
            knn = next((v for k, v in geo.items() if k.startswith("knn")), None)
            top = next((v for k, v in fun.items() if k.startswith("topk")), None)
            table.add_row(
                Text(str(label)),
                str(g.get("n_runs", "")),
                _fmt(fun.get("test_rmse"), 4),
                _fmt(geo.get("procrustes")),
                _fmt(knn),
                _fmt(top),
            )
        console.print(table)
    for sentence in _sentences(report):
        console.print(sentence, markup=False)
    if path:
        where = f"{path} and {html}" if html else path
        console.print(f"Report written to {where}", markup=False)


def summary_json(
    report: dict[str, Any], path: str | None = None, html: str | None = None
) -> dict[str, Any]:
    """The machine-readable summary ``--json`` prints.

    Returns
    -------
    dict
        ``summary`` (the sentences), ``groups`` (without their per-pair
        values), the ``claims`` and the ``determinism`` verdict (its
        sentences) where the report has them, the least stable entities'
        labels, and the paths of ``report.json`` and ``report.html``.
    """
    out: dict[str, Any] = {
        "summary": _sentences(report),
        "groups": [
            {k: v for k, v in g.items() if k != "pairs"}
            for g in _dicts(report.get("groups"))
        ],
    }
    if report.get("claims") is not None:
        out["claims"] = report["claims"]
    from embvar.report.summary import determinism_sentences

    verdict = determinism_sentences(report)
    if verdict:
        out["determinism"] = {"verdict": verdict}
    entities = report.get("entities")
    if isinstance(entities, dict):
        out["least_stable"] = [
            {k: row.get(k) for k in ("id", "label", "frequency", "overlap")}
            for row in _dicts(entities.get("least_stable"))
        ]
    out["report"] = path
    out["html"] = html
    return out


def print_runs(records: list[Any], console: Console) -> None:
    """Print one line per run: id, status, factor values, seconds."""
    table = Table(title="Runs")
    for col in ("run", "status", "designs", "factors", "seconds"):
        table.add_column(col)
    for r in records:
        factors = ", ".join(f"{k}={v}" for k, v in r.spec["factors"].items())
        table.add_row(
            r.run_id,
            r.status,
            Text(",".join(r.spec["designs"])),
            Text(factors),
            "-" if r.seconds is None else f"{r.seconds:.1f}",
        )
    console.print(table)
