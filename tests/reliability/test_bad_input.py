"""A catalogue of bad input: each is one line on stderr, exit 2, the store untouched.

Every case runs the real command line (``embvar.cli.main``, in this
process for speed; a few also in a fresh process) against a copy of a
finished study directory, and compares that directory, index rows and file
checksums, before and after. Embedding files are fed both through a
study's ``model.pretrained`` and through ``embvar compare``.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import embvar.cli
from embvar.store import Store
from embvar.study import run_study
from tests.reliability.conftest import (
    EMBVAR,
    SUBPROCESS_ENV,
    FakeExecutor,
    store_state,
    study_text,
    write_ratings,
)

# The finished study every case runs against: 60 users, 40 items, dim 4.
N_USERS, N_ITEMS, DIM = 60, 40, 4


@dataclass
class Ctx:
    """What a case builds its input from."""

    tmp: Path
    ratings: Path
    store: Path  # a copy of the finished study "base"
    marker: Path  # created only if something unpickles a planted object

    def study(self, body: str, *, data: Path | None = None, name: str = "base") -> Path:
        path = self.tmp / "case.toml"
        path.write_text(
            f'name = "{name}"\nroot_seed = 11\n[data]\nsource = '
            f'"{data or self.ratings}"\n{body}'
        )
        return path

    def run(self, study: Path, *extra: str) -> list[str]:
        return ["study", str(study), "--dir", str(self.store), *extra]

    def csv(self, text: str, name: str = "bad.csv") -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def pretrained(self, path: Path) -> list[str]:
        body = f'[model]\ndim = 4\ninitializer = "pretrained"\npretrained = "{path}"\n'
        return self.run(self.study(body))

    def evil_npy(self, name: str = "evil.npy") -> Path:
        """A .npy whose object, if ever unpickled, creates ``marker``."""
        path = self.tmp / name
        np.save(
            path,
            np.array([_Planted(str(self.marker))], dtype=object),
            allow_pickle=True,
        )
        return path

    def table(self, array: np.ndarray, name: str, ids: bool = False) -> Path:
        path = self.tmp / name
        np.save(path, array)
        if ids:
            rows = "\n".join(f"e{i}" for i in range(len(array)))
            (self.tmp / (path.stem + ".ids.txt")).write_text(rows + "\n")
        return path

    def compare(self, other: Path) -> list[str]:
        good = self.table(_vectors(), "good.npy", ids=True)
        return ["compare", str(good), str(other), "--out", str(self.store / "cmp")]


class _Planted:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _vectors(rows: int = N_ITEMS, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(1).normal(size=(rows, dim)).astype(np.float32)


def _truncated(ctx: Ctx, name: str, ids: bool = False) -> Path:
    path = ctx.table(_vectors(), name, ids=ids)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _raw_pickle(ctx: Ctx) -> Path:
    import pickle

    path = ctx.tmp / "raw.npy"
    path.write_bytes(pickle.dumps(_Planted(str(ctx.marker))))
    return path


def _npz_with_objects(ctx: Ctx) -> Path:
    path = ctx.tmp / "objects.npz"
    np.savez(path, item_embedding=np.array([_Planted(str(ctx.marker))], dtype=object))
    return path


def _with_index(ctx: Ctx, sql: str) -> list[str]:
    db = sqlite3.connect(ctx.store / "index.sqlite")
    db.executescript(sql)
    db.close()
    return ctx.run(ctx.study(""))


def _foreign_index(ctx: Ctx) -> list[str]:
    shutil.rmtree(ctx.store)
    ctx.store.mkdir()
    db = sqlite3.connect(ctx.store / "index.sqlite")
    db.execute("CREATE TABLE songs (title TEXT)")
    db.commit()
    db.close()
    return ctx.run(ctx.study(""))


def _garbage_index(ctx: Ctx) -> list[str]:
    (ctx.store / "index.sqlite").write_bytes(b"not a database at all, " * 200)
    return ctx.run(ctx.study(""))


def _dir_is_file(ctx: Ctx) -> list[str]:
    path = ctx.tmp / "a-file"
    path.write_text("x")
    return ["study", str(ctx.study("")), "--dir", str(path)]


def _too_many_runs(ctx: Ctx) -> list[str]:
    init, order = list(range(101)), list(range(100))
    body = f"[[design]]\nfactors = {{ init = {init}, order = {order} }}\n"
    return ctx.run(ctx.study(body))


def _module(ctx: Ctx, code: str) -> str:
    """A module on sys.path (the case's folder) holding ``code``; its name."""
    (ctx.tmp / "embvar_bad_builder.py").write_text(code + "\n")
    sys.path.insert(0, str(ctx.tmp))
    sys.modules.pop("embvar_bad_builder", None)
    return "embvar_bad_builder"


def _dense_rows(n_users: int, n_items: int) -> str:
    """Every user rates every item: no user has 10 unseen items."""
    rows = [
        f"{u},{i},{1 + (u + i) % 5}" for u in range(n_users) for i in range(n_items)
    ]
    return "user,item,rating\n" + "\n".join(rows) + "\n"


def _report_json(ctx: Ctx, text: str, command: str) -> list[str]:
    (ctx.store / "report.json").write_text(text)
    return [command, str(ctx.store)]


def _dup_rows(n_users: int = 3) -> str:
    return "user,item,rating\n1,1,4\n1,1,5\n2,2,3\n2,1,3\n"


# id -> (build the command line, fragments the one line must hold)
CASES: dict[str, tuple[Callable[[Ctx], list[str]], list[str]]] = {
    # -- the study file ---------------------------------------------------
    "toml-malformed": (
        lambda c: c.run(c.csv('name = "x\n', "m.toml")),
        ["not valid TOML"],
    ),
    "toml-not-utf8": (
        lambda c: c.run(_bytes(c, b'name = "\xff\xfe"\n')),
        ["cannot read the study file"],
    ),
    "key-unknown-top": (
        lambda c: c.run(c.csv('name = "base"\ncolour = 1\n', "k.toml")),
        ["unknown key 'colour' in the top level", "check the spelling"],
    ),
    "key-unknown-section": (
        lambda c: c.run(c.study("[model]\ncolor = 2\n")),
        ["unknown key 'color' in model"],
    ),
    "type-epochs-string": (
        lambda c: c.run(c.study('[training]\nepochs = "ten"\n')),
        ["training.epochs", "integer", "'ten'"],
    ),
    "type-dim-float": (
        lambda c: c.run(c.study("[model]\ndim = 1.5\n")),
        ["model.dim", "integer", "1.5"],
    ),
    "type-section-number": (
        lambda c: c.run(c.csv('name = "base"\nmodel = 3\n', "t.toml")),
        ["model", "got model=3"],
    ),
    "range-dim-zero": (
        lambda c: c.run(c.study("[model]\ndim = 0\n")),
        ["model.dim must be greater than or equal to 1", "model.dim=0"],
    ),
    "range-dim-huge": (
        lambda c: c.run(c.study("[model]\ndim = 5000\n")),
        ["model.dim must be less than or equal to 4096", "5000"],
    ),
    "range-lr-zero": (
        lambda c: c.run(c.study("[training]\nlearning_rate = 0\n")),
        ["training.learning_rate must be greater than 0"],
    ),
    "range-test-fraction": (
        lambda c: c.run(c.study("test_fraction = 1.5\n")),
        ["data.test_fraction", "0.9", "1.5"],
    ),
    "range-epochs-zero": (
        lambda c: c.run(c.study("[training]\nepochs = 0\n")),
        ["training.epochs must be greater than or equal to 1"],
    ),
    "range-root-seed": (
        lambda c: c.run(c.csv('name = "base"\nroot_seed = -1\n', "r.toml")),
        ["root_seed", "-1"],
    ),
    "choice-optimizer": (
        lambda c: c.run(c.study('[training]\noptimizer = "adamax"\n')),
        ["training.optimizer must be", "'adamax'"],
    ),
    "choice-initializer": (
        lambda c: c.run(c.study('[model]\ninitializer = "zeros"\n')),
        ["model.initializer must be", "'zeros'"],
    ),
    "missing-name": (
        lambda c: c.run(c.csv("root_seed = 1\n", "n.toml")),
        ["key 'name' is required"],
    ),
    "factor-unknown": (
        lambda c: c.run(c.study("[[design]]\nfactors = { colour = [1] }\n")),
        ["unknown factor 'colour'", "accepted factors"],
    ),
    "factor-negative-seed": (
        lambda c: c.run(c.study("[[design]]\nfactors = { init = [-1] }\n")),
        ["seed factor 'init'", "-1"],
    ),
    "factor-empty": (
        lambda c: c.run(c.study("[[design]]\nfactors = { init = [] }\n")),
        ["factor 'init' must list at least one value"],
    ),
    "runs-above-max": (_too_many_runs, ["plans more than 10000 runs"]),
    "type-bool-as-number": (
        lambda c: c.run(c.study("[training]\nepochs = true\n")),
        ["training.epochs must be a number, not true or false", "True"],
    ),
    "range-memory-infinite": (
        lambda c: c.run(c.study('[execution]\nmemory = "1e400"\n')),
        ["execution.memory must be bytes or a size", "'1e400'"],
    ),
    "design-names-repeat": (
        lambda c: c.run(
            c.study('[[design]]\nname = "a"\n[[design]]\nname = "a"\nreplicates = 2\n')
        ),
        ["design must give each design a name of its own", "'a' names 2 designs"],
    ),
    "quick-typo-without-quick": (
        lambda c: c.run(c.study("[quick]\ntraining = { epoch = 3 }\n")),
        ["[quick]", "unknown key 'epoch' in training"],
    ),
    "fit-hook-ignored-by-factorization": (
        lambda c: c.run(c.study('[model]\nfit = "os:path"\n')),
        ["model.fit is a training hook", "got fit='os:path'", "'factorization'"],
    ),
    "builder-raises-on-import": (
        lambda c: c.run(c.study(f'[model]\nkind = "{_module(c, "1/0")}:build"\n')),
        ["importing 'embvar_bad_builder' raised ZeroDivisionError", "fix the module"],
    ),
    "builder-not-importable": (
        lambda c: c.run(c.study('[model]\nkind = "no_such_module_xyz:build"\n')),
        ["model.kind 'no_such_module_xyz:build'", "cannot import"],
    ),
    "pretrained-not-named": (
        lambda c: c.run(c.study('[model]\ninitializer = "pretrained"\n')),
        ["model.pretrained must name"],
    ),
    # -- the data ----------------------------------------------------------
    "data-empty": (
        lambda c: c.run(c.study("", data=c.csv("user,item,rating\n"))),
        ["is empty"],
    ),
    "data-single-user": (
        lambda c: c.run(
            c.study("", data=c.csv("user,item,rating\n1,1,4\n1,2,3\n1,3,5\n"))
        ),
        ["at least 2 users and 2 items", "1 user(s)"],
    ),
    "data-no-user-column": (
        lambda c: c.run(c.study("", data=c.csv("person,item,rating\n1,1,4\n2,2,3\n"))),
        ["must have a user column", "got columns ['person'"],
    ),
    "data-no-item-column": (
        lambda c: c.run(c.study("", data=c.csv("user,thing,rating\n1,1,4\n2,2,3\n"))),
        ["must have an item column"],
    ),
    "data-duplicate-ids": (
        lambda c: c.run(c.study("", data=c.csv(_dup_rows()))),
        ["each (user, item) pair once", "1 pairs repeat"],
    ),
    "data-non-finite-rating": (
        lambda c: c.run(
            c.study(
                "", data=c.csv("user,item,rating\n1,1,4\n2,2,abc\n1,2,inf\n2,1,3\n")
            )
        ),
        ["column 'rating'", "must hold finite numbers", "2 of 4 values"],
    ),
    "data-too-small-for-analysis": (
        lambda c: c.run(c.study("", data=c.csv(_dense_rows(12, 12)))),
        ["is too small", "at least 11 users and 11 items", "of the 12 items"],
    ),
    "data-rating-beyond-float32": (
        lambda c: c.run(
            c.study("", data=c.csv("user,item,rating\n1,1,1e300\n2,2,3\n1,2,4\n"))
        ),
        ["column 'rating'", "must hold finite numbers", "1 of 3 values"],
    ),
    "data-missing-path": (
        lambda c: c.run(c.study("", data=c.tmp / "gone.csv")),
        ["gone.csv", "does not exist"],
    ),
    "data-path-is-directory": (
        lambda c: c.run(c.study("", data=_mkdir(c, "d.csv"))),
        ["d.csv", "is not a file"],
    ),
    # -- embedding files, through model.pretrained ---------------------------
    "pretrained-pickle": (
        lambda c: c.pretrained(c.evil_npy()),
        ["evil.npy", "not a plain .npy array", "pickled objects are never loaded"],
    ),
    "pretrained-raw-pickle": (
        lambda c: c.pretrained(_raw_pickle(c)),
        ["raw.npy", "not a plain .npy array"],
    ),
    "pretrained-npz-objects": (
        lambda c: c.pretrained(_npz_with_objects(c)),
        ["objects.npz", "plain arrays", "never loaded"],
    ),
    "pretrained-truncated": (
        lambda c: c.pretrained(_truncated(c, "cut.npy")),
        ["cut.npy", "not a plain .npy array"],
    ),
    "pretrained-inf-rows": (
        lambda c: c.pretrained(c.table(_with_inf(), "inf.npy")),
        ["inf.npy", "must hold finite numbers", "2 of 40 rows"],
    ),
    "pretrained-wrong-dim": (
        lambda c: c.pretrained(c.table(_vectors(dim=5), "d5.npy")),
        ["d5.npy", "must have shape (40, 4)", "got (40, 5)"],
    ),
    "pretrained-complex": (
        lambda c: c.pretrained(c.table(_vectors().astype(np.complex64), "cx.npy")),
        ["cx.npy", "must hold real numbers", "complex64"],
    ),
    "pretrained-unknown-format": (
        lambda c: c.pretrained(c.csv("1 2 3\n", "v.txt")),
        ["must be a .npy/.npz file", "v.txt"],
    ),
    "pretrained-missing": (
        lambda c: c.pretrained(c.tmp / "none.npy"),
        ["model.pretrained='", "none.npy", "does not exist"],
    ),
    # -- embedding files, through embvar compare ------------------------------
    "compare-pickle": (
        lambda c: c.compare(c.evil_npy()),
        ["evil.npy", "never unpickles"],
    ),
    "compare-raw-pickle": (
        lambda c: c.compare(_raw_pickle(c)),
        ["raw.npy", "pickle", "never unpickles"],
    ),
    "compare-truncated": (
        lambda c: c.compare(_truncated(c, "cut.npy", ids=True)),
        ["cut.npy", "not a valid .npy file"],
    ),
    "compare-non-finite": (
        lambda c: c.compare(c.table(_with_inf(), "inf.npy", ids=True)),
        ["inf.npy", "must be finite", "2 of 40 rows"],
    ),
    "compare-complex": (
        lambda c: c.compare(c.table(_vectors().astype(np.complex64), "cx.npy", True)),
        ["cx.npy", "must hold real numbers", "complex64"],
    ),
    "compare-unknown-format": (
        lambda c: c.compare(_bytes(c, b"\x00\x01zz", "v.bin")),
        ["v.bin", "cannot tell the format"],
    ),
    "compare-missing": (lambda c: c.compare(c.tmp / "none.npy"), ["none.npy"]),
    # -- the study directory -------------------------------------------------
    "dir-other-study": (
        lambda c: c.run(c.study("", name="other")),
        ["holds study 'base', not 'other'", "another directory"],
    ),
    "dir-newer-schema": (
        lambda c: _with_index(
            c,
            "UPDATE meta SET value='99' WHERE key='schema_version';"
            "UPDATE meta SET value='9.0.0' WHERE key='embvar_version';",
        ),
        [
            "schema version 99 (written by embvar 9.0.0)",
            "reads version 1",
            "To migrate, rerun the study into a new directory",
            "pip install embvar==9.0.0",
            "The directory was not changed",
        ],
    ),
    "dir-foreign-index": (_foreign_index, ["no embvar schema version"]),
    "dir-garbage-index": (
        _garbage_index,
        ["cannot open the run store", "not a database"],
    ),
    "dir-is-a-file": (_dir_is_file, ["cannot open the run store", "a-file"]),
    "claims-report-not-an-object": (
        lambda c: _report_json(c, "[1, 2]", "claims"),
        ["report.json' must hold a JSON object; got list"],
    ),
    "claims-report-claim-not-an-object": (
        lambda c: _report_json(c, '{"claims": {"claims": [1]}}', "claims"),
        ["report.json claims.claims must be a list of objects"],
    ),
    "claims-report-effect-not-a-number": (
        lambda c: _report_json(
            c, '{"claims": {"claims": [{"id": "C1", "effect": "big"}]}}', "claims"
        ),
        ["claim 'C1' must have a number or null effect", "'big'"],
    ),
    "determinism-no-such-module": (
        lambda c: ["determinism", "no_such_module_xyz:train", "--dir", str(c.store)],
        ["cannot import 'no_such_module_xyz'", "no such module"],
    ),
    "runs-not-a-store": (
        lambda c: ["runs", str(c.tmp)],
        ["is not an embvar study directory"],
    ),
    # -- the command line itself ----------------------------------------------
    "cli-workers-zero": (
        lambda c: c.run(c.study(""), "--workers", "0"),
        ["Invalid value for '--workers'", "greater than or equal to 1"],
    ),
    "cli-unknown-option": (
        lambda c: c.run(c.study(""), "--colour"),
        ["No such option: --colour", "embvar study --help"],
    ),
}


def _bytes(ctx: Ctx, data: bytes, name: str = "b.toml") -> Path:
    path = ctx.tmp / name
    path.write_bytes(data)
    return path


def _mkdir(ctx: Ctx, name: str) -> Path:
    path = ctx.tmp / name
    path.mkdir()
    return path


def _with_inf() -> np.ndarray:
    table = _vectors()
    table[3, 1] = np.inf
    table[7, 0] = -np.inf
    return table


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """A finished study "base" (4 runs, fake training) and its ratings."""
    folder = tmp_path_factory.mktemp("base")
    ratings = write_ratings(folder / "ratings.csv", n_users=N_USERS, n_items=N_ITEMS)
    path = folder / "base.toml"
    path.write_text(study_text("base", ratings))
    run_study(path, folder / "store", executor=FakeExecutor(), analyze=False)
    return folder / "store", ratings


@pytest.fixture
def ctx(tmp_path, finished) -> Ctx:
    store, ratings = finished
    shutil.copytree(store, tmp_path / "store")
    return Ctx(tmp_path, ratings, tmp_path / "store", tmp_path / "UNPICKLED")


def run_cli(argv: list[str], capsys, monkeypatch) -> tuple[int, list[str]]:
    """Run ``embvar ARGV`` in this process; return the exit code and stderr lines."""
    monkeypatch.setattr(sys, "argv", ["embvar", *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        embvar.cli.main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return exit_.value.code, lines


def test_catalogue_has_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_exit_2_store_unchanged(case, ctx, capsys, monkeypatch):
    build, fragments = CASES[case]
    argv = build(ctx)
    before = store_state(ctx.store)
    code, lines = run_cli(argv, capsys, monkeypatch)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("embvar: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert store_state(ctx.store) == before
    assert not ctx.marker.exists(), "a planted pickle was unpickled"


def test_full_disk_while_saving_one_line_exit_2_finished_runs_kept(
    ctx, capsys, monkeypatch
):
    import embvar.execution.local
    import embvar.store

    # Two of the four runs unfinished, as after a kill.
    with Store(ctx.store) as store:
        store._db.execute("UPDATE runs SET status='pending' WHERE rowid > 2")
        unfinished = {r.run_id for r in store.runs("pending")}
    before = store_state(ctx.store)

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        embvar.execution.local, "LocalExecutor", lambda workers=1: FakeExecutor()
    )
    monkeypatch.setattr(embvar.store.os, "fsync", fsync)
    study = ctx.tmp / "base.toml"
    study.write_text(study_text("base", ctx.ratings))
    code, lines = run_cli(ctx.run(study), capsys, monkeypatch)
    monkeypatch.undo()
    assert code == 2 and len(lines) == 1, lines
    assert "No space left on device; free some space" in lines[0]
    assert "run the same command again to resume" in lines[0]
    # Everything is as it was but the claim counter of the runs it tried.
    after = store_state(ctx.store)
    assert after["files"] == before["files"]
    strip = [row for row in after["rows"] if not row.startswith("runs:")]
    assert strip == [row for row in before["rows"] if not row.startswith("runs:")]
    with Store(ctx.store) as store:
        assert {r.run_id for r in store.runs("pending")} == unfinished


@pytest.mark.slow
def test_full_disk_for_real_rlimit_one_line_exit_2(ctx):
    import resource

    study = ctx.tmp / "base.toml"
    study.write_text(study_text("base", ctx.ratings))
    with Store(ctx.store) as store:
        store._db.execute("UPDATE runs SET status='pending' WHERE rowid > 2")
    before = store_state(ctx.store)

    def limit() -> None:  # every file write beyond 2 KB fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    proc = subprocess.run(
        [*EMBVAR, *ctx.run(study)],
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("embvar: error: "), lines
    assert "File too large" in lines[0] or "disk I/O error" in lines[0], lines
    assert store_state(ctx.store) == before


@pytest.mark.slow
@pytest.mark.parametrize("case", ["pretrained-pickle", "compare-pickle", "data-empty"])
def test_bad_input_in_a_fresh_process_one_line_exit_2(case, ctx):
    argv = CASES[case][0](ctx)
    before = store_state(ctx.store)
    proc = subprocess.run(
        [*EMBVAR, *argv],
        env=SUBPROCESS_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert all(f in lines[0] for f in CASES[case][1]), lines
    assert store_state(ctx.store) == before
    assert not ctx.marker.exists()


def test_bad_study_into_a_new_directory_creates_nothing(ctx, capsys, monkeypatch):
    fresh = ctx.tmp / "fresh"
    study = ctx.study("", data=ctx.csv("user,item,rating\n"))
    code, _ = run_cli(["study", str(study), "--dir", str(fresh)], capsys, monkeypatch)
    assert code == 2 and not fresh.exists()
