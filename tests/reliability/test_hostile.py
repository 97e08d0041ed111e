"""Hostile input: names that leave the study directory, markup in labels, pickles."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from embvar.config import load_study, parse_study, plan_runs
from embvar.errors import ConfigError, StoreError
from embvar.report.terminal import print_runs, print_summary
from embvar.store import Store
from embvar.study import default_directory, run_study
from tests.reliability.conftest import FakeExecutor, fake_result, study_text

SRC = Path(__file__).resolve().parents[2] / "src" / "embvar"

ESCAPING_NAMES = [
    "../evil",
    "../../etc",
    "/etc/passwd",
    "/tmp/x",
    "..",
    ".",
    ".hidden",
    "a/b",
    "a\\b",
    "C:evil",
    "x" * 65,
    "",
    "name with space",
    "nul\x00",
]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_study_name_leaving_the_directory_rejected(name):
    with pytest.raises(ConfigError, match="name"):
        parse_study({"name": name})


@pytest.mark.parametrize("name", ["../evil", "/abs", "a/b", ".."])
def test_design_name_leaving_the_directory_rejected(name):
    with pytest.raises(ConfigError, match="design.0.name"):
        parse_study({"name": "ok", "design": [{"name": name}]})


def test_default_directory_stays_under_runs():
    study = parse_study({"name": "ok.name-1"})
    path = default_directory(study, quick=True)
    assert path == Path("runs") / "ok.name-1-quick"
    assert ".." not in path.parts


@pytest.fixture
def store_with_run(tmp_path, ratings_csv):
    path = tmp_path / "s.toml"
    path.write_text(study_text("hostile", ratings_csv, init=1, order=1))
    spec = plan_runs(load_study(path))[0]
    store = Store(tmp_path / "out")
    store.register([spec])
    store.claim(spec.run_id, "me")
    yield store, spec
    store.close()


@pytest.mark.parametrize(
    "run_id", ["../../escape", "/abs/path", "0123456789abcdeF", "0123456789abcdef/.."]
)
def test_save_run_with_a_path_for_an_id_refused(store_with_run, tmp_path, run_id):
    store, spec = store_with_run
    result = fake_result(spec)
    result.run_id = run_id
    with pytest.raises(StoreError, match="run id must be 16 lowercase hexadecimal"):
        store.save_run(result)
    assert not (tmp_path / "escape").exists() and not list(tmp_path.rglob("*.npy"))


def test_save_run_with_a_path_for_a_table_name_refused(store_with_run, tmp_path):
    store, spec = store_with_run
    result = fake_result(spec)
    result.snapshots[0]["../../../item"] = result.snapshots[0]["item_embedding"]
    with pytest.raises(StoreError, match="table name must be letters, digits"):
        store.save_run(result)
    assert not list(tmp_path.rglob("item.npy"))
    assert not list(tmp_path.rglob("*.npy"))  # the files already written removed


@pytest.mark.parametrize(
    "planted", ["../../secret.npy", "/etc/hostname", "snapshots/../../secret.npy"]
)
def test_index_pointing_outside_the_store_refused(store_with_run, tmp_path, planted):
    store, spec = store_with_run
    store.save_run(fake_result(spec))
    secret = tmp_path / "secret.npy"
    np.save(secret, np.zeros(3, np.float32))
    db = sqlite3.connect(store.root / "index.sqlite")
    db.execute("UPDATE snapshots SET path=? WHERE run_id=?", (planted, spec.run_id))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="outside its snapshots folder"):
        store.load_snapshot(spec.run_id, verify=False)


MARKUP = "[bold red]boom[/bold red]"
SCRIPT = "<script>alert(1)</script>"


def test_terminal_prints_markup_in_labels_as_text():
    report = {
        "study": {"name": f"s{MARKUP}"},
        "groups": [
            {
                "label": f"pretrained=/d/{MARKUP}.npy",
                "n_runs": 2,
                "geometry": {},
                "function": {},
            }
        ],
        "summary": [f"Item {MARKUP} moved."],
    }
    out = io.StringIO()
    print_summary(
        report, Console(file=out, width=300, color_system=None), path=f"/r/{MARKUP}"
    )
    text = out.getvalue()
    assert text.count(MARKUP) == 4, text  # title, label, sentence, path


def test_terminal_run_list_prints_markup_in_factors_as_text(store_with_run):
    store, spec = store_with_run
    record = store.runs()[0]
    record.spec["factors"]["pretrained"] = f"/d/{MARKUP}.npy"
    out = io.StringIO()
    print_runs([record], Console(file=out, width=300, color_system=None))
    assert MARKUP in out.getvalue()


def test_hostile_labels_escaped_in_every_output(tmp_path):
    # Item titles and a factor value (a file name) carry markup and script.
    rng = np.random.default_rng(0)
    keys = rng.choice(40 * 30, size=600, replace=False)
    lines = ["user,item,rating,title"]
    for key in keys:
        u, i = divmod(int(key), 30)
        title = f'"{SCRIPT} {MARKUP} {{{{7*7}}}} #{i}"'
        lines.append(f"{u},{i},{1 + key % 5},{title}")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("\n".join(lines) + "\n")
    table = tmp_path / "[bold red]boom.npy"  # markup that fits in a file name
    np.save(table, np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32))
    extra = f"""
[[design]]
name = "pre"
factors = {{ init = [0, 1], initializer = ["pretrained"], pretrained = ["{table}"] }}
"""
    study = tmp_path / "s.toml"
    study.write_text(study_text("hostile", ratings, init=1, order=1, extra=extra))
    outcome = run_study(study, tmp_path / "out", executor=FakeExecutor())
    report = outcome.report

    labels = [g["label"] for g in report["groups"]]
    assert any("[bold red]boom.npy" in label for label in labels), labels
    out = io.StringIO()
    print_summary(report, Console(file=out, width=400, color_system=None))
    assert "[bold red]boom.npy" in out.getvalue()

    # report.json holds the labels as data, exactly as given.
    raw = (tmp_path / "out" / "report.json").read_text()
    assert "[bold red]boom.npy" in json.loads(raw)["groups"][-1]["label"]

    # report.html shows the titles as text: escaped, and never evaluated.
    html = (tmp_path / "out" / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "{{7*7}}" in html and "49 #" not in html
    assert "[bold red]boom.npy" in html


def test_no_source_file_unpickles():
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for call in re.finditer(r"\bnp\.load\(", text):
            window = text[call.start() : call.start() + 200]
            if "allow_pickle=False" not in window:
                offenders.append(f"{path.name}: np.load without allow_pickle=False")
        for pattern in (
            r"allow_pickle\s*=\s*True",
            r"\bpickle\.loads?\(",
            r"\bjoblib\.load\(",
            r"\bdill\.",
            r"\bcloudpickle\.loads?\(",
        ):
            if re.search(pattern, text):
                offenders.append(f"{path.name}: {pattern}")
    assert not offenders, offenders
