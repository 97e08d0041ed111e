"""What every report section shares: the Section and Figure types, the
registry, JSON-path lookup and number formatting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from embvar.report import figures as fg

__all__ = [
    "Section",
    "FigureBlock",
    "SECTIONS",
    "section",
    "lookup",
    "non_dominated",
    "group_labels",
    "fmt_number",
    "fmt_fixed",
    "fmt_pm",
    "fmt_sd",
    "join_words",
    "source_words",
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


# Page order; a section not listed here goes just before "methods".
ORDER = (
    "summary",
    "levels",
    "attribution",
    "perturbation",
    "permanova",
    "dynamics",
    "frequency",
    "tradeoff",
    "entities",
    "article_examples",
    "compare",
    "determinism",
    "manifest",
    "methods",
)


def _rank(entry: tuple[str, str, SectionFn]) -> float:
    sid = entry[0]
    return ORDER.index(sid) if sid in ORDER else ORDER.index("methods") - 0.5


def section(id: str, key: str) -> Callable[[SectionFn], SectionFn]:
    """Register a section builder under its id, in page order.

    ``key`` names the ``report.json`` entry it reads (shown in a notice if
    the builder fails on an unexpected shape). The template is
    ``templates/section_<id>.html.j2``.
    """

    def register(fn: SectionFn) -> SectionFn:
        SECTIONS[:] = [s for s in SECTIONS if s[0] != id]
        SECTIONS.append((id, key, fn))
        SECTIONS.sort(key=_rank)
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


SOURCE_WORDS = {
    "init": "initial values",
    "order": "data order",
    "noise": "noise (dropout, negative sampling)",
    "split": "train/test split",
}


def join_words(words: list[str], last: str = "and") -> str:
    """``["a", "b", "c"]`` as ``"a, b and c"``."""
    words = [w for w in words if w]
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def source_words(sources: Any) -> str:
    """The sources of randomness a design varies, in words ("initial values and
    data order"); only those given, in the usual order."""
    given = [str(x) for x in sources or []]
    known = [x for x in SOURCE_WORDS if x in given]
    other = [x for x in given if x not in SOURCE_WORDS and x not in ("all", "perturb")]
    return join_words([SOURCE_WORDS[x] for x in known] + other)


def _source_color(name: str, i: int) -> str:
    return fg.SOURCE_COLORS.get(
        str(name).split("×")[0].split(":")[0].strip(),
        fg.PALETTE[(i + 5) % len(fg.PALETTE)],
    )


def fmt_fixed(x: Any, digits: int = 3) -> str:
    """A number with exactly ``digits`` decimals (ranges: 1e-8 reads as 0.000)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def fmt_sd(sd: Any, digits: int = 3) -> str:
    """A standard deviation in fixed-point notation, never as 3.42e-04.

    ``digits`` decimals, like the mean beside it; an sd too small to show
    there gets the decimals its first two significant digits need (at most
    eight): 3.42e-04 reads 0.00034, 3.23e-05 reads 0.000032.
    """
    if sd is None or isinstance(sd, bool) or not isinstance(sd, (int, float)):
        return "–"
    if not math.isfinite(sd):
        return "–"
    decimals = digits
    if 0 < abs(sd) < 10**-digits:
        decimals = min(8, 1 - math.floor(math.log10(abs(sd))))
    return f"{sd:.{decimals}f}"


def fmt_pm(stat: Any, digits: int = 3) -> str:
    """``mean ± sd`` of a summary, both in fixed-point notation."""
    if not isinstance(stat, dict) or stat.get("mean") is None:
        return "–"
    mean = fmt_fixed(stat["mean"], digits)
    sd = stat.get("sd")
    if sd is None or (stat.get("n") or 2) < 2:
        return mean
    # No-break spaces keep "mean ± sd" on one line when cells wrap (print).
    return f"{mean}\u00a0±\u00a0{fmt_sd(sd, digits)}"


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
