"""Run a study: plan its runs, train what is not finished, store, analyse.

``run_study`` is the Python API behind ``embvar study``. It is resumable by
construction: the plan is registered in the store's index, a run is claimed
before it is trained and marked finished in the same transaction that
records its files, so a study that dies (Ctrl-C, a kill, a crash) is
started again with the same call, and only unfinished runs are trained.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embvar.config import RunSpec, Study, load_study, plan_runs
from embvar.data.prepared import PreparedData, prepare_data, save_prepared
from embvar.errors import ConfigError, EmbvarError
from embvar.store import Store

__all__ = ["StudyOutcome", "run_study", "default_directory", "open_study"]

logger = logging.getLogger(__name__)


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


def default_directory(study: Study, quick: bool) -> Path:
    """Return ``runs/<name>`` (``runs/<name>-quick`` for a quick study)."""
    return Path("runs") / (study.name + ("-quick" if quick else ""))


def open_study(
    source: str | Path | Study, *, quick: bool = False
) -> tuple[Study, list[RunSpec]]:
    """Return a validated study and its plan, from a name, a path or a Study."""
    study = source if isinstance(source, Study) else load_study(source, quick=quick)
    return study, plan_runs(study)


def prepare_all(specs: list[RunSpec], store: Store) -> dict[str, PreparedData]:
    """Prepare (and save, or check against the saved copy) each data variant."""
    prepared: dict[str, PreparedData] = {}
    for spec in specs:
        data = prepare_data(spec.data, spec.seeds["split"])
        if data.key not in prepared:
            save_prepared(data, store.root / "data" / data.key)
            prepared[data.key] = data
    return prepared


def run_study(
    source: str | Path | Study,
    directory: str | Path | None = None,
    *,
    quick: bool = False,
    workers: int = 1,
    executor: Any = None,
    progress: bool = False,
    analyze: bool = True,
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
    executor : object, optional
        An executor with ``run(tasks, on_result, on_progress)``; default a
        :class:`~embvar.execution.LocalExecutor` with ``workers``.
    progress : bool
        Show a progress bar on the terminal.
    analyze : bool
        Analyse the finished runs and write ``report.json``.

    Returns
    -------
    StudyOutcome

    Raises
    ------
    ConfigError, DataError, StoreError
        On bad input, before anything is written where possible.
    """
    study, specs = open_study(source, quick=quick)
    directory = Path(directory) if directory is not None else default_directory(study, quick)
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
        prepare_all(specs, store)
        store.register(specs)
        if store.release_dead_claims():
            logger.info("took back runs claimed by processes that died")

        finished = store.finished_ids()
        todo = [s for s in specs if s.run_id not in finished]
        outcome = StudyOutcome(study=study, directory=directory, planned=len(specs),
                               skipped=len(specs) - len(todo))
        _train(store, todo, outcome, workers=workers, executor=executor, progress=progress)

        if analyze:
            from embvar.report.document import write_report

            outcome.report, outcome.report_path = write_report(store, study, specs)
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


def _train(store: Store, todo: list[RunSpec], outcome: StudyOutcome, *, workers: int,
           executor: Any, progress: bool) -> None:
    if not todo:
        return
    if executor is None:
        from embvar.execution.local import LocalExecutor

        executor = LocalExecutor(workers=workers)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    claimed = [s for s in todo if store.claim(s.run_id, owner)]
    by_id = {s.run_id: s for s in claimed}
    pending = set(by_id)

    def on_result(run_id: str, result: Any) -> None:
        pending.discard(run_id)
        if isinstance(result, BaseException):
            message = str(result) if isinstance(result, EmbvarError) else repr(result)
            store.release(run_id, error=message)
            outcome.failed[run_id] = message
            logger.error("run %s failed: %s", run_id, message)
            return
        store.save_run(result)
        outcome.trained.append(run_id)

    from embvar.report.progress import StudyProgress

    interrupt = _GracefulInterrupt()

    def on_progress(event: Any) -> None:
        interrupt.check()
        bar.event(event)

    def on_result_checked(run_id: str, result: Any) -> None:
        on_result(run_id, result)
        bar.finished(run_id)
        interrupt.check()

    bar = StudyProgress(total=len(claimed), enabled=progress,
                        done=outcome.skipped, planned=outcome.planned)
    try:
        with bar, interrupt:
            executor.run(
                [(s.run_id, s.model_dump_json()) for s in claimed],
                on_result_checked,
                on_progress,
            )
            interrupt.check()
    finally:
        # Ctrl-C or a crash of the driver: give back what was not finished,
        # so the next start (or another process) trains it.
        for run_id in pending:
            store.release(run_id)
