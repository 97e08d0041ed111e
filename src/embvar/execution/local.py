"""Run tasks in this process, or in a pool of processes started with ``spawn``.

With ``workers > 1`` each worker is a fresh interpreter (``spawn``, never
``fork``: TensorFlow's threads do not survive a fork) whose TensorFlow
thread pools are sized so that the workers share the machine's cores
instead of oversubscribing them.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from embvar.execution.task import configure_threads, run_task

__all__ = ["LocalExecutor", "ProgressEvent"]

logger = logging.getLogger(__name__)

# (kind, run_id, epoch, epochs): kind is "start", "epoch" or "end".
ProgressEvent = tuple[str, str, int, int]


def _worker_init(threads: int, queue: Any) -> None:
    configure_threads(threads)
    global _QUEUE
    _QUEUE = queue


_QUEUE: Any = None


def _pool_task(run_id: str, spec_json: str) -> Any:
    def on_epoch(epoch: int, epochs: int) -> None:
        if _QUEUE is not None:
            _QUEUE.put(("epoch", run_id, epoch, epochs))

    if _QUEUE is not None:
        _QUEUE.put(("start", run_id, 0, 0))
    return run_task(spec_json, on_epoch)


class LocalExecutor:
    """Train runs here (``workers=1``) or in ``workers`` spawned processes.

    Parameters
    ----------
    workers : int
        Processes to train in; 1 trains in the calling process.
    threads : int, optional
        TensorFlow intra-op threads per worker; default: the cores divided
        among the workers.
    """

    name = "local"

    def __init__(self, workers: int = 1, threads: int | None = None):
        self.workers = max(1, int(workers))
        cores = os.cpu_count() or 1
        self.threads = threads or max(1, cores // self.workers)

    def run(
        self,
        tasks: Iterable[tuple[str, str]],
        on_result: Callable[[str, Any], None],
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        """Train every (run_id, spec_json) task; hand each result to ``on_result``.

        Results arrive as runs finish; an exception in one run is handed on
        as the result (the caller records it) and the others go on.
        """
        tasks = list(tasks)
        if self.workers == 1:
            for run_id, spec_json in tasks:
                if on_progress:
                    on_progress(("start", run_id, 0, 0))

                def on_epoch(epoch: int, epochs: int, run_id: str = run_id) -> None:
                    if on_progress:
                        on_progress(("epoch", run_id, epoch, epochs))

                try:
                    result = run_task(spec_json, on_epoch)
                except Exception as exc:  # recorded as the run's failure
                    result = exc
                on_result(run_id, result)
            return
        self._run_pool(tasks, on_result, on_progress)

    def _run_pool(self, tasks, on_result, on_progress) -> None:
        ctx = mp.get_context("spawn")
        manager = ctx.Manager()
        queue = manager.Queue()
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(self.threads, queue),
        )
        try:
            pending = {pool.submit(_pool_task, rid, sj): rid for rid, sj in tasks}
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(queue, on_progress)
                for fut in done:
                    rid = pending.pop(fut)
                    try:
                        result = fut.result()
                    except Exception as exc:  # recorded as the run's failure
                        result = exc
                    on_result(rid, result)
            _drain(queue, on_progress)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            manager.shutdown()


def _drain(queue: Any, on_progress) -> None:
    while True:
        try:
            event = queue.get_nowait()
        except Exception:
            return
        if on_progress:
            on_progress(event)
