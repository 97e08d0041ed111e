"""The report in a real browser: headless Chromium, no network, no errors.

Each page is loaded at 1280 px wide and checked: it is not blank (in the
screenshot), every figure loaded (``naturalWidth > 0``), nothing overflows
the width, the console has no error or warning (a Content-Security-Policy
violation would be one), and no request left the machine (every request is
``file:`` or ``data:``; anything else is intercepted and failed). Set
``EMBVAR_SCREENSHOTS=DIR`` to keep the screenshots.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from embvar.report.html import write_html
from tests.report.browser import Chromium, PageReport, chromium_path
from tests.report.fixture import HOSTILE, full_report

pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="Chromium is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def browser():
    with Chromium(chromium_path()) as chrome:
        yield chrome


def _keep(page: PageReport, name: str) -> None:
    folder = os.environ.get("EMBVAR_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        Path(folder, f"{name}.png").write_bytes(page.screenshot)
        if page.print_screenshot:
            Path(folder, f"{name}-print.png").write_bytes(page.print_screenshot)


def _not_blank(png: bytes) -> float:
    """Share of pixels that are not (near) white."""
    from PIL import Image

    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert gray.std() > 10, "the screenshot is one flat colour"
    return float(np.mean(gray < 200))


def _check_page(page: PageReport, n_figures: int) -> None:
    probe = page.probe
    assert page.remote_requests == [] and page.blocked == []
    assert page.console_errors == []
    assert probe["n_images"] == n_figures == probe["n_figures"] == probe["n_captions"]
    assert probe["broken"] == []
    assert all(w > 100 and h > 50 for w, h, _ in probe["image_sizes"])
    assert all(shown <= 1280 for _, _, shown in probe["image_sizes"])
    assert probe["scroll_width"] <= 1280, "the page is wider than the window"
    assert probe["n_scripts"] == 0 and probe["handlers"] == 0
    assert probe["text_length"] > 2000
    assert _not_blank(page.screenshot) > 0.02


def test_browser_full_report_loads_offline_without_errors(browser, tmp_path):
    path = write_html(full_report(), tmp_path / "report.html")
    page = browser.load(path, print_view=True)
    _keep(page, "fixture")
    _check_page(page, 7)
    assert (
        page.probe["sections"][0] == "summary" and "methods" in page.probe["sections"]
    )
    # Printable: a PDF of several pages, and nothing wider than A4 in print.
    assert page.pdf.startswith(b"%PDF") and page.pdf.count(b"/Type /Page") >= 3
    assert page.print_scroll_width <= 718
    assert _not_blank(page.print_screenshot) > 0.02


def test_browser_hostile_labels_show_as_text(browser, tmp_path):
    path = write_html(full_report(), tmp_path / "report.html")
    page = browser.load(path)
    text = page.probe["text"]
    for label in HOSTILE:
        assert label in text
    assert page.probe["n_scripts"] == 0 and page.probe["handlers"] == 0
    assert all(src.startswith("data:image/svg+xml") for src in page.probe["image_srcs"])
    assert page.console_errors == [] and page.remote_requests == []


@pytest.mark.slow
def test_browser_real_study_report(browser, small_study_file, tmp_path):
    """A real (small) study writes report.html; it passes the same checks."""
    from embvar.study import run_study

    outcome = run_study(small_study_file, tmp_path / "study")
    html = outcome.report_path.with_name("report.html")
    assert html.is_file()
    page = browser.load(html, print_view=True)
    _keep(page, "small-study")
    n = len([s for s in ("levels", "entities") if s in page.probe["sections"]])
    assert n == 2
    _check_page(page, page.probe["n_figures"])
    assert page.probe["n_figures"] >= 2
    titles = set(outcome.report["entities"]["least_stable"][0]["label"].split())
    assert titles & set(page.probe["text"].split())
    shutil.rmtree(tmp_path / "study" / "snapshots", ignore_errors=True)
