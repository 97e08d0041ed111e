"""A rich progress bar for a study: runs done, the current run's epoch, time left."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["StudyProgress"]


class StudyProgress:
    """Progress of a study's runs; a no-op when ``enabled`` is False."""

    def __init__(self, total: int, *, enabled: bool, done: int = 0, planned: int = 0):
        self.enabled = enabled
        self._progress: Progress | None = None
        self.total = total
        self.done = done
        self.planned = planned or total
        self._running: set[str] = set()
        self._finished = 0

    def __enter__(self) -> StudyProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._progress.start()
            self._runs = self._progress.add_task("runs", total=self.total)
            self._epoch = self._progress.add_task("  epoch", total=1)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def event(self, event: tuple[str, str, int, int]) -> None:
        kind, run_id, epoch, epochs = event
        if kind == "start":
            self._running.add(run_id)
            self._describe()
        if self._progress is None:
            return
        if kind == "start":
            self._progress.update(
                self._epoch,
                description=f"  run {run_id[:8]} epoch",
                completed=0,
                total=1,
            )
        elif kind == "epoch":
            self._progress.update(
                self._epoch,
                description=f"  run {run_id[:8]} epoch",
                completed=epoch,
                total=epochs,
            )

    def finished(self, run_id: str) -> None:
        self._running.discard(run_id)
        self._finished += 1
        if self._progress is not None:
            self._progress.advance(self._runs)
            self._describe()

    def counts(self) -> dict[str, int]:
        """Tasks of this call ``pending`` (not started), ``running`` and ``done``."""
        running = len(self._running)
        return {
            "pending": max(0, self.total - self._finished - running),
            "running": running,
            "done": self._finished,
        }

    def _describe(self) -> None:
        if self._progress is not None:
            c = self.counts()
            self._progress.update(
                self._runs,
                description=(f"runs ({c['pending']} pending, {c['running']} running)"),
            )
