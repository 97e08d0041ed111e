"""The reference article's claims C1-C7, each measured on its design.

``studies/article.toml`` trains one design per question; this module reads
them (by design name, :data:`DESIGNS`), builds the groups and estimates
each claim needs, and turns them into verdicts with the rules of
:mod:`embvar.analysis.claims`. The evaluators ``c1`` ... ``c7`` are pure:
they take :class:`~embvar.analysis.claims.Group` and
:class:`~embvar.analysis.claims.Estimate` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from embvar.analysis.claims import (
    DISTANCE,
    MARGINS,
    PRIMARY,
    Estimate,
    Group,
    directional_verdict,
    make_claim,
    make_part,
    missing_claim,
    per_run,
    stability_part,
)

__all__ = ["DESIGNS", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "oscillations"]

#: The design (or designs) each claim reads, by name in ``article.toml``.
DESIGNS: dict[str, tuple[str, ...]] = {
    "C1": ("seeds",),
    "C2": ("initializer",),
    "C3": ("learning_rate",),
    "C4": ("optimizer_sgd", "optimizer_adam", "optimizer_adamw"),
    "C5": ("seeds", "perturb"),
    "C6": ("seeds",),
    "C7": ("optimizer_adam", "dimension"),
}

_DIFFER = MARGINS[PRIMARY]

# Per secondary metric: estimates of the seeds design, keyed like
# "init_final", "order_first" (distance form, paired resamples).
Secondary = Mapping[str, Mapping[str, Estimate]]


def _also(
    also: Secondary | None,
    effect: Callable[[Mapping[str, Estimate]], Estimate | None],
    direction: Literal["greater", "less"],
    *,
    threshold: float = 0.0,
    ratio: bool = False,
) -> dict[str, Any]:
    """The secondary metrics' effects, intervals and verdicts for one part."""
    out = {}
    for metric, ests in (also or {}).items():
        try:
            est = effect(ests)
        except KeyError:
            continue
        if est is None:
            continue
        iv = est.interval()
        margin = None if ratio else MARGINS.get(metric)
        out[metric] = {
            "effect": float(est.value) if np.isfinite(est.value) else None,
            "interval": iv,
            "verdict": directional_verdict(
                iv, direction, threshold=threshold, margin=margin
            ),
        }
    return out


def c1(
    init_final: Estimate | None,
    init_start: Estimate | None,
    *,
    also: Secondary | None = None,
    context: str = "",
) -> dict[str, Any]:
    """C1 from runs of a crossed design that differ in their init seed only.

    Parameters
    ----------
    init_final, init_start : Estimate
        Mean ``1 - overlap@10`` over those pairs at the last epoch and at
        epoch 0, resampled with the same seed levels (paired).
    also : mapping, optional
        The same for the secondary metrics (``init_final``, ``init_start``).
    """
    if init_final is None or init_start is None:
        return missing_claim("C1", DESIGNS["C1"], "no crossed init x order design")
    parts = [
        make_part(
            "C1a",
            "Runs that differ only in their initial values end with different "
            "embeddings.",
            DISTANCE,
            init_final,
            "greater",
            margin=_DIFFER,
            effect=f"mean (1 - {PRIMARY}) at the last epoch over pairs that differ "
            "in the init seed only",
            also=_also(also, lambda e: e["init_final"], "greater"),
        ),
        make_part(
            "C1b",
            "Training shrinks the initial difference, but only partly.",
            DISTANCE,
            init_final.over(init_start),
            "less",
            threshold=1.0,
            effect="the pairs' final difference / their difference at epoch 0",
            also=_also(
                also,
                lambda e: e["init_final"].over(e["init_start"]),
                "less",
                threshold=1.0,
                ratio=True,
            ),
            rule="supported if the 95% interval of final/initial is < 1 and C1a is "
            "supported (something remains); contradicted if it is > 1",
        ),
    ]
    if parts[1]["verdict"] == "supported" and parts[0]["verdict"] != "supported":
        parts[1]["verdict"] = "inconclusive"
    return make_claim("C1", parts, designs=DESIGNS["C1"], note=context)


def c5(
    order_final: Estimate | None,
    *,
    perturbation: Mapping[str, Any] | None = None,
    permanova_row: Mapping[str, Any] | None = None,
    also: Secondary | None = None,
) -> dict[str, Any]:
    """C5 from runs of a crossed design that differ in their order seed only."""
    if order_final is None:
        return missing_claim("C5", DESIGNS["C5"], "no crossed init x order design")
    detail = []
    if permanova_row and permanova_row.get("p_value") is not None:
        detail.append(
            f"PERMANOVA: order explains {permanova_row['share']:.0%} of the "
            f"squared distances, p = {permanova_row['p_value']:.3g}"
        )
    if perturbation and perturbation.get("ratio") is not None:
        ratio = float(perturbation["ratio"])
        share = f"{ratio:.0%}" if ratio >= 0.01 else f"{ratio:.1e} times"
        detail.append(
            f"a one-ulp change of one initial weight ends {share} as far apart "
            "as a full reseed"
        )
    part = make_part(
        "C5a",
        "Runs that differ only in the order of the mini-batches end with "
        "different embeddings.",
        DISTANCE,
        order_final,
        "greater",
        margin=_DIFFER,
        effect=f"mean (1 - {PRIMARY}) at the last epoch over pairs that differ in the "
        "order seed only",
        detail="; ".join(detail),
        also=_also(also, lambda e: e["order_final"], "greater"),
    )
    return make_claim("C5", [part], designs=DESIGNS["C5"])


def c6(
    order_final: Estimate | None,
    order_first: Estimate | None,
    *,
    summary: Mapping[str, Any] | None = None,
    also: Secondary | None = None,
) -> dict[str, Any]:
    """C6: does the order-only difference shrink over the epochs, and remain?

    Parameters
    ----------
    order_final, order_first : Estimate
        Mean ``1 - overlap@10`` over order-only pairs after the last epoch
        and after epoch 1 (paired resamples).
    summary : mapping, optional
        The order-only trajectory's summary (:func:`dynamics.trajectory`).
    """
    if order_final is None or order_first is None:
        return missing_claim("C6", DESIGNS["C6"], "no per-epoch crossed design")
    detail = ""
    if summary:
        detail = (
            f"the order-only difference peaks at epoch {summary.get('reference_epoch')}"
            f" and ends at {summary.get('remaining', float('nan')):.2f} of its peak"
        )
    parts = [
        make_part(
            "C6a",
            "Over the epochs, the difference mini-batch order makes shrinks.",
            DISTANCE,
            order_final.over(order_first),
            "less",
            threshold=1.0,
            effect="order-only difference after the last epoch / after epoch 1",
            detail=detail,
            also=_also(
                also,
                lambda e: e["order_final"].over(e["order_first"]),
                "less",
                threshold=1.0,
                ratio=True,
            ),
        ),
        make_part(
            "C6b",
            "Some of the difference always remains.",
            DISTANCE,
            order_final,
            "greater",
            margin=_DIFFER,
            effect=f"mean (1 - {PRIMARY}) at the last epoch over order-only pairs",
            also=_also(also, lambda e: e["order_final"], "greater"),
        ),
    ]
    return make_claim("C6", parts, designs=DESIGNS["C6"])


def _identical_part(pid: str, group: Group, name: str) -> dict[str, Any]:
    M = group.initial_identical
    if M is None or group.n < 2:
        return make_part(
            pid,
            f"{name} gives every run the same initial item table.",
            "identical initial rows",
            None,
            "greater",
            verdict="inconclusive",
            rule="needs epoch-0 tables of 2+ runs",
        )
    vals = M[np.triu_indices(group.n, 1)]
    est = Estimate(float(vals.mean()), vals, tuple(group.run_ids))
    share = float(vals.mean())
    verdict = (
        "supported"
        if vals.min() >= 0.99
        else ("contradicted" if vals.max() <= 0.5 else "inconclusive")
    )
    part = make_part(
        pid,
        f"{name} gives every run the same initial item table.",
        "identical initial rows",
        est,
        "greater",
        verdict=verdict,
        effect="share of item rows identical at epoch 0 between two runs with "
        "different init seeds (interval: min and max over pairs)",
        rule="supported if at least 99% of rows are identical in every pair; "
        "contradicted if at most 50% are in every pair; inconclusive between",
        detail=f"{share:.0%} of initial item rows identical",
    )
    part["interval"] = [float(vals.min()), float(vals.max())]
    return part


def _speed_part(pid: str, a: Group, b: Group, name: str) -> dict[str, Any]:
    """Test RMSE after epoch 1 of ``a`` minus that of ``b`` (lower: faster)."""
    first_a = per_run(a.curves["test_rmse"][:, 1], a.run_ids)
    first_b = per_run(b.curves["test_rmse"][:, 1], b.run_ids, seed=1)
    return make_part(
        pid,
        f"{name} converges faster than the default uniform initializer.",
        "test_rmse",
        first_a.minus(first_b),
        "less",
        margin=MARGINS["test_rmse"],
        effect=f"test RMSE after epoch 1 of [{a.label}] minus [{b.label}]",
    )


def c2(groups: Mapping[str, Group]) -> dict[str, Any]:
    """C2 from the initializer design (uniform, glorot_uniform, pretrained)."""
    base = groups.get("uniform")
    if base is None or base.n < 2:
        return missing_claim("C2", DESIGNS["C2"], "no uniform initializer group")
    parts = []
    names = {
        "glorot_uniform": "GlorotUniform",
        "pretrained": "Pre-trained initialization",
    }
    for key, letter in (("glorot_uniform", "a"), ("pretrained", "b")):
        g = groups.get(key)
        if g is None or g.n < 2:
            continue
        parts.append(_identical_part(f"C2{letter}1", g, names[key]))
        parts.append(
            stability_part(
                f"C2{letter}2",
                f"{names[key]} gives more stable embeddings than uniform.",
                g,
                base,
                "less",
            )
        )
        parts.append(_speed_part(f"C2{letter}3", g, base, names[key]))
    if not parts:
        return missing_claim(
            "C2", DESIGNS["C2"], "no glorot_uniform or pretrained group"
        )
    return make_claim("C2", parts, designs=DESIGNS["C2"])


def oscillations(curve: np.ndarray) -> np.ndarray:
    """Return, per run, the epochs after which training RMSE went up.

    Parameters
    ----------
    curve : ndarray of shape (n_runs, n_epochs)
        Per-epoch training RMSE, epoch 0 first (epoch 0 is skipped: the
        first epoch is compared with the second onward).
    """
    c = np.asarray(curve, dtype=np.float64)[:, 1:]
    return (np.diff(c, axis=1) > 0).sum(axis=1).astype(np.float64)


def c3(groups: Mapping[float, Group]) -> dict[str, Any]:
    """C3 from the learning-rate design (one optimizer, rates 1e-4 ... 1.0)."""
    usable = {lr: g for lr, g in groups.items() if g.n >= 2}
    if len(usable) < 3:
        return missing_claim(
            "C3", DESIGNS["C3"], "fewer than 3 learning rates with 2+ finished runs"
        )
    rates = sorted(usable)
    best = min(rates, key=lambda lr: float(np.mean(usable[lr].test_rmse)))
    high, low = rates[-1], rates[0]
    note = f"tuned rate (lowest mean test RMSE): {best:g}."
    skipped = [lr for lr, g in groups.items() if g.n < 2]
    if skipped:
        note += f" Rates without 2 finished runs (diverged): {skipped}."
    parts = []
    if high != best:
        g, b = usable[high], usable[best]
        osc = per_run(oscillations(g.curves["train_rmse"]), g.run_ids).minus(
            per_run(oscillations(b.curves["train_rmse"]), b.run_ids, seed=1)
        )
        parts.append(
            make_part(
                "C3a",
                f"Too high a rate ({high:g}) oscillates.",
                "oscillations",
                osc,
                "greater",
                margin=MARGINS["oscillations"],
                effect=f"epochs after which training RMSE rose, at {high:g} minus "
                f"at {best:g}",
            )
        )
        parts.append(
            stability_part(
                "C3b",
                f"Too high a rate ({high:g}) gives more variable embeddings than "
                f"the tuned rate ({best:g}).",
                g,
                b,
                "greater",
            )
        )
    if low != best:
        g, b = usable[low], usable[best]
        worse = per_run(g.test_rmse, g.run_ids).minus(
            per_run(b.test_rmse, b.run_ids, seed=1)
        )
        parts.append(
            make_part(
                "C3c",
                f"Too low a rate ({low:g}) converges slowly: after the same epochs it "
                f"is less accurate than the tuned rate ({best:g}).",
                "test_rmse",
                worse,
                "greater",
                margin=MARGINS["test_rmse"],
                effect=f"final test RMSE at {low:g} minus at {best:g}",
            )
        )
        curve = g.curves["test_rmse"]
        gain = per_run((curve[:, -2] - curve[:, -1]) / curve[:, -1], g.run_ids)
        parts.append(
            make_part(
                "C3d",
                f"Too low a rate ({low:g}) gets stuck: its test RMSE stops improving.",
                "test_rmse",
                gain,
                "less",
                threshold=0.001,
                effect="relative improvement of test RMSE over the last epoch",
                rule="supported if the 95% interval of the last epoch's relative "
                "improvement is < 0.001 (stuck); contradicted if it is > 0.001 "
                "(still improving: slow, not stuck)",
            )
        )
    return make_claim("C3", parts, designs=DESIGNS["C3"], note=note)


def c4(
    groups: Mapping[tuple[str, float], Group], *, tuned: str = "adamw"
) -> dict[str, Any]:
    """C4 from the optimizer designs: ``(optimizer, fraction) -> Group``."""
    fractions = sorted(
        {f for (o, f) in groups if o == "sgd"} & {f for (o, f) in groups if o == tuned}
    )
    parts = []
    for f in fractions:
        sgd, adam = groups[("sgd", f)], groups[(tuned, f)]
        if sgd.n < 2 or adam.n < 2:
            continue
        part = stability_part(
            f"C4@{f:g}",
            f"With {f:.0%} of the training data, {tuned} (tuned) gives "
            "more stable embeddings than SGD (tuned).",
            adam,
            sgd,
            "less",
        )
        if ("adam", f) in groups and tuned != "adam" and groups[("adam", f)].n >= 2:
            plain = stability_part("adam", "", groups[("adam", f)], sgd, "less")
            part["also"]["adam_vs_sgd"] = {
                k: plain[k] for k in ("effect", "interval", "verdict")
            }
        parts.append(part)
    if not parts:
        return missing_claim(
            "C4", DESIGNS["C4"], f"no sgd and {tuned} groups at a shared data fraction"
        )
    return make_claim("C4", parts, designs=DESIGNS["C4"])


def c7(fractions: Mapping[float, Group], dims: Mapping[int, Group]) -> dict[str, Any]:
    """C7: more variation with less data, and with more dimensions."""
    parts = []
    fr = sorted(f for f, g in fractions.items() if g.n >= 2)
    if len(fr) >= 2:
        parts.append(
            stability_part(
                "C7a",
                f"Runs on {fr[0]:.0%} of the data vary more than on {fr[-1]:.0%}.",
                fractions[fr[0]],
                fractions[fr[-1]],
                "greater",
            )
        )
    ds = sorted(d for d, g in dims.items() if g.n >= 2)
    if len(ds) >= 2:
        parts.append(
            stability_part(
                "C7b",
                f"Runs with {ds[-1]} dimensions vary more than with {ds[0]}.",
                dims[ds[-1]],
                dims[ds[0]],
                "greater",
            )
        )
    if not parts:
        return missing_claim("C7", DESIGNS["C7"], "no fraction or dimension levels")
    return make_claim("C7", parts, designs=DESIGNS["C7"])
