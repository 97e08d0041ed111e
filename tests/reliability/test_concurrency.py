"""Two processes on one study directory: no run trained twice, none lost."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from embvar.config import load_study, plan_runs
from embvar.store import LeaseKeeper, Store
from embvar.study import run_study
from tests.reliability.conftest import (
    EMBVAR,
    SUBPROCESS_ENV,
    FakeExecutor,
    check_store,
    study_text,
)


@pytest.fixture
def study4(tmp_path, ratings_csv):
    path = tmp_path / "s.toml"
    path.write_text(study_text("conc", ratings_csv, init=2, order=2))
    return path


def test_lease_keeper_keeps_a_claim_past_its_lease(tmp_path, study4):
    spec = plan_runs(load_study(study4))[0]
    with Store(tmp_path / "out") as store:
        store.register([spec])
        assert store.claim(spec.run_id, "slow", lease_s=0.6)
        with LeaseKeeper(store.root, "slow", lease_s=0.6) as keeper:
            time.sleep(1.5)  # more than twice the lease
            assert not store.claim(spec.run_id, "other", lease_s=0.6)
        assert keeper.renewals >= 3
        time.sleep(0.7)  # renewals stopped: the lease lapses
        assert store.claim(spec.run_id, "other", lease_s=0.6)


def test_two_runners_share_a_directory_train_each_run_once(tmp_path, study4):
    out = tmp_path / "out"
    executors = [FakeExecutor(delay_s=0.3), FakeExecutor(delay_s=0.3)]
    outcomes: list = [None, None]
    errors: list = []

    def start(i: int) -> None:
        try:
            outcomes[i] = run_study(study4, out, executor=executors[i], analyze=False)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    trained = executors[0].trained + executors[1].trained
    assert sorted(trained) == sorted(s.run_id for s in plan_runs(load_study(study4)))
    state = check_store(out, planned=4)
    assert set(state["attempts"].values()) == {1}  # each run claimed once
    # Both return only once the whole study is finished.
    assert sorted(outcomes[0].trained + outcomes[1].trained) == sorted(trained)


def test_runner_takes_over_a_run_whose_claimant_died(tmp_path, study4):
    out = tmp_path / "out"
    specs = plan_runs(load_study(study4))
    run_study(study4, out, executor=FakeExecutor(), analyze=False)
    with Store(out) as store:  # forget two runs, then let dead processes hold them
        store._db.execute(
            "UPDATE runs SET status='running', claimed_by=?, "
            "lease_until=? WHERE run_id=?",
            (
                f"{socket.gethostname()}:999999999:dead",
                time.time() + 600,
                specs[0].run_id,
            ),
        )
        store._db.execute(
            "UPDATE runs SET status='running', claimed_by=?, "
            "lease_until=? WHERE run_id=?",
            ("elsewhere:123:gone", time.time() + 1.5, specs[1].run_id),
        )
    again = FakeExecutor()
    t0 = time.perf_counter()
    run_study(study4, out, executor=again, analyze=False)
    waited = time.perf_counter() - t0
    # The same-host claim of a dead pid is taken back at once; the other
    # host's claim only when its lease lapses.
    assert again.trained == [specs[0].run_id, specs[1].run_id]
    assert waited >= 1.0
    assert len(check_store(out, planned=4)["finished"]) == 4


def _trained_count(stdout: str) -> int:
    match = re.search(r"(\d+) runs trained", stdout)
    assert match, stdout
    return int(match.group(1))


@pytest.mark.slow
def test_two_study_processes_finish_one_directory_together(tmp_path, ratings_csv):
    path = tmp_path / "s.toml"
    path.write_text(study_text("conc", ratings_csv, init=3, order=2))
    out = tmp_path / "out"
    cmd = [*EMBVAR, "study", str(path), "--dir", str(out), "--no-progress"]
    procs = [
        subprocess.Popen(
            cmd,
            env=SUBPROCESS_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sum(_trained_count(o) for o, _ in results) == 6
    state = check_store(out, planned=6)
    assert len(state["finished"]) == 6
    assert set(state["attempts"].values()) == {1}  # no run trained twice
    report = json.loads((out / "report.json").read_text())
    assert report["runs"]["done"] == 6


@pytest.mark.slow
def test_second_process_finishes_the_runs_of_one_killed_midway(tmp_path, ratings_csv):
    path = tmp_path / "s.toml"
    path.write_text(study_text("conc", ratings_csv, init=3, order=2, epochs=2))
    out = tmp_path / "out"
    cmd = [*EMBVAR, "study", str(path), "--dir", str(out), "--no-progress"]
    first = subprocess.Popen(
        cmd, env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline:  # until the first holds claims and finished one
        if (out / "index.sqlite").is_file():
            with Store(out, create=False) as store:
                if store.finished_ids() and store.held_ids():
                    break
        time.sleep(0.2)
    second = subprocess.Popen(
        cmd,
        env=SUBPROCESS_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    first.send_signal(signal.SIGKILL)
    first.wait()
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr
    state = check_store(out, planned=6)
    assert len(state["finished"]) == 6 and state["temporaries"] == []
    report = json.loads((out / "report.json").read_text())
    assert report["runs"]["done"] == 6 and report["runs"]["unfinished"] == []
