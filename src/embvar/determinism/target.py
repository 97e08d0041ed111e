"""What the determinism audit trains: a training function and its arguments.

The audit runs a training function in fresh processes, so it names the
function instead of holding it: ``"package.module:function"`` or
``"path/to/script.py:function"``. The function's signature is::

    def train(recorder: Recorder, seed: int | None, **kwargs) -> None

It must build a fresh model, seed it from ``seed``, train, and report its
state through ``recorder`` (``recorder.callback()`` in ``fit``); see
:mod:`embvar.determinism.recorder`. Importing the function runs its module's
code, in every worker process, as ``import`` would.

Two kinds of target are built in:

- :func:`spec_target`: one run of a study (a :class:`~embvar.config.RunSpec`),
  trained by :func:`train_spec` through embvar's own runner, whatever its
  model kind; ``seed=None`` keeps the spec's seeds;
- :func:`function_target`: a user's own training function.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embvar.config import RunSpec
from embvar.errors import ConfigError

__all__ = ["AuditTarget", "spec_target", "function_target", "train_spec"]


@dataclass(frozen=True)
class AuditTarget:
    """A training function by reference, with its JSON keyword arguments.

    Attributes
    ----------
    function : str
        ``"package.module:function"`` or ``"path/to/file.py:function"``.
    kwargs : dict
        JSON-ready keyword arguments passed on every call.
    seed : int or None
        The seed of the audited runs.
    other_seed : int
        A second seed, for the check that the initial values follow it.
    label : str
        A name for reports.
    run_id : str or None
        The study run's id, for a spec target.
    """

    function: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int | None = 0
    other_seed: int = 1
    label: str = ""
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function, "kwargs": self.kwargs}


def spec_target(spec: RunSpec, *, label: str | None = None) -> AuditTarget:
    """Return the target that trains one study run with embvar's runner."""
    return AuditTarget(
        function="embvar.determinism.target:train_spec",
        kwargs={"spec": spec.model_dump_json()},
        seed=None,
        other_seed=spec.seeds["init"] + 1,
        label=label or f"{spec.study} run {spec.run_id}",
        run_id=spec.run_id,
    )


def function_target(
    function: str | Callable[..., Any],
    kwargs: dict[str, Any] | None = None,
    *,
    seed: int = 0,
    other_seed: int | None = None,
) -> AuditTarget:
    """Return the target for a user's training function.

    Parameters
    ----------
    function : callable or str
        A module-level function ``train(recorder, seed, **kwargs)``, or its
        reference ``"package.module:function"`` / ``"script.py:function"``.
        A function defined in the ``__main__`` script is named by its file.
    kwargs : dict, optional
        JSON-ready keyword arguments for every call.
    seed, other_seed : int
        The seed of the audited runs, and a second one (default seed + 1).

    Raises
    ------
    ConfigError
        If the function cannot be named for import in another process (a
        lambda, a nested function) or ``kwargs`` is not JSON.
    """
    reference = function if isinstance(function, str) else _reference(function)
    if isinstance(function, str):
        _check_findable(reference)
    try:
        json.dumps(kwargs or {})
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"kwargs must be JSON (numbers, strings, lists, dicts); got {exc}."
        ) from exc
    return AuditTarget(
        function=reference,
        kwargs=dict(kwargs or {}),
        seed=seed,
        other_seed=seed + 1 if other_seed is None else other_seed,
        label=reference,
    )


def train_spec(recorder: Any, seed: int | None, spec: str) -> None:
    """Train a study run through embvar's runner, recording it.

    Parameters
    ----------
    recorder : Recorder
    seed : int or None
        None keeps the spec's seeds; an integer replaces every source's seed
        with the one it derives at the spec's levels (``seed`` as root).
    spec : str
        The RunSpec as JSON.

    Notes
    -----
    Every Keras variable is recorded through ``recorder.callback()``, which
    the runner passes to each ``fit``. Where nothing reached it (a custom
    training hook that ignores ``epoch.callbacks``, a gensim model), the
    run's embedding snapshots are recorded instead, without optimizer state.
    """
    from embvar.data.prepared import prepare_data
    from embvar.execution.task import run_task
    from embvar.seeds import source_seeds

    run = RunSpec.model_validate_json(spec)
    if seed is not None:
        run = run.model_copy(update={"seeds": source_seeds(seed, run.levels)})
    data = prepare_data(run.data, run.seeds["split"])
    interactions = getattr(data, "interactions", None)
    if interactions is not None:
        recorder.entity_ids("user_embedding", interactions.user_ids)
        recorder.entity_ids("item_embedding", interactions.item_ids)
    words = getattr(data, "words", None)
    if interactions is None and words is not None:
        recorder.entity_ids("words", words)
    result = run_task(run.model_dump_json(), callbacks=[recorder.callback()])
    if not recorder.started:
        # A training hook that passed no callbacks to Keras, or a model
        # trained outside Keras (gensim): the run's own table snapshots.
        recorder.record_snapshots(result.snapshots)
    if getattr(result, "status", "done") != "done":
        raise RuntimeError(f"the run diverged: {result.diverged}")


def _reference(function: Callable[..., Any]) -> str:
    name = getattr(function, "__qualname__", "")
    module = getattr(function, "__module__", None)
    if not name or "<" in name or "." in name or module is None:
        raise ConfigError(
            "the training function must be defined at the top level of a module "
            f"(the audit imports it in fresh processes); got {name or function!r}."
        )
    if module == "__main__":
        path = inspect.getsourcefile(function) or getattr(
            sys.modules["__main__"], "__file__", None
        )
        if not path:
            raise ConfigError(
                "a training function defined in an interactive session cannot be "
                "imported by another process; put it in a .py file."
            )
        return f"{Path(path).resolve()}:{name}"
    return f"{module}:{name}"


def _check_findable(reference: str) -> None:
    """Reject a script or module that does not exist, without importing it."""
    import importlib.machinery
    import importlib.util
    import os

    module, sep, name = reference.rpartition(":")
    if not sep or not module or not name:
        raise ConfigError(
            "the training function must be given as 'package.module:function' "
            f"or 'path/to/file.py:function'; got {reference!r}."
        )
    if module.endswith(".py"):
        if not Path(module).is_file():
            raise ConfigError(
                f"training script {module!r} of {reference!r} does not exist or is "
                "not a file."
            )
        return
    top = module.split(".")[0]
    # The worker imports what this process can, and from the working directory.
    try:
        found = importlib.util.find_spec(top) is not None or (
            importlib.machinery.PathFinder.find_spec(top, [os.getcwd()]) is not None
        )
    except (ImportError, ValueError):  # an empty or relative name
        found = False
    if not found:
        raise ConfigError(
            f"cannot import {top!r} for the training function {reference!r}: no such "
            "module; install it or add its folder to PYTHONPATH."
        )
