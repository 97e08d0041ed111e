"""Run a study: plan its runs, train what is not finished, store, analyse.

``run_study`` is the Python API behind ``embvar study``. It is resumable by
construction: the plan is registered in the store's index, a run is claimed
before it is trained and marked finished in the same transaction that
records its files, so a study that dies (Ctrl-C, a kill, a crash) is
started again with the same call, and only unfinished runs are trained.

Every input (the study file, the data, pretrained tables, the size limits)
is checked before the study directory is touched, so bad input leaves it
as it was. Two processes may run one study in one directory: the first to
claim a run trains it, under a lease it renews; the other waits for those
runs, takes over any whose claimant dies, and both end with the study
complete and no run trained twice.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embvar.config import RunSpec, Study, load_study, plan_runs
from embvar.data.prepared import PreparedData, prepare_data, save_prepared
from embvar.errors import ConfigError, EmbvarError
from embvar.store import LeaseKeeper, Store

__all__ = ["StudyOutcome", "run_study", "default_directory", "open_study"]

logger = logging.getLogger(__name__)

# How often a process waiting for another's runs looks at the index again.
_POLL_S = 1.0


@dataclass
class StudyOutcome:
    """What ``run_study`` did and where it put the results."""

    study: Study
    directory: Path
    planned: int
    trained: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    report_path: Path | None = None
    # True when nothing changed since the last report, which was kept as it was.
    report_reused: bool = False


def default_directory(study: Study, quick: bool) -> Path:
    """Return ``runs/<name>`` (``runs/<name>-quick`` for a quick study)."""
    return Path("runs") / (study.name + ("-quick" if quick else ""))


def open_study(
    source: str | Path | Study, *, quick: bool = False
) -> tuple[Study, list[RunSpec]]:
    """Return a validated study and its plan, from a name, a path or a Study."""
    study = source if isinstance(source, Study) else load_study(source, quick=quick)
    return study, plan_runs(study)


def prepare_all(
    specs: list[RunSpec], store: Store | None = None
) -> dict[str, PreparedData]:
    """Prepare each data variant; with a store, save it (or check the saved copy)."""
    prepared: dict[str, PreparedData] = {}
    for spec in specs:
        data = prepare_data(spec.data, spec.seeds["split"])
        if data.key not in prepared:
            if store is not None:
                save_prepared(data, store.root / "data" / data.key)
            prepared[data.key] = data
    return prepared


def check_inputs(specs: list[RunSpec], prepared: dict[str, PreparedData]) -> None:
    """Reject what would fail later: tables above the limit, bad pretrained files.

    Raises
    ------
    ConfigError, DataError
        Naming the run's setting, what it must be and what it is.
    """
    import numpy as np

    from embvar.data.prepared import data_key
    from embvar.errors import NonFiniteError
    from embvar.limits import check_table_size

    seen: set[tuple[str, str, int]] = set()
    hooks = {
        (path, what)
        for spec in specs
        for path, what in (
            (spec.model.kind, "model.kind"),
            (spec.model.fit, "model.fit"),
        )
        if path is not None and ":" in path
    }
    if hooks:
        # A builder or hook that cannot be imported fails every run: say so now.
        from embvar.models.custom import load_function

        for path, what in sorted(hooks):
            load_function(path, what)
    for spec in specs:
        data = prepared[data_key(spec.data, spec.seeds["split"])]
        if spec.data.kind == "text":  # a corpus: one word table to size
            check_table_size(
                "word_embedding",
                data.n_words,
                spec.model.dim,
                context=f" (model.dim={spec.model.dim})",
            )
            continue
        inter, dim = data.interactions, spec.model.dim
        where = f" (model.dim={dim}, data {inter.name or spec.data.source!r})"
        check_table_size("user_embedding", inter.n_users, dim, context=where)
        check_table_size("item_embedding", inter.n_items, dim, context=where)
        ref = spec.model.pretrained
        if spec.model.initializer != "pretrained" or ref in (None, "holdout"):
            continue
        if (ref, data.key, dim) in seen:
            continue
        seen.add((ref, data.key, dim))
        from embvar.models.pretrained import load_pretrained

        tables = load_pretrained(ref, inter, dim)
        for role, table in (("user", tables.user), ("item", tables.item)):
            if table is not None and np.isinf(table).any():
                bad = int(np.isinf(table).any(axis=1).sum())
                raise NonFiniteError(
                    f"model.pretrained={ref!r}: the {role} table must hold finite "
                    f"numbers (NaN marks a row it does not cover); {bad} of "
                    f"{len(table)} rows hold inf."
                )


def check_analysable(prepared: dict[str, PreparedData]) -> None:
    """Reject data too small for the analysis, before anything is trained.

    The report compares each item's and user's ``K`` nearest neighbours and
    each user's top-``K`` recommendations among the items they did not rate
    in training, so it needs more than ``K`` users and items and ``K`` unseen
    items for every user.

    Raises
    ------
    DataError
        Naming the data, what the analysis needs and what the data holds.
    """
    import numpy as np

    from embvar.analysis.distances import K
    from embvar.errors import DataError

    for data in prepared.values():
        if getattr(data, "interactions", None) is None:  # a corpus
            continue
        inter = data.interactions
        where = f"the data {inter.name or data.key!r}"
        need = (
            f"the analysis compares {K} nearest neighbours and top-{K} "
            f"recommendations, so it needs at least {K + 1} users and {K + 1} "
            f"items and {K} items every user did not rate in training"
        )
        if inter.n_users <= K or inter.n_items <= K:
            raise DataError(
                f"{where} is too small: {need}; it holds {inter.n_users} users "
                f"and {inter.n_items} items."
            )
        pairs = np.unique(
            np.asarray(data.train_users, np.int64) * inter.n_items
            + np.asarray(data.train_items, np.int64)
        )
        counts = np.bincount(pairs // inter.n_items, minlength=inter.n_users)
        worst = int(np.argmax(counts))
        if inter.n_items - counts[worst] < K:
            raise DataError(
                f"{where} is too small: {need}; user "
                f"{inter.user_ids[worst : worst + 1].tolist()[0]!r} rated "
                f"{counts[worst]} of the {inter.n_items} items in training."
            )


def run_study(
    source: str | Path | Study,
    directory: str | Path | None = None,
    *,
    quick: bool = False,
    workers: int = 1,
    executor: Any = None,
    address: str | None = None,
    progress: bool = False,
    analyze: bool = True,
    lease_s: float = 600.0,
    trainer: str = "auto",
    reanalyze: bool = False,
) -> StudyOutcome:
    """Train every unfinished run of a study and write its report.

    Parameters
    ----------
    source : str, Path or Study
        A built-in study name (``"movielens"``), a path to a ``.toml`` file,
        or a validated :class:`~embvar.config.Study`.
    directory : str or Path, optional
        The study directory (default ``runs/<name>``).
    quick : bool
        Apply the study's ``[quick]`` overrides (a smaller plan).
    workers : int
        Local processes to train in (1: this process).
    executor : {"local", "ray"} or object, optional
        Where to train: ``"local"`` (a :class:`~embvar.execution.LocalExecutor`
        with ``workers``), ``"ray"`` (a
        :class:`~embvar.execution.ray.RayExecutor` with the study's
        ``[execution]`` resources), or an executor with
        ``run(tasks, on_result, on_progress)``; default the study file's
        ``[execution] executor`` (``"local"``).
    address : str, optional
        The Ray cluster to join (``"auto"``, ``"host:6379"``); default the
        study file's ``[execution] address``, else a Ray started here.
    progress : bool
        Show a progress bar on the terminal.
    analyze : bool
        Analyse the finished runs and write ``report.json``. Where nothing
        the report depends on changed since it was written (the study, the
        runs, the analysis code), the written report is kept.
    reanalyze : bool
        Analyse and write the report again even so.
    lease_s : float
        How long a claim on a run lasts without renewal. This process renews
        its claims every ``lease_s / 3`` seconds while it works; a run whose
        claimant died is taken back at once on the same host, and after at
        most ``lease_s`` by a process on another host.
    trainer : {"auto", "replicas", "independent"}
        ``"auto"``: runs of the built-in factorization that share data, table
        shapes, optimizer, batch size and epochs train together as replicas
        in one graph (:mod:`embvar.training.replicas`), the rest one by one;
        ``"replicas"`` or ``"independent"`` force either path.

    Returns
    -------
    StudyOutcome

    Raises
    ------
    ConfigError, DataError, StoreError
        On bad input, before anything is written where possible.
    """
    from embvar.checks import check_choice
    from embvar.config import TRAINERS

    check_choice("trainer", trainer, TRAINERS)
    study, specs = open_study(source, quick=quick)
    directory = (
        Path(directory) if directory is not None else default_directory(study, quick)
    )
    # Every input is checked before the directory is created or changed.
    prepared = prepare_all(specs)
    check_inputs(specs, prepared)
    from embvar.training.replicas import group_runs

    group_runs(specs, trainer=trainer)  # runs the trainer cannot train: ConfigError
    from embvar.execution.base import executor_for

    executor = executor_for(study.execution, executor, address=address, workers=workers)
    if analyze:
        check_analysable(prepared)
    store = Store(directory)
    try:
        saved = store.get_meta("study_name")
        if saved is not None and saved != study.name:
            raise ConfigError(
                f"{str(directory)!r} holds study {saved!r}, not {study.name!r}; "
                "give another directory."
            )
        store.set_meta("study_name", study.name)
        store.set_meta("study", study.model_dump(mode="json"))
        store.set_meta("quick", quick)
        removed = store.remove_temporaries()
        if removed:
            logger.info("removed %d temporary files left by an earlier crash", removed)
        for data in prepared.values():
            save_prepared(data, store.root / "data" / data.key)
        store.register(specs)
        if store.release_dead_claims():
            logger.info("took back runs claimed by processes that died")

        finished = store.finished_ids()
        outcome = StudyOutcome(
            study=study,
            directory=directory,
            planned=len(specs),
            skipped=sum(s.run_id in finished for s in specs),
        )
        tried: set[str] = set()
        waiting = False
        while True:
            # Claim what nobody holds; wait for runs another live process
            # holds; take over those whose claimant died.
            finished = store.finished_ids()
            todo = [
                s for s in specs if s.run_id not in finished and s.run_id not in tried
            ]
            claimable = store.claimable_ids()
            mine = [s for s in todo if s.run_id in claimable]
            if mine:
                tried |= _train(
                    store,
                    mine,
                    outcome,
                    workers=workers,
                    executor=executor,
                    progress=progress,
                    lease_s=lease_s,
                    trainer=trainer,
                    prepared=prepared,
                )
                continue
            held = store.held_ids() & {s.run_id for s in todo}
            if not held:
                break
            if not waiting:
                logger.warning(
                    "%d runs are being trained by another process; "
                    "waiting for them to finish",
                    len(held),
                )
                waiting = True
            time.sleep(_POLL_S)
            store.release_dead_claims()

        if analyze:
            from embvar.report.document import current_report, report_key, write_report

            key = report_key(store, study, specs)
            kept = None if reanalyze else current_report(store, key)
            if kept is not None:
                logger.info("nothing changed since the last report; kept it")
                outcome.report_reused = True
            else:
                kept = write_report(store, study, specs, key)
            outcome.report, outcome.report_path = kept
        return outcome
    finally:
        store.close()


class _GracefulInterrupt:
    """Turn Ctrl-C into a KeyboardInterrupt at the next safe point.

    A SIGINT delivered at an arbitrary moment can land inside a finaliser,
    where Python prints and drops it; this handler only records it, and the
    runner raises between epochs and between runs. A second Ctrl-C raises at
    once.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt


def _train(
    store: Store,
    todo: list[RunSpec],
    outcome: StudyOutcome,
    *,
    workers: int,
    executor: Any,
    progress: bool,
    lease_s: float = 600.0,
    trainer: str = "auto",
    prepared: dict[str, PreparedData] | None = None,
) -> set[str]:
    """Claim and train ``todo``; return the ids of the runs this call claimed."""
    if not todo:
        return set()
    if executor is None:
        from embvar.execution.local import LocalExecutor

        executor = LocalExecutor(workers=workers)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    claimed = [s for s in todo if store.claim(s.run_id, owner, lease_s=lease_s)]
    by_id = {s.run_id: s for s in claimed}
    pending = set(by_id)

    def on_result(run_id: str, result: Any) -> None:
        if isinstance(result, BaseException):
            pending.discard(run_id)
            message = str(result) if isinstance(result, EmbvarError) else repr(result)
            store.release(run_id, error=message)
            outcome.failed[run_id] = message
            logger.error("run %s failed: %s", run_id, message)
            return
        if store.save_run(result, owner):
            outcome.trained.append(run_id)
        # Only now: a run whose saving failed (a full disk) is given back.
        pending.discard(run_id)

    from embvar.report.progress import StudyProgress

    interrupt = _GracefulInterrupt()

    # One task per run, or per replica group (runs trained together).
    from embvar.execution.task import make_tasks, task_results, task_run_ids

    tasks = make_tasks(claimed, trainer=trainer, prepared=prepared)
    payloads = dict(tasks)
    groups = {
        task_id: task_run_ids(task_id, payload)
        for task_id, payload in tasks
        if task_id not in by_id
    }
    if groups:
        logger.info(
            "training %d runs in %d replica groups and %d alone",
            sum(map(len, groups.values())),
            len(groups),
            len(tasks) - len(groups),
        )

    def on_progress(event: Any) -> None:
        interrupt.check()
        if event[0] == "start" and event[1] in groups:
            for run_id in groups[event[1]]:  # every run of the group starts now
                bar.event(("start", run_id, 0, 0))
            return
        bar.event(event)

    def on_result_checked(task_id: str, result: Any) -> None:
        for run_id, one in task_results(task_id, payloads.get(task_id, ""), result):
            on_result(run_id, one)
            bar.finished(run_id)
        interrupt.check()

    bar = StudyProgress(
        total=len(claimed),
        enabled=progress,
        done=outcome.skipped,
        planned=outcome.planned,
    )
    try:
        with bar, interrupt, LeaseKeeper(store.root, owner, lease_s):
            executor.run(
                tasks,
                on_result_checked,
                on_progress,
            )
            interrupt.check()
    finally:
        # Ctrl-C or a crash of the driver: give back what was not finished,
        # so the next start (or another process) trains it.
        for run_id in pending:
            store.release(run_id)
    return set(by_id)
