"""Your own Keras model in a study: a builder, and optionally a training hook.

Set ``kind`` in the study's ``[model]`` to ``"package.module:function"``::

    [model]
    kind = "mymodels.recsys:build"
    dim = 32
    params = { hidden = 64, dropout = 0.1 }   # your own hyperparameters
    fit = "mymodels.recsys:fit_epoch"         # optional training hook

**Importing the builder runs that module's code**, in the study's process
and in every worker process, with your permissions: only name modules you
trust. The module must be importable (installed, or on ``PYTHONPATH``).

The builder
-----------
``build(params: dict) -> (keras.Model, list[str])``

``params`` holds, flat: the ``[model]`` settings (``dim``, ``initializer``,
``init_stddev``, ``use_bias``, ``l2``, ``window``, ``negatives``,
``subsample``), everything in ``model.params``, the ``[training]``
settings (``optimizer``, ``learning_rate``, ``weight_decay``,
``batch_size``, ``epochs``), and the shape of the data:

- interactions: ``n_users``, ``n_items``, ``mu`` (the mean training
  rating); the model maps ``[user_rows, item_rows]`` (int32, shape
  (batch,)) to a predicted rating (batch,);
- text: ``n_words``; the model maps ``[targets, contexts]`` (int32,
  (batch,) and (batch, 1 + negatives), the true context first) to one
  logit per context, (batch, 1 + negatives), as the built-in skip-gram.

It returns a fresh, built model and the names of its embedding layers
(each a layer whose first weight is a 2-D table whose rows are the
entities: users, items or words); those tables are snapshotted and
analysed. It may compile the model itself; otherwise the runner compiles
it with the study's optimizer and mean squared error (interactions) or
binary cross-entropy on logits (text).

Seeding is the runner's, as for the built-in models: the ``init`` seed is
set (Python ``random``, NumPy, the Keras backend) just before ``build`` is
called, so draw every initial value inside it and leave initializers
unseeded; the ``noise`` seed is set right after, for dropout and any other
draw during training; the data order is the runner's permutation.

The training hook
-----------------
``fit(model, epoch: EpochData) -> float``

Called once per epoch with the rows already in this epoch's order
(``epoch.inputs``, ``epoch.targets``, ``epoch.batch_size``, ``epoch.epoch``
counted from 1, ``epoch.params``, ``epoch.callbacks``); it trains one pass
and returns the mean training loss. It must not shuffle. Without a hook the
runner calls ``model.fit(inputs, targets, batch_size=..., epochs=1,
shuffle=False)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from embvar.config import RunSpec
from embvar.errors import ConfigError, TrainingError

# The [model] settings a builder receives.
_MODEL_KEYS = (
    "dim",
    "initializer",
    "init_stddev",
    "use_bias",
    "l2",
    "window",
    "negatives",
    "subsample",
)

__all__ = [
    "EpochData",
    "load_function",
    "builder_params",
    "build_custom",
    "default_fit",
]


@dataclass
class EpochData:
    """One epoch of training rows, in the order the runner drew.

    Attributes
    ----------
    inputs : list of ndarray
        The model's inputs, row-aligned.
    targets : ndarray
        Ratings (interactions) or labels (text).
    batch_size : int
    epoch : int
        Counted from 1.
    params : dict
        The builder's parameters.
    callbacks : list of keras.callbacks.Callback
        To pass to ``fit``.
    """

    inputs: list[np.ndarray]
    targets: np.ndarray
    batch_size: int
    epoch: int
    params: dict[str, Any] = field(default_factory=dict)
    callbacks: list[Any] = field(default_factory=list)


def load_function(path: str, what: str) -> Callable[..., Any]:
    """Import ``package.module:function`` and return the function.

    Importing the module runs its code.

    Raises
    ------
    ConfigError
        If the module cannot be imported or has no such callable.
    """
    module_name, _, name = path.partition(":")
    if not module_name or not name:
        raise ConfigError(f"{what} must be 'package.module:function'; got {path!r}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{what} {path!r}: cannot import {module_name!r} ({exc}); install the "
            "package or add its folder to PYTHONPATH."
        ) from exc
    except Exception as exc:  # the module's own code failed as it ran
        why = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ConfigError(
            f"{what} {path!r}: importing {module_name!r} raised {why}; fix the module."
        ) from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(
            f"{what} {path!r}: module {module_name!r} has no function {name!r}."
        )
    return fn


def builder_params(spec: RunSpec, shape: dict[str, Any]) -> dict[str, Any]:
    """Return the ``params`` a builder receives (see the module docstring)."""
    model = {key: getattr(spec.model, key) for key in _MODEL_KEYS}
    training = {
        key: getattr(spec.training, key) for key in type(spec.training).model_fields
    }
    return {**model, **training, **shape, **spec.model.params}


def build_custom(
    spec: RunSpec, params: dict[str, Any]
) -> tuple[keras.Model, list[str]]:
    """Call the study's builder and check what it returns.

    Raises
    ------
    TrainingError
        If the builder fails or returns something else than a Keras model
        and the names of layers with 2-D first weights.
    """
    build = load_function(spec.model.kind, "model.kind")
    try:
        out = build(dict(params))
    except Exception as exc:
        raise TrainingError(
            f"the builder {spec.model.kind!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TrainingError(
            f"the builder {spec.model.kind!r} must return (keras.Model, [layer "
            f"names]); got {type(out).__name__}."
        )
    model, names = out
    if not isinstance(model, keras.Model):
        raise TrainingError(
            f"the builder {spec.model.kind!r} must return a keras.Model first; got "
            f"{type(model).__name__}."
        )
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        raise TrainingError(
            f"the builder {spec.model.kind!r} must name at least one embedding layer."
        )
    check_tables(model, names, spec.model.kind)
    return model, names


def check_tables(model: keras.Model, names: Sequence[str], origin: str) -> None:
    """Raise TrainingError unless each name is a layer with a 2-D first weight."""
    for name in names:
        try:
            layer = model.get_layer(name)
        except ValueError:
            raise TrainingError(
                f"{origin}: the model has no layer {name!r}; its layers are "
                f"{[layer.name for layer in model.layers]}."
            ) from None
        if not layer.weights or len(layer.weights[0].shape) != 2:
            raise TrainingError(
                f"{origin}: layer {name!r} must have a 2-D first weight (an embedding "
                "table); build the model before returning it."
            )


def default_fit(model: keras.Model, epoch: EpochData) -> float:
    """Train one epoch with ``model.fit`` in the given order; return the loss."""
    history = model.fit(
        epoch.inputs,
        epoch.targets,
        batch_size=epoch.batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=epoch.callbacks,
    )
    losses = history.history.get("loss") or [float("nan")]
    return float(losses[-1])
