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

Several processes may work in one directory at once: a run is claimed in
the index before it is trained, with a lease that its claimant renews
(:class:`LeaseKeeper`) and that expires if the claimant dies, and a run is
recorded only by the process that holds its claim. Temporary files carry
their writer's host and process id, so one process never deletes another's
file while it is being written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embvar import __version__
from embvar.errors import DataError, StoreError, StoreVersionError
from embvar.faults import cut_and_kill, fault_point, kill_soon

__all__ = [
    "Store",
    "RunRecord",
    "LeaseKeeper",
    "SCHEMA_VERSION",
    "save_array",
    "load_array",
    "write_text_atomic",
    "temporary_path",
]

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

# What run ids and table names may be: they become file names.
_RUN_ID = re.compile(r"[0-9a-f]{16}")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


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


# Temporary files are named .tmp-<host>-<pid>-<random><suffix>, so that
# remove_temporaries can tell a dead writer's leftovers from a live one's.
_HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
# A temporary of another host (or of an older embvar) this old is a leftover.
_STALE_TEMPORARY_S = 600.0


def temporary_path(folder: Path, suffix: str = "") -> Path:
    """Return a fresh hidden temporary name in ``folder``, tagged with its writer."""
    return folder / f".tmp-{_HOST_TAG}-{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}"


def _writer_alive(tmp: Path, now: float) -> bool:
    parts = tmp.name.split("-")
    if len(parts) >= 4 and parts[1] == _HOST_TAG and parts[2].isdigit():
        return _pid_alive(int(parts[2]))
    try:
        return now - tmp.stat().st_mtime < _STALE_TEMPORARY_S
    except OSError:
        return False


def save_array(path: Path, array: np.ndarray) -> str:
    """Write ``array`` to ``path`` atomically; return the file's SHA-256.

    The bytes go to a temporary name in the same folder, are flushed to
    disk, then renamed over ``path``: a reader sees the old file or the new
    one, never a part.

    Raises
    ------
    StoreError
        If the file cannot be written (a full disk, no permission).
    """
    tmp = temporary_path(path.parent, ".npy")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
            cut_and_kill("array-write", f)  # testing hook, see embvar.faults
            f.flush()
            os.fsync(f.fileno())
        digest = _sha256(tmp)
        fault_point("array-rename")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(
            f"cannot write {str(path)!r}: {exc.strerror or exc}; free some space "
            "(or fix the permissions) and run the same command again to resume."
        ) from exc
    return digest


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, like :func:`save_array`."""
    path = Path(path)
    tmp = temporary_path(path.parent, path.suffix)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(
            f"cannot write {str(path)!r}: {exc.strerror or exc}; free some space "
            "(or fix the permissions) and run the same command again."
        ) from exc


def load_array(path: Path, sha256: str | None = None) -> np.ndarray:
    """Load a ``.npy`` file without unpickling, checking its SHA-256 if given.

    Raises
    ------
    DataError
        If the file is not a ``.npy`` file of a plain numeric or string
        array: a pickle, an object array, an ``.npz`` archive, a truncated
        file. Pickled data is refused before any of it is unpickled.
    StoreError
        If the file cannot be read or does not match ``sha256``.
    """
    expected = (
        "is not a plain .npy array; it must be a .npy file of numbers or strings "
        "(pickled objects are never loaded)"
    )
    try:
        if sha256 is not None and _sha256(path) != sha256:
            raise StoreError(
                f"{str(path)!r} does not match the checksum in the index; "
                "the file changed after it was written. Delete the run's "
                "folder and rerun the study to retrain it."
            )
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        reason = str(exc).rstrip(".")
        raise DataError(f"{str(path)!r} {expected}; got: {reason}.") from exc
    except OSError as exc:
        raise StoreError(f"cannot read {str(path)!r}: {exc.strerror or exc}.") from exc
    if not isinstance(array, np.ndarray):
        with contextlib.suppress(Exception):
            array.close()
        raise DataError(f"{str(path)!r} {expected}; got an .npz archive.")
    return array


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
            # The version is checked before anything is written, so an index
            # of another version is left exactly as it was.
            self._check_version()
            self._enable_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            # Tables and version in one transaction: a process opening the
            # index meanwhile, or after a crash, sees all of it or none.
            self._db.executescript(
                f"BEGIN IMMEDIATE;\n{_SCHEMA}\n"
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', "
                f"'{SCHEMA_VERSION:d}');\n"
                "INSERT OR IGNORE INTO meta VALUES ('embvar_version', "
                f"'{_sql_text(__version__)}');\nCOMMIT;"
            )
        except StoreVersionError:
            self._db.close()
            raise
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the run store in {str(self.root)!r}: {exc}; it must be "
                "a directory embvar can write, holding an index embvar wrote."
            ) from exc

    def _enable_wal(self, wait_s: float = 60.0) -> None:
        """Switch the index to write-ahead logging, waiting for other openers.

        SQLite answers a journal-mode change with "database is locked" at
        once, without its busy timeout, while another connection holds the
        file (two runners opening a new study together): retry until the
        mode is WAL or ``wait_s`` has passed.
        """
        deadline = time.monotonic() + wait_s
        while True:
            try:
                mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -- schema -------------------------------------------------------------

    def _check_version(self) -> None:
        tables = {
            r[0]
            for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'"
            )
        }
        row = None
        if "meta" in tables:
            row = self._db.execute(
                "SELECT value FROM meta WHERE key='schema_version'"
            ).fetchone()
        if row is None and tables:
            raise StoreVersionError(
                f"the index in {str(self.root)!r} holds tables "
                f"({', '.join(sorted(tables))}) but no embvar schema version, so "
                "another program or an unknown embvar version wrote it; give "
                "another directory. The directory was not changed."
            )
        if row is None:
            return
        if row[0] != str(SCHEMA_VERSION):
            wrote = self._db.execute(
                "SELECT value FROM meta WHERE key='embvar_version'"
            ).fetchone()
            writer = f"embvar {wrote[0]}" if wrote else "another embvar version"
            pin = wrote[0] if wrote else "VERSION"
            raise StoreVersionError(
                f"the store in {str(self.root)!r} has index schema version {row[0]} "
                f"(written by {writer}), and this embvar ({__version__}) reads "
                f"version {SCHEMA_VERSION}. To migrate, rerun the study into a new "
                "directory with this version (`embvar study STUDY --dir NEW_DIR`; "
                "runs are retrained, nothing is converted); to read the old "
                f"results as they are, use {writer} (`pip install embvar=={pin}`). "
                "The directory was not changed."
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the body in one immediate transaction (all or nothing)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot write the index in {str(self.root)!r}: {exc}."
            ) from exc
        try:
            yield self._db
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise StoreError(
                f"cannot write the index in {str(self.root)!r}: {exc}; nothing of "
                "this step was recorded (a full disk? free some space and rerun)."
            ) from exc
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
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
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value))
            )

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- runs ------------------------------------------------------------------

    def register(self, specs: list[Any]) -> int:
        """Add planned runs not yet in the index; return how many were new."""
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO runs (run_id, group_key, spec_json) "
                "VALUES (?, ?, ?)",
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
                "attempts=attempts+1 WHERE run_id=? "
                "AND (status IN ('pending','failed') "
                "OR (status='running' AND (lease_until IS NULL OR lease_until<? "
                "OR claimed_by=?)))",
                (owner, now + lease_s, run_id, now, owner),
            )
            return cur.rowcount == 1

    def renew_claims(self, owner: str, lease_s: float = 600.0) -> int:
        """Extend every lease ``owner`` holds by ``lease_s``; return how many."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE runs SET lease_until=? WHERE claimed_by=? AND status='running'",
                (time.time() + lease_s, owner),
            )
            return cur.rowcount

    def claimable_ids(self) -> set[str]:
        """Runs a process may claim now: pending, failed, or with a lapsed lease."""
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE status IN ('pending', 'failed') OR "
            "(status='running' AND (lease_until IS NULL OR lease_until<?))",
            (time.time(),),
        )
        return {r[0] for r in rows}

    def held_ids(self) -> set[str]:
        """Runs being trained now under a lease that has not lapsed."""
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE status='running' AND lease_until>=?",
            (time.time(),),
        )
        return {r[0] for r in rows}

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
                    "UPDATE runs SET status='pending', claimed_by=NULL, "
                    "lease_until=NULL WHERE run_id=? AND claimed_by=?",
                    (run_id, owner),
                )
        return len(dead)

    def release(self, run_id: str, error: str | None = None) -> None:
        """Give a claimed, unfinished run back (after an error or Ctrl-C)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status=?, claimed_by=NULL, lease_until=NULL, error=? "
                "WHERE run_id=? AND status='running'",
                ("failed" if error else "pending", error, run_id),
            )

    def save_run(self, result: Any, owner: str | None = None) -> bool:
        """Write a finished run's snapshots and history, then mark it finished.

        Files first (each atomic), then one transaction for every index row:
        a crash in between leaves the run unfinished, to be redone.

        Parameters
        ----------
        result : RunResult
        owner : str, optional
            The claimant recording the run. If given, the run is recorded
            only while ``owner`` still holds its claim; a claimant that lost
            it (its lease lapsed and another process took the run) writes
            nothing and gets False.

        Returns
        -------
        bool
            True if the run was recorded.
        """
        run_id = _check_run_id(result.run_id)
        if owner is not None and not self._holds(run_id, owner):
            logger.warning(
                "run %s is no longer claimed by %s; not recording it", run_id, owner
            )
            return False
        run_dir = self.root / "snapshots" / run_id
        rows, written = [], []
        try:
            for epoch, tables in sorted(result.snapshots.items()):
                for name, array in tables.items():
                    array = np.ascontiguousarray(array, dtype=np.float32)
                    path = run_dir / f"{int(epoch):04d}-{_check_table_name(name)}.npy"
                    digest = save_array(path, array)
                    written.append(path)
                    rel = str(path.relative_to(self.root))
                    shape = json.dumps(array.shape)
                    rows.append((run_id, epoch, name, rel, digest, shape))
            recorded = self._record_run(result, rows, owner)
        except BaseException:
            # Nothing in the index points at these files; leave no trace.
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        fault_point("after-commit")  # testing hook, see embvar.faults
        if not recorded:
            logger.warning(
                "run %s was taken over by another process while it was "
                "saved; not recording it",
                run_id,
            )
            return False
        keep = {Path(r[3]).name for r in rows}
        for stale in run_dir.glob("*.npy"):
            if stale.name not in keep:
                with contextlib.suppress(OSError):
                    stale.unlink()
        return True

    def _holds(self, run_id: str, owner: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM runs WHERE run_id=? AND status='running' AND claimed_by=?",
            (run_id, owner),
        ).fetchone()
        return row is not None

    def _record_run(self, result: Any, rows: list[tuple], owner: str | None) -> bool:
        div = result.diverged or {}
        with self.transaction() as db:
            if owner is not None and not self._holds(result.run_id, owner):
                return False
            db.execute("DELETE FROM snapshots WHERE run_id=?", (result.run_id,))
            db.execute("DELETE FROM history WHERE run_id=?", (result.run_id,))
            db.executemany("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany(
                "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        result.run_id,
                        h["epoch"],
                        _real(h["loss"]),
                        _real(h["train_rmse"]),
                        _real(h["test_rmse"]),
                        h["seconds"],
                    )
                    for h in result.history
                ],
            )
            db.execute(
                "UPDATE runs SET status=?, claimed_by=NULL, lease_until=NULL, "
                "finished=?, seconds=?, diverged_epoch=?, diverged_step=?, error=NULL "
                "WHERE run_id=?",
                (
                    result.status,
                    time.time(),
                    result.seconds,
                    div.get("epoch"),
                    div.get("step"),
                    result.run_id,
                ),
            )
            kill_soon("index-commit")  # testing hook: dies inside the COMMIT
        return True

    def runs(self, status: str | tuple[str, ...] | None = None) -> list[RunRecord]:
        """Return the index's runs, in the order they were planned."""
        sql = (
            "SELECT run_id, group_key, spec_json, status, attempts, seconds, "
            "diverged_epoch, diverged_step, error FROM runs"
        )
        args: tuple[Any, ...] = ()
        if status is not None:
            statuses = (status,) if isinstance(status, str) else status
            sql += f" WHERE status IN ({','.join('?' * len(statuses))})"
            args = tuple(statuses)
        sql += " ORDER BY rowid"
        return [
            RunRecord(r[0], r[1], json.loads(r[2]), *r[3:])
            for r in self._db.execute(sql, args)
        ]

    def finished_ids(self) -> set[str]:
        rows = self._db.execute(
            "SELECT run_id FROM runs WHERE status IN ('done', 'diverged')"
        )
        return {r[0] for r in rows}

    def history(self, run_id: str) -> list[dict[str, Any]]:
        cur = self._db.execute(
            "SELECT epoch, loss, train_rmse, test_rmse, seconds FROM history "
            "WHERE run_id=? ORDER BY epoch",
            (run_id,),
        )
        keys = ("epoch", "loss", "train_rmse", "test_rmse", "seconds")
        return [dict(zip(keys, row, strict=True)) for row in cur]

    def epochs(self, run_id: str) -> list[int]:
        cur = self._db.execute(
            "SELECT DISTINCT epoch FROM snapshots WHERE run_id=? ORDER BY epoch",
            (run_id,),
        )
        return [r[0] for r in cur]

    def load_snapshot(
        self, run_id: str, epoch: int | None = None, *, verify: bool = True
    ) -> dict[str, np.ndarray]:
        """Return every table of a run at ``epoch`` (default: its last)."""
        if epoch is None:
            row = self._db.execute(
                "SELECT MAX(epoch) FROM snapshots WHERE run_id=?", (run_id,)
            ).fetchone()
            if row is None or row[0] is None:
                raise StoreError(
                    f"run {run_id!r} has no snapshots in {str(self.root)!r}."
                )
            epoch = row[0]
        cur = self._db.execute(
            "SELECT tbl, path, sha256 FROM snapshots WHERE run_id=? AND epoch=?",
            (run_id, epoch),
        )
        tables = {
            name: load_array(self._inside(path), digest if verify else None)
            for name, path, digest in cur
        }
        if not tables:
            raise StoreError(f"run {run_id!r} has no snapshot at epoch {epoch}.")
        return tables

    def snapshot_rows(self) -> list[tuple[str, int, str, str, str]]:
        """Every (run_id, epoch, table, path, sha256) the index holds."""
        return list(
            self._db.execute(
                "SELECT run_id, epoch, tbl, path, sha256 FROM snapshots "
                "ORDER BY run_id, epoch"
            )
        )

    def _inside(self, rel: str) -> Path:
        """Return the index's snapshot path ``rel``; refuse one outside the store."""
        base = (self.root / "snapshots").resolve()
        path = (self.root / rel).resolve()
        if not path.is_relative_to(base):
            raise StoreError(
                f"the index in {str(self.root)!r} points at {rel!r}, outside its "
                "snapshots folder; it was not written by embvar. Refusing to read it."
            )
        return path

    def remove_temporaries(self) -> int:
        """Delete temporary files left by writers that died; return the count.

        A temporary of a live process (another study process working in the
        same directory) is left alone.
        """
        n, now = 0, time.time()
        for tmp in self.root.glob("**/.tmp-*"):
            if _writer_alive(tmp, now):
                continue
            with contextlib.suppress(OSError):
                tmp.unlink()
                n += 1
        return n


class LeaseKeeper:
    """Renew the leases of one claimant from a background thread.

    A run is claimed with a lease; a process that trains for longer than the
    lease keeps its claims by renewing them every ``lease_s / 3`` seconds,
    so no other process takes over a run that is still being trained,
    however long it is queued or trains. If the process dies, renewals stop
    and its claims lapse after at most ``lease_s``.

    Parameters
    ----------
    root : str or Path
        The study directory.
    owner : str
        The claimant, as given to :meth:`Store.claim`.
    lease_s : float
        The lease each renewal grants.

    Examples
    --------
    >>> with LeaseKeeper(store.root, owner, lease_s=600):  # doctest: +SKIP
    ...     executor.run(tasks, on_result)
    """

    def __init__(self, root: str | Path, owner: str, lease_s: float = 600.0):
        self.root, self.owner, self.lease_s = Path(root), owner, float(lease_s)
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="embvar-lease", daemon=True
        )

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        # SQLite connections belong to one thread: this one opens its own.
        db = sqlite3.connect(
            self.root / "index.sqlite", timeout=60, isolation_level=None
        )
        try:
            while not self._stop.wait(self.lease_s / 3):
                try:
                    db.execute(
                        "UPDATE runs SET lease_until=? WHERE claimed_by=? AND "
                        "status='running'",
                        (time.time() + self.lease_s, self.owner),
                    )
                    self.renewals += 1
                except sqlite3.Error as exc:  # retried at the next beat
                    logger.warning("cannot renew the leases of %s: %s", self.owner, exc)
        finally:
            db.close()


def _check_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(str(run_id)):
        raise StoreError(
            f"a run id must be 16 lowercase hexadecimal digits (a RunSpec hash); "
            f"got run_id={run_id!r}."
        )
    return run_id


def _check_table_name(name: str) -> str:
    if not _TABLE_NAME.fullmatch(str(name)):
        raise StoreError(
            f"a table name must be letters, digits and underscores; got table={name!r}."
        )
    return name


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


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
