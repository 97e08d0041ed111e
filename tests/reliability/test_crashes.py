"""A study killed at any moment loses no finished run and shows no partial file."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from embvar.config import load_study, plan_runs
from embvar.errors import ConfigError, StoreError
from embvar.store import Store, temporary_path
from embvar.study import run_study
from tests.reliability.conftest import (
    SUBPROCESS_ENV,
    FakeExecutor,
    check_store,
    study_text,
)
from tests.reliability.harness import kill_loop, make_study

SAVE_ONE = """
import numpy as np
from pathlib import Path
from embvar.store import save_array
save_array(Path({path!r}), np.arange(1000, dtype=np.float32))
"""


@pytest.mark.parametrize("point", ["array-write", "array-rename"])
def test_fault_hook_kills_mid_write_leaving_only_a_temporary(tmp_path, point):
    target = tmp_path / "a.npy"
    env = {**SUBPROCESS_ENV, "EMBVAR_FAULT": f"{point}:1"}
    proc = subprocess.run(
        [sys.executable, "-c", SAVE_ONE.format(path=str(target))],
        env=env,
        capture_output=True,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()  # a reader never sees a part of the file
    (tmp,) = tmp_path.glob(".tmp-*.npy")
    if point == "array-write":
        assert tmp.stat().st_size < 4128  # cut short: 1000 float32 plus the header
    Store(tmp_path).close()
    assert Store(tmp_path).remove_temporaries() == 1  # its writer is dead
    assert not list(tmp_path.glob(".tmp-*"))


def test_fault_hook_malformed_setting_rejected(tmp_path):
    code = "from embvar.faults import fault_point; fault_point('array-write')"
    env = {**SUBPROCESS_ENV, "EMBVAR_FAULT": "array-write:2"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1 and ConfigError.__name__ in proc.stderr
    assert "EMBVAR_FAULT must list point:probability pairs" in proc.stderr


def test_remove_temporaries_spares_a_live_writer(tmp_path):
    with Store(tmp_path) as store:
        (tmp_path / "snapshots").mkdir()
        mine = temporary_path(tmp_path / "snapshots", ".npy")
        mine.write_bytes(b"being written")
        dead = (
            tmp_path
            / "snapshots"
            / mine.name.replace(f"-{mine.name.split('-')[2]}-", "-999999999-")
        )
        dead.write_bytes(b"left by a killed writer")
        old = tmp_path / ".tmp-0123abcd.npy"  # unknown writer, written long ago
        old.write_bytes(b"old")
        past = time.time() - 3600
        import os

        os.utime(old, (past, past))
        assert store.remove_temporaries() == 2
        assert mine.exists() and not dead.exists() and not old.exists()


def test_save_run_full_disk_leaves_no_file_and_run_unfinished(
    tmp_path, ratings_csv, monkeypatch
):
    import embvar.store as store_module

    path = tmp_path / "s.toml"
    path.write_text(study_text("full", ratings_csv, init=1, order=1))
    spec = plan_runs(load_study(path))[0]
    real_fsync, calls = store_module.os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) >= 3:  # the third table of the run: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    from tests.reliability.conftest import fake_result

    result = fake_result(spec)
    with Store(tmp_path / "out") as store:
        store.register([spec])
        assert store.claim(spec.run_id, "me")
        monkeypatch.setattr(store_module.os, "fsync", fsync)
        with pytest.raises(
            StoreError, match="No space left on device; free some space"
        ):
            store.save_run(result, "me")
        monkeypatch.undo()
        assert store.finished_ids() == set()
        assert store.snapshot_rows() == []
    assert not list((tmp_path / "out").rglob("*.npy"))
    assert not list((tmp_path / "out").rglob(".tmp-*"))


def test_save_run_by_a_claimant_that_lost_its_claim_records_nothing(
    tmp_path, ratings_csv
):
    from tests.reliability.conftest import fake_result

    path = tmp_path / "s.toml"
    path.write_text(study_text("lost", ratings_csv, init=1, order=1))
    spec = plan_runs(load_study(path))[0]
    with Store(tmp_path / "out") as store:
        store.register([spec])
        assert store.claim(spec.run_id, "stalled", lease_s=-1)  # lease lapsed
        assert store.claim(spec.run_id, "other")
        assert not store.save_run(fake_result(spec), "stalled")
        assert store.finished_ids() == set()
        assert not (tmp_path / "out" / "snapshots").exists()
        assert store.save_run(fake_result(spec), "other")
        assert store.finished_ids() == {spec.run_id}


def test_study_with_a_failing_run_finishes_the_others(tmp_path, ratings_csv):
    path = tmp_path / "s.toml"
    path.write_text(study_text("fails", ratings_csv, init=2, order=2))
    specs = plan_runs(load_study(path))
    bad = specs[1].run_id
    outcome = run_study(
        path,
        tmp_path / "out",
        executor=FakeExecutor(fail={bad}),
        trainer="independent",
        analyze=False,
    )
    assert set(outcome.failed) == {bad} and len(outcome.trained) == 3
    state = check_store(tmp_path / "out", planned=4)
    assert len(state["finished"]) == 3
    # The next start retries the failed run once, and only that one.
    again = FakeExecutor()
    run_study(path, tmp_path / "out", executor=again, analyze=False)
    assert again.trained == [bad]


@pytest.mark.slow
def test_study_survives_20_sigkills_in_a_row(tmp_path):
    study = make_study(tmp_path, init=4, order=3)
    report = kill_loop(study, tmp_path / "out", kills=20, planned=12, seed=10)
    assert sum(report.kills.values()) >= 20, report
    # Kills landed while snapshots were written and inside the commit.
    assert report.kills["array-write"] >= 1 and report.kills["array-rename"] >= 1
    assert report.kills["index-commit"] >= 1 and report.kills["timed"] >= 1
    assert set(report.kills_by_trainer) == {"independent", "replicas"}
    assert report.final_rc == 0, report.final_stderr
    state = check_store(tmp_path / "out", planned=12)
    assert len(state["finished"]) == 12  # every RunSpec stored, exactly once
    assert state["temporaries"] == []
    with Store(tmp_path / "out", create=False) as store:
        assert {r.status for r in store.runs()} == {"done"}
        assert len(store.snapshot_rows()) == 12 * 2 * 4
    import json

    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["runs"]["done"] == 12 and doc["runs"]["unfinished"] == []
    np.testing.assert_equal(
        sorted(doc["groups"][0]["run_ids"]), sorted(state["finished"])
    )
