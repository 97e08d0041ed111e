"""The sections of the HTML report, one function each.

A section function takes the ``report.json`` document and returns a
:class:`Section` (its template, the values the template shows, its
figures) or None when the report holds no data for it. The registry
:data:`SECTIONS` lists them in page order; adding a section is one
function decorated with :func:`section` plus one template
``templates/section_<id>.html.j2``.

Each function's docstring gives the JSON shape it reads. Sections whose
data other parts of embvar write accept the documented shape and a few
obvious variants (a list where one item is expected, a key one level up);
anything else is reported on the page by :mod:`embvar.report.html` rather
than failing the whole report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from embvar.report import figures as fg
from embvar.report.methods import LEVELS, METRICS, metric_info, split_key

__all__ = [
    "Section",
    "FigureBlock",
    "SECTIONS",
    "section",
    "lookup",
    "non_dominated",
]

SEED_SOURCES = ("init", "order", "noise", "split", "perturb")

# A Procrustes distance below this is float rounding: the tables are the same.
IDENTICAL = 1e-6


@dataclass
class FigureBlock:
    """One embedded chart with its caption and the JSON paths of its numbers."""

    svg: str
    alt: str
    caption: str
    paths: list[str]
    number: int = 0

    @property
    def src(self) -> str:
        return fg.svg_data_uri(self.svg)


@dataclass
class Section:
    """One block of the page."""

    id: str
    title: str
    lead: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    figures: list[FigureBlock] = field(default_factory=list)
    key: str = ""

    @property
    def template(self) -> str:
        return f"section_{self.id}.html.j2"


SectionFn = Callable[[dict[str, Any]], Section | None]
SECTIONS: list[tuple[str, str, SectionFn]] = []


def section(id: str, key: str) -> Callable[[SectionFn], SectionFn]:
    """Register a section builder; ``key`` names the JSON it reads, for errors."""

    def register(fn: SectionFn) -> SectionFn:
        SECTIONS.append((id, key, fn))
        return fn

    return register


# -- helpers ----------------------------------------------------------------------

_PATH = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def lookup(report: Any, path: str) -> Any:
    """Return the value at a JSON path such as ``groups[0].geometry``, or None."""
    node = report
    for name, index in _PATH.findall(path):
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return None
            node = node[int(index)]
        else:
            if not isinstance(node, dict) or name not in node:
                return None
            node = node[name]
    return node


def _first(report: dict[str, Any], *paths: str) -> tuple[Any, str]:
    for path in paths:
        value = lookup(report, path)
        if value not in (None, [], {}):
            return value, path
    return None, paths[0]


def _is_stat(x: Any) -> bool:
    return isinstance(x, dict) and "mean" in x


def _interval(entry: dict[str, Any]) -> tuple[float | None, float | None]:
    """An entry's interval from ``interval``/``ci`` ([lo, hi]) or ``lo``/``hi``."""
    for key in ("interval", "ci"):
        iv = entry.get(key)
        if isinstance(iv, (list, tuple)) and len(iv) == 2:
            return iv[0], iv[1]
    return entry.get("lo"), entry.get("hi")


def _mean(x: Any) -> float | None:
    if _is_stat(x):
        return x["mean"]
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def non_dominated(points: list[tuple[float, float]]) -> list[bool]:
    """Flag points no other point beats on both axes (lower x, higher y).

    A point is dominated when another is at least as good on both axes and
    strictly better on one.
    """
    flags = []
    for i, (x, y) in enumerate(points):
        beaten = any(
            (x2 <= x and y2 >= y) and (x2 < x or y2 > y)
            for j, (x2, y2) in enumerate(points)
            if j != i
        )
        flags.append(not beaten)
    return flags


def _main_group_index(report: dict[str, Any]) -> int | None:
    groups = report.get("groups") or []
    if not groups:
        return None
    return max(range(len(groups)), key=lambda i: groups[i].get("n_runs", 0))


def group_labels(groups: list[dict[str, Any]]) -> list[str]:
    """Each group's label, made unique where two groups share one.

    Groups with the same label get the hyperparameters in which they differ
    appended (``"defaults (learning_rate=0.05)"``), or their group key when
    their hyperparameters are the same.
    """
    labels = [str(g.get("label") or f"group {i}") for i, g in enumerate(groups)]
    for label in set(labels):
        same = [i for i, x in enumerate(labels) if x == label]
        if len(same) < 2:
            continue
        hypers = [groups[i].get("hyperparameters") or {} for i in same]
        keys = sorted({k for h in hypers for k in h})
        differ = [k for k in keys if len({repr(h.get(k)) for h in hypers}) > 1]
        for i, h in zip(same, hypers, strict=False):
            extra = (
                ", ".join(f"{k}={h.get(k)}" for k in differ)
                or f"group {groups[i].get('group', i)}"
            )
            labels[i] = f"{label} ({extra})"
    return labels


def _metric_keys(group: dict[str, Any], level: str) -> list[str]:
    return [k for k, v in (group.get(level) or {}).items() if _is_stat(v)]


def _source_color(name: str, i: int) -> str:
    return fg.SOURCE_COLORS.get(
        str(name).split("×")[0].split(":")[0].strip(),
        fg.PALETTE[(i + 5) % len(fg.PALETTE)],
    )


# -- summary ----------------------------------------------------------------------


def _claims(report: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    claims, path = _first(report, "claims.claims", "claims", "attribution.claims")
    if isinstance(claims, dict):
        claims = [
            {"id": k, **v} if isinstance(v, dict) else {"id": k, "verdict": v}
            for k, v in claims.items()
        ]
    return (claims or []), path


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
    gi = _main_group_index(report)
    if gi is not None:
        g = report["groups"][gi]
        for level in ("geometry", "function"):
            for key in _metric_keys(g, level):
                base, k = split_key(key)
                stat = g[level][key]
                if base == "knn_overlap" and stat["mean"] is not None:
                    cards.append(
                        {
                            "value": f"{100 * stat['mean']:.0f}%",
                            "text": f"of an item's {k} nearest neighbours are the "
                            "same in another run",
                            "path": f"groups[{gi}].{level}.{key}.mean",
                        }
                    )
                elif base == "topk_overlap" and stat["mean"] is not None:
                    cards.append(
                        {
                            "value": f"{100 * stat['mean']:.0f}%",
                            "text": f"of a user's top-{k} recommendations are the "
                            "same in another run",
                            "path": f"groups[{gi}].{level}.{key}.mean",
                        }
                    )
                elif base == "test_rmse" and stat.get("sd") is not None:
                    cards.append(
                        {
                            "value": f"{stat['mean']:.3f} ± {stat['sd']:.3f}",
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
            "problems": problems,
        },
    )


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
            level: [(g.get(level) or {}).get(k) for k in keys]
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
                "black tick is the mean. Panels run from the raw coordinates "
                "(parameters) through the shape of the space (geometry) to what the "
                "model predicts (function).",
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


# -- attribution, perturbation, PERMANOVA -------------------------------------------


@section("attribution", "attribution")
def attribution(report: dict[str, Any]) -> Section | None:
    """Which source of randomness causes the variation.

    Reads ``attribution``::

        {"design": "seeds",
         "scalar": [{"outcome": "test_rmse", "components": [
             {"source": "init", "share": 0.6, "interval": [0.4, 0.8],
              "variance": 1e-6}, ...]}],
         "distance": [{"metric": "procrustes", "by_source": [
             {"source": "init", "mean": 0.8, "interval": [lo, hi],
              "n_pairs": 10}, ...]}]}

    ``share`` is the source's share of the variance (0–1); ``by_source``
    gives the mean distance between runs that differ in that source only
    (and ``"all"``: in every source).
    """
    att = report.get("attribution")
    if not isinstance(att, dict):
        return None
    panels = []
    paths = []
    scalar = att.get("scalar") or []
    if isinstance(scalar, dict):
        scalar = [
            {"outcome": k, **v}
            if isinstance(v, dict)
            else {"outcome": k, "components": v}
            for k, v in scalar.items()
        ]
    for i, entry in enumerate(scalar):
        comps = entry.get("components") or []
        if not comps:
            continue
        ivs = [_interval(c) for c in comps]
        panels.append(
            fg.BarPanel(
                f"{metric_info(entry.get('outcome', '?'), 'function').name}: "
                "share of variance",
                [str(c.get("source")) for c in comps],
                [c.get("share") for c in comps],
                [a for a, _ in ivs],
                [b for _, b in ivs],
                [_source_color(c.get("source"), j) for j, c in enumerate(comps)],
                xlabel="share of the variance between runs",
                xlim=(0, 1),
                percent=True,
            )
        )
        paths.append(f"attribution.scalar[{i}].components")
    distance = att.get("distance") or []
    if isinstance(distance, dict):
        distance = [{"metric": k, "by_source": v} for k, v in distance.items()]
    for i, entry in enumerate(distance):
        by = entry.get("by_source") or []
        if isinstance(by, dict):
            by = [
                {"source": k, **(v if isinstance(v, dict) else {"mean": v})}
                for k, v in by.items()
            ]
        if not by:
            continue
        ivs = [_interval(b) for b in by]
        info = metric_info(entry.get("metric", "?"))
        panels.append(
            fg.BarPanel(
                f"{info.name}: runs differing in one source",
                [str(b.get("source")) for b in by],
                [b.get("mean") for b in by],
                [a for a, _ in ivs],
                [b for _, b in ivs],
                [_source_color(b.get("source"), j) for j, b in enumerate(by)],
                xlabel=f"mean {info.name} ({info.alike})",
            )
        )
        paths.append(f"attribution.distance[{i}].by_source")
    if not panels:
        return None
    fig = FigureBlock(
        fg.interval_bars(panels),
        "Bar charts of the variation attributed to each source of randomness.",
        "Which source of randomness makes runs differ. Scalar outcomes: each "
        "source's share of the variance between runs (random-effects ANOVA), with "
        "95% bootstrap intervals over seeds. Embeddings: the mean distance between "
        "runs that differ in that source only ('all': in every source), with 95% "
        "intervals.",
        paths,
    )
    return Section(
        "attribution",
        "Which source causes it",
        lead="Runs of the crossed design differ in one source of randomness at a time "
        "(initial values, data order, noise), so the variation can be split "
        "between them.",
        data={"design": att.get("design")},
        figures=[fig],
    )


@section("perturbation", "attribution.perturbation")
def perturbation(report: dict[str, Any]) -> Section | None:
    """The control: one initial weight moved by one unit in the last place.

    Reads ``attribution.perturbation`` (or ``perturbation``): one entry or a
    list, each ``{"metric": "procrustes", "perturbed": d_p, "reseed": d_r,
    "ratio": d_p / d_r, "interval": [lo, hi], "runs": [a, b]}``.
    """
    value, path = _first(report, "attribution.perturbation", "perturbation")
    if value is None:
        return None
    entries = value if isinstance(value, list) else [value]
    rows = []
    for e in entries:
        if not isinstance(e, dict):
            continue
        ratio = e.get("ratio")
        if ratio is None and e.get("perturbed") is not None and e.get("reseed"):
            ratio = e["perturbed"] / e["reseed"]
        lo, hi = _interval(e)
        rows.append(
            {
                "metric": metric_info(e.get("metric", "?")).name,
                "perturbed": e.get("perturbed"),
                "reseed": e.get("reseed"),
                "ratio": ratio,
                "lo": lo,
                "hi": hi,
                "runs": e.get("runs") or [],
            }
        )
    if not rows:
        return None
    return Section(
        "perturbation",
        "Control: a one-ulp change of one initial weight",
        lead="A run identical to another except that one initial weight is moved by "
        "the smallest step a float32 can take. If training is chaotic, this "
        "tiny change ends as far away as a completely new seed.",
        data={"rows": rows, "path": path},
    )


@section("permanova", "attribution.permanova")
def permanova(report: dict[str, Any]) -> Section | None:
    """PERMANOVA: the distance-based partition of variation per source.

    Reads ``attribution.permanova`` (or ``permanova``): a list of
    ``{"metric": str, "permutations": int, "rows": [{"source", "df", "ss",
    "pseudo_f", "share", "p_value"}]}``.
    """
    value, path = _first(report, "attribution.permanova", "permanova")
    if value is None:
        return None
    tables = value if isinstance(value, list) else [value]
    out = []
    for i, t in enumerate(tables):
        if isinstance(t, dict) and t.get("rows"):
            out.append(
                {
                    "metric": metric_info(t.get("metric", "?")).name,
                    "permutations": t.get("permutations"),
                    "rows": t["rows"],
                    "path": f"{path}[{i}].rows"
                    if isinstance(value, list)
                    else f"{path}.rows",
                }
            )
    if not out:
        return None
    return Section(
        "permanova",
        "PERMANOVA: partition of the distances between runs",
        lead="Anderson's permutational analysis of variance splits the squared "
        "distances between runs into the part explained by each source. The "
        "p-value is the share of random relabellings of the runs that explain "
        "at least as much.",
        data={"tables": out},
    )


# -- dynamics ---------------------------------------------------------------------


def _series_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        if isinstance(value.get("series"), list):
            return value["series"]
        out = []
        for metric, per in value.items():
            if isinstance(per, dict) and "epochs" in per:
                out.append({"metric": metric, **per})
            elif isinstance(per, dict):
                out += [
                    {"metric": metric, "group": g, **s}
                    for g, s in per.items()
                    if isinstance(s, dict)
                ]
        return out
    return value if isinstance(value, list) else []


def _band(s: dict[str, Any]) -> tuple[list | None, list | None]:
    if s.get("lo") is not None and s.get("hi") is not None:
        return s["lo"], s["hi"]
    if s.get("interval"):
        iv = s["interval"]
        return [a for a, _ in iv], [b for _, b in iv]
    if s.get("sd") is not None and s.get("mean") is not None:
        return (
            [
                None if m is None or d is None else m - d
                for m, d in zip(s["mean"], s["sd"], strict=False)
            ],
            [
                None if m is None or d is None else m + d
                for m, d in zip(s["mean"], s["sd"], strict=False)
            ],
        )
    return None, None


@section("dynamics", "dynamics")
def dynamics(report: dict[str, Any]) -> Section | None:
    """Instability per epoch: does training wash the initial difference out?

    Reads ``dynamics``: ``{"series": [{"group": label, "metric": name,
    "epochs": [0, 1, ...], "mean": [...], "lo": [...], "hi": [...]}]}``
    (a band from ``lo``/``hi``, ``interval`` pairs or ``mean ± sd``), or a
    dict ``{metric: {group: series}}``.
    """
    series = [s for s in _series_list(report.get("dynamics")) if s.get("epochs")]
    if not series:
        return None
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        by_metric.setdefault(str(s.get("metric", "?")), []).append(s)
    panels = []
    for metric, group in by_metric.items():
        info = metric_info(metric)
        lines = []
        for i, s in enumerate(group):
            lo, hi = _band(s)
            lines.append(
                fg.Series(
                    str(s.get("group", s.get("label", f"series {i}"))),
                    s["epochs"],
                    s["mean"],
                    lo,
                    hi,
                )
            )
        ylim = (
            (info.low, info.high)
            if info.low is not None and info.high is not None
            else None
        )
        panels.append(fg.LinePanel(info.name, "epoch", info.alike, lines, ylim))
    fig = FigureBlock(
        fg.band_lines(panels),
        "Line charts of the difference between runs after each epoch.",
        "The difference between pairs of runs after each epoch (epoch 0: the "
        "initial values), the line the mean over pairs and the band its spread. A "
        "line that falls and levels off above 0 means training shrinks the "
        "difference, but some always remains.",
        [
            "dynamics.series[*]"
            if isinstance((report.get("dynamics") or {}), dict)
            and "series" in report["dynamics"]
            else "dynamics"
        ],
    )
    return Section(
        "dynamics",
        "Over training: does the difference wash out?",
        lead="The same pairs of runs measured from their initial values to the last "
        "epoch.",
        figures=[fig],
    )


# -- frequency ---------------------------------------------------------------------


def _bin_label(b: dict[str, Any], i: int) -> str:
    if b.get("label") is not None:
        return str(b["label"])
    lo, hi = b.get("lo", b.get("min")), b.get("hi", b.get("max"))
    if lo is None:
        return str(i)
    if hi is None or hi == lo:
        return f"{lo:g}" if isinstance(lo, (int, float)) else str(lo)
    return f"{lo:g}–{hi:g}"


@section("frequency", "frequency")
def frequency(report: dict[str, Any]) -> Section | None:
    """Per-entity stability against how often the entity appears in training.

    Reads ``frequency`` (one entry or a list): ``{"metric":
    "knn_overlap@10", "group": label, "bins": [{"label": "2–3", "lo": 2,
    "hi": 3, "n": 1200, "mean": 0.2, "interval": [lo, hi]}], "spearman":
    {"rho": 0.6, "p_value": 1e-9, "interval": [lo, hi], "n": 9066}}``.
    """
    value = report.get("frequency")
    entries = value if isinstance(value, list) else [value] if value else []
    figs = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not e.get("bins"):
            continue
        bins = e["bins"]
        ivs = [
            _interval(b) if ("interval" in b or "ci" in b) else (None, None)
            for b in bins
        ]
        have_iv = any(a is not None for a, _ in ivs)
        info = metric_info(e.get("metric", "knn_overlap"))
        rho = e.get("spearman") or e.get("rank_correlation") or {}
        if isinstance(rho, (int, float)):
            rho = {"rho": rho}
        note = ""
        if rho.get("rho") is not None:
            note = f"Spearman ρ = {rho['rho']:.2f}"
            lo, hi = _interval(rho)
            if lo is not None and hi is not None:
                note += f" [{lo:.2f}, {hi:.2f}]"
            if rho.get("n"):
                note += f" over {rho['n']:,} entities"
        path = "frequency" if not isinstance(value, list) else f"frequency[{i}]"
        figs.append(
            FigureBlock(
                fg.binned_chart(
                    [_bin_label(b, j) for j, b in enumerate(bins)],
                    [b.get("mean") for b in bins],
                    [a for a, _ in ivs] if have_iv else None,
                    [b for _, b in ivs] if have_iv else None,
                    [b["n"] for b in bins] if all("n" in b for b in bins) else None,
                    xlabel="training interactions per entity (bin)",
                    ylabel=f"mean {info.name}",
                    note=note,
                    ylim=(info.low, info.high) if info.high is not None else None,
                ),
                "Line chart of stability by frequency bin.",
                f"Stability of each entity ({info.name}, {info.alike}) against how "
                "often it occurs in the training data, in bins; each point is the "
                "mean of the entities in the bin, n below the bin, with its 95% "
                "interval where given. The rank correlation uses every entity, not "
                "the bins." + (f" Group: {e['group']}." if e.get("group") else ""),
                [f"{path}.bins", f"{path}.spearman"],
            )
        )
    if not figs:
        return None
    return Section(
        "frequency",
        "Rare entities move most",
        lead="An entity seen a few times in training gets few gradient updates, so "
        "its vector stays close to wherever its random start put it.",
        figures=figs,
    )


# -- trade-off ---------------------------------------------------------------------


def _tradeoff_from_groups(report: dict[str, Any]) -> dict[str, Any] | None:
    groups = report.get("groups") or []
    if len(groups) < 2:
        return None
    levels = []
    stability = None
    for g, label in zip(groups, group_labels(groups), strict=False):
        rmse = (g.get("function") or {}).get("test_rmse")
        knn = next(
            (k for k in _metric_keys(g, "geometry") if k.startswith("knn_overlap")),
            None,
        )
        if not _is_stat(rmse) or knn is None:
            continue
        stability = knn
        levels.append({"label": label, "test_rmse": rmse, knn: g["geometry"][knn]})
    if len(levels) < 2 or stability is None:
        return None
    return {
        "accuracy": "test_rmse",
        "stability": [stability],
        "levels": levels,
        "derived": True,
    }


@section("tradeoff", "tradeoff")
def tradeoff(report: dict[str, Any]) -> Section | None:
    """Accuracy against stability per hyperparameter level.

    Reads ``tradeoff``: ``{"accuracy": "test_rmse", "stability":
    ["knn_overlap@10", ...], "levels": [{"label": str, "test_rmse": stat,
    "knn_overlap@10": stat, "non_dominated": bool}]}`` where a stat is a
    number or ``{"mean", "sd"}``. Without it, the groups themselves are the
    levels (each group's test RMSE and k-NN overlap), and the
    non-dominated ones are computed here.
    """
    value = report.get("tradeoff")
    derived = not isinstance(value, dict) or not value.get("levels")
    if derived:
        value = _tradeoff_from_groups(report)
    if not value:
        return None
    x_key = value.get("accuracy", "test_rmse")
    ys = value.get("stability") or []
    ys = [ys] if isinstance(ys, str) else ys
    figs = []
    for y_key in ys:
        levels = [
            lv
            for lv in value["levels"]
            if _mean(lv.get(x_key)) is not None and _mean(lv.get(y_key)) is not None
        ]
        if len(levels) < 2:
            continue
        y_info = metric_info(y_key)
        lower_y = y_info.more_alike == "lower"
        coords = [
            (_mean(lv[x_key]), -_mean(lv[y_key]) if lower_y else _mean(lv[y_key]))
            for lv in levels
        ]
        computed = non_dominated(coords)
        points = []
        for lv, flag in zip(levels, computed, strict=False):
            front = lv.get("non_dominated", flag) if not derived else flag
            points.append(
                fg.Point(
                    str(lv.get("label")),
                    _mean(lv[x_key]),
                    _mean(lv[y_key]),
                    lv[x_key].get("sd") if _is_stat(lv[x_key]) else None,
                    lv[y_key].get("sd") if _is_stat(lv[y_key]) else None,
                    bool(front),
                )
            )
        x_info = metric_info(x_key, "function")
        corner = "↖" if not lower_y else "↙"
        src = "groups[*]" if derived else "tradeoff.levels[*]"
        figs.append(
            FigureBlock(
                fg.tradeoff_scatter(
                    points,
                    xlabel=f"{x_info.name} (lower is more accurate)",
                    ylabel=f"{y_info.name} ({y_info.alike})",
                    better=f"better {corner}",
                    ylim=(y_info.low, y_info.high) if y_info.high is not None else None,
                ),
                "Scatter plot of accuracy against stability, one point per setting.",
                f"Accuracy ({x_info.name}) against stability ({y_info.name}) for each "
                "hyperparameter setting, whiskers ± 1 sd over the runs (RMSE) or "
                "pairs (stability). Filled points are settings that no other setting "
                "beats on both at once; an open point has a setting that is as good "
                "or better on both.",
                [f"{src}.{x_key}", f"{src}.{y_key}"]
                if not derived
                else [f"groups[*].function.{x_key}", f"groups[*].geometry.{y_key}"],
            )
        )
    if not figs:
        return None
    return Section(
        "tradeoff",
        "Stability against accuracy",
        lead="Which settings buy stable embeddings, and what they cost in accuracy.",
        data={"derived": derived},
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
    """The least stable items, with labels, frequencies and neighbours.

    Reads ``entities``, written by :func:`embvar.report.entities.entity_stability`.
    """
    e = report.get("entities")
    if not isinstance(e, dict) or not e.get("least_stable"):
        return None
    figs = []
    hist = e.get("histogram") or {}
    if hist.get("edges") and hist.get("counts"):
        figs.append(
            FigureBlock(
                fg.histogram_chart(
                    hist["edges"],
                    hist["counts"],
                    xlabel=f"an item's k-NN overlap@{e.get('k')}, mean over "
                    f"{e.get('n_pairs')} pairs of runs (1 = same neighbours)",
                    ylabel="items",
                    note=f"median {100 * e.get('median_overlap', 0):.0f}%, "
                    f"{100 * e.get('share_zero', 0):.0f}% keep none",
                ),
                "Histogram of the items' neighbour stability.",
                f"How stable each item's neighbourhood is, over the {e.get('n_pairs')} "
                f"pairs of runs of group {e.get('group')!s}: the share of its "
                f"{e.get('k')} nearest neighbours (cosine) that two runs have in "
                "common.",
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
    return Section(
        "entities",
        "Which items are least stable",
        lead="Each item's stability is the share of its nearest neighbours that "
        "two runs have in common, averaged over every pair of runs.",
        data={"e": e, "tables": tables, "shown": shown},
        figures=figs,
    )


# -- determinism and environment ----------------------------------------------------


@section("determinism", "determinism")
def determinism(report: dict[str, Any]) -> Section | None:
    """The determinism audit: which settings made repeated runs bitwise identical.

    Reads ``determinism``: ``{"run_id": str, "verdict": str, "cells":
    [{"settings": {name: value}, "identical": bool, "seconds": float,
    "time_ratio": float, "first_difference": null | {"epoch": int,
    "step": int, "variables": [{"name", "max_abs", "max_ulp"}]}}],
    "recipe": str (Python code), "pitfalls": [{"name", "found": bool,
    "cause", "fix"}]}``.
    """
    d = report.get("determinism")
    if not isinstance(d, dict):
        return None
    cells = d.get("cells") or d.get("results") or []
    names: list[str] = []
    for c in cells:
        for k in c.get("settings") or {}:
            if k not in names:
                names.append(k)
    if not (cells or d.get("verdict") or d.get("pitfalls")):
        return None
    return Section(
        "determinism",
        "Reproducibility: the determinism audit",
        lead="The same run trained several times, each in a fresh process, under "
        "different settings, and compared bit for bit after every epoch.",
        data={
            "d": d,
            "cells": cells,
            "names": names,
            "pitfalls": d.get("pitfalls") or [],
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
    flat = [_flatten(m) for m in manifests if isinstance(m, dict)]
    if not flat:
        return None
    keys: list[str] = []
    for f in flat:
        keys += [k for k in f if k not in keys]
    rows = [
        {
            "key": k,
            "values": [f.get(k, "–") for f in flat],
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


# -- methods --------------------------------------------------------------------


def _used_metrics(report: dict[str, Any]) -> list[Any]:
    text = repr({k: v for k, v in report.items() if k not in ("runs", "summary")})
    used = []
    for key, info in METRICS.items():
        if re.search(rf"['\"]{re.escape(key)}(@\d+)?['\"]", text):
            used.append(info)
    return used


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
    return Section(
        "methods",
        "Methods",
        data={
            "metrics": used,
            "study": study,
            "data": report.get("data"),
            "runs": runs,
            "seed_names": seed_names,
            "factor_names": factor_names,
            "levels": LEVELS,
        },
    )


def fmt_fixed(x: Any, digits: int = 3) -> str:
    """A number with exactly ``digits`` decimals (ranges: 1e-8 reads as 0.000)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def fmt_number(x: Any, digits: int = 3) -> str:
    """A number for a table cell: fixed digits, thousands separators, '–' for None."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != 0 and (abs(x) < 10**-digits or abs(x) >= 1e6):
            return f"{x:.{max(1, digits - 1)}e}"
        return f"{x:.{digits}f}"
    return str(x)
