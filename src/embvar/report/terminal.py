"""The terminal summary of a report: a rich table and the generated sentences."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_summary", "print_runs"]


def _fmt(stat: dict[str, Any] | None, digits: int = 3) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    return f"{stat['mean']:.{digits}f} ± {stat['sd']:.{digits}f}"


def print_summary(report: dict[str, Any], console: Console, path: str | None = None) -> None:
    """Print the groups table and the summary sentences of a report."""
    table = Table(title=f"Study {report['study']['name']}: variation between seed replicates")
    for col in ("group", "runs", "test RMSE", "Procrustes (items)", "kNN overlap@10",
                "top-10 overlap"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for g in report["groups"]:
        geo, fun = g["geometry"], g["function"]
        knn = next((v for k, v in geo.items() if k.startswith("knn")), None)
        top = next((v for k, v in fun.items() if k.startswith("topk")), None)
        table.add_row(g["label"], str(g["n_runs"]), _fmt(fun["test_rmse"], 4),
                      _fmt(geo["procrustes"]), _fmt(knn), _fmt(top))
    console.print(table)
    for sentence in report["summary"]:
        console.print(sentence, markup=False)
    if path:
        console.print(f"Report written to {path}", markup=False)


def print_runs(records: list[Any], console: Console) -> None:
    """Print one line per run: id, status, factor values, seconds."""
    table = Table(title="Runs")
    for col in ("run", "status", "designs", "factors", "seconds"):
        table.add_column(col)
    for r in records:
        factors = ", ".join(f"{k}={v}" for k, v in r.spec["factors"].items())
        table.add_row(r.run_id, r.status, ",".join(r.spec["designs"]), factors,
                      "-" if r.seconds is None else f"{r.seconds:.1f}")
    console.print(table)
