"""The executor interface, and the choice of executor for a study.

An executor trains a list of tasks and hands each result back to the
driver as it arrives; the driver (the runner in :mod:`embvar.study`) alone
writes the store. A task is ``(run_id, spec_json)``: everything a worker
needs to train the run, so a worker shares nothing with the driver but the
installed package.

Two executors implement it: :class:`~embvar.execution.local.LocalExecutor`
(this process or a pool of spawned processes, the default) and
:class:`~embvar.execution.ray.RayExecutor` (one Ray task per run, on a Ray
cluster or a Ray instance started here).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from embvar.errors import ConfigError

__all__ = [
    "Executor",
    "ProgressEvent",
    "Task",
    "EXECUTORS",
    "make_executor",
    "executor_for",
]

#: ``(run_id, spec_json)``: one run, as its RunSpec's JSON.
Task = tuple[str, str]
#: ``(kind, run_id, epoch, epochs)``; kind is "start", "epoch" or "end".
ProgressEvent = tuple[str, str, int, int]
#: The executors a study may name.
EXECUTORS = ("local", "ray")


@runtime_checkable
class Executor(Protocol):
    """Where a study's runs are trained.

    Attributes
    ----------
    name : str
        ``"local"``, ``"ray"``, or a user's own.
    """

    name: str

    def run(
        self,
        tasks: Iterable[Task],
        on_result: Callable[[str, Any], None],
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        """Train every task and call ``on_result(run_id, result)`` once per task.

        ``result`` is the run's :class:`~embvar.training.fit.RunResult`, or
        the exception the run raised (the caller records it as the run's
        failure; the other tasks go on). ``on_result`` and ``on_progress``
        are called in the calling thread; an exception they raise (Ctrl-C)
        stops the executor, which gives up its unfinished tasks.
        """
        ...


def make_executor(
    name: str | Executor | None = None,
    *,
    workers: int = 1,
    address: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory: int | None = None,
    max_retries: int = 3,
) -> Executor:
    """Return the executor ``name`` names, or ``name`` itself if it is one.

    Parameters
    ----------
    name : {"local", "ray"} or Executor, optional
        Default ``"local"``.
    workers : int
        Local processes (``"local"``); with ``"ray"`` and no ``address``,
        the CPUs of the Ray instance started here (times ``cpus``).
    address : str, optional
        Ray only: the cluster to join (``"auto"``, ``"host:6379"``,
        ``"ray://host:10001"``); default a Ray instance started here.
    cpus, gpus, memory : float, float, int or None
        Ray only: what each task asks the cluster for (memory in bytes).
    max_retries : int
        Ray only: how many times a task whose worker died is run again.

    Raises
    ------
    ConfigError
        If ``name`` is not an executor, or ``address`` is given for the
        local executor.
    DependencyError
        If ``"ray"`` is asked for and Ray is not installed.
    """
    if name is not None and not isinstance(name, str):
        if not callable(getattr(name, "run", None)):
            raise ConfigError(
                "executor must be 'local', 'ray' or an object with a name and "
                f"run(tasks, on_result, on_progress); got {type(name).__name__}."
            )
        return name
    name = name or "local"
    if name == "local":
        if address is not None:
            raise ConfigError(
                f"address is for executor='ray'; got address={address!r} with "
                "executor='local'."
            )
        from embvar.execution.local import LocalExecutor

        return LocalExecutor(workers=workers)
    if name == "ray":
        from embvar.execution.ray import RayExecutor

        return RayExecutor(
            address=address,
            workers=workers,
            cpus=cpus,
            gpus=gpus,
            memory=memory,
            max_retries=max_retries,
        )
    raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}; got {name!r}.")


def executor_for(
    execution: Any,
    executor: str | Executor | None = None,
    *,
    address: str | None = None,
    workers: int = 1,
) -> Executor:
    """Return the executor for a study: arguments first, then its ``[execution]``.

    Parameters
    ----------
    execution : ExecutionSpec
        The study file's ``[execution]`` table.
    executor : {"local", "ray"} or Executor, optional
        Overrides ``execution.executor``.
    address : str, optional
        Overrides ``execution.address`` (Ray only).
    workers : int
        Local processes, or the CPUs of a Ray started here.
    """
    if executor is not None and not isinstance(executor, str):
        return make_executor(executor)
    name = executor or execution.executor
    if address is None and name == execution.executor:
        address = execution.address
    if name != "ray":
        return make_executor(name, workers=workers, address=address)
    return make_executor(
        name,
        workers=workers,
        address=address,
        cpus=execution.cpus,
        gpus=execution.gpus,
        memory=execution.memory,
        max_retries=execution.max_retries,
    )
