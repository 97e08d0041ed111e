"""The report's charts: plain numbers in, a self-contained SVG document out.

Each function draws one kind of chart with matplotlib's object API (no
pyplot, no global state) and returns the SVG text. Text is drawn as paths,
so a chart looks the same in every browser and printer and needs no font;
the output is byte-for-byte reproducible (fixed hash salt, no date). The
functions know nothing about ``report.json``: :mod:`embvar.report.html`
turns its sections into these inputs.

Colours are the Okabe–Ito palette, distinguishable with the common forms of
colour blindness; each source of randomness keeps one colour everywhere.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

__all__ = [
    "PALETTE",
    "SOURCE_COLORS",
    "StripPanel",
    "BarPanel",
    "Series",
    "LinePanel",
    "Point",
    "ScatterPanel",
    "BinPanel",
    "BinSeries",
    "strip_chart",
    "interval_bars",
    "band_lines",
    "binned_chart",
    "tradeoff_scatter",
    "histogram_chart",
    "svg_data_uri",
    "WIDTH_IN",
    "FRONT_LABELS",
]

# Okabe & Ito (2008), "Color universal design".
PALETTE = [
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#D55E00",
    "#56B4E9",
    "#F0E442",
    "#000000",
]
SOURCE_COLORS = {
    "init": "#0072B2",
    "order": "#E69F00",
    "noise": "#009E73",
    "split": "#CC79A7",
    "perturb": "#D55E00",
    "replicate": "#56B4E9",
    "all": "#222222",
    "residual": "#9a9a9a",
}
NEUTRAL = "#8a8a8a"

# A chart is at most this wide: 10.4 in = 749 pt = 998 CSS px.
WIDTH_IN = 10.4

_RC = {
    "svg.fonttype": "path",
    "text.parse_math": False,  # a "$" in a label is a dollar sign, not TeX
    "svg.hashsalt": "embvar-report",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 9,
    "axes.labelcolor": "#333333",
    "axes.edgecolor": "#777777",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.7,
    "xtick.color": "#333333",
    "ytick.color": "#333333",
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def svg_data_uri(svg: str) -> str:
    """Return ``svg`` as a ``data:image/svg+xml;base64,...`` URI."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasSVG(fig)
    return fig


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _finite(values: Sequence[float | None]) -> np.ndarray:
    a = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return a[np.isfinite(a)]


# -- dot strips: one dot per pair of runs, per group ------------------------


@dataclass
class StripPanel:
    """One metric: a row of dots per group.

    Attributes
    ----------
    title : str
        The metric's name, drawn above the panel.
    note : str
        How to read it (``"1 = same neighbours"``), drawn under the axis.
    values : list of list of float
        ``values[g]`` are the dots of group ``g`` (one per pair of runs, or
        one per run for accuracy); None and NaN are skipped.
    xlim : tuple of float or None
        Fixed axis range, e.g. (0, 1); None fits the data.
    """

    title: str
    note: str
    values: list[list[float | None]]
    xlim: tuple[float, float] | None = None


def _wrap(text: str, width: int) -> str:
    """``text`` wrapped line by line to ``width`` characters."""
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False) or line
        for line in text.split("\n")
    )


# Panels per row of a strip chart: more would leave each too narrow for its title.
_STRIP_COLS = 4


def strip_chart(panels: Sequence[StripPanel], labels: Sequence[str]) -> str:
    """Draw metrics side by side, groups as rows, a dot per value, mean marked.

    Parameters
    ----------
    panels : sequence of StripPanel
        One per metric, in reading order (parameters, geometry, function).
        More than four are laid out in rows of (nearly) equal length.
    labels : sequence of str
        One per group, top to bottom.

    Returns
    -------
    svg : str
    """
    n_groups = len(labels)
    grid_rows = math.ceil(len(panels) / _STRIP_COLS)
    n_cols = math.ceil(len(panels) / grid_rows)
    label_in = min(3.2, 0.4 + 0.065 * max((len(str(x)) for x in labels), default=0))
    panel_in = (WIDTH_IN - label_in) / n_cols
    chars = max(12, int(panel_in * 12))
    height = (1.35 + 0.34 * n_groups) * grid_rows
    with rc_context(_RC):
        fig = _figure(WIDTH_IN, height)
        grid = fig.subplots(grid_rows, n_cols, sharey=True, squeeze=False)
        axes = grid.ravel()
        rng = np.random.default_rng(0)  # jitter only, so dots do not hide
        y = np.arange(n_groups)[::-1]
        for ax, panel in zip(axes, panels, strict=False):
            for g, vals in enumerate(panel.values):
                a = _finite(vals)
                if a.size == 0:
                    continue
                jitter = rng.uniform(-0.16, 0.16, a.size) if a.size > 1 else np.zeros(1)
                ax.scatter(
                    a,
                    y[g] + jitter,
                    s=11,
                    color=PALETTE[0],
                    alpha=0.45,
                    linewidths=0,
                    zorder=2,
                )
                ax.plot(
                    [a.mean()] * 2,
                    [y[g] - 0.3, y[g] + 0.3],
                    color="#111111",
                    lw=1.6,
                    zorder=3,
                )
            if panel.xlim is not None:
                pad = 0.04 * (panel.xlim[1] - panel.xlim[0])
                ax.set_xlim(panel.xlim[0] - pad, panel.xlim[1] + pad)
            else:
                ax.margins(x=0.15)
            ax.set_title(_wrap(panel.title, chars), fontsize=9.5)
            ax.set_xlabel(
                _wrap(panel.note, int(chars * 1.15)), fontsize=8, color="#555555"
            )
            ax.grid(axis="y", visible=False)
            ax.set_ylim(-0.6, n_groups - 0.4)
        for row in grid:
            row[0].set_yticks(y, labels=list(labels))
            for ax in row[1:]:
                ax.tick_params(axis="y", length=0)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        return _svg(fig)


# -- bars with intervals ------------------------------------------------------


@dataclass
class BarPanel:
    """Horizontal bars with interval whiskers (one panel of a bar chart).

    Attributes
    ----------
    title : str
    categories : list of str
        One bar each, top to bottom.
    values : list of float
    lo, hi : list of float or None
        Interval ends per bar; None where there is no interval.
    colors : list of str, optional
        One per bar (default: the palette in order).
    xlabel : str
    xlim : tuple of float or None
    percent : bool
        Label the axis and the bars in percent (values are fractions).
    """

    title: str
    categories: list[str]
    values: list[float | None]
    lo: list[float | None] = field(default_factory=list)
    hi: list[float | None] = field(default_factory=list)
    colors: list[str] = field(default_factory=list)
    xlabel: str = ""
    xlim: tuple[float, float] | None = None
    percent: bool = False


def interval_bars(panels: Sequence[BarPanel]) -> str:
    """Draw one or more panels of horizontal bars with intervals.

    Returns
    -------
    svg : str
    """
    rows = max(len(p.categories) for p in panels)
    cols = min(len(panels), 2)
    grid_rows = math.ceil(len(panels) / cols)
    height = grid_rows * (1.0 + 0.36 * rows)
    width = min(WIDTH_IN, 4.6 * cols + 0.6)
    with rc_context(_RC):
        fig = _figure(width, height)
        axes = fig.subplots(grid_rows, cols, squeeze=False).ravel()
        for ax, panel in zip(axes, panels, strict=False):
            n = len(panel.categories)
            y = np.arange(n)[::-1]
            vals = np.array([np.nan if v is None else v for v in panel.values], float)
            colors = panel.colors or [_color(i) for i in range(n)]
            ax.barh(y, np.nan_to_num(vals), color=colors, height=0.62, zorder=2)
            lo = panel.lo or [None] * n
            hi = panel.hi or [None] * n
            for yi, v, a, b in zip(y, vals, lo, hi, strict=False):
                if a is not None and b is not None and np.isfinite(v):
                    ax.plot([a, b], [yi, yi], color="#222222", lw=1.2, zorder=3)
                    for end in (a, b):
                        ax.plot(
                            [end, end],
                            [yi - 0.14, yi + 0.14],
                            color="#222222",
                            lw=1.2,
                            zorder=3,
                        )
                if np.isfinite(v):
                    text = f"{100 * v:.0f}%" if panel.percent else f"{v:.3g}"
                    right = max(v, b if b is not None else v)
                    ax.annotate(
                        text,
                        (right, yi),
                        xytext=(4, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=8,
                    )
            ax.set_yticks(y, labels=panel.categories)
            ax.grid(axis="y", visible=False)
            # Wrapped to the panel, so a long title is not clipped at the right.
            ax.set_title(_wrap(panel.title, 40 if cols > 1 else 70), fontsize=9.5)
            ax.set_xlabel(panel.xlabel, fontsize=8.5)
            if panel.xlim is not None:
                ax.set_xlim(*panel.xlim)
            ax.margins(x=0.12)
            if panel.percent:
                ax.xaxis.set_major_formatter(lambda x, _: f"{100 * x:.0f}%")
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        return _svg(fig)


# -- lines with bands -----------------------------------------------------------


@dataclass
class Series:
    """One line: ``y`` over ``x`` with an optional band ``lo``–``hi``."""

    label: str
    x: list[float]
    y: list[float | None]
    lo: list[float | None] | None = None
    hi: list[float | None] | None = None
    color: str | None = None
    dashed: bool = False
    dotted: bool = False  # drawn on top of a series it coincides with


@dataclass
class LinePanel:
    """A panel of lines sharing axes (one metric over epochs)."""

    title: str
    xlabel: str
    ylabel: str
    series: list[Series]
    ylim: tuple[float | None, float | None] | None = None
    integer_x: bool = True


_MARKERS = ("o", "s", "^", "D", "v")


def _compact(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def band_lines(panels: Sequence[LinePanel], *, cols: int = 3) -> str:
    """Draw lines with shaded bands, one panel per metric, one legend below.

    Returns
    -------
    svg : str
    """
    from matplotlib.ticker import MaxNLocator

    cols = min(len(panels), cols)
    grid_rows = math.ceil(len(panels) / cols)
    with rc_context(_RC):
        width = WIDTH_IN if cols > 1 else 6.0
        fig = _figure(width, 2.7 * grid_rows + 0.5)
        axes = fig.subplots(grid_rows, cols, squeeze=False).ravel()
        labels_seen: dict[str, object] = {}
        for ax, panel in zip(axes, panels, strict=False):
            for i, s in enumerate(panel.series):
                color = s.color or _color(i)
                x = np.asarray(s.x, float)
                # Distinct markers keep lines that coincide distinguishable.
                (line,) = ax.plot(
                    x,
                    _array(s.y),
                    color=color,
                    lw=1.8 - 0.3 * (i % 3),
                    marker=_MARKERS[i % len(_MARKERS)],
                    ms=4 + (i % 3),
                    # Hollow on top of a coinciding line, so its markers show.
                    mfc="none" if i % 2 or s.dotted else color,
                    label=s.label,
                    ls="--" if s.dashed else ":" if s.dotted else "-",
                    zorder=3 if s.dotted else 2,
                )
                labels_seen.setdefault(s.label, line)
                if s.lo is not None and s.hi is not None:
                    ax.fill_between(
                        x, _array(s.lo), _array(s.hi), color=color, alpha=0.18, lw=0
                    )
            ax.set_title(panel.title, fontsize=9.5)
            ax.set_xlabel(panel.xlabel)
            ax.set_ylabel(panel.ylabel)
            if panel.integer_x:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if panel.ylim is not None:
                lo, hi = panel.ylim
                if lo is not None and hi is not None:
                    # A little room, so markers on the bounds are not cut.
                    pad = 0.04 * (hi - lo)
                    lo, hi = lo - pad, hi + pad
                ax.set_ylim(lo, hi)
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        if len(labels_seen) > 1:
            fig.legend(
                list(labels_seen.values()),
                list(labels_seen),
                loc="outside lower center",
                ncols=min(len(labels_seen), 4),
            )
        return _svg(fig)


# -- binned means -----------------------------------------------------------------


@dataclass
class BinSeries:
    """One line of a binned panel: a mean per bin and its interval."""

    label: str
    mean: list[float | None]
    lo: list[float | None] | None = None
    hi: list[float | None] | None = None
    color: str | None = None


@dataclass
class BinPanel:
    """Means per bin, one line per series; the bin sizes under the axis.

    Attributes
    ----------
    title : str
    bins : list of str
        Bin labels, left to right (e.g. ``"2–3"`` ratings).
    series : list of BinSeries
        The lines; each has one mean (and interval) per bin.
    counts : list of int, optional
        Entities per bin, printed under each label.
    ylabel : str
    note : str
        Printed in the panel's top-left corner (e.g. the rank correlation).
    bounds : tuple of float, optional
        The metric's range: the axis is fitted to the data but stays inside.
    """

    title: str
    bins: list[str]
    series: list[BinSeries]
    counts: list[int] | None = None
    ylabel: str = ""
    note: str = ""
    bounds: tuple[float | None, float | None] = (None, None)


def binned_chart(panels: Sequence[BinPanel], *, xlabel: str) -> str:
    """Draw one or more binned-mean panels, two per row, one legend below.

    Returns
    -------
    svg : str
    """
    cols = min(len(panels), 2)
    grid_rows = math.ceil(len(panels) / cols)
    n = max(len(p.bins) for p in panels)
    with rc_context(_RC):
        width = min(WIDTH_IN, cols * (0.9 + 0.5 * n) + 0.3)
        fig = _figure(width, 3.0 * grid_rows + 0.5)
        axes = fig.subplots(grid_rows, cols, squeeze=False).ravel()
        legend: dict[str, object] = {}
        for ax, p in zip(axes, panels, strict=False):
            x = np.arange(len(p.bins))
            shown = []
            for i, s in enumerate(p.series):
                color = s.color or _color(i)
                y = _array(s.mean)
                shown.append(y)
                if s.lo is not None and s.hi is not None:
                    lo, hi = _array(s.lo), _array(s.hi)
                    ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
                    ax.vlines(x, lo, hi, color=color, lw=1.0)
                    shown += [lo, hi]
                (line,) = ax.plot(
                    x, y, color=color, lw=1.8, marker=_MARKERS[i % len(_MARKERS)], ms=4
                )
                legend.setdefault(s.label, line)
            ticks = list(p.bins)
            if p.counts is not None:
                ticks = [
                    f"{b}\nn={_compact(c)}"
                    for b, c in zip(p.bins, p.counts, strict=True)
                ]
            # Labels wider than their bin's share of the axis would run into
            # each other ("128–255256–511"): tilt them.
            per_bin = (width / cols - 0.9) / max(len(p.bins), 1)
            longest = max((len(str(b)) for b in p.bins), default=0)
            if longest * 7.5 * 0.62 / 72 > 0.8 * per_bin:
                ax.set_xticks(
                    x,
                    labels=ticks,
                    fontsize=7.5,
                    rotation=35,
                    ha="right",
                    rotation_mode="anchor",
                )
            else:
                ax.set_xticks(x, labels=ticks, fontsize=7.5)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(p.ylabel)
            ax.set_title(p.title, fontsize=9.5)
            values = np.concatenate(shown) if shown else np.array([])
            values = values[np.isfinite(values)]
            if values.size:
                span = max(float(values.max() - values.min()), 0.02)
                lo_, hi_ = values.min() - 0.35 * span, values.max() + 0.35 * span
                if p.bounds[0] is not None:
                    lo_ = max(lo_, p.bounds[0])
                if p.bounds[1] is not None:
                    hi_ = min(hi_, p.bounds[1])
                ax.set_ylim(lo_, hi_)
            if p.note:
                ax.text(
                    0.01, 0.98, p.note, transform=ax.transAxes, va="top", fontsize=8
                )
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        if len(legend) > 1:
            fig.legend(
                list(legend.values()),
                list(legend),
                loc="outside lower center",
                ncols=min(len(legend), 4),
            )
        return _svg(fig)


# -- trade-off scatter --------------------------------------------------------------


@dataclass
class Point:
    """One hyperparameter level in the trade-off chart."""

    label: str
    x: float
    y: float
    xerr: float | None = None
    yerr: float | None = None
    front: bool = False


@dataclass
class ScatterPanel:
    """One trade-off panel: accuracy (x) against one stability metric (y).

    Attributes
    ----------
    title : str
    points : list of Point
        ``front=True`` marks a level no other level of the panel beats on
        both axes.
    xlabel, ylabel : str
    better : str
        Where the best corner is, printed there (e.g. ``"better ↖"``).
    ylim : tuple of float, optional
        The stability metric's range; the axis stays inside it (with a
        margin) even where a whisker reaches beyond.
    """

    title: str
    points: list[Point]
    xlabel: str
    ylabel: str
    better: str = ""
    ylim: tuple[float, float] | None = None


# The trade-off legend; the caption quotes it, so both give one definition.
FRONT_LABELS = (
    "no other setting of its design is as good on both axes and better on one",
    "another setting of its design is as good on both axes and better on one",
)


def tradeoff_scatter(panels: Sequence[ScatterPanel]) -> str:
    """Draw accuracy against stability, the non-dominated levels filled and joined.

    A point's label goes to its left when the point is in the right part of
    the panel, so labels stay inside the axes.

    Returns
    -------
    svg : str
    """
    cols = min(len(panels), 2)
    grid_rows = math.ceil(len(panels) / cols)
    with rc_context(_RC):
        fig = _figure(7.4 if cols == 1 else WIDTH_IN, 4.0 * grid_rows + 0.4)
        axes = fig.subplots(grid_rows, cols, squeeze=False).ravel()
        for ax, panel in zip(axes, panels, strict=False):
            for p in panel.points:
                face = PALETTE[0] if p.front else "white"
                edge = PALETTE[0] if p.front else NEUTRAL
                ax.errorbar(
                    p.x,
                    p.y,
                    xerr=p.xerr,
                    yerr=p.yerr,
                    fmt="none",
                    ecolor=edge,
                    elinewidth=0.9,
                    alpha=0.8,
                    zorder=2,
                )
                ax.scatter(
                    [p.x],
                    [p.y],
                    s=46,
                    facecolor=face,
                    edgecolor=edge,
                    linewidths=1.4,
                    zorder=3,
                )
            front = sorted((p for p in panel.points if p.front), key=lambda p: p.x)
            if len(front) > 1:
                ax.plot(
                    [p.x for p in front],
                    [p.y for p in front],
                    color=PALETTE[0],
                    lw=1,
                    ls="--",
                    zorder=1,
                )
            ax.set_title(panel.title, fontsize=9.5)
            ax.set_xlabel(panel.xlabel)
            ax.set_ylabel(panel.ylabel)
            ax.margins(0.18)
            if panel.ylim is not None:
                lo, hi = ax.get_ylim()
                pad = 0.05 * (panel.ylim[1] - panel.ylim[0])
                ax.set_ylim(max(lo, panel.ylim[0] - pad), min(hi, panel.ylim[1] + pad))
            x_lo, x_hi = ax.get_xlim()
            y_lo, y_hi = ax.get_ylim()
            for p in panel.points:
                right = (p.x - x_lo) > 0.5 * (x_hi - x_lo)
                top = (p.y - y_lo) > 0.85 * (y_hi - y_lo)
                ax.annotate(
                    p.label,
                    (p.x, p.y),
                    xytext=(-6 if right else 6, -9 if top else 4),
                    ha="right" if right else "left",
                    fontsize=8,
                    textcoords="offset points",
                    color="#222222" if p.front else "#555555",
                )
            if panel.better:
                ax.text(
                    0.01,
                    0.98,
                    panel.better,
                    transform=ax.transAxes,
                    va="top",
                    fontsize=9,
                    color="#555555",
                )
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        handles = [
            Line2D([], [], ls="", marker="o", ms=7, mfc=PALETTE[0], mec=PALETTE[0]),
            Line2D([], [], ls="", marker="o", ms=7, mfc="white", mec=NEUTRAL, mew=1.4),
        ]
        fig.legend(
            handles,
            list(FRONT_LABELS),
            loc="outside lower center",
            ncols=1,
        )
        return _svg(fig)


# -- histogram -----------------------------------------------------------------------


def histogram_chart(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    xlabel: str,
    ylabel: str,
    note: str = "",
) -> str:
    """Draw a histogram from precomputed bin edges and counts.

    Parameters
    ----------
    edges : sequence of float, length ``len(counts) + 1``
    counts : sequence of int

    Returns
    -------
    svg : str
    """
    with rc_context(_RC):
        fig = _figure(6.4, 3.0)
        ax = fig.subplots()
        e = np.asarray(edges, float)
        ax.bar(
            e[:-1],
            np.asarray(counts, float),
            width=np.diff(e),
            align="edge",
            color=PALETTE[0],
            edgecolor="white",
            lw=0.6,
            zorder=2,
        )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if note:
            ax.text(
                0.99,
                0.98,
                note,
                transform=ax.transAxes,
                va="top",
                ha="right",
                fontsize=9,
            )
        return _svg(fig)
