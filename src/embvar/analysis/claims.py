"""Verdicts on the reference article's claims C1-C7, from measured groups of runs.

Each claim is split into parts that can be measured; each part has one
effect (a difference or a ratio between groups of runs, in the primary
metric), a 95% bootstrap interval over seeds, and a verdict by a rule
written next to it:

- *supported*: the interval lies entirely on the side the claim predicts
  (and outside the equivalence margin, where the claim predicts a
  difference);
- *contradicted*: the interval lies entirely on the other side, or
  entirely inside the equivalence margin (no practical difference where
  the claim predicts one);
- *inconclusive*: otherwise (the interval straddles the boundary, or the
  design needed is missing).

A claim's verdict combines its parts: supported if every part is,
contradicted if every part is, inconclusive otherwise (a mixed verdict
names its parts). The claim reports the metric, effect and interval of the
part that decided it: for an inconclusive claim an inconclusive part, else
a contradicted one; otherwise its first part.

The primary stability metric is the k-NN overlap of the item tables in
distance form, ``1 - overlap@10`` (the share of an item's 10 nearest items
that another run does not share); every comparison also lists the
Procrustes distance and the prediction disagreement. The inputs are plain
:class:`Group` objects, so the rules are tested without training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from embvar.analysis.distances import METRICS, as_distance
from embvar.analysis.resampling import (
    DEFAULT_RESAMPLES,
    mean_samples,
    pair_mean,
    pair_mean_samples,
    percentile_interval,
)

__all__ = [
    "CLAIMS",
    "MARGINS",
    "PRIMARY",
    "DISTANCE",
    "Estimate",
    "Group",
    "Verdict",
    "directional_verdict",
    "combine_verdicts",
    "instability",
    "make_part",
    "make_claim",
    "claims_table",
    "not_measured_reason",
]

Verdict = Literal["supported", "contradicted", "inconclusive"]

#: The stability metric verdicts are decided on.
PRIMARY = METRICS[1]

#: How claims name it: in distance form (0 = the same neighbours).
DISTANCE = f"1 - {PRIMARY}"

#: The article's claims, in our words (see the README).
CLAIMS: dict[str, str] = {
    "C1": "Random initialization makes runs differ, though optimization partly "
    "washes the difference out as training converges.",
    "C2": "Glorot/Xavier initialization, or initialization from embeddings "
    "pre-trained on a related larger data set, is deterministic, reduces the "
    "variation and speeds convergence.",
    "C3": "A learning rate that is too high oscillates and gives highly variable "
    "embeddings; one too low converges slowly and gets stuck.",
    "C4": "Adam with a tuned learning rate and weight decay gives more stable "
    "embeddings than plain SGD, across data sets of varying sparsity.",
    "C5": "Mini-batch sampling and the order of the data make the updates "
    "stochastic, and so the final embeddings vary.",
    "C6": "Over many epochs the effect of this stochasticity shrinks, but some "
    "always remains.",
    "C7": "The variation is most visible on small data sets and in "
    "high-dimensional embedding spaces.",
}

#: Differences smaller than these are no practical difference (per metric,
#: in distance form; test RMSE in rating units; oscillations in epochs).
MARGINS: dict[str, float] = {
    PRIMARY: 0.01,
    "procrustes": 0.01,
    "prediction_disagreement": 0.005,
    "test_rmse": 0.002,
    "oscillations": 0.5,
}


@dataclass(frozen=True)
class Estimate:
    """A measured value with bootstrap resamples of it."""

    value: float
    samples: np.ndarray
    runs: tuple[str, ...] = ()

    def interval(self, level: float = 0.95) -> list[float | None]:
        return percentile_interval(self.samples, level)

    def _pair(self, other: Estimate, seed: int) -> tuple[np.ndarray, np.ndarray]:
        a = self.samples[np.isfinite(self.samples)]
        b = other.samples[np.isfinite(other.samples)]
        if a.size == 0 or b.size == 0:
            return np.empty(0), np.empty(0)
        m = max(a.size, b.size)
        rng = np.random.default_rng(seed)
        if a.size == b.size:
            return a, b
        return rng.choice(a, m), rng.choice(b, m)

    def minus(self, other: Estimate, seed: int = 0) -> Estimate:
        """Return ``self - other`` (independent groups: resamples paired at random).

        Two estimates whose resamples came from the same resampling (same
        length, same seed) are subtracted resample by resample.
        """
        a, b = self._pair(other, seed)
        return Estimate(self.value - other.value, a - b, self.runs + other.runs)

    def over(self, other: Estimate, seed: int = 0) -> Estimate:
        """Return ``self / other``, resample by resample as in :meth:`minus`."""
        a, b = self._pair(other, seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = self.value / other.value if other.value else float("nan")
            return Estimate(value, a / b, self.runs + other.runs)


@dataclass
class Group:
    """One set of seed replicates: what the claims read about it.

    Attributes
    ----------
    label : str
        The hyperparameter values that define it.
    run_ids : list of str
    matrices : dict of str to ndarray of shape (n_runs, n_runs)
        Each metric of :data:`~embvar.analysis.distances.METRICS` between
        the runs' final tables (the metric's own values).
    test_rmse : ndarray of shape (n_runs,)
        Final test RMSE.
    curves : dict of str to ndarray of shape (n_runs, n_epochs)
        Per-epoch ``train_rmse`` and ``test_rmse`` (epoch 0 first).
    initial_identical : ndarray of shape (n_runs, n_runs), optional
        Share of item rows identical between two runs at epoch 0.
    diverged : int
        Runs of the group that diverged (left out of everything else).
    """

    label: str
    run_ids: list[str]
    matrices: dict[str, np.ndarray]
    test_rmse: np.ndarray
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    initial_identical: np.ndarray | None = None
    diverged: int = 0

    @property
    def n(self) -> int:
        return len(self.run_ids)


def instability(
    group: Group,
    metric: str = PRIMARY,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Return a group's mean difference between runs, in distance form."""
    D = as_distance(group.matrices[metric], metric)
    return Estimate(
        pair_mean(D), pair_mean_samples(D, n_resamples, seed), tuple(group.run_ids)
    )


def per_run(
    values: Any,
    runs: Sequence[str],
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Return the mean of per-run ``values`` with resamples over runs."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    return Estimate(
        float(x.mean()) if x.size else float("nan"),
        mean_samples(x, n_resamples, seed),
        tuple(runs),
    )


def directional_verdict(
    interval: Sequence[float | None],
    direction: Literal["greater", "less"],
    *,
    threshold: float = 0.0,
    margin: float | None = None,
) -> Verdict:
    """Return the verdict on "the effect is greater (less) than ``threshold``".

    Parameters
    ----------
    interval : [low, high]
        The effect's interval.
    direction : {"greater", "less"}
        What the claim predicts.
    threshold : float, default=0
        The boundary (0 for a difference, 1 for a ratio).
    margin : float, optional
        Equivalence margin: an interval entirely inside
        ``[threshold - margin, threshold + margin]`` contradicts a claim of
        a difference, and a supporting interval must clear the margin.

    Examples
    --------
    >>> directional_verdict([0.02, 0.05], "greater", margin=0.01)
    'supported'
    >>> directional_verdict([-0.004, 0.006], "greater", margin=0.01)
    'contradicted'
    >>> directional_verdict([-0.02, 0.05], "greater", margin=0.01)
    'inconclusive'
    """
    low, high = interval
    if low is None or high is None:
        return "inconclusive"
    m = margin or 0.0
    if direction == "greater":
        if low > threshold + m:
            return "supported"
        if high < threshold:
            return "contradicted"
    else:
        if high < threshold - m:
            return "supported"
        if low > threshold:
            return "contradicted"
    if margin is not None and threshold - m <= low and high <= threshold + m:
        return "contradicted"
    return "inconclusive"


def combine_verdicts(verdicts: Sequence[Verdict]) -> Verdict:
    """Supported if all are, contradicted if all are, else inconclusive."""
    if verdicts and all(v == "supported" for v in verdicts):
        return "supported"
    if verdicts and all(v == "contradicted" for v in verdicts):
        return "contradicted"
    return "inconclusive"


def make_part(
    pid: str,
    statement: str,
    metric: str,
    estimate: Estimate | None,
    direction: Literal["greater", "less"],
    *,
    threshold: float = 0.0,
    margin: float | None = None,
    effect: str = "",
    also: dict[str, Any] | None = None,
    detail: str = "",
    verdict: Verdict | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    """Return one measured part of a claim with its verdict and rule."""
    interval = estimate.interval() if estimate is not None else [None, None]
    if verdict is None:
        verdict = directional_verdict(
            interval, direction, threshold=threshold, margin=margin
        )
    side = ">" if direction == "greater" else "<"
    if rule is None:
        rule = f"supported if the 95% interval of the effect is {side} {threshold:g}"
        if margin is not None:
            rule += (
                f" by more than {margin:g}; contradicted if it is on the other side "
                f"or inside ±{margin:g} of {threshold:g}"
            )
        else:
            rule += "; contradicted if it is entirely on the other side"
    value = (
        None
        if estimate is None or not np.isfinite(estimate.value)
        else float(estimate.value)
    )
    return {
        "id": pid,
        "statement": statement,
        "verdict": verdict,
        "metric": metric,
        "effect_definition": effect,
        "effect": value,
        "interval": interval,
        "rule": rule,
        "runs": sorted(set(estimate.runs)) if estimate is not None else [],
        "also": also or {},
        "detail": detail,
    }


def make_claim(
    cid: str, parts: list[dict[str, Any]], *, designs: Sequence[str], note: str = ""
) -> dict[str, Any]:
    """Return a claim: combined verdict, and the deciding part's numbers."""
    verdicts = [p["verdict"] for p in parts]
    verdict = combine_verdicts(verdicts) if parts else "inconclusive"
    # The deciding part: an inconclusive one, else one that contradicts (what
    # keeps a mixed claim from being supported), else the first.
    deciding = parts[0] if parts else None
    if parts and verdict == "inconclusive":
        deciding = next(
            (p for p in parts if p["verdict"] == "inconclusive"),
            next((p for p in parts if p["verdict"] == "contradicted"), parts[0]),
        )
    mixed = sorted({v for v in verdicts})
    detail = "; ".join(f"{p['id']} {p['verdict']}" for p in parts)
    if len(mixed) > 1:
        detail = "mixed: " + detail
    if note:
        detail = f"{note} {detail}".strip()
    return {
        "id": cid,
        "claim": CLAIMS.get(cid, ""),
        "verdict": verdict,
        "metric": deciding["metric"] if deciding else None,
        "effect": deciding["effect"] if deciding else None,
        "effect_definition": deciding["effect_definition"] if deciding else None,
        "interval": deciding["interval"] if deciding else [None, None],
        "decided_by": deciding["id"] if deciding else None,
        "detail": detail,
        "parts": parts,
        "designs": list(designs),
        "run_ids": sorted({r for p in parts for r in p["runs"]}),
    }


def missing_claim(cid: str, designs: Sequence[str], what: str) -> dict[str, Any]:
    """Return an inconclusive claim whose designs are missing or too small."""
    return {
        "id": cid,
        "claim": CLAIMS.get(cid, ""),
        "verdict": "inconclusive",
        "metric": None,
        "effect": None,
        "effect_definition": None,
        "interval": [None, None],
        "decided_by": None,
        "detail": f"not measured: {what}",
        "parts": [],
        "designs": list(designs),
        "run_ids": [],
    }


def compare_groups(
    a: Group,
    b: Group,
    *,
    seed: int = 0,
    metrics: Sequence[str] = METRICS,
) -> dict[str, Estimate]:
    """Return ``instability(a) - instability(b)`` for each metric."""
    return {
        m: instability(a, m, seed=seed).minus(
            instability(b, m, seed=seed + 7), seed=seed
        )
        for m in metrics
    }


def also_entries(
    diffs: dict[str, Estimate],
    direction: Literal["greater", "less"],
    *,
    skip: str = PRIMARY,
) -> dict[str, Any]:
    """Return the secondary metrics' effects, intervals and verdicts."""
    out = {}
    for m, est in diffs.items():
        if m == skip:
            continue
        iv = est.interval()
        out[m] = {
            "effect": None if not np.isfinite(est.value) else float(est.value),
            "interval": iv,
            "verdict": directional_verdict(iv, direction, margin=MARGINS.get(m)),
        }
    return out


def stability_part(
    pid: str,
    statement: str,
    a: Group,
    b: Group,
    direction: Literal["greater", "less"],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Return a part comparing the instability of group ``a`` with ``b``."""
    diffs = compare_groups(a, b, seed=seed)
    return make_part(
        pid,
        statement,
        DISTANCE,
        diffs[PRIMARY],
        direction,
        margin=MARGINS[PRIMARY],
        effect=f"(1 - {PRIMARY}) of [{a.label}] minus that of [{b.label}]",
        also=also_entries(diffs, direction),
        detail=f"{a.label}: {a.n} runs; {b.label}: {b.n} runs",
    )


Evaluator = Callable[..., dict[str, Any]]


def claims_table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one row per claim (and per part) of a report's ``claims``.

    Parameters
    ----------
    report : dict
        A ``report.json`` document.

    Returns
    -------
    list of dict
        ``{"id", "verdict", "metric", "effect", "interval", "statement"}``
        followed by every other field of the entry as report.json has it
        (``detail``, ``decided_by``, ``effect_definition``, ``rule``,
        ``runs``, ``designs``, ...), each claim followed by its parts (ids
        such as ``C2a1``, with ``part_of`` naming their claim). A claim's row
        leaves out its ``parts``: they are the rows after it.

    Raises
    ------
    DataError
        If the report holds no claims (the study did not ask for them).
    """
    from embvar.errors import DataError

    section = report.get("claims") or {}
    claims = section.get("claims") if isinstance(section, dict) else None
    if not claims:
        raise DataError(
            "the report holds no claims; run a study whose [analysis] sets "
            "claims = 'article' (e.g. `embvar study article`)."
        )
    rows = []
    for c in _claim_entries(claims, "claims.claims"):
        rows.append(_claim_row(c, "claim"))
        for p in _claim_entries(c.get("parts") or [], f"claim {c['id']!r} parts"):
            rows.append({**_claim_row(p, "statement"), "part_of": c["id"]})
    return rows


def _claim_entries(entries: Any, where: str) -> list[dict[str, Any]]:
    """The claims (or parts) of a report, checked for the shape the table reads."""
    from embvar.errors import DataError

    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("id"), str) for e in entries
    ):
        raise DataError(
            f"report.json {where} must be a list of objects with an 'id'; got "
            f"{str(entries)[:80]!r}; run the study again to rewrite it."
        )
    return entries


def _claim_row(c: dict[str, Any], text: str) -> dict[str, Any]:
    from embvar.errors import DataError

    effect, interval = c.get("effect"), c.get("interval")
    number = (int, float)
    if not (
        (effect is None or isinstance(effect, number))
        and (
            interval is None
            or (
                isinstance(interval, list)
                and len(interval) == 2
                and all(x is None or isinstance(x, number) for x in interval)
            )
        )
    ):
        raise DataError(
            f"report.json claim {c['id']!r} must have a number or null effect "
            f"and a [low, high] or null interval; got effect={effect!r}, "
            f"interval={interval!r}; run the study again to rewrite it."
        )
    return {
        "id": c["id"],
        "verdict": str(c.get("verdict")),
        "metric": c.get("metric"),
        "effect": effect,
        "interval": interval,
        "statement": c.get(text),
        **{k: v for k, v in c.items() if k not in _ROW_KEYS},
    }


# What a claim's row sets itself; a claim's parts are rows of their own.
_ROW_KEYS = {"id", "verdict", "metric", "effect", "interval", "statement", "parts"}


def not_measured_reason(row: dict[str, Any]) -> str | None:
    """The short reason an inconclusive claim (or part) was not measured, or None.

    ``"no crossed init x order design"`` for a claim whose detail reads
    ``"not measured: no crossed init x order design"``.
    """
    detail = row.get("detail")
    if row.get("verdict") != "inconclusive" or not isinstance(detail, str):
        return None
    _, sep, reason = detail.partition("not measured:")
    return (reason.strip() or None) if sep else None
