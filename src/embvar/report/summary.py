"""Plain sentences generated from a report's numbers.

The terminal summary and the HTML report both use these, so they always say
the same thing. The answer comes first (how much the runs differ, then why,
then what it means for accuracy), the bookkeeping last. Each sentence is
written only where the report holds its numbers.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["summary_sentences", "main_group", "determinism_sentences"]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _share(x: float) -> str:
    """A percentage, with one decimal under 10% (1.2%, not 1%)."""
    return f"{100 * x:.1f}%" if abs(x) < 0.1 else _pct(x)


def main_group(report: dict[str, Any]) -> dict[str, Any] | None:
    """The group with the most runs (the study's seed replicates)."""
    groups = report.get("groups") or []
    return max(groups, key=lambda g: g.get("n_runs", 0)) if groups else None


def _stat(
    level: dict[str, Any] | None, prefix: str
) -> tuple[str, dict[str, Any]] | None:
    """The first metric of a level whose name starts with ``prefix``."""
    for key, value in (level or {}).items():
        if (
            key.startswith(prefix)
            and isinstance(value, dict)
            and value.get("mean") is not None
        ):
            return key, value
    return None


def _setting(label: str) -> str:
    return "the default settings" if label == "defaults" else label


def _reseeded(g: dict[str, Any]) -> dict[str, Any] | None:
    """The group's figures over pairs that differ in every seed, if any."""
    r = g.get("reseeded")
    if isinstance(r, dict) and (r.get("n_pairs") or 0) > 0:
        return r
    return None


def _figures(g: dict[str, Any], level: str) -> dict[str, Any] | None:
    """A level's pair figures: over reseeded pairs where the group has them."""
    r = _reseeded(g)
    return (r or g).get(level)


def _sources(names: list[str]) -> str:
    names = [str(n) for n in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _moved(g: dict[str, Any]) -> dict[str, Any] | None:
    """The group's training movement where its item tables barely moved."""
    m = g.get("training_movement")
    if isinstance(m, dict) and m.get("barely_moved") and m.get("mean") is not None:
        return m
    return None


def _unmoved_sentence(g: dict[str, Any], m: dict[str, Any]) -> str:
    proc = _stat(_figures(g, "geometry"), "procrustes")
    apart = f" (Procrustes distance {proc[1]['mean']:.3f})" if proc is not None else ""
    return (
        f"With {_setting(g['label'])}, the item embeddings barely left their random "
        f"initial values: training moved each run's item table by "
        f"{_pct(m['mean'])} on average (relative Frobenius distance from epoch 0; "
        f"below {_pct(m.get('threshold', 0.5))} a table is still mostly its random "
        f"start), so how far apart its runs are{apart} measures their random "
        "initialisations, not what training learned: these embeddings are "
        "untrained, not unstable."
    )


def _how_much(g: dict[str, Any]) -> list[str]:
    out = []
    moved = _moved(g)
    if moved is not None:
        out.append(_unmoved_sentence(g, moved))
    reseeded = _reseeded(g)
    knn = _stat(_figures(g, "geometry"), "knn_overlap")
    proc = _stat(_figures(g, "geometry"), "procrustes")
    parts = []
    if knn:
        k = knn[0].partition("@")[2] or "k"
        parts.append(
            f"an item keeps on average {_pct(knn[1]['mean'])} of its {k} nearest "
            "neighbours from one run to another"
        )
    if proc:
        parts.append(
            f"after the best rotation and scaling the Procrustes distance between "
            f"two runs averages {proc[1]['mean']:.3f} (0 = the same shape, 1 = no "
            "shared structure)"
        )
    if parts and moved is None:
        if reseeded is not None:
            names = reseeded.get("sources") or []
            seeds = _sources([f"the {n}" for n in names]) + " seed"
            who = (
                "two runs trained with new seeds (the "
                f"{reseeded['n_pairs']} pairs of its {g['n_runs']} runs that "
                f"differ in {'both ' if len(names) == 2 else ''}{seeds})"
            )
        elif isinstance(g.get("reseeded"), dict):
            who = (
                f"{g['n_runs']} runs that differ only in their seeds (over all "
                f"{len(g.get('pairs') or []) or 'their'} pairs: no pair differs in "
                "every seed)"
            )
        else:
            who = f"{g['n_runs']} runs that differ only in their seeds"
        out.append(
            f"With {_setting(g['label'])}, {who} learn different item embeddings: "
            + ", and ".join(parts)
            + "."
        )
    top = _stat(_figures(g, "function"), "topk_overlap")
    rmse = (g.get("function") or {}).get("test_rmse") or {}
    fparts = []
    if top:
        k = top[0].partition("@")[2] or "k"
        fparts.append(
            f"a user keeps {_pct(top[1]['mean'])} of their top-{k} recommendations"
        )
    if rmse.get("mean") is not None and rmse.get("sd") is not None:
        steady = rmse["sd"] < 0.01 * rmse["mean"]
        fparts.append(
            f"test RMSE is {rmse['mean']:.4f} ± {rmse['sd']:.4f} (sd)"
            + (", so accuracy barely moves" if steady else "")
        )
    if fparts:
        out.append("What the model does: " + ", and ".join(fparts) + ".")
    return out


def _across(report: dict[str, Any]) -> list[str]:
    """Most and least stable settings, over reseeded pairs where a group has
    them; groups whose embeddings barely moved are named apart, not ranked."""
    groups = [
        g for g in report.get("groups") or [] if _stat(_figures(g, "geometry"), "knn")
    ]
    if len(groups) < 2:
        return []
    out = []
    unmoved = [g for g in groups if _moved(g) is not None]
    if unmoved:
        threshold = _pct(_moved(unmoved[0]).get("threshold", 0.5))  # type: ignore[union-attr]
        if len(unmoved) <= 3:
            names = _sources([_setting(g["label"]) for g in unmoved])
            how = _sources([_pct(_moved(g)["mean"]) for g in unmoved])  # type: ignore[index]
            which = f"With {names}"
        else:
            # Too many labels for a sentence: the count and the range.
            moved = [_moved(g)["mean"] for g in unmoved]  # type: ignore[index]
            which = f"In {len(unmoved)} of the {len(groups)} settings"
            how = f"{_pct(min(moved))} to {_pct(max(moved))}"
        out.append(
            f"{which}, the item embeddings barely moved from their random "
            f"initial values (training moved the tables by {how}; under "
            f"{threshold} counts as barely), so their neighbourhoods say they are "
            "untrained, not that they are unstable; they are left out of the "
            "comparison of settings."
        )
    ranked = [g for g in groups if _moved(g) is None]

    def overlap(x: dict[str, Any]) -> float:
        return _stat(_figures(x, "geometry"), "knn")[1]["mean"]  # type: ignore[index]

    def kept(x: dict[str, Any]) -> str:
        note = "" if _reseeded(x) is not None or "reseeded" not in x else ", all pairs"
        return f"{_pct(overlap(x))} kept{note}"

    if len(ranked) < 2:
        return out
    best = max(ranked, key=overlap)
    worst = min(ranked, key=overlap)
    if best is worst or math.isclose(overlap(best), overlap(worst)):
        return out
    pairs = (
        " between runs that differ in every seed"
        if any(_reseeded(g) is not None for g in (best, worst))
        else ""
    )
    return out + [
        f"Across settings, neighbourhoods{pairs} are most stable with "
        f"{_setting(best['label'])} ({kept(best)}) and least with "
        f"{_setting(worst['label'])} ({kept(worst)})."
    ]


def _why(report: dict[str, Any]) -> list[str]:
    """Which source the difference comes from, where the study attributed it."""
    att = report.get("attribution")
    if not isinstance(att, dict):
        return []
    out = []
    # Geometry: pairs that differ in one source only, against every source.
    for entry in att.get("distance") or []:
        by = {
            b.get("source"): b
            for b in entry.get("by_source") or []
            if isinstance(b, dict) and b.get("mean") is not None
        }
        every = by.pop("all", None)
        metric = str(entry.get("metric", ""))
        if not by or every is None or not metric.startswith("procrustes"):
            continue
        parts = [f"the {src} seed alone {by[src]['mean']:.3f}" for src in by]
        top = max(by, key=lambda src: by[src]["mean"])
        ratio = by[top]["mean"] / every["mean"] if every["mean"] > 0 else 0.0
        verdict = (
            f": the {top} seed alone makes nearly all of the difference"
            if ratio >= 0.9 and len(by) > 1
            else ""
        )
        out.append(
            "Where the difference comes from: runs that differ in every seed are "
            f"{every['mean']:.3f} apart (Procrustes distance), runs that differ in "
            + " and ".join(parts)
            + verdict
            + "."
        )
        out += _not_additive(att, by, every, top, metric)
        break
    # The group's mean mixes pairs that share some seeds with full reseeds
    # (unless the headline already counts only pairs that differ in every seed).
    main = main_group(report)
    headline_reseeded = main is not None and _reseeded(main) is not None
    for entry in [] if headline_reseeded else att.get("distance") or []:
        metric = str(entry.get("metric", ""))
        every = next(
            (
                b
                for b in entry.get("by_source") or []
                if isinstance(b, dict)
                and b.get("source") == "all"
                and b.get("mean") is not None
            ),
            None,
        )
        if metric.startswith("knn_overlap") and every is not None:
            k = metric.partition("@")[2] or "k"
            out.append(
                f"Between two runs that differ in every seed, an item keeps "
                f"{_pct(every['mean'])} of its {k} nearest neighbours (the "
                "group's average above also counts pairs that share a seed)."
            )
            break
    # A scalar outcome's variance, only where a source's interval excludes 0.
    for entry in att.get("scalar") or []:
        comps = [
            c
            for c in entry.get("components") or []
            if isinstance(c, dict)
            and c.get("share") is not None
            and c.get("source") not in ("residual", "error")
        ]
        sure = [
            c
            for c in comps
            if (c.get("interval") or [None])[0] not in (None, 0)
            and c["interval"][0] > 0
        ]
        if sure:
            top = max(sure, key=lambda c: c["share"])
            lo, hi = top["interval"]
            outcome = str(entry.get("outcome", "the outcome")).replace("_", " ")
            outcome = outcome.replace("rmse", "RMSE")
            spread = _spread(entry)
            out.append(
                f"The {top['source']} seed accounts for {_pct(top['share'])} of "
                f"the variance of {outcome} (95% interval {_pct(lo)}–{_pct(hi)})"
                + (
                    f", a share of a small spread: {outcome} has an sd of "
                    f"{spread[1]:.2g} around its mean {spread[0]:.4f} across "
                    "these runs"
                    if spread is not None and spread[1] < 0.01 * abs(spread[0])
                    else f"; its sd across these runs is {spread[1]:.2g}"
                    if spread is not None
                    else ""
                )
                + "."
            )
        break
    for entry in att.get("perturbation") or []:
        if (
            isinstance(entry, dict)
            and entry.get("ratio") is not None
            and str(entry.get("metric", "")).startswith("procrustes")
        ):
            ratio = float(entry["ratio"])
            if ratio >= 0.01:
                ends = f"ends {_pct(ratio)} as far away as a new seed."
            elif ratio == 0:
                ends = (
                    "leaves no difference a distance can measure after training "
                    "(0 to float64 precision)"
                )
            else:
                ends = f"ends only {ratio:.1e} times as far away as a new seed"
            if ratio < 0.01:
                ends += ": training here does not amplify a tiny change into a new run."
            out.append(
                "Moving one initial weight by one unit in the last place " + ends
            )
            break
    return out


def _not_additive(
    att: dict[str, Any],
    by: dict[str, dict[str, Any]],
    every: dict[str, Any],
    top: str,
    metric: str,
) -> list[str]:
    """Say what a source does alone when PERMANOVA gives it almost no share.

    A source whose one-source pairs are at least 10% as far apart as the
    every-source pairs, but whose PERMANOVA share is under 10%, changes runs
    in a way that is not the same for every level of the other sources: the
    additive model counts that as interaction, pooled into the residual.
    """
    rows: dict[str, dict[str, Any]] = {}
    for p in att.get("permanova") or []:
        if isinstance(p, dict) and str(p.get("metric", "")) == metric:
            rows = {
                str(r.get("source")): r
                for r in p.get("rows") or []
                if isinstance(r, dict) and r.get("share") is not None
            }
            break
    knn = {}
    for entry in att.get("distance") or []:
        if str(entry.get("metric", "")).startswith("knn_overlap"):
            k = str(entry["metric"]).partition("@")[2] or "k"
            knn = {
                b.get("source"): (b["mean"], k)
                for b in entry.get("by_source") or []
                if isinstance(b, dict) and b.get("mean") is not None
            }
            break
    out = []
    for src in by:
        fixed = [s for s in by if s != src]
        if src == top or src not in rows or every["mean"] <= 0:
            continue
        if by[src]["mean"] < 0.1 * every["mean"] or rows[src]["share"] >= 0.1:
            continue
        held = _sources(fixed)
        kept = (
            f"; an item keeps {_pct(knn[src][0])} of its {knn[src][1]} nearest "
            "neighbours"
            if src in knn
            else ""
        )
        resid = rows.get("residual", {}).get("share")
        out.append(
            f"Yet the {src} seed alone ({held} seed fixed) still leaves runs "
            f"{by[src]['mean']:.3f} apart (Procrustes distance{kept}). PERMANOVA "
            f"gives the {src} seed only {_share(rows[src]['share'])} of the "
            f"variation because its effect is not additive across {held} seeds "
            f"(a new {src} seed moves each {held} seed's run its own way), so it "
            "is counted as interaction, in the residual"
            + (f" ({_share(resid)})" if resid is not None else "")
            + "."
        )
    return out


def _spread(entry: dict[str, Any]) -> tuple[float, float] | None:
    """Mean and sd (ddof=1) of a scalar outcome's values, where given."""
    values = [
        float(v)
        for v in entry.get("values") or []
        if isinstance(v, (int, float)) and math.isfinite(v)
    ]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, sd


def _convergence(report: dict[str, Any]) -> list[str]:
    """Say so when a function-level metric was still changing at the end.

    From the dynamics: a series whose last epoch still changed it by more
    than its tolerance (``summary.stopped`` False) and whose metric is at
    the function level; the every-source pairs are preferred, then the
    largest change.
    """
    dyn = report.get("dynamics")
    if not isinstance(dyn, dict):
        return []
    from embvar.report.methods import metric_info

    moving = []
    for s in dyn.get("series") or []:
        summ = (s or {}).get("summary") or {}
        if summ.get("stopped") is not False or summ.get("last_change") is None:
            continue
        try:
            info = metric_info(str(s.get("metric", "")))
        except (KeyError, ValueError):
            continue
        if info.level == "function":
            moving.append((s.get("kind") == "all", abs(summ["last_change"]), s, info))
    if not moving:
        return []
    _, change, s, info = max(moving, key=lambda m: (m[0], m[1]))
    tol = (s.get("summary") or {}).get("tolerance", 0.01)
    epochs = s.get("epochs") or dyn.get("epochs") or []
    budget = f" ({epochs[-1]} epochs here)" if epochs else ""
    who = (
        "runs that differ in every seed"
        if s.get("kind") == "all"
        else f"pairs of runs that differ in {s.get('kind')} only"
        if s.get("kind")
        else "the pairs of runs"
    )
    return [
        "Training had not converged: in the last epoch the "
        f"{info.name} between {who} still changed by {_pct(change)} (more than "
        f"{_pct(tol)}), so the function-level figures depend on the epoch "
        f"budget{budget}."
    ]


def _frequency(report: dict[str, Any]) -> list[str]:
    entries = report.get("frequency")
    entries = entries if isinstance(entries, list) else [entries] if entries else []
    for e in entries:
        if (
            isinstance(e, dict)
            and e.get("entity", "item") == "item"
            and str(e.get("metric", "")).startswith("knn")
        ):
            from embvar.report.sections.analysis import frequency_reading

            reading = frequency_reading(e)
            return [reading] if reading else []
    return []


def _claims(report: dict[str, Any]) -> list[str]:
    claims = report.get("claims")
    if isinstance(claims, dict):
        claims = claims.get("claims", list(claims.values()))
    if not isinstance(claims, list) or not claims:
        return []
    counts: dict[str, int] = {}
    for c in claims:
        if isinstance(c, dict) and c.get("verdict"):
            counts[str(c["verdict"])] = counts.get(str(c["verdict"]), 0) + 1
    if not counts:
        return []
    parts = ", ".join(
        f"{n} {verdict}" for verdict, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    return [
        f"Of the reference article's {sum(counts.values())} claims tested here: "
        f"{parts}."
    ]


def determinism_sentences(report: dict[str, Any]) -> list[str]:
    """The audit's verdict: from a study's ``determinism`` entry, or the report
    itself when it is an audit's ``determinism.json``."""
    d = report.get("determinism")
    if not isinstance(d, dict):
        d = report if isinstance(report.get("cells"), list) else None
    if d is None:
        return []
    verdict = d.get("verdict")
    if isinstance(verdict, str) and verdict:
        return [verdict]
    if isinstance(verdict, dict):
        return [str(x) for x in verdict.get("sentences") or []]
    return [str(x) for x in d.get("sentences") or []]


def _runs(report: dict[str, Any]) -> list[str]:
    runs = report.get("runs")
    if not isinstance(runs, dict) or "planned" not in runs:
        return []
    complete = (
        runs.get("done", 0) == runs["planned"]
        and not runs.get("diverged")
        and not runs.get("failed")
        and not runs.get("unfinished")
    )
    if complete:
        # Every planned run finished: the report's header says so already.
        return []
    out = [
        f"{runs.get('done', 0)} of {runs['planned']} planned runs finished"
        + (f", {len(runs['diverged'])} diverged" if runs.get("diverged") else "")
        + (f", {len(runs['failed'])} failed" if runs.get("failed") else "")
        + "."
    ]
    diverged = runs.get("diverged") or []
    if diverged:
        named = [_diverged_run(r) for r in diverged[:5]]
        more = f", and {len(diverged) - 5} more" if len(diverged) > 5 else ""
        out.append(
            "Diverged (the loss or the embeddings became NaN or infinite; left out "
            f"of every comparison): {'; '.join(named)}{more}."
        )
    return out


def _diverged_run(run: dict[str, Any]) -> str:
    factors = ", ".join(f"{k}={v}" for k, v in (run.get("factors") or {}).items())
    where = f" at epoch {run.get('epoch')}, step {run.get('step')}"
    return f"run {run.get('run_id')}" + (f" ({factors})" if factors else "") + where


def summary_sentences(report: dict[str, Any]) -> list[str]:
    """Return a few sentences that answer "how much do the embeddings vary, and why".

    Parameters
    ----------
    report : dict
        A ``report.json`` document (or one being built).

    Returns
    -------
    sentences : list of str
        How much (main group), across settings, why (attribution), the
        claims' verdicts, the determinism verdict, then the runs' status;
        each only where the report has its numbers.
    """
    g = main_group(report)
    out: list[str] = []
    if g is None:
        if report.get("runs") is not None:
            out.append(
                "No group has two finished runs yet, so nothing can be compared."
            )
    else:
        out += _how_much(g)
    out += _why(report) + _frequency(report) + _across(report)
    out += _convergence(report)
    out += _claims(report) + determinism_sentences(report)
    return out + _runs(report)
