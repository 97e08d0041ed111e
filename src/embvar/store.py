"""The run store: an SQLite index plus one float32 ``.npy`` file per table.

Layout of a study directory::

    index.sqlite                  runs, snapshots (path + SHA-256), history
    study.json                    the resolved study the runs came from
    data/<key>/                   id mappings and the split, per data spec
    snapshots/<run_id>/<epoch>-<table>.npy

Writes are atomic: a file is written under a hidden temporary name in its
final folder, flushed to disk and renamed; the index rows that point at it
are committed in one transaction after every file of the run is in place.
A reader only follows index rows of finished runs, so it never sees a
partial file. Nothing is ever unpickled: every load uses
``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embvar import __version__
from embvar.errors import DataError, StoreError, StoreVersionError

__all__ = ["Store", "RunRecord", "SCHEMA_VERSION", "save_array", "load_array"]

logger = logging.getLogger(__name__)

# Bump when the index layout changes in a way older code cannot read.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    group_key TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'diverged', 'failed')),
    claimed_by TEXT,
    lease_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    finished REAL,
    seconds REAL,
    diverged_epoch INTEGER,
    diverged_step INTEGER,
    error TEXT
);
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    tbl TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    shape TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch, tbl)
);
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    loss REAL,
    train_rmse REAL,
    test_rmse REAL,
    seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
"""

FINISHED = ("done", "diverged")


@dataclass(frozen=True)
class RunRecord:
    """One row of the run index."""

    run_id: str
    group_key: str
    spec: dict[str, Any]
    status: str
    attempts: int
    seconds: float | None
    diverged_epoch: int | None
    diverged_step: int | None
    error: str | None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_array(path: Path, array: np.ndarray) -> str:
    """Write ``array`` to ``path`` atomically; return the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}.npy"
    try:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        digest = _sha256(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(f"cannot write {str(path)!r}: {exc.strerror or exc}.") from exc
    return digest


def load_array(path: Path, sha256: str | None = None) -> np.ndarray:
    """Load a ``.npy`` file without unpickling, checking its SHA-256 if given."""
    try:
        if sha256 is not None and _sha256(path) != sha256:
            raise StoreError(
                f"{str(path)!r} does not match the checksum in the index; "
                "the file changed after it was written. Delete the run's "
                "folder and rerun the study to retrain it."
            )
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{str(path)!r} is not a plain .npy array: {exc}.") from exc
    except OSError as exc:
        raise StoreError(f"cannot read {str(path)!r}: {exc}.") from exc


class Store:
    """A study directory: open (or create) its index and read or write runs.

    Parameters
    ----------
    root : str or Path
        The study directory. Created if missing.
    create : bool
        If False, a directory without an index is an error.
    """

    def __init__(self, root: str | Path, *, create: bool = True):
        self.root = Path(root)
        index = self.root / "index.sqlite"
        if not create and not index.is_file():
            raise StoreError(
                f"{str(self.root)!r} is not an embvar study directory "
                "(it has no index.sqlite); run a study into it first."
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(index, timeout=60, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the run store in {str(self.root)!r}: {exc}.") from exc
        self._check_version()

    # -- schema -------------------------------------------------------------

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            with self.transaction() as db:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                           (str(SCHEMA_VERSION),))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('embvar_version', ?)",
                           (__version__,))
            return
        if row[0] != str(SCHEMA_VERSION):
            raise StoreVersionError(
                f"the store in {str(self.root)!r} has index schema version {row[0]}, "
                f"and this embvar ({__version__}) reads version {SCHEMA_VERSION}; "
                "open it with the embvar version that wrote it, or rerun the study "
                "into a new directory."
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the body in one immediate transaction (all or nothing)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the index in {str(self.root)!r}: {exc}.") from exc
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot commit to the index: {exc}.") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata -------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- runs ------------------------------------------------------------------

    def register(self, specs: list[Any]) -> int:
        """Add planned runs not yet in the index; return how many were new."""
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO runs (run_id, group_key, spec_json) VALUES (?, ?, ?)",
                [(s.run_id, s.group_key, s.model_dump_json()) for s in specs],
            )
            # A spec seen again in a later design keeps its newest labels.
            db.executemany(
                "UPDATE runs SET spec_json=? WHERE run_id=?",
                [(s.model_dump_json(), s.run_id) for s in specs],
            )
            return db.total_changes - before - len(specs)

    def claim(self, run_id: str, owner: str, lease_s: float = 600.0) -> bool:
        """Mark a run as being trained by ``owner``; False if someone else has it.

        A claim expires after ``lease_s`` seconds, so a run whose claimant
        died is trained again by the next process that asks.
        """
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE runs SET status='running', claimed_by=?, lease_until=?, "
                "attempts=attempts+1 WHERE run_id=? AND (status IN ('pending','failed') "
                "OR (status='running' AND (lease_until IS NULL OR lease_until<? "
                "OR claimed_by=?)))",
                (owner, now + lease_s, run_id, now, owner),
            )
            return cur.rowcount == 1

    def release_dead_claims(self) -> int:
        """Give back runs claimed by processes of this host that no longer exist.

        Owners are written as ``host:pid:tag``; a claim of another host is
        left to its lease.
        """
        host = socket.gethostname()
        dead = []
        for run_id, owner in self._db.execute(
            "SELECT run_id, claimed_by FROM runs WHERE status='running'"
        ):
            parts = (owner or "").split(":")
            if len(parts) >= 2 and parts[0] == host and parts[1].isdigit():
                if not _pid_alive(int(parts[1])):
                    dead.append((run_id, owner))
        with self.transaction() as db:
            for run_id, owner in dead:
                db.execute(
                    "UPDATE runs SET status='pending', claimed_by=NULL, lease_until=NULL "
                    "WHERE run_id=? AND claimed_by=?", (run_id, owner))
        return len(dead)

    def release(self, run_id: str, error: str | None = None) -> None:
        """Give a claimed, unfinished run back (after an error or Ctrl-C)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status=?, claimed_by=NULL, lease_until=NULL, error=? "
                "WHERE run_id=? AND status='running'",
                ("failed" if error else "pending", error, run_id),
            )

    def save_run(self, result: Any) -> None:
        """Write a finished run's snapshots and history, then mark it finished.

        Files first (each atomic), then one transaction for every index row:
        a crash in between leaves the run unfinished, to be redone.
        """
        run_dir = self.root / "snapshots" / result.run_id
        rows = []
        for epoch, tables in sorted(result.snapshots.items()):
            for name, array in tables.items():
                array = np.ascontiguousarray(array, dtype=np.float32)
                path = run_dir / f"{epoch:04d}-{name}.npy"
                digest = save_array(path, array)
                rel = str(path.relative_to(self.root))
                rows.append((result.run_id, epoch, name, rel, digest, json.dumps(array.shape)))
        div = result.diverged or {}
        with self.transaction() as db:
            db.execute("DELETE FROM snapshots WHERE run_id=?", (result.run_id,))
            db.execute("DELETE FROM history WHERE run_id=?", (result.run_id,))
            db.executemany("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany(
                "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?)",
                [(result.run_id, h["epoch"], _real(h["loss"]), _real(h["train_rmse"]),
                  _real(h["test_rmse"]), h["seconds"]) for h in result.history],
            )
            db.execute(
                "UPDATE runs SET status=?, claimed_by=NULL, lease_until=NULL, finished=?, "
                "seconds=?, diverged_epoch=?, diverged_step=?, error=NULL WHERE run_id=?",
                (result.status, time.time(), result.seconds, div.get("epoch"),
                 div.get("step"), result.run_id),
            )

    def runs(self, status: str | tuple[str, ...] | None = None) -> list[RunRecord]:
        """Return the index's runs, in the order they were planned."""
        sql = ("SELECT run_id, group_key, spec_json, status, attempts, seconds, "
               "diverged_epoch, diverged_step, error FROM runs")
        args: tuple[Any, ...] = ()
        if status is not None:
            statuses = (status,) if isinstance(status, str) else status
            sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
            args = tuple(statuses)
        sql += " ORDER BY rowid"
        return [RunRecord(r[0], r[1], json.loads(r[2]), *r[3:]) for r in self._db.execute(sql, args)]

    def finished_ids(self) -> set[str]:
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE status IN ('done', 'diverged')"
        )
        return {r[0] for r in rows}

    def history(self, run_id: str) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT epoch, loss, train_rmse, test_rmse, seconds FROM history "
            "WHERE run_id=? ORDER BY epoch", (run_id,))
        keys = ("epoch", "loss", "train_rmse", "test_rmse", "seconds")
        return [dict(zip(keys, row)) for row in cur]

    def epochs(self, run_id: str) -> list[int]:
        cur = self._db.execute(
            "SELECT DISTINCT epoch FROM snapshots WHERE run_id=? ORDER BY epoch", (run_id,))
        return [r[0] for r in cur]

    def load_snapshot(self, run_id: str, epoch: int | None = None, *,
                      verify: bool = True) -> dict[str, np.ndarray]:
        """Return every table of a run at ``epoch`` (default: its last)."""
        if epoch is None:
            row = self._db.execute(
                "SELECT MAX(epoch) FROM snapshots WHERE run_id=?", (run_id,)).fetchone()
            if row is None or row[0] is None:
                raise StoreError(f"run {run_id!r} has no snapshots in {str(self.root)!r}.")
            epoch = row[0]
        cur = self._db.execute(
            "SELECT tbl, path, sha256 FROM snapshots WHERE run_id=? AND epoch=?",
            (run_id, epoch))
        tables = {name: load_array(self.root / path, digest if verify else None)
                  for name, path, digest in cur}
        if not tables:
            raise StoreError(f"run {run_id!r} has no snapshot at epoch {epoch}.")
        return tables

    def snapshot_rows(self) -> list[tuple[str, int, str, str, str]]:
        """Every (run_id, epoch, table, path, sha256) the index holds."""
        return list(self._db.execute(
            "SELECT run_id, epoch, tbl, path, sha256 FROM snapshots ORDER BY run_id, epoch"))

    def remove_temporaries(self) -> int:
        """Delete temporary files left by a writer that died; return the count."""
        n = 0
        for tmp in (self.root / "snapshots").glob("*/.tmp-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                n += 1
        for tmp in self.root.glob("**/.tmp-*"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                n += 1
        return n


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _real(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
