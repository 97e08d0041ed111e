"""The Ray executor against a real Ray head started as its own process.

The head is ``ray start --head --num-cpus 2`` on a free port with its own
temporary folder; the study runs through the command line with
``--executor ray --address``, and its runs must equal the local
executor's bit for bit. A worker killed in the middle of a run must be
retried, and a driver killed mid-study must leave a study the next start
finishes, with every run stored once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embvar.store import Store
from embvar.study import run_study
from tests.execution.ray_head import RayHead, session_pids, task_pids

pytest.importorskip("ray", reason="Ray is not installed (pip install 'embvar[ray]')")

pytestmark = pytest.mark.slow

EMBVAR = [sys.executable, "-m", "embvar.cli"]
RAY_BIN = str(Path(sys.executable).with_name("ray"))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_AUTH_MODE": "disabled"}

QUICK_STUDY = """
name = "rayquick"
root_seed = 11
[data]
fraction = 0.1
[model]
dim = 8
[training]
epochs = 1
learning_rate = 0.01
batch_size = 2048
[[design]]
name = "seeds"
factors = { init = [0, 1, 2] }
"""

# Longer runs, so that a kill lands while one trains.
LONG_STUDY = (
    QUICK_STUDY.replace('name = "rayquick"', 'name = "raylong"')
    .replace("epochs = 1", "epochs = 6")
    .replace("batch_size = 2048", "batch_size = 256")
)


@pytest.fixture(scope="module")
def ray_head():
    if not Path(RAY_BIN).exists():
        pytest.skip(f"the ray command is not installed next to {sys.executable}")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    head = RayHead(RAY_BIN, num_cpus=2).start()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="module")
def quick_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "rayquick.toml"
    path.write_text(QUICK_STUDY)
    return path


def _runs_by_id(directory: Path) -> dict[str, tuple[dict, list]]:
    with Store(directory) as store:
        out = {}
        for run_id in sorted(store.finished_ids()):
            epochs = store.epochs(run_id)
            out[run_id] = (
                {e: store.load_snapshot(run_id, e) for e in epochs},
                [
                    (h["epoch"], h["loss"], h["train_rmse"], h["test_rmse"])
                    for h in store.history(run_id)
                ],
            )
    return out


def _statuses(index: Path) -> dict[str, str]:
    if not index.is_file():
        return {}
    db = sqlite3.connect(index, timeout=30)
    try:
        return dict(db.execute("SELECT run_id, status FROM runs"))
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def _stored_once(directory: Path, runs: int, epochs: int) -> None:
    with Store(directory) as store:
        assert len(store.finished_ids()) == runs
        rows = store.snapshot_rows()
        keys = [(r[0], r[1], r[2]) for r in rows]
        assert len(keys) == len(set(keys)) == runs * (epochs + 1) * 4
        for run_id in store.finished_ids():
            assert [h["epoch"] for h in store.history(run_id)] == list(
                range(epochs + 1)
            )
            for epoch in store.epochs(run_id):
                store.load_snapshot(run_id, epoch)  # checksums hold
        files = list((directory / "snapshots").glob("*/*.npy"))
        assert len(files) == len(rows)  # no stray copy of a run's tables
    assert not list(directory.glob("**/.tmp-*"))


def test_ray_cli_quick_study_bitwise_equal_to_local(ray_head, quick_file, tmp_path):
    local = run_study(quick_file, tmp_path / "local", analyze=False)
    assert len(local.trained) == 3 and not local.failed

    proc = subprocess.run(
        [
            *EMBVAR,
            "study",
            str(quick_file),
            "--executor",
            "ray",
            "--address",
            ray_head.address,
            "--dir",
            str(tmp_path / "ray"),
            "--no-progress",
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "3 runs trained, 0 already finished, 0 failed." in proc.stdout

    a, b = _runs_by_id(tmp_path / "local"), _runs_by_id(tmp_path / "ray")
    assert sorted(a) == sorted(b) == sorted(local.trained)
    for run_id in a:
        snaps_a, hist_a = a[run_id]
        snaps_b, hist_b = b[run_id]
        assert hist_a == hist_b, run_id
        assert sorted(snaps_a) == sorted(snaps_b) == [0, 1]
        for epoch in snaps_a:
            assert sorted(snaps_a[epoch]) == sorted(snaps_b[epoch])
            for table, array in snaps_a[epoch].items():
                other = snaps_b[epoch][table]
                assert array.dtype == other.dtype == np.float32
                assert array.tobytes() == other.tobytes(), (run_id, epoch, table)
    # Different seeds really gave different tables: the comparison can fail.
    first, second = (a[r][0][1]["user_embedding"] for r in sorted(a)[:2])
    assert first.tobytes() != second.tobytes()


def test_ray_worker_killed_mid_run_study_completes_once(ray_head, tmp_path):
    path = tmp_path / "raylong.toml"
    path.write_text(LONG_STUDY)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *EMBVAR,
            "study",
            str(path),
            "--executor",
            "ray",
            "--address",
            ray_head.address,
            "--dir",
            str(out),
            "--no-progress",
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        killed = None
        deadline = time.time() + 300
        while killed is None and time.time() < deadline and proc.poll() is None:
            running = task_pids(ray_head.temp_dir)
            if running and "running" in _statuses(out / "index.sqlite").values():
                time.sleep(2.0)  # into the run: data prepared, training
                if running[0] in task_pids(ray_head.temp_dir):
                    os.kill(running[0], signal.SIGKILL)
                    killed = running[0]
            time.sleep(0.1)
        assert killed is not None, "no Ray worker was seen training a run"
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr[-3000:]
    assert "3 runs trained, 0 already finished, 0 failed." in stdout
    assert killed not in session_pids(ray_head.temp_dir)
    _stored_once(out, runs=3, epochs=6)


def test_ray_driver_killed_study_resumes_locally(ray_head, tmp_path):
    path = tmp_path / "raylong.toml"
    path.write_text(LONG_STUDY)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *EMBVAR,
            "study",
            str(path),
            "--executor",
            "ray",
            "--address",
            ray_head.address,
            "--dir",
            str(out),
            "--no-progress",
        ],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if task_pids(ray_head.temp_dir):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _statuses(out / "index.sqlite")
    assert "running" in before.values(), before  # claims the dead driver held

    outcome = run_study(path, out, analyze=False)  # the next start, locally
    assert not outcome.failed
    done_before = {r for r, s in before.items() if s == "done"}
    assert set(outcome.trained) == set(before) - done_before
    _stored_once(out, runs=3, epochs=6)
