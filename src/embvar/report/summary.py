"""Plain sentences generated from a report's numbers.

The terminal summary and the HTML report both use these, so they always say
the same thing.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["summary_sentences", "main_group"]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def main_group(report: dict[str, Any]) -> dict[str, Any] | None:
    """The group with the most runs (the study's seed replicates)."""
    groups = report.get("groups") or []
    return max(groups, key=lambda g: g["n_runs"]) if groups else None


def summary_sentences(report: dict[str, Any]) -> list[str]:
    """Return a few sentences that answer "how much do the embeddings vary"."""
    runs = report["runs"]
    out = [
        f"{runs['done']} of {runs['planned']} planned runs finished"
        + (f", {len(runs['diverged'])} diverged" if runs["diverged"] else "")
        + (f", {len(runs['failed'])} failed" if runs["failed"] else "")
        + "."
    ]
    g = main_group(report)
    if g is None:
        out.append("No group has two finished runs yet, so nothing can be compared.")
        return out
    rmse = g["function"]["test_rmse"]
    geo = g["geometry"]
    knn = next(v for k, v in geo.items() if k.startswith("knn_overlap"))
    top = next(v for k, v in g["function"].items() if k.startswith("topk_overlap"))
    proc = geo["procrustes"]
    out.append(
        f"With {g['label']}, {g['n_runs']} runs that differ only in their seeds reach "
        f"test RMSE {rmse['mean']:.4f} ± {rmse['sd']:.4f} (sd), so accuracy barely "
        "moves between runs." if rmse["sd"] < 0.01 * rmse["mean"] else
        f"With {g['label']}, {g['n_runs']} runs that differ only in their seeds reach "
        f"test RMSE {rmse['mean']:.4f} ± {rmse['sd']:.4f} (sd)."
    )
    out.append(
        f"Their item embeddings are not the same space: after the best rotation the "
        f"Procrustes distance between two runs averages {proc['mean']:.3f} "
        "(0 = the same shape, 1.41 = unrelated), an item keeps on average "
        f"{_pct(knn['mean'])} of its 10 nearest neighbours, and a user keeps "
        f"{_pct(top['mean'])} of their top-10 recommendations."
    )
    others = [x for x in report["groups"] if x is not g]
    if others:
        def overlap(x):
            return next(v for k, v in x["geometry"].items() if k.startswith("knn"))["mean"]

        best = max(report["groups"], key=overlap)
        worst = min(report["groups"], key=overlap)
        if best is not worst and not math.isclose(overlap(best), overlap(worst)):
            out.append(
                f"Across settings, neighbourhoods are most stable with {best['label']} "
                f"({_pct(overlap(best))} kept) and least with {worst['label']} "
                f"({_pct(overlap(worst))})."
            )
    return out
