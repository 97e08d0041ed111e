"""Train a study's runs on a Ray cluster: one Ray task per run.

Each run is one Ray task that asks the cluster for the study's resources
(``cpus``, ``gpus``, ``memory`` per task). The task gets the run's spec as
JSON, prepares the data on the worker from the same package or file (the
preparation is deterministic), trains, and returns the RunResult: its
arrays travel back through Ray's object store, and the driver alone writes
the study's store, so the cluster needs no shared file system.

Faults: a task whose worker process dies (killed, out of memory, its node
lost) is run again by Ray, up to ``max_retries`` times; an error the run
itself raises is not retried but handed back as the run's failure. Because
only the driver records results, and records a run only while it holds
the run's claim, a run is stored exactly once. A driver that dies leaves
its claims to be taken back, and the next start (on Ray or locally)
trains what is unfinished.

Each worker sizes TensorFlow's intra-op and inter-op thread pools to the
task's CPUs (``max(1, int(cpus))``), as the local pool does for its
workers, so a run trains with the same settings wherever it lands.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from embvar.errors import ConfigError, DependencyError, TrainingError
from embvar.execution.base import ProgressEvent, Task
from embvar.execution.task import configure_threads, run_task

__all__ = ["RayExecutor", "embvar_train", "require_ray", "INSTALL_HINT"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'embvar[ray]'"
# How long the driver waits for a result before it looks at progress events.
_WAIT_S = 0.2


def require_ray() -> Any:
    """Return the ``ray`` module.

    Raises
    ------
    DependencyError
        If Ray is not installed, with the command that installs it.
    """
    try:
        import ray
    except ImportError as exc:
        raise DependencyError(
            f"executor='ray' needs Ray, which is not installed; install it with "
            f"{INSTALL_HINT}."
        ) from exc
    return ray


def embvar_train(run_id: str, spec_json: str, threads: int, events: Any) -> Any:
    """Train one run on a Ray worker; the body of the Ray task.

    Parameters
    ----------
    run_id : str
    spec_json : str
        The run's RunSpec as JSON.
    threads : int
        TensorFlow intra-op (and inter-op) threads.
    events : ray.util.queue.Queue or None
        Where ``("start" | "epoch", run_id, epoch, epochs)`` events go.

    Returns
    -------
    RunResult
    """
    configure_threads(threads)

    def tell(event: ProgressEvent) -> None:
        if events is not None:
            try:
                events.put_nowait(event)
            except Exception:  # progress is best effort; training goes on
                logger.debug("progress event for run %s lost", run_id)

    tell(("start", run_id, 0, 0))
    return run_task(
        spec_json, lambda epoch, epochs: tell(("epoch", run_id, epoch, epochs))
    )


class RayExecutor:
    """Train each run as one Ray task, on a cluster or a Ray started here.

    Parameters
    ----------
    address : str, optional
        The cluster to join: ``"auto"`` (the one this machine belongs to, as
        under ``ray job submit``), ``"host:6379"`` or ``"ray://host:10001"``.
        Default: start a Ray instance on this machine with
        ``workers * cpus`` CPUs, and stop it afterwards.
    workers : int
        Without ``address``: how many tasks run at once on the Ray started
        here.
    cpus : float
        CPUs each task asks for (and its TensorFlow threads, at least 1).
    gpus : float
        GPUs each task asks for.
    memory : int, optional
        Bytes of memory each task asks for (Ray schedules by it; it is not
        a hard limit).
    max_retries : int
        How many times a task whose worker died is run again.
    ship_package : bool, optional
        Send this process's ``embvar`` package to the workers with the job
        (Ray's ``py_modules``), so workers run the driver's code. Default:
        when joining a cluster (``address`` given). The workers must still
        have embvar's dependencies (TensorFlow, NumPy, ...) installed.
    runtime_env : dict, optional
        More of Ray's runtime environment (``working_dir`` for a study's own
        builder modules, ``env_vars``, ...).

    Raises
    ------
    DependencyError
        If Ray is not installed.
    ConfigError
        On a resource request out of range.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int = 1,
        cpus: float = 1.0,
        gpus: float = 0.0,
        memory: int | None = None,
        max_retries: int = 3,
        ship_package: bool | None = None,
        runtime_env: dict[str, Any] | None = None,
    ):
        require_ray()
        for label, value, low in (("cpus", cpus, 0.0), ("gpus", gpus, 0.0)):
            if (
                not isinstance(value, int | float)
                or value < low
                or (label == "cpus" and value == 0)
            ):
                raise ConfigError(
                    f"{label} per Ray task must be a number > 0 "
                    f"(gpus may be 0); got {label}={value!r}."
                )
        if memory is not None and (not isinstance(memory, int) or memory < 1):
            raise ConfigError(
                f"memory per Ray task must be a number of bytes >= 1; "
                f"got memory={memory!r}."
            )
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(
                f"max_retries must be an integer >= 0; got max_retries={max_retries!r}."
            )
        self.address = address
        self.workers = max(1, int(workers))
        self.cpus = float(cpus)
        self.gpus = float(gpus)
        self.memory = memory
        self.max_retries = max_retries
        self.threads = max(1, int(cpus))
        self.ship_package = (
            address is not None if ship_package is None else ship_package
        )
        self.runtime_env = dict(runtime_env or {})

    def _runtime_env(self) -> dict[str, Any]:
        env = dict(self.runtime_env)
        env_vars = {
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            **env.get("env_vars", {}),
        }
        env["env_vars"] = env_vars
        if self.ship_package:
            import embvar

            env.setdefault("py_modules", [str(Path(embvar.__file__).parent)])
        return env

    def _connect(self, ray: Any) -> bool:
        """Join or start Ray; return True if this call did."""
        if ray.is_initialized():
            return False
        try:
            if self.address is not None:
                ray.init(
                    address=self.address,
                    runtime_env=self._runtime_env(),
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
            else:
                ray.init(
                    num_cpus=max(1, round(self.workers * self.cpus)),
                    num_gpus=int(self.gpus * self.workers) if self.gpus else None,
                    include_dashboard=False,
                    runtime_env=self._runtime_env(),
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"address={self.address!r}" if self.address else "a local Ray"
            raise ConfigError(
                f"could not start or join Ray ({where}): {exc}. Give the address "
                "of a running head ('ray start --head' prints it) or 'auto'."
            ) from exc
        return True

    def run(
        self,
        tasks: Iterable[Task],
        on_result: Callable[[str, Any], None],
        on_progress: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        """Submit every ``(run_id, spec_json)`` task; hand each result on.

        Results arrive as tasks finish. A run's own error is handed on as its
        result; a task whose worker died more than ``max_retries`` times is
        handed on as a :class:`~embvar.errors.TrainingError`.
        """
        ray = require_ray()
        tasks = list(tasks)
        if not tasks:
            return
        started = self._connect(ray)
        from ray.exceptions import RayError, RayTaskError

        events = None
        try:
            if on_progress is not None:
                from ray.util.queue import Queue

                events = Queue(actor_options={"num_cpus": 0})
            remote = ray.remote(embvar_train)
            options: dict[str, Any] = {
                "num_cpus": self.cpus,
                "max_retries": self.max_retries,
                "retry_exceptions": False,
            }
            if self.gpus:
                options["num_gpus"] = self.gpus
            if self.memory:
                options["memory"] = self.memory
            task_fn = remote.options(**options)
            pending: dict[Any, str] = {}
            for run_id, spec_json in tasks:
                pending[task_fn.remote(run_id, spec_json, self.threads, events)] = (
                    run_id
                )
            try:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1, timeout=_WAIT_S)
                    _drain(events, on_progress)
                    for ref in done:
                        run_id = pending.pop(ref)
                        try:
                            result = ray.get(ref)
                        except RayTaskError as exc:  # the run's own error
                            cause = getattr(exc, "cause", None)
                            result = cause if isinstance(cause, Exception) else exc
                        except RayError as exc:  # its worker died, retries spent
                            result = TrainingError(
                                f"run {run_id}: its Ray worker died "
                                f"{self.max_retries + 1} times (max_retries="
                                f"{self.max_retries}): {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else ''}"
                            )
                        del ref
                        _drain(events, on_progress)
                        on_result(run_id, result)
            finally:
                for ref in pending:  # Ctrl-C or an error in the driver
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:  # already finished or gone
                        pass
        finally:
            if events is not None:
                try:
                    events.shutdown()
                except Exception:
                    pass
            if started:
                ray.shutdown()


def _drain(events: Any, on_progress: Callable[[ProgressEvent], None] | None) -> None:
    if events is None or on_progress is None:
        return
    try:
        batch = events.get_nowait_batch(events.qsize())
    except Exception:  # the queue's actor is gone: no more events
        return
    for event in batch:
        on_progress(tuple(event))
