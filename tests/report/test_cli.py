"""``embvar report`` and ``embvar export --projector`` on the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from embvar.cli import app
from embvar.errors import ConfigError, StoreError
from tests.report.fixture import full_report, minimal_report

runner = CliRunner()


def test_cli_report_rebuilds_html_and_prints_summary(tmp_path):
    report = minimal_report()
    (tmp_path / "report.json").write_text(json.dumps(report))
    result = runner.invoke(app, ["report", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    text = " ".join(result.output.split())  # rich wraps at the console's width
    assert report["summary"][1] in text
    assert f"and {tmp_path / 'report.html'}" in text


def test_cli_report_json_is_machine_readable(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(full_report()))
    result = runner.invoke(app, ["report", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["html"] == str(tmp_path / "report.html")
    assert doc["summary"] == full_report()["summary"]
    assert doc["determinism"] == {
        "verdict": ["Op determinism on gave bitwise-identical runs here."]
    }
    assert doc["least_stable"][1]["label"] == '"><img src=x onerror=alert(2)>'


def test_cli_report_adds_a_determinism_audit_found_beside_it(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(minimal_report()))
    audit = full_report()["determinism"]
    (tmp_path / "determinism.json").write_text(json.dumps(audit))
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "report.html").read_text()
    assert 'id="determinism"' in page and 'href="determinism.json"' in page


EDITED_REPORTS = [
    {"groups": 5, "summary": 7, "study": "x", "data": [1], "runs": "r"},
    {
        "groups": [
            1,
            {
                "label": "<b>g</b>",
                "geometry": 3,
                "function": {"test_rmse": {"mean": "a"}},
            },
        ]
    },
    {
        "kind": "compare",
        "compare": 3,
        "summary": [{"a": 1}],
        "entities": {"least_stable": [2]},
    },
]


@pytest.mark.parametrize("doc", EDITED_REPORTS, ids=range(len(EDITED_REPORTS)))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_cli_report_of_an_edited_report_json_draws_what_it_can(tmp_path, doc, as_json):
    # A report.json edited into shapes the renderer does not know: the page
    # and the summary show what they can, never a traceback.
    (tmp_path / "report.json").write_text(json.dumps(doc))
    args = ["report", str(tmp_path), *(["--json"] if as_json else [])]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.exception
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_cli_report_missing_directory_is_store_error(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path / "none")])
    assert isinstance(result.exception, StoreError)


def test_cli_export_needs_a_format(tmp_path):
    result = runner.invoke(app, ["export", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("choose what to export: --projector")


def test_cli_export_projector_writes_config(planted_study, tmp_path):
    out = tmp_path / "proj"
    result = runner.invoke(
        app,
        ["export", str(planted_study.directory), "--projector", "--out", str(out)],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert (out / "projector_config.pbtxt").is_file()
    assert "4 runs of item_embedding" in " ".join(result.output.split())


def test_cli_error_is_one_line_exit_code_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "embvar.cli", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("embvar: error: cannot read")
    assert "Traceback" not in proc.stderr
