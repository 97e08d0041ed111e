"""The HTML report: sections only where data exists, escaping, captions, files."""

from __future__ import annotations

import base64
import copy
import hashlib
import html
import json
import logging
import re

import pytest

from embvar.errors import StoreError
from embvar.report.html import (
    HTML_NAME,
    build_sections,
    rebuild_html,
    render_html,
    write_html,
)
from embvar.report.sections import SECTIONS, group_labels, lookup, non_dominated
from tests.report.fixture import HOSTILE, full_report, minimal_report

ALL_SECTIONS = [
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
]


# Drawing every figure takes seconds: render the full fixture once.
@pytest.fixture(scope="module")
def full_html() -> str:
    return render_html(full_report())


@pytest.fixture(scope="module")
def full_sections() -> list:
    return build_sections(full_report())


def test_sections_full_report_every_section_in_page_order(full_sections):
    assert [s.id for s in full_sections] == ALL_SECTIONS
    assert [s[0] for s in SECTIONS] == ALL_SECTIONS


def test_sections_minimal_report_only_what_has_data():
    ids = [s.id for s in build_sections(minimal_report())]
    assert ids == ["summary", "levels", "methods"]


def test_sections_figures_numbered_in_order(full_sections):
    numbers = [f.number for s in full_sections for f in s.figures]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) == 7


def test_html_every_figure_has_caption_with_resolvable_json_path(full_html):
    figures = re.findall(r"<figure id=\"figure-\d+\">(.*?)</figure>", full_html, re.S)
    assert len(figures) == 7
    report = full_report()
    for fig in figures:
        assert re.search(r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+"', fig)
        caption = re.search(r"<figcaption>(.*?)</figcaption>", fig, re.S).group(1)
        assert "Numbers in" in caption
        paths = re.findall(r"<code>([^<]+)</code>", caption)
        assert paths
        for path in paths:
            # The part before the first wildcard must exist in the report.
            head = path.split("[*]")[0].rstrip(".")
            assert lookup(report, head) is not None, path


def test_html_self_contained_no_script_no_remote_reference(full_html):
    assert "<script" not in full_html.lower()
    assert "<link" not in full_html.lower()
    assert "@import" not in full_html and "url(" not in full_html
    for src in re.findall(r'src="([^"]*)"', full_html):
        assert src.startswith("data:image/svg+xml;base64,")
    for href in re.findall(r'href="([^"]*)"', full_html):
        assert href.startswith("#") or href == "report.json"
    assert "@media print" in full_html


def test_html_content_security_policy_allows_only_its_own_style(full_html):
    policy = re.search(
        r'http-equiv="Content-Security-Policy" content="([^"]+)"', full_html
    ).group(1)
    assert "default-src 'none'" in policy and "img-src data:" in policy
    policy = html.unescape(policy)
    css = re.search(r"<style>(.*?)</style>", full_html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy


def test_html_hostile_labels_are_escaped_text(full_html):
    for label in HOSTILE[:2]:
        assert label not in full_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in full_html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in full_html
    assert "<img src=x" not in full_html
    assert not re.search(r"<[^>]*\sonerror=", full_html)


def test_html_hostile_label_in_figure_labels_does_not_break_svg():
    report = minimal_report()
    report["groups"][0]["label"] = "$x^2$ </svg><script>alert(3)</script>"
    page = render_html(report)
    assert "<script>alert(3)" not in page
    assert "could not be drawn" not in page


def test_html_bad_section_shape_becomes_notice_and_rest_renders(caplog):
    report = minimal_report()
    report["attribution"] = {
        "distance": [
            {"metric": "procrustes", "by_source": [{"source": "init", "mean": "x"}]}
        ]
    }
    with caplog.at_level(logging.WARNING, logger="embvar.report.html"):
        sections = build_sections(report)
    ids = [s.id for s in sections]
    assert "problem" in ids and "levels" in ids and "methods" in ids
    problem = next(s for s in sections if s.id == "problem")
    assert problem.data["key"] == "attribution"
    assert "cannot draw report.json key 'attribution'" in caplog.text


def test_html_identical_runs_flagged_with_differing_seed():
    report = minimal_report()
    pair = report["groups"][0]["pairs"][0]
    pair["procrustes"] = 1e-9
    a, b = pair["runs"]
    for row in report["runs"]["table"]:
        if row["run_id"] == b:
            row["seeds"] = dict(
                next(r for r in report["runs"]["table"] if r["run_id"] == a)["seeds"],
                noise=99,
            )
    page = render_html(report)
    assert "Identical runs." in page
    assert "whose seeds differ only in noise" in page


def test_html_claims_table_shows_verdicts(full_html):
    for verdict in ("supported", "contradicted", "inconclusive"):
        assert f'class="verdict {verdict}">{verdict}</td>' in full_html


def test_html_determinism_document_renders_as_its_own_report():
    audit = copy.deepcopy(full_report()["determinism"])
    audit.update(
        target={"label": "run aaaa", "run_id": "aaaa"},
        verdict={
            "sentences": ["Bitwise identical with op determinism."],
            "recommended": "det1",
        },
        manifest={"python": {"version": "3.11"}},
    )
    sections = build_sections(audit)
    assert [s.id for s in sections] == ["summary", "determinism", "manifest"]
    page = render_html(audit)
    assert "<title>Determinism audit of run aaaa</title>" in page
    assert "Bitwise identical with op determinism." in page


def test_write_html_atomic_and_rebuild_from_json(tmp_path):
    report = minimal_report()
    (tmp_path / "report.json").write_text(json.dumps(report))
    doc, path = rebuild_html(tmp_path)
    assert path == tmp_path / HTML_NAME and path.read_text().startswith(
        "<!DOCTYPE html>"
    )
    assert doc["study"]["name"] == "fixture"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    out = write_html(report, tmp_path / "sub" / "other.html", json_name="x.json")
    assert 'href="x.json"' in out.read_text()


def test_rebuild_html_missing_report_is_store_error(tmp_path):
    with pytest.raises(StoreError, match=r"^cannot read '.*report\.json'"):
        rebuild_html(tmp_path)


def test_rebuild_html_non_object_is_store_error(tmp_path):
    (tmp_path / "report.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="must hold a JSON object; got list"):
        rebuild_html(tmp_path)


def test_non_dominated_known_answer():
    # Lower x and higher y are better: (2, 0.5) is beaten by (1, 1).
    assert non_dominated([(1, 1), (2, 2), (0.5, 0.5), (2, 0.5)]) == [
        True,
        True,
        True,
        False,
    ]
    assert non_dominated([(1, 1), (1, 1)]) == [True, True]


def test_group_labels_duplicates_get_their_differing_setting():
    groups = [
        {"label": "defaults", "hyperparameters": {"lr": 0.01, "dim": 8}},
        {"label": "defaults", "hyperparameters": {"lr": 0.1, "dim": 8}},
        {"label": "sgd", "hyperparameters": {"lr": 0.1}},
    ]
    assert group_labels(groups) == ["defaults (lr=0.01)", "defaults (lr=0.1)", "sgd"]


def test_lookup_paths():
    report = {"groups": [{"geometry": {"knn_overlap@10": {"mean": 0.3}}}]}
    assert lookup(report, "groups[0].geometry.knn_overlap@10.mean") == 0.3
    assert lookup(report, "groups[1].geometry") is None
    assert lookup(report, "groups.x") is None
