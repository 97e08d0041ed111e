"""Gather, from a study's runs, what each of the article's claims is decided on.

:func:`article_claims` reads the designs of ``studies/article.toml`` (by
the names in :data:`~embvar.analysis.article_claims.DESIGNS`), builds the
groups and estimates, and returns the ``claims`` section of the report:
``{"set": "article", "claims": [...], "rules": str, "primary_metric": str}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from embvar.analysis import article_claims as ac
from embvar.analysis.attribution import class_samples, permanova
from embvar.analysis.claims import PRIMARY, Estimate, Group
from embvar.analysis.distances import METRICS, as_distance, pairwise_matrix
from embvar.analysis.runs import StudyRuns
from embvar.analysis.sections import _twins, crossed_groups
from embvar.store import RunRecord

__all__ = ["article_claims", "build_group"]

_RULES = (
    "Each part: supported if the 95% bootstrap interval (over seeds) of its effect "
    "lies on the side the claim predicts and clears the equivalence margin; "
    "contradicted if it lies on the other side or inside the margin; inconclusive "
    "otherwise. A claim is supported if all its parts are, contradicted if all are, "
    "else inconclusive; it reports the part that decided it."
)


def build_group(
    runs: StudyRuns,
    records: Sequence[RunRecord],
    *,
    design: str | None = None,
    initial: bool = False,
) -> Group:
    """Return the :class:`Group` of some seed replicates (finished runs)."""
    ids = [r.run_id for r in records]
    curves: dict[str, np.ndarray] = {}
    for key in ("train_rmse", "test_rmse"):
        rows = [
            [h[key] if h[key] is not None else np.nan for h in runs.history(i)]
            for i in ids
        ]
        width = min(len(r) for r in rows) if rows else 0
        curves[key] = np.array([r[:width] for r in rows], dtype=np.float64)
    identical = None
    if initial and len(records) >= 2:
        first = [runs.store.load_snapshot(i, 0)["item_embedding"] for i in ids]
        n = len(ids)
        identical = np.eye(n)
        for a in range(n):
            for b in range(a + 1, n):
                same = np.all(first[a] == first[b], axis=1).mean()
                identical[a, b] = identical[b, a] = same
    return Group(
        label=runs.label(records[0], design),
        run_ids=ids,
        matrices={m: runs.matrix(records, m) for m in METRICS},
        test_rmse=np.array([runs.test_rmse(i) for i in ids]),
        curves=curves,
        initial_identical=identical,
    )


def _groups_by(runs: StudyRuns, design: str, key) -> dict[Any, list[RunRecord]]:
    out: dict[Any, list[RunRecord]] = {}
    for r in runs.in_design(design):
        if not r.spec.get("perturb"):
            out.setdefault(key(r.spec), []).append(r)
    return out


def _diverged(runs: StudyRuns, design: str, key) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for r in runs.in_design(design, include_diverged=True):
        if r.status == "diverged":
            out[key(r.spec)] = out.get(key(r.spec), 0) + 1
    return out


def _seed_evidence(runs: StudyRuns, seed: int) -> dict[str, Any]:
    """C1, C5, C6: class estimates of the crossed seeds design at 3 epochs."""
    crossed = [c for c in crossed_groups(runs) if c["design"] in ac.DESIGNS["C1"]]
    if not crossed:
        return {}
    main = crossed[0]
    records, sources = main["records"], main["sources"]
    if not {"init", "order"} <= set(sources):
        return {}
    levels = StudyRuns.levels(records, sources)
    last = min(max(runs.epochs(r.run_id)) for r in records)
    out: dict[str, Any] = {"also": {m: {} for m in METRICS if m != PRIMARY}}
    ids = tuple(r.run_id for r in records)
    for name, epoch in (("final", None), ("start", 0), ("first", 1)):
        if epoch is not None and epoch > last:
            continue
        emb = [runs.embeddings(r, epoch) for r in records]
        for metric in METRICS:
            M = pairwise_matrix(emb, metric)
            classes = class_samples(as_distance(M, metric), levels, seed=seed)
            target = out if metric == PRIMARY else out["also"][metric]
            for source in ("init", "order"):
                value, samples = classes[source][0], classes[source][1]
                target[f"{source}_{name}"] = Estimate(value, samples, ids)
            if name == "final" and metric == PRIMARY:
                rows = permanova(as_distance(M, metric), levels, seed=seed)["rows"]
                out["permanova_order"] = next(r for r in rows if r["source"] == "order")
                out["reseed"] = classes["all"]

    # The perturbation control.
    twins = _twins(runs, records)
    if twins and "reseed" in out:
        from embvar.analysis.attribution import perturbation_share
        from embvar.analysis.distances import pair_value

        vals = [
            as_distance(
                pair_value(runs.embeddings(t), runs.embeddings(p), PRIMARY), PRIMARY
            )
            for p, t in twins
        ]
        out["perturbation"] = perturbation_share(
            vals, out["reseed"][0], out["reseed"][1], seed=seed
        )
    return out


def article_claims(
    runs: StudyRuns, *, dynamics: dict[str, Any] | None = None, seed: int = 0
) -> dict[str, Any]:
    """Return the verdicts on C1-C7 from the article study's designs.

    Parameters
    ----------
    runs : StudyRuns
    dynamics : dict, optional
        The report's ``dynamics`` section, for the order-only curve of C6.
    seed : int
        Seed of every bootstrap.
    """
    ev = _seed_evidence(runs, seed)
    for s in (dynamics or {}).get("series", []):
        if (
            s.get("kind") == "order"
            and s.get("metric") == PRIMARY
            and dynamics.get("design") in ac.DESIGNS["C6"]
        ):
            ev["order_summary"] = s["summary"]
    claims = [
        ac.c1(ev.get("init_final"), ev.get("init_start"), also=ev.get("also")),
    ]

    # C2: initializer design.
    init_groups = _groups_by(runs, "initializer", lambda s: s["model"]["initializer"])
    claims.append(
        ac.c2(
            {
                k: build_group(runs, v, design="initializer", initial=True)
                for k, v in init_groups.items()
            }
        )
    )

    # C3: learning-rate design.
    lr_groups = _groups_by(
        runs, "learning_rate", lambda s: s["training"]["learning_rate"]
    )
    c3_groups = {
        k: build_group(runs, v, design="learning_rate")
        for k, v in lr_groups.items()
        if len(v) >= 2
    }
    for k, n in _diverged(
        runs, "learning_rate", lambda s: s["training"]["learning_rate"]
    ).items():
        if k in c3_groups:
            c3_groups[k].diverged = n
        else:
            c3_groups[k] = Group(f"learning_rate={k}", [], {}, np.empty(0), diverged=n)
    claims.append(ac.c3(c3_groups))

    # C4: one design per optimizer, each crossed with the data fraction.
    opt: dict[tuple[str, float], Group] = {}
    for design in ac.DESIGNS["C4"]:
        by = _groups_by(
            runs, design, lambda s: (s["training"]["optimizer"], s["data"]["fraction"])
        )
        opt.update(
            {
                k: build_group(runs, v, design=design)
                for k, v in by.items()
                if len(v) >= 2
            }
        )
    claims.append(ac.c4(opt))

    claims.append(
        ac.c5(
            ev.get("order_final"),
            perturbation=ev.get("perturbation"),
            permanova_row=ev.get("permanova_order"),
            also=ev.get("also"),
        )
    )
    claims.append(
        ac.c6(
            ev.get("order_final"),
            ev.get("order_first"),
            summary=ev.get("order_summary"),
            also=ev.get("also"),
        )
    )

    # C7: the data fraction (from the Adam design) and the dimension.
    fractions = {f: g for (o, f), g in opt.items() if o == "adam"}
    dim_groups = _groups_by(runs, "dimension", lambda s: s["model"]["dim"])
    dims = {
        k: build_group(runs, v, design="dimension")
        for k, v in dim_groups.items()
        if len(v) >= 2
    }
    claims.append(ac.c7(fractions, dims))
    claims.sort(key=lambda c: c["id"])
    return {
        "set": "article",
        "primary_metric": PRIMARY,
        "rules": _RULES,
        "claims": claims,
    }
