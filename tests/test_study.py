"""The main job end to end: train, store, analyse, resume."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embvar.store import Store
from embvar.study import run_study

EMBVAR = [sys.executable, "-m", "embvar.cli"]


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    from tests.conftest import SMALL_STUDY

    folder = tmp_path_factory.mktemp("study")
    path = folder / "small.toml"
    path.write_text(SMALL_STUDY)
    outcome = run_study(path, folder / "out")
    return path, folder / "out", outcome


def test_run_study_trains_every_run_and_writes_report(finished_study):
    _, out, outcome = finished_study
    assert len(outcome.trained) == 4 and not outcome.failed
    report = json.loads((out / "report.json").read_text())
    assert report["runs"]["done"] == 4
    group = report["groups"][0]
    assert group["n_runs"] == 4 and len(group["pairs"]) == 6
    assert set(group["run_ids"]) == set(outcome.trained)
    assert 0 < group["geometry"]["procrustes"]["mean"] < 1.5
    # Parameters: the raw coordinates, row for row, with no alignment.
    params = group["parameters"]
    assert 0 < params["relative_frobenius"]["mean"] <= 2
    assert params["mean_abs_difference"]["mean"] > 0
    pair = group["pairs"][0]
    assert set(pair) >= {"relative_frobenius", "mean_abs_difference", "procrustes"}
    assert 0 <= group["geometry"]["knn_overlap@10"]["mean"] <= 1
    assert report["summary"] and "runs" in report["summary"][0]


def test_run_study_saves_mapping_and_split(finished_study):
    _, out, _ = finished_study
    (folder,) = (out / "data").iterdir()
    assert {p.name for p in folder.iterdir()} >= {
        "user_ids.npy",
        "item_ids.npy",
        "train.npy",
        "test.npy",
        "labels.json",
    }


def test_run_study_again_trains_nothing(finished_study):
    path, out, _ = finished_study
    written = (out / "report.json").stat().st_mtime_ns
    again = run_study(path, out)
    assert again.trained == [] and again.skipped == 4
    # Nothing changed: the report is kept, not computed again.
    assert again.report_reused
    assert (out / "report.json").stat().st_mtime_ns == written
    assert again.report["runs"]["done"] == 4
    forced = run_study(path, out, reanalyze=True)
    assert not forced.report_reused
    assert (out / "report.json").stat().st_mtime_ns != written


def test_report_key_changes_with_runs_and_study(finished_study):
    from embvar.config import load_study, plan_runs
    from embvar.report.document import report_key

    path, out, _ = finished_study
    study = load_study(path)
    specs = plan_runs(study)
    with Store(out) as store:
        key = report_key(store, study, specs)
        assert report_key(store, study, specs) == key
        assert report_key(store, study, specs[:-1]) != key
        other = study.model_copy(update={"description": "changed"})
        assert report_key(store, other, specs) != key
        audit = out / "determinism.json"
        audit.write_text("{}")
        try:
            assert report_key(store, study, specs) != key  # an audit to summarise
        finally:
            audit.unlink()


def test_run_study_other_study_in_same_directory_refused(finished_study, tmp_path):
    from embvar.errors import ConfigError

    _, out, _ = finished_study
    other = tmp_path / "other.toml"
    other.write_text('name = "other"\n')
    with pytest.raises(ConfigError, match="holds study 'small'"):
        run_study(other, out)


def _done(index: Path) -> dict[str, float]:
    if not index.is_file():
        return {}
    db = sqlite3.connect(index, timeout=30)
    try:
        return dict(db.execute("SELECT run_id, finished FROM runs WHERE status='done'"))
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def _independent_study(study_file: Path, out: Path) -> list[str]:
    """The command that trains ``study_file`` into ``out``, one fit per run."""
    study = [*EMBVAR, "study", str(study_file), "--dir", str(out)]
    return [*study, "--trainer", "independent"]


def test_study_killed_during_a_run_resumes_without_duplicates(
    small_study_file, tmp_path
):
    # One fit per run, so that a kill can land between two finished runs (the
    # replica trainer stores a group's runs together; tests/reliability covers it).
    out = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        _independent_study(small_study_file, out),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(_done(out / "index.sqlite")) < 1:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _done(out / "index.sqlite")
    assert 1 <= len(before) < 4, "kill must land between the first and last run"

    outcome = run_study(small_study_file, out, trainer="independent")
    after = _done(out / "index.sqlite")
    assert len(after) == 4
    assert {k: after[k] for k in before} == before  # finished runs kept as they were
    assert set(outcome.trained) == set(after) - set(before)
    with Store(out) as store:
        rows = store.snapshot_rows()
        assert len(rows) == len({(r[0], r[1], r[2]) for r in rows}) == 4 * 3 * 4
        for run_id, epoch, _table, _path, _digest in rows:
            store.load_snapshot(run_id, epoch)  # checksums hold
    assert not list(out.glob("**/.tmp-*"))


@pytest.mark.parametrize(
    "body,message",
    [
        ('name = "x"\ncolour = 1\n', "unknown key 'colour'"),
        (
            'name = "x"\n[model]\ndim = -1\n',
            "model.dim must be greater than or equal to 1",
        ),
        (
            'name = "x"\n[training]\noptimizer = "adamax"\n',
            "training.optimizer must be",
        ),
        ('name = "x"\n[data]\nsource = "/nonexistent/ratings.csv"\n', "does not exist"),
    ],
)
def test_cli_bad_study_file_one_line_exit_2(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    out = tmp_path / "out"
    proc = subprocess.run(
        [*EMBVAR, "study", str(path), "--dir", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (out / "snapshots").exists()


def test_cli_empty_data_one_line_exit_2(tmp_path):
    (tmp_path / "empty.csv").write_text("user,item,rating\n")
    path = tmp_path / "s.toml"
    path.write_text(f'name = "x"\n[data]\nsource = "{tmp_path / "empty.csv"}"\n')
    proc = subprocess.run(
        [*EMBVAR, "study", str(path), "--dir", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "is empty" in proc.stderr


def test_cli_missing_study_file_exit_2(tmp_path):
    proc = subprocess.run(
        [*EMBVAR, "study", str(tmp_path / "nope.toml")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "neither a built-in study" in proc.stderr


def test_cli_runs_lists_runs(finished_study):
    _, out, outcome = finished_study
    proc = subprocess.run(
        [*EMBVAR, "runs", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0
    for run_id in outcome.trained:
        assert run_id in proc.stdout


def test_cli_ctrl_c_stops_cleanly_and_resumes(small_study_file, tmp_path):
    out = tmp_path / "out"
    # One fit per run, so that runs finish one at a time and the signal lands
    # while runs are still training (as one replica group, all four finish
    # together and the signal raced the end of the study: a CI run exited 0).
    proc = subprocess.Popen(
        _independent_study(small_study_file, out),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(_done(out / "index.sqlite")) < 1:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    with Store(out) as store:
        assert not store.runs("running")  # claims given back
        kept = store.finished_ids()
    outcome = run_study(small_study_file, out)
    assert kept.isdisjoint(outcome.trained)
    assert len(kept) + len(outcome.trained) == 4


def test_bad_trainer_refused_before_tensorflow_is_imported(tmp_path):
    # The first check of run_study: a typo costs no TensorFlow import.
    code = f"""
import sys
from embvar.errors import ConfigError
from embvar.study import run_study
try:
    run_study("movielens", {str(tmp_path / "s")!r}, trainer="fast")
except ConfigError as error:
    print(error)
print("tensorflow" in sys.modules)
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "trainer must be one of 'auto', 'replicas', 'independent'; got trainer='fast'.",
        "False",
    ]
    assert not (tmp_path / "s").exists()
