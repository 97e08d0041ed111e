"""One unit of work an executor runs: train the run a RunSpec describes.

The function here is what a worker process (local pool or Ray) calls. It
takes the spec as JSON and returns plain arrays and numbers, so it needs
nothing from the driver but the spec: the data is prepared on the worker
from the same package or file, deterministically, and its fingerprint is
checked by the driver.

A task is ``(task_id, payload)``. The payload is one RunSpec's JSON (the
task id is then the run id), or a replica group: ``{"replicas": [spec,
...]}``, runs trained together by
:func:`~embvar.training.replicas.train_replicas`, whose result is one
:class:`~embvar.training.replicas.GroupResult`. Executors pass either kind
through unchanged; :func:`make_tasks` builds them and :func:`task_results`
splits a task's result into one result per run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

__all__ = [
    "run_task",
    "configure_threads",
    "make_tasks",
    "group_task",
    "is_group",
    "task_run_ids",
    "task_results",
]

# The payload of a replica group starts with this.
_GROUP_PREFIX = '{"replicas":'


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow's and the replica kernel's threads.

    Call before TensorFlow runs an op. Numba's count is set for the calling
    thread, the one that trains (and capped before Numba starts its pool).
    """
    if not threads:
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("NUMBA_NUM_THREADS", str(threads))
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
    except RuntimeError:  # already initialised in this process
        pass


@lru_cache(maxsize=8)
def _prepared(data_json: str, split_seed: int):
    from embvar.config import DataSpec
    from embvar.data.prepared import prepare_data

    return prepare_data(DataSpec.model_validate_json(data_json), split_seed)


def run_task(
    spec_json: str,
    on_epoch: Callable[[int, int], None] | None = None,
    callbacks: list[Any] | None = None,
) -> Any:
    """Train the run ``spec_json`` describes and return its RunResult.

    ``callbacks`` (Keras callbacks) go to every ``fit`` call of the run.
    A replica group's payload returns a
    :class:`~embvar.training.replicas.GroupResult` instead.
    """
    from embvar.config import RunSpec
    from embvar.training.fit import train_run

    if is_group(spec_json):
        return _run_group(spec_json, on_epoch, callbacks)
    spec = RunSpec.model_validate_json(spec_json)
    data = _prepared(spec.data.model_dump_json(), spec.seeds["split"])
    if spec.model.kind == "word2vec":
        from embvar.training.word2vec import train_word2vec_run

        return train_word2vec_run(spec, data, on_epoch=on_epoch)
    if spec.model.kind != "factorization":  # skip-gram, or a user's builder
        from embvar.training.keras_run import train_keras_run

        return train_keras_run(spec, data, on_epoch=on_epoch, callbacks=callbacks)
    from embvar.models.pretrained import pretrained_for

    pretrained = pretrained_for(spec, data)
    return train_run(
        spec, data, pretrained=pretrained, on_epoch=on_epoch, callbacks=callbacks
    )


def is_group(payload: str) -> bool:
    """Whether a task's payload is a replica group (else one RunSpec's JSON)."""
    return payload.startswith(_GROUP_PREFIX)


def group_task(specs: Sequence[Any]) -> tuple[str, str]:
    """Return the task ``(task_id, payload)`` that trains ``specs`` as replicas.

    The task id, ``"<R>x<first run id>"``, names the group in progress events.
    """
    runs = [json.loads(s.model_dump_json()) for s in specs]
    payload = json.dumps({"replicas": runs}, separators=(",", ":"))
    return f"{len(specs)}x{specs[0].run_id}", payload


def task_run_ids(task_id: str, payload: str) -> list[str]:
    """Return the ids of the runs a task trains."""
    if not is_group(payload):
        return [task_id]
    return [_run_id(run) for run in json.loads(payload)["replicas"]]


def _run_id(run: dict[str, Any]) -> str:
    from embvar.config import RunSpec

    return RunSpec.model_validate(run).run_id


def make_tasks(
    specs: Sequence[Any],
    *,
    trainer: str = "auto",
    prepared: Mapping[str, Any] | None = None,
) -> list[tuple[str, str]]:
    """Return the tasks that train ``specs``: replica groups and single runs.

    Parameters
    ----------
    specs : sequence of RunSpec
    trainer : {"auto", "replicas", "independent"}
        How to group the runs (:func:`~embvar.training.replicas.group_runs`).
    prepared : mapping of str to PreparedData, optional
        The prepared data by key, to size the groups to the memory budget.
    """
    from embvar.training.replicas import group_runs

    tasks = []
    for group in group_runs(specs, trainer=trainer, prepared=prepared):  # type: ignore
        if len(group) == 1 and trainer != "replicas":
            tasks.append((group[0].run_id, group[0].model_dump_json()))
        else:
            tasks.append(group_task(group))
    return tasks


def task_results(task_id: str, payload: str, result: Any) -> list[tuple[str, Any]]:
    """Split what an executor handed back for one task into ``(run_id, result)``.

    A group's exception is every member's failure; a member the group's
    result leaves out fails with a TrainingError.
    """
    if not is_group(payload):
        return [(task_id, result)]
    from embvar.errors import TrainingError
    from embvar.training.replicas import GroupResult

    ids = task_run_ids(task_id, payload)
    if isinstance(result, BaseException):
        return [(run_id, result) for run_id in ids]
    got = {}
    if isinstance(result, GroupResult):
        got = {r.run_id: r for r in result.results}
    missing = TrainingError(
        f"replica group {task_id} returned no result for this run; got "
        f"{type(result).__name__}. Run the study again to retrain it."
    )
    return [(run_id, got.get(run_id, missing)) for run_id in ids]


def _run_group(
    payload: str,
    on_epoch: Callable[[int, int], None] | None,
    callbacks: list[Any] | None,
) -> Any:
    """Train a replica group's runs together; return their GroupResult."""
    from embvar.config import RunSpec
    from embvar.errors import TrainingError
    from embvar.models.pretrained import pretrained_for
    from embvar.training.replicas import GroupResult, train_replicas

    if callbacks:
        raise TrainingError(
            "Keras callbacks need the independent trainer (a replica group has no "
            "fit call); train with trainer='independent'."
        )
    specs = [RunSpec.model_validate(run) for run in json.loads(payload)["replicas"]]
    data = _prepared(specs[0].data.model_dump_json(), specs[0].seeds["split"])
    pretrained = [pretrained_for(spec, data) for spec in specs]
    return GroupResult(
        train_replicas(specs, data, pretrained=pretrained, on_epoch=on_epoch)
    )
