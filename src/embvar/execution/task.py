"""One unit of work an executor runs: train the run a RunSpec describes.

The function here is what a worker process (local pool or Ray) calls. It
takes the spec as JSON and returns plain arrays and numbers, so it needs
nothing from the driver but the spec: the data is prepared on the worker
from the same package or file, deterministically, and its fingerprint is
checked by the driver.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["run_task", "configure_threads"]


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow's thread pools; call before TensorFlow runs an op."""
    if not threads:
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
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
    """
    from embvar.config import RunSpec
    from embvar.training.fit import train_run

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
    return train_run(spec, data, pretrained=pretrained, on_epoch=on_epoch,
                     callbacks=callbacks)
