"""``report.html``: the report a person reads, drawn from ``report.json``.

One self-contained file: the charts are SVG embedded as ``data:`` URIs,
the style sheet is inline, and there is no script. A Content-Security-Policy
in the page forbids scripts and every fetch except embedded images, so the
page cannot reach the network even if a label were to smuggle markup past
the escaping (Jinja2 autoescaping is on for every template: labels are
data, never markup).

Every section appears only where the report holds its data; see
:mod:`embvar.report.sections` for the sections and the JSON each reads.
A section whose data has an unexpected shape is replaced by a short notice
naming the key, and the rest of the page is drawn.

Examples
--------
>>> from embvar.report.html import write_html          # doctest: +SKIP
>>> write_html(report_dict, "runs/movielens/report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from embvar.errors import StoreError
from embvar.report.sections import SECTIONS, Section, fmt_fixed, fmt_number
from embvar.store import write_text_atomic

__all__ = ["render_html", "write_html", "rebuild_html", "build_sections", "HTML_NAME"]

logger = logging.getLogger(__name__)

HTML_NAME = "report.html"

# What a section builder raises when the JSON it reads has another shape.
_DATA_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError)
_TEMPLATES = Path(__file__).parent / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = fmt_number
    env.filters["fixed"] = fmt_fixed
    env.filters["pct"] = lambda x, d=0: "–" if x is None else f"{100 * x:.{d}f}%"
    env.filters["pm"] = _plus_minus
    env.filters["short"] = lambda run_id: str(run_id)[:8]
    return env


def _plus_minus(stat: Any, digits: int = 3) -> str:
    if not isinstance(stat, dict) or stat.get("mean") is None:
        return "–"
    sd = stat.get("sd")
    if sd is None or stat.get("n", 2) < 2:
        return fmt_number(stat["mean"], digits)
    # No-break spaces keep "mean ± sd" on one line when cells wrap (print).
    return f"{fmt_number(stat['mean'], digits)}\u00a0±\u00a0{fmt_number(sd, digits)}"


def _problem(sid: str, key: str, exc: Exception) -> Section:
    logger.warning(
        "report section %r: cannot draw report.json key %r: %r", sid, key, exc
    )
    return Section(
        "problem",
        f"Section “{sid}” could not be drawn",
        data={"key": key, "error": f"{type(exc).__name__}: {exc}"},
    )


def build_sections(report: dict[str, Any]) -> list[Section]:
    """Return the report's sections that have data, figures numbered in order.

    A section whose builder fails on an unexpected shape of its data becomes
    a ``problem`` section naming the key and the error; the failure is also
    logged as a warning.
    """
    out: list[Section] = []
    number = 0
    for sid, key, build in SECTIONS:
        try:
            sec = build(report)
        except _DATA_ERRORS as exc:
            sec = _problem(sid, key, exc)
        if sec is None:
            continue
        sec.key = key
        for fig in sec.figures:
            number += 1
            fig.number = number
        out.append(sec)
    return out


def _object(report: dict[str, Any], key: str) -> dict[str, Any]:
    """``report[key]`` where it is an object; {} where missing or of another type."""
    value = report.get(key)
    return value if isinstance(value, dict) else {}


def _facts(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The header's lines: data, runs, when and by what, where."""
    facts = []
    data = _object(report, "data")
    if data.get("kind") == "text":
        stemmed = ", benchmarks stemmed" if data.get("benchmarks_stemmed") else ""
        facts.append(
            (
                "Data",
                f"{data.get('name', '?')}: "
                f"{fmt_number(data.get('n_words'))} words kept "
                f"(min count {fmt_number(data.get('min_count'))}{stemmed}); "
                f"{fmt_number(data.get('n_tokens'))} tokens in "
                f"{fmt_number(data.get('n_sentences'))} sentences",
            )
        )
    elif data:
        facts.append(
            (
                "Data",
                (
                    f"{data.get('name', '?')}: "
                    f"{fmt_number(data.get('n_users'))} users, "
                    f"{fmt_number(data.get('n_items'))} items; "
                    f"{fmt_number(data.get('n_train'))} training and "
                    f"{fmt_number(data.get('n_test'))} test interactions"
                ),
            )
        )
    runs = _object(report, "runs")
    if report.get("kind") == "compare":
        files = _object(report, "compare").get("files") or []
        facts.append(
            (
                "Tables",
                f"{len(files)} embedding tables, compared where they share entity ids",
            )
        )
    elif runs:
        groups = report.get("groups")
        n_groups = len(groups) if isinstance(groups, list) else 0
        facts.append(
            (
                "Runs",
                (
                    f"{runs.get('done')} of {runs.get('planned')} planned runs "
                    f"finished; {n_groups} group{'' if n_groups == 1 else 's'} of two "
                    "or more runs that differ only in their seeds"
                ),
            )
        )
    if _object(report, "study").get("quick"):
        facts.append(
            (
                "Plan",
                "quick (--quick): fewer runs and epochs than the full "
                "study, to check that everything works; its numbers "
                "are rough",
            )
        )
    if report.get("created"):
        facts.append(
            (
                "Written",
                f"{report['created']} by embvar {report.get('embvar_version', '?')}",
            )
        )
    if report.get("directory"):
        facts.append(("Directory", str(report["directory"])))
    return facts


def _title(report: dict[str, Any]) -> str:
    study = _object(report, "study")
    if report.get("title"):
        return str(report["title"])
    if isinstance(report.get("cells"), list) and "verdict" in report:
        target = report.get("target")
        label = target.get("label") if isinstance(target, dict) else target
        return f"Determinism audit of {label}" if label else "Determinism audit"
    if study.get("name"):
        return f"Study {study['name']}: how much do the embeddings vary, and why"
    return "embvar report"


def render_html(report: dict[str, Any], *, json_name: str = "report.json") -> str:
    """Return the HTML page of a report document.

    Parameters
    ----------
    report : dict
        A ``report.json`` document (a study's, ``embvar compare``'s or the
        determinism audit's).
    json_name : str, default="report.json"
        Where the page's JSON-path links point, relative to the page.

    Returns
    -------
    html : str
        A complete, self-contained HTML document.
    """
    env = _environment()
    sections = build_sections(report)
    bodies = []
    for i, sec in enumerate(sections):
        try:
            body = env.get_template(sec.template).render(s=sec, json_name=json_name)
        except (jinja2.TemplateError, *_DATA_ERRORS) as exc:
            sec = sections[i] = _problem(sec.id, getattr(sec, "key", sec.id), exc)
            body = env.get_template(sec.template).render(s=sec, json_name=json_name)
        bodies.append(markupsafe.Markup(body))
    css = (_TEMPLATES / "report.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    study = _object(report, "study")
    return env.get_template("report.html.j2").render(
        title=_title(report),
        description=study.get("description", ""),
        quick=bool(study.get("quick")),
        facts=_facts(report),
        version=report.get("embvar_version", ""),
        sections=sections,
        bodies=bodies,
        json_name=json_name,
        css=markupsafe.Markup(css),
        style_hash=f"'sha256-{digest}'",
        n_figures=sum(len(s.figures) for s in sections),
    )


def write_html(
    report: dict[str, Any], path: str | Path, *, json_name: str = "report.json"
) -> Path:
    """Render a report and write it atomically to ``path``; return the path.

    Parameters
    ----------
    report : dict
        A ``report.json`` document.
    path : str or Path
        The HTML file to write (conventionally ``report.html`` next to
        ``report.json``).
    json_name : str, default="report.json"
        The JSON file the page's captions link to, relative to ``path``.

    Raises
    ------
    StoreError
        If the file cannot be written.
    """
    path = Path(path)
    html = render_html(report, json_name=json_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot write {str(path)!r}: {exc.strerror or exc}.") from exc
    # A unique temporary name: two processes finishing one study may both write.
    write_text_atomic(path, html)
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"cannot read {str(path)!r}: {exc}; give a directory a study, "
            "`embvar compare` or `embvar determinism` wrote its JSON into."
        ) from exc
    if not isinstance(doc, dict):
        raise StoreError(
            f"{str(path)!r} must hold a JSON object; got {type(doc).__name__}."
        )
    return doc


def rebuild_html(directory: str | Path) -> tuple[dict[str, Any], Path]:
    """Read a directory's ``report.json`` and write its ``report.html`` again.

    Where the directory also holds a determinism audit (``determinism.json``)
    that ``report.json`` does not include, the page shows the audit too. A
    directory with only ``determinism.json`` gets a page of the audit alone.

    Returns
    -------
    report : dict
        The document drawn (``report.json``, with the audit where added).
    path : Path
        The HTML file written.

    Raises
    ------
    StoreError
        If neither JSON file can be read, or the page cannot be written.
    """
    directory = Path(directory)
    source = directory / "report.json"
    audit = directory / "determinism.json"
    if not source.is_file() and audit.is_file():
        doc = _read_json(audit)
        return doc, write_html(doc, directory / HTML_NAME, json_name=audit.name)
    report = _read_json(source)
    if audit.is_file() and "determinism" not in report:
        try:
            merged = {**_read_json(audit), "source_file": audit.name}
            report = {**report, "determinism": merged}
        except StoreError as exc:
            logger.warning("%s", exc)
    return report, write_html(report, directory / HTML_NAME)
