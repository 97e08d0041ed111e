"""Helpers of the reliability tests: tiny data, a study on it, store views.

``write_ratings`` writes a synthetic ratings table small enough that a run
trains in well under a second, so the kill harness can afford dozens of
restarts. ``FakeExecutor`` stands in for the trainer where a test is about
the runner and the store, not about TensorFlow: it returns deterministic
tables of the right shapes at once. ``store_state`` is what "the store is
as it was" compares: every index row and every file with its checksum.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from embvar.config import RunSpec
from embvar.data.prepared import prepare_data
from embvar.store import Store

if TYPE_CHECKING:  # TensorFlow is imported only by what trains
    from embvar.training.fit import RunResult

EMBVAR = [sys.executable, "-m", "embvar.cli"]

# An environment for study subprocesses: quiet TensorFlow, one thread each.
SUBPROCESS_ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "OMP_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


def write_ratings(
    path: Path, n_users: int = 60, n_items: int = 40, n: int = 900, seed: int = 0
) -> Path:
    """Write a CSV of ``n`` distinct (user, item, rating) rows; return its path."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    users, items = keys // n_items, keys % n_items
    ratings = rng.integers(1, 6, size=n)
    lines = ["user,item,rating,title"]
    lines += [
        f"{u},{i},{r},movie {i}" for u, i, r in zip(users, items, ratings, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def study_text(
    name: str,
    ratings: Path,
    *,
    init: int = 2,
    order: int = 2,
    epochs: int = 1,
    extra: str = "",
) -> str:
    """A study of ``init`` x ``order`` seed replicates on ``ratings``."""
    return f"""
name = "{name}"
root_seed = 11
[data]
source = "{ratings}"
[model]
dim = 4
[training]
epochs = {epochs}
batch_size = 256
learning_rate = 0.01
[[design]]
name = "seeds"
factors = {{ init = {list(range(init))}, order = {list(range(order))} }}
{extra}
"""


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    return write_ratings(tmp_path / "ratings.csv")


class FakeExecutor:
    """Returns deterministic tables of the right shapes without training.

    It takes both kinds of task the runner hands out: one run, or a replica
    group (its members come back together, as the replica trainer returns
    them).

    Parameters
    ----------
    fail : set of str, optional
        Run ids whose task raises, as a failing run would.
    delay_s : float
        Seconds each run takes.
    """

    name = "fake"

    def __init__(self, fail: set[str] | None = None, delay_s: float = 0.0):
        self.fail = fail or set()
        self.delay_s = delay_s
        self.trained: list[str] = []

    def run(self, tasks, on_result, on_progress=None) -> None:
        import json
        import time

        from embvar.execution.task import is_group

        for task_id, payload in tasks:
            if self.delay_s:
                time.sleep(self.delay_s)
            if is_group(payload):  # a replica group: every member at once
                from embvar.training.replicas import GroupResult

                runs = [
                    RunSpec.model_validate(r) for r in json.loads(payload)["replicas"]
                ]
                self.trained += [s.run_id for s in runs]
                results = [self._one(s) for s in runs]
                failed = [r for r in results if isinstance(r, BaseException)]
                # A member's failure fails its group, as a crash of the graph would.
                on_result(task_id, failed[0] if failed else GroupResult(results))
                continue
            spec = RunSpec.model_validate_json(payload)
            self.trained.append(spec.run_id)
            on_result(task_id, self._one(spec))

    def _one(self, spec: RunSpec) -> RunResult | BaseException:
        if spec.run_id in self.fail:
            return RuntimeError(f"planted failure of {spec.run_id}")
        return fake_result(spec)


def fake_result(spec: RunSpec) -> RunResult:
    """A finished run's result: seeded tables, a history, status done."""
    from embvar.training.fit import RunResult

    data = prepare_data(spec.data, spec.seeds["split"])
    n_users, n_items = data.interactions.n_users, data.interactions.n_items
    rng = np.random.default_rng(spec.seeds["init"])
    snapshots = {}
    history = []
    for epoch in range(spec.training.epochs + 1):
        snapshots[epoch] = {
            "user_embedding": rng.normal(size=(n_users, spec.model.dim)).astype(
                np.float32
            ),
            "item_embedding": rng.normal(size=(n_items, spec.model.dim)).astype(
                np.float32
            ),
        }
        history.append(
            {
                "epoch": epoch,
                "loss": 1.0 / (epoch + 1),
                "train_rmse": 1.0,
                "test_rmse": 1.1 - 0.01 * epoch,
                "seconds": 0.0,
            }
        )
    return RunResult(run_id=spec.run_id, snapshots=snapshots, history=history)


def store_state(root: Path) -> dict[str, Any]:
    """Every index row and every file (path -> SHA-256) of a study directory.

    SQLite's ``-wal``/``-shm`` side files come and go as connections open
    and close; the rows they hold are read through the index.
    """
    files = {}
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("index.sqlite"):
                files[str(path.relative_to(root))] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    rows: list[str] = []
    index = root / "index.sqlite"
    if index.is_file():
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            names = [
                r[0]
                for r in db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
                )
            ]
            for table in names:
                rows += [
                    f"{table}:{r!r}"
                    for r in db.execute(f"SELECT * FROM {table} ORDER BY 1")
                ]
        except sqlite3.DatabaseError:  # not an index: compare its bytes
            rows = ["bytes:" + hashlib.sha256(index.read_bytes()).hexdigest()]
        finally:
            db.close()
    return {"exists": root.exists(), "files": files, "rows": rows}


def check_store(root: Path, planned: int | None = None) -> dict[str, Any]:
    """Check what a reader of a study directory may rely on; return a summary.

    Every finished run has all its snapshots, each matching its checksum;
    no file under ``snapshots/`` is outside the index; no temporary file is
    left. Returns the finished runs' ``(finished, checksums)`` and counts.
    """
    with Store(root, create=False) as store:
        runs = store.runs()
        ids = [r.run_id for r in runs]
        assert len(ids) == len(set(ids)), "a run appears twice in the index"
        rows = store.snapshot_rows()
        keys = [(r[0], r[1], r[2]) for r in rows]
        assert len(keys) == len(set(keys)), "a snapshot is recorded twice"
        finished = {}
        db = store._db
        for r in runs:
            if r.status not in ("done", "diverged"):
                continue
            epochs = store.epochs(r.run_id)
            assert epochs, f"finished run {r.run_id} has no snapshots"
            for epoch in epochs:
                store.load_snapshot(r.run_id, epoch)  # raises on a bad checksum
            history = store.history(r.run_id)
            assert [h["epoch"] for h in history] == list(range(len(history)))
            when = db.execute(
                "SELECT finished FROM runs WHERE run_id=?", (r.run_id,)
            ).fetchone()[0]
            finished[r.run_id] = (
                when,
                tuple(sorted((e, t, d) for rid, e, t, _, d in rows if rid == r.run_id)),
            )
        attempts = {r.run_id: r.attempts for r in runs}
        done_paths = {p for rid, _, _, p, _ in rows if rid in finished}
    leftovers = [str(p) for p in root.rglob(".tmp-*")]
    unreferenced = [
        str(p.relative_to(root))
        for p in (root / "snapshots").rglob("*.npy")
        if p.parent.name in finished and str(p.relative_to(root)) not in done_paths
    ]
    assert not unreferenced, f"files of finished runs outside the index: {unreferenced}"
    if planned is not None:
        assert len(ids) == planned
    return {
        "finished": finished,
        "attempts": attempts,
        "temporaries": leftovers,
        "registered": len(ids),
    }
