"""Sections drawn from the analysis of a study's runs: attribution to sources,
the perturbation control, PERMANOVA, dynamics over epochs, stability
against frequency, the accuracy–stability trade-off, and the reference
article's examples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embvar.report import figures as fg
from embvar.report.methods import metric_info
from embvar.report.sections._common import (
    SOURCE_WORDS,
    FigureBlock,
    Section,
    _first,
    _interval,
    _is_stat,
    _mean,
    _metric_keys,
    _source_color,
    group_labels,
    join_words,
    non_dominated,
    section,
    source_words,
)

__all__ = [
    "attribution",
    "perturbation",
    "permanova",
    "dynamics",
    "frequency",
    "tradeoff",
    "article_examples",
]


# -- attribution, perturbation, PERMANOVA -------------------------------------------


def _by_source(entry: dict[str, Any]) -> list[dict[str, Any]]:
    by = entry.get("by_source") or []
    if isinstance(by, dict):
        by = [
            {"source": k, **(v if isinstance(v, dict) else {"mean": v})}
            for k, v in by.items()
        ]
    return [b for b in by if isinstance(b, dict)]


def _source_name(source: Any) -> str:
    return {"all": "every source", "residual": "residual (interaction)"}.get(
        str(source), f"{source} only" if source not in ("total",) else "total"
    )


@section("attribution", "attribution")
def attribution(report: dict[str, Any]) -> Section | None:
    """Which source of randomness causes the variation.

    Reads ``attribution`` (:mod:`embvar.analysis.sections`)::

        {"design": "seeds", "group": label, "sources": ["init", "order"],
         "run_ids": [...],
         "scalar": [{"outcome": "test_rmse", "components": [
             {"source": "init", "share": 0.6, "interval": [0.4, 0.8],
              "variance": 1e-6}, ..., {"source": "residual", ...}],
             "note": str (when the components could not be estimated)}],
         "distance": [{"metric": "procrustes", "by_source": [
             {"source": "init", "mean": 0.8, "interval": [lo, hi],
              "n_pairs": 10}, ..., {"source": "all", ...}]}]}

    ``share`` is the source's share of the variance (0–1); ``by_source``
    gives the metric's mean over pairs of runs that differ in that source
    only (``"all"``: in every source).
    """
    att = report.get("attribution")
    if not isinstance(att, dict):
        return None
    panels = []
    paths = []
    notes = []
    scalar = att.get("scalar") or []
    if isinstance(scalar, dict):
        scalar = [
            {"outcome": k, **v}
            if isinstance(v, dict)
            else {"outcome": k, "components": v}
            for k, v in scalar.items()
        ]
    for i, entry in enumerate(scalar):
        comps = [c for c in entry.get("components") or [] if isinstance(c, dict)]
        name = metric_info(entry.get("outcome", "?"), "function").name
        if not comps:
            if entry.get("note"):
                notes.append(f"{name}: {entry['note']}")
            continue
        ivs = [_interval(c) for c in comps]
        panels.append(
            fg.BarPanel(
                f"{name}: share of the variance",
                [_source_name(c.get("source")) for c in comps],
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
        by = _by_source(entry)
        if not by:
            continue
        ivs = [_interval(b) for b in by]
        info = metric_info(entry.get("metric", "?"))
        bounds = (info.low, info.high) if info.high is not None else None
        panels.append(
            fg.BarPanel(
                f"{info.name}: mean over pairs of runs",
                [_source_name(b.get("source")) for b in by],
                [b.get("mean") for b in by],
                [a for a, _ in ivs],
                [b for _, b in ivs],
                [_source_color(b.get("source"), j) for j, b in enumerate(by)],
                xlabel=f"{info.name} ({info.alike})",
                xlim=bounds,
            )
        )
        paths.append(f"attribution.distance[{i}].by_source")
    if not panels:
        return None
    fig = FigureBlock(
        fg.interval_bars(panels),
        "Bar charts of the variation attributed to each source of randomness.",
        "Which source of randomness makes runs differ. Test RMSE: each source's "
        "share of the variance between runs (additive random-effects ANOVA; the "
        "residual holds the interaction), with 95% bootstrap intervals over the "
        "seeds' levels. Embeddings: each metric's mean over pairs of runs that "
        "differ in that one source only, or in every source, with 95% intervals. "
        "A source whose pairs are as far apart as 'every source' pairs causes "
        "(almost) all of the difference.",
        paths,
    )
    sources = att.get("sources") or []
    named = source_words(sources)
    return Section(
        "attribution",
        "Which source causes it",
        lead="In a crossed design every combination of the seeds' levels is trained "
        "once, so some pairs of runs differ in one source of randomness only"
        + (f" (here {named})" if named else "")
        + " and the variation can be split between the sources.",
        data={
            "design": att.get("design"),
            "group": att.get("group"),
            "sources": sources,
            "n_runs": len(att.get("run_ids") or []),
            "notes": notes,
        },
        figures=[fig],
    )


@section("perturbation", "attribution.perturbation")
def perturbation(report: dict[str, Any]) -> Section | None:
    """The control: one initial weight moved by one unit in the last place.

    Reads ``attribution.perturbation`` (or ``perturbation``): a list (or one
    entry) of ``{"metric": "procrustes", "form": "value" | "1 - value",
    "perturbed": d_p, "reseed": d_r, "ratio": d_p / d_r, "interval":
    [lo, hi], "n_twins": int, "runs": [[original, perturbed], ...]}``,
    distances in the form given (similarities as 1 − value).
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
        info = metric_info(e.get("metric", "?"))
        name = info.name if e.get("form") != "1 - value" else f"1 − {info.name}"
        pairs = []
        for r in e.get("runs") or []:
            pairs.append(
                " → ".join(str(x)[:8] for x in r) if isinstance(r, list) else str(r)[:8]
            )
        rows.append(
            {
                "metric": name,
                "perturbed": e.get("perturbed"),
                "reseed": e.get("reseed"),
                "ratio": ratio,
                "lo": lo,
                "hi": hi,
                "runs": pairs,
                "n": e.get("n_twins", len(pairs)),
            }
        )
    if not rows:
        return None
    return Section(
        "perturbation",
        "Control: a one-ulp change of one initial weight",
        lead="A run identical to another except that one initial weight is moved by "
        "the smallest step a float32 can take (one unit in the last place). "
        "If training is chaotic, this tiny change ends as far away as a new "
        "seed.",
        data={"rows": rows, "path": path},
    )


def _p_text(p: Any, permutations: Any) -> str:
    """A permutation p-value; at its floor 1/(permutations + 1), "≤ floor".

    With 999 permutations no p-value can be below 0.001, so 0.001 means
    "as small as this test can show", not "exactly 0.001".
    """
    if not isinstance(p, (int, float)) or isinstance(p, bool) or p != p:
        return "–"
    if isinstance(permutations, int) and permutations > 0:
        floor = 1.0 / (permutations + 1)
        if p <= floor * (1 + 1e-9):
            return f"≤ {floor:.2g}" if floor < 0.001 else f"≤ {floor:.3f}"
    return f"{p:.3f}"


@section("permanova", "attribution.permanova")
def permanova(report: dict[str, Any]) -> Section | None:
    """PERMANOVA: the distance-based partition of variation per source.

    Reads ``attribution.permanova`` (or ``permanova``): a list of
    ``{"metric": str, "form": "value" | "1 - value", "permutations": int,
    "n_runs": int, "rows": [{"source", "df", "ss", "pseudo_f", "share",
    "p_value"}]}`` (the residual and total rows have no F or p).
    """
    value, path = _first(report, "attribution.permanova", "permanova")
    if value is None:
        return None
    tables = value if isinstance(value, list) else [value]
    out = []
    small = None
    for i, t in enumerate(tables):
        if isinstance(t, dict) and t.get("rows"):
            info = metric_info(t.get("metric", "?"))
            name = info.name if t.get("form") != "1 - value" else f"1 − {info.name}"
            out.append(
                {
                    "metric": name,
                    "permutations": t.get("permutations"),
                    "n_runs": t.get("n_runs"),
                    "rows": [
                        {
                            **r,
                            "p_text": _p_text(r.get("p_value"), t.get("permutations")),
                        }
                        if isinstance(r, dict)
                        else r
                        for r in t["rows"]
                    ],
                    "path": f"{path}[{i}].rows"
                    if isinstance(value, list)
                    else f"{path}.rows",
                }
            )
            if isinstance(t.get("n_runs"), int) and t["n_runs"] < 12:
                small = t["n_runs"]
    if not out:
        return None
    return Section(
        "permanova",
        "PERMANOVA: partition of the distances between runs",
        lead="Anderson's permutational analysis of variance splits the squared "
        "distances between runs into the part each source explains. Its "
        "p-value is the share of relabellings of one source's levels (within "
        "the levels of the others) that explain at least as much.",
        data={"tables": out, "small": small},
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
        pairs = list(zip(s["mean"], s["sd"], strict=True))
        return (
            [None if m is None or d is None else m - d for m, d in pairs],
            [None if m is None or d is None else m + d for m, d in pairs],
        )
    return None, None


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _remaining_text(summ: dict[str, Any], last_epoch: Any) -> dict[str, str]:
    """The "left of the start (or peak)" cell: the share, what it is a share of.

    Returns ``{"left": main text, "left_note": small text}``. A share of the
    peak says which epoch peaked; a curve that peaks at the last epoch has
    shrunk by nothing, so the cell says it grew instead of "100% of the peak".
    """
    remaining = summ.get("remaining")
    if not isinstance(remaining, (int, float)) or remaining != remaining:
        return {"left": "–", "left_note": ""}
    iv = summ.get("remaining_interval") or [None, None]
    interval = (
        f"[{_pct(iv[0])}, {_pct(iv[1])}]" if len(iv) == 2 and None not in iv else ""
    )
    if summ.get("reference_kind") != "peak":
        return {"left": _pct(remaining), "left_note": interval}
    initial = summ.get("initial")
    # ``initial`` is in distance form (1 - overlap), so "alike" fits both.
    start = (
        "nearly alike at the start"
        if isinstance(initial, (int, float)) and initial < 0.01
        else "closer at the start"
    )
    peak_at = summ.get("reference_epoch")
    if peak_at is None or peak_at == last_epoch:
        return {"left": "grew", "left_note": f"{start}, most apart at the last epoch"}
    return {
        "left": f"{_pct(remaining)} of the peak",
        "left_note": f"{interval} {start}, most apart at epoch {peak_at}".strip(),
    }


def _coinciding(lines: list[fg.Series]) -> list[tuple[fg.Series, fg.Series]]:
    """Pairs of lines that would hide each other: within 1.5% of the panel's
    span at every epoch (the later line of a pair is the one to restyle)."""
    arrays = [np.array([np.nan if v is None else v for v in s.y], float) for s in lines]
    finite = [a[np.isfinite(a)] for a in arrays]
    values = np.concatenate(finite) if finite else np.array([])
    if values.size == 0:
        return []
    span = max(float(values.max() - values.min()), 1e-12)
    out = []
    for j in range(len(lines)):
        for i in range(j):
            a, b = arrays[i], arrays[j]
            if a.shape != b.shape or lines[i].x != lines[j].x:
                continue
            both = np.isfinite(a) & np.isfinite(b)
            if both.any() and np.max(np.abs(a[both] - b[both])) <= 0.015 * span:
                out.append((lines[i], lines[j]))
                break
    return out


def _dynamics_caption(kinds: list[str]) -> str:
    """Figure 3's caption, naming only the kinds of pairs the data has."""
    single = [k for k in SOURCE_WORDS if k in kinds]
    which = []
    if single:
        which.append(
            "in one source of randomness only ("
            + join_words([SOURCE_WORDS[k] for k in single], "or")
            + ")"
        )
    if "all" in kinds:
        which.append("in every source")
    if "perturb" in kinds:
        which.append("(dashed) by a one-ulp perturbation of one initial weight")
    text = (
        "Each metric between pairs of runs after every epoch (epoch 0: the initial "
        "values, before any training)"
    )
    if which:
        text += ", for pairs that differ " + join_words(which, "or")
    text += (
        "; the line is the mean over the pairs, the band its 95% bootstrap "
        "interval. A line moving towards 'same' (0 for distances, 1 for "
        "overlaps) means training washes the difference out; one moving away "
        "means training makes the runs drift apart."
    )
    if any(k in kinds for k in ("order", "noise", "split")):
        text += " Pairs that share their initial values start the same."
    return text


@section("dynamics", "dynamics")
def dynamics(report: dict[str, Any]) -> Section | None:
    """Instability per epoch: does training wash the initial difference out?

    Reads ``dynamics``: ``{"design", "group", "epochs", "series": [{"group":
    label, "kind": "init" | "order" | "all" | "perturb", "metric", "epochs",
    "mean", "lo", "hi", "n_pairs", "summary": {"initial", "final",
    "remaining", "remaining_interval", "epochs_to_half", "stopped"}}]}``
    (a band from ``lo``/``hi``, ``interval`` pairs or ``mean ± sd``), or a
    dict ``{metric: {group: series}}``.
    """
    value = report.get("dynamics")
    series = [s for s in _series_list(value) if isinstance(s, dict) and s.get("epochs")]
    if not series:
        return None
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for s in series:
        by_metric.setdefault(str(s.get("metric", "?")), []).append(s)
    panels = []
    rows = []
    coinciding: dict[tuple[str, str], list[str]] = {}
    for metric, group in by_metric.items():
        info = metric_info(metric)
        lines = []
        for i, s in enumerate(group):
            lo, hi = _band(s)
            label = str(s.get("group", s.get("label", f"series {i}")))
            color = _source_color(s.get("kind", label), i)
            lines.append(
                fg.Series(
                    label,
                    s["epochs"],
                    s["mean"],
                    lo,
                    hi,
                    color,
                    dashed=s.get("kind") == "perturb",
                )
            )
            summ = s.get("summary") or {}
            if summ:
                rows.append(
                    {
                        "metric": info.name,
                        "label": label,
                        "n_pairs": s.get("n_pairs"),
                        "start": s["mean"][0],
                        "end": s["mean"][-1],
                        "remaining": summ.get("remaining"),
                        "interval": summ.get("remaining_interval"),
                        "half": summ.get("epochs_to_half"),
                        "stopped": summ.get("stopped"),
                        "reference": summ.get("reference_kind"),
                        "initial": summ.get("initial"),
                        **_remaining_text(summ, s["epochs"][-1]),
                    }
                )
        for a, b in _coinciding(lines):
            b.dotted = not b.dashed
            coinciding.setdefault((a.label, b.label), []).append(info.name)
        ylim = (
            (info.low, info.high)
            if info.low is not None and info.high is not None
            else None
        )
        panels.append(fg.LinePanel(info.name, "epoch", info.alike, lines, ylim))
    path = (
        "dynamics.series"
        if isinstance(value, dict) and "series" in value
        else "dynamics"
    )
    fig = FigureBlock(
        fg.band_lines(panels),
        "Line charts of the difference between runs after each epoch.",
        _dynamics_caption([str(s.get("kind") or "") for s in series])
        + "".join(
            f" The lines '{a}' and '{b}' lie on top of each other in the "
            f"{join_words(names)} panel{'s' if len(names) > 1 else ''} "
            f"('{b}' is drawn dotted over '{a}')."
            for (a, b), names in coinciding.items()
        ),
        [f"{path}[*].mean", f"{path}[*].lo", f"{path}[*].hi"],
    )
    return Section(
        "dynamics",
        "Over training: does the difference wash out?",
        lead="The same pairs of runs measured from their initial values to the last "
        "epoch.",
        data={
            "rows": rows,
            "path": path,
            "group": value.get("group") if isinstance(value, dict) else None,
        },
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


def _rho(entry: dict[str, Any]) -> dict[str, Any]:
    rho = entry.get("spearman") or entry.get("rank_correlation") or {}
    return {"rho": rho} if isinstance(rho, (int, float)) else rho


def frequency_reading(entry: dict[str, Any]) -> str | None:
    """One sentence saying whether rare entities were less stable here."""
    rho = _rho(entry).get("rho")
    if rho is None:
        return None
    info = metric_info(entry.get("metric", "knn_overlap"))
    lo, hi = _interval(_rho(entry))
    # Stability rises with frequency when a similarity rises or a distance falls.
    sign = rho if info.more_alike != "lower" else -rho
    sure = lo is not None and hi is not None and (lo > 0 or hi < 0)
    what = str(entry.get("entity") or "entitie")
    if not sure:
        return (
            f"For {what}s, {info.name} shows no clear relation to training "
            f"frequency (Spearman ρ = {rho:.2f})."
        )
    size = abs(rho)
    strength = (
        "very weak"
        if size < 0.1
        else "weak"
        if size < 0.3
        else "moderate"
        if size < 0.5
        else "strong"
    )
    if size < 0.1:
        trend = "rises slightly" if sign > 0 else "falls slightly"
        return (
            f"Frequency hardly matters for {what}s here: {info.name} {trend} "
            f"with training frequency (very weak rank correlation, Spearman "
            f"ρ = {rho:.2f})."
        )
    if sign > 0:
        return (
            f"Rare {what}s are less stable: {info.name} rises with training "
            f"frequency ({strength} rank correlation, Spearman ρ = {rho:.2f})."
        )
    return (
        f"Rare {what}s are not less stable here: {info.name} falls as training "
        f"frequency rises ({strength} rank correlation, Spearman ρ = "
        f"{rho:.2f})."
    )


# The same names as in the attribution and dynamics figures, for the same kinds.
_KIND_LABELS = {
    "all": "every source",
    "init": "init only",
    "order": "order only",
    "noise": "noise only",
    "split": "split only",
}


@section("frequency", "frequency")
def frequency(report: dict[str, Any]) -> Section | None:
    """Per-entity stability against how often the entity appears in training.

    Reads ``frequency`` (one entry or a list): ``{"entity": "item" | "user",
    "pairs_kind": "all" | "init" | "order", "metric": "knn_overlap@10",
    "group": label, "bins": [{"label": "2–3", "lo": 2, "hi": 3, "n": 1200,
    "mean": 0.2, "interval": [lo, hi]}], "spearman": {"rho": 0.6, "p_value":
    1e-9, "interval": [lo, hi], "n": 9066}, "n_pairs": int}``. One panel per
    entity and metric, one line per kind of pair.
    """
    value = report.get("frequency")
    entries = value if isinstance(value, list) else [value] if value else []
    panels: dict[tuple[str, str], dict[str, Any]] = {}
    paths = []
    readings = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not e.get("bins"):
            continue
        bins = e["bins"]
        metric = str(e.get("metric", "knn_overlap"))
        entity = str(e.get("entity") or "")
        kind = str(e.get("pairs_kind") or "")
        info = metric_info(metric)
        key = (entity, metric)
        if key not in panels:
            panels[key] = {
                "info": info,
                "bins": [_bin_label(b, j) for j, b in enumerate(bins)],
                "counts": [b["n"] for b in bins]
                if all("n" in b for b in bins)
                else None,
                "series": [],
                "notes": [],
            }
        panel = panels[key]
        if len(bins) != len(panel["bins"]):
            continue
        ivs = [_interval(b) for b in bins]
        have_iv = any(a is not None for a, _ in ivs)
        label = _KIND_LABELS.get(kind, kind or "pairs of runs")
        panel["series"].append(
            fg.BinSeries(
                label,
                [b.get("mean") for b in bins],
                [a for a, _ in ivs] if have_iv else None,
                [b for _, b in ivs] if have_iv else None,
                _source_color(kind, len(panel["series"])) if kind else None,
            )
        )
        rho = _rho(e)
        if rho.get("rho") is not None:
            panel["notes"].append(
                f"ρ = {rho['rho']:.2f}" + (f" ({kind})" if kind else "")
            )
        base = "frequency" if not isinstance(value, list) else f"frequency[{i}]"
        if not isinstance(value, list):
            paths += [f"{base}.bins", f"{base}.spearman"]
        # Displacement is not normalised per entity, so only the neighbour
        # overlap reads as "more or less stable"; one sentence per entity.
        if metric.startswith("knn") and kind in ("", "all"):
            reading = frequency_reading(e)
            if reading:
                readings.append(reading)
    if not panels:
        return None
    if isinstance(value, list):
        paths = ["frequency[*].bins", "frequency[*].spearman"]
    drawn = []
    for (entity, _), p in panels.items():
        info = p["info"]
        noun = f"{entity}s: " if entity else ""
        drawn.append(
            fg.BinPanel(
                f"{noun}{info.name}\n{info.alike}",
                p["bins"],
                p["series"],
                counts=p["counts"],
                ylabel=f"mean {info.name}",
                note="Spearman " + ", ".join(p["notes"]) if p["notes"] else "",
                bounds=(info.low, info.high),
            )
        )
    kinds = [str(e.get("pairs_kind") or "") for e in entries if isinstance(e, dict)]
    named = [f"'{_KIND_LABELS[k]}'" for k in _KIND_LABELS if k in kinds]
    pairs = (
        f"for pairs of runs that differ in {join_words(named, 'or')} (as in "
        "Figures 2 and 3)"
        if named
        else "for pairs of runs"
    )
    displacement = any(
        str(e.get("metric", "")).startswith("relative_displacement")
        for e in entries
        if isinstance(e, dict)
    )
    fig = FigureBlock(
        fg.binned_chart(drawn, xlabel="training interactions per entity (bin)"),
        "Line charts of per-entity stability by frequency bin.",
        "Each entity's stability between pairs of runs against how often it occurs "
        f"in the training data, in bins of doubling width, {pairs}; each point is "
        "the mean over the entities in the bin (n under the bin) with its 95% "
        "bootstrap interval. The rank correlations (Spearman ρ) use every entity, "
        "not the bins."
        + (
            " Relative displacement: how far an entity's vector moves between two "
            "runs after the best rotation and scale of one table onto the other, "
            "in units of the vector's own length (0 = same vector, about 1.41 = "
            "unrelated vectors, 2 = opposite)."
            if displacement
            else ""
        ),
        paths,
    )
    return Section(
        "frequency",
        "Stability against frequency",
        lead="Are rare entities the least stable? One seen a few times in training "
        "gets few updates, so its vector stays near its random start: the same "
        "in runs that share the start, unrelated in runs that do not.",
        data={"readings": readings},
        figures=[fig],
    )


# -- trade-off ---------------------------------------------------------------------


def _tradeoff_from_groups(report: dict[str, Any]) -> dict[str, Any] | None:
    groups = report.get("groups") or []
    if len(groups) < 2:
        return None
    levels = []
    stability = None
    for g, label in zip(groups, group_labels(groups), strict=True):
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
    return {"accuracy": "test_rmse", "stability": [stability], "levels": levels}


def _sd(stat: Any) -> float | None:
    return stat.get("sd") if _is_stat(stat) else None


def _level_names(members: list[dict[str, Any]]) -> tuple[dict[int, str], str]:
    """Short point labels: only the factors that vary within the design.

    Returns ``({id(level): label}, common)`` where ``common`` lists the
    factors every level of the design shares (``"optimizer=adam"``), for the
    panel title. Levels without ``factors`` keep their own labels.
    """
    factors = [lv.get("factors") for lv in members]
    if len(members) < 2 or not all(isinstance(f, dict) and f for f in factors):
        return {}, ""
    keys = [k for k in factors[0] if all(k in f for f in factors)]
    varying = [k for k in keys if len({repr(f[k]) for f in factors}) > 1]
    if not varying:
        return {}, ""
    common = ", ".join(f"{k}={factors[0][k]}" for k in keys if k not in varying)
    names = {
        id(lv): ", ".join(f"{k}={f[k]}" for k in varying)
        for lv, f in zip(members, factors, strict=True)
    }
    return names, common


@section("tradeoff", "tradeoff")
def tradeoff(report: dict[str, Any]) -> Section | None:
    """Accuracy against stability per hyperparameter level.

    Reads ``tradeoff``: ``{"accuracy": "test_rmse", "stability":
    ["knn_overlap@10", "prediction_disagreement"], "levels": [{"label",
    "design", "n_runs", "test_rmse": stat, <metric>: stat,
    "non_dominated_by": {metric: bool}}]}`` where a stat is a number or
    ``{"mean", "sd", "interval"}``; levels are compared within their design.
    Without it, the groups themselves are the levels (each group's test RMSE
    and k-NN overlap) and the non-dominated ones are computed here.
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
    designs: dict[str, list[dict[str, Any]]] = {}
    for lv in value["levels"]:
        designs.setdefault(str(lv.get("design") or ""), []).append(lv)
    x_info = metric_info(x_key, "function")
    panels = []
    for design, members in designs.items():
        names, common = _level_names(members)
        for y_key in ys:
            levels = [
                lv
                for lv in members
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
            for lv, flag in zip(levels, computed, strict=True):
                front = (lv.get("non_dominated_by") or {}).get(y_key, flag)
                points.append(
                    fg.Point(
                        names.get(id(lv), str(lv.get("label"))),
                        _mean(lv[x_key]),
                        _mean(lv[y_key]),
                        _sd(lv[x_key]),
                        _sd(lv[y_key]),
                        bool(front),
                    )
                )
            title = (
                f"design {design}{f' ({common})' if common else ''}: " if design else ""
            )
            panels.append(
                fg.ScatterPanel(
                    f"{title}{y_info.name}",
                    points,
                    xlabel=f"{x_info.name} (lower is more accurate)",
                    ylabel=f"{y_info.name} ({y_info.alike})",
                    better="better ↙" if lower_y else "better ↖",
                    ylim=(y_info.low, y_info.high) if y_info.high is not None else None,
                )
            )
    if not panels:
        return None
    paths = (
        [f"groups[*].function.{x_key}"] + [f"groups[*].geometry.{y}" for y in ys]
        if derived
        else [f"tradeoff.levels[*].{k}" for k in (x_key, *ys)]
    )
    n_designs = len({p.title.split(":")[0] for p in panels})
    scales = (
        f" Each row is one design with its own {x_info.name} axis (the x scales "
        "differ between rows): compare points within a row, not across rows."
        if n_designs > 1
        else ""
    )
    fig = FigureBlock(
        fg.tradeoff_scatter(panels),
        "Scatter plots of accuracy against stability, one point per setting.",
        f"Accuracy ({x_info.name}) against stability for each hyperparameter "
        "setting, whiskers ± 1 sd (over runs for the RMSE, over pairs of runs for "
        f"stability). Filled points: {fg.FRONT_LABELS[0]}; open points: "
        f"{fg.FRONT_LABELS[1]}." + scales,
        paths,
    )
    return Section(
        "tradeoff",
        "Stability against accuracy",
        lead="Which settings buy stable embeddings, and what they cost in accuracy.",
        data={"derived": derived},
        figures=[fig],
    )


# -- the reference article's examples ------------------------------------------------


@section("article_examples", "article_examples")
def article_examples(report: dict[str, Any]) -> Section | None:
    """The article's examples 2 and 3, as written and corrected.

    Reads ``article_examples`` (:func:`embvar.analysis.article.article_examples`):
    ``{"settings", "example2": {"as_written", "corrected"}, "example3":
    {"as_written": {"consecutive_mean_abs_difference": [...],
    "start_equals_previous_end": [...]}, "corrected": {...}},
    "findings": [str]}``.
    """
    ex = report.get("article_examples")
    if not isinstance(ex, dict):
        return None
    findings = [str(f) for f in ex.get("findings") or []]
    figs = []
    ex3 = ex.get("example3") or {}
    lines = []
    for key, label, color in (
        ("as_written", "as written: one model, refitted", fg.SOURCE_COLORS["perturb"]),
        ("corrected", "corrected: a fresh model per seed", fg.SOURCE_COLORS["init"]),
    ):
        diffs = (ex3.get(key) or {}).get("consecutive_mean_abs_difference") or []
        if diffs:
            lines.append(
                fg.Series(label, list(range(2, len(diffs) + 2)), diffs, color=color)
            )
    if lines:
        figs.append(
            FigureBlock(
                fg.band_lines(
                    [
                        fg.LinePanel(
                            "example 3: run k against run k − 1",
                            "run k (seed k − 1)",
                            "mean absolute difference of the weights",
                            lines,
                            ylim=(0, None),
                        )
                    ]
                ),
                "Line chart of the difference between consecutive runs, as written and "
                "corrected.",
                "The measure the article prints (mean absolute difference of the "
                "embedding weights) between each run and the one before. As written, "
                "every run continues training the previous one, so what the line shows "
                "is one run converging, not the spread between seeds; corrected, each "
                "seed starts from a fresh model.",
                [
                    "article_examples.example3.as_written.consecutive_mean_abs_difference",
                    "article_examples.example3.corrected.consecutive_mean_abs_difference",
                ],
            )
        )
    if not (findings or figs):
        return None
    return Section(
        "article_examples",
        "The reference article's examples, rerun",
        lead="The article behind this project illustrates its claims with small "
        "Keras programs. Run as written, two of them measure something else "
        "than they say.",
        data={"findings": findings, "settings": ex.get("settings") or {}},
        figures=figs,
    )
