"""TensorFlow checkpoints: one variable's value, read without a model.

A checkpoint written by ``tf.train.Checkpoint(...).write(prefix)`` (or
``.save``, or a ``tf.train.CheckpointManager``) is a prefix with an
``.index`` file and data shards. The variable is named by its checkpoint
name (``variable.path`` in Keras, e.g. ``word_embedding/embeddings``, read
from the checkpoint's object graph) or by its checkpoint key, as
``tf.train.list_variables(prefix)`` lists it (the trailing
``/.ATTRIBUTES/VARIABLE_VALUE`` may be left out); a unique tail of either
will do. With no name, a checkpoint holding a single 2-D model variable
(optimizer state aside) uses it.

The path may be the prefix, its ``.index`` file, or a folder, whose latest
checkpoint is read. Ids are the row numbers unless an ids file sits next to
the prefix (``<prefix>.ids.txt``) or is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embvar.errors import DataError, DependencyError
from embvar.formats.embeddings import Embeddings, make_embeddings, resolve_ids

__all__ = ["read_checkpoint", "checkpoint_prefix", "is_checkpoint"]

_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


def is_checkpoint(path: str | Path) -> bool:
    """Return whether ``path`` names a TensorFlow checkpoint."""
    path = Path(path)
    if path.is_dir():
        return (path / "checkpoint").is_file() or any(path.glob("*.index"))
    if path.name.endswith(".index"):
        return path.is_file()
    return Path(str(path) + ".index").is_file()


def checkpoint_prefix(path: str | Path) -> str:
    """Return the checkpoint prefix a path names (prefix, .index or folder)."""
    path = Path(path)
    if path.is_dir():
        tf = _tensorflow()
        latest = tf.train.latest_checkpoint(str(path))
        if latest is None:
            indexes = sorted(path.glob("*.index"))
            if len(indexes) != 1:
                raise DataError(
                    f"{str(path)!r} must hold one checkpoint (or a 'checkpoint' "
                    f"file naming the latest); found {len(indexes)} .index files."
                )
            latest = str(indexes[0])[: -len(".index")]
        return latest
    if path.name.endswith(".index"):
        return str(path)[: -len(".index")]
    return str(path)


def read_checkpoint(
    path: str | Path,
    *,
    variable: str | None = None,
    ids: str | Path | Sequence[Any] | None = None,
) -> Embeddings:
    """Read one 2-D variable of a TensorFlow checkpoint.

    Parameters
    ----------
    path : str or Path
        The checkpoint prefix, its ``.index`` file, or its folder.
    variable : str, optional
        The variable's checkpoint key, or a unique tail of it.
    ids : path, sequence or "rows", optional
        The ids; default a sibling ``<prefix>.ids.txt`` or the row numbers.

    Returns
    -------
    Embeddings

    Raises
    ------
    DataError
        If the checkpoint cannot be read, or the variable is missing,
        ambiguous or not 2-D; the message lists the 2-D variables.
    """
    prefix = checkpoint_prefix(path)
    tf = _tensorflow()
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as exc:
        raise DataError(
            f"cannot read {prefix!r} as a TensorFlow checkpoint: {exc}."
        ) from exc
    names = _variable_names(reader, shapes)
    key = _find_variable(shapes, names, variable, prefix)
    table = np.asarray(reader.get_tensor(key))
    if table.ndim != 2:
        raise DataError(
            f"variable {key!r} of {prefix!r} must be 2-D (n_entities, dim); got "
            f"shape {table.shape}."
        )
    by_key = {k: n for n, k in names.items()}
    name = by_key.get(key) or (key[: -len(_SUFFIX)] if key.endswith(_SUFFIX) else key)
    found, origin = resolve_ids(Path(prefix), table.shape[0], ids, rows_by_default=True)
    return make_embeddings(
        table,
        found,
        source=f"{prefix}:{name}",
        format="checkpoint",
        table=name,
        ids_from=origin,
    )


def _variable_names(reader: Any, shapes: dict[str, list[int]]) -> dict[str, str]:
    """Map each variable's TensorFlow name (``layer/embeddings``) to its key.

    The names come from the checkpoint's object graph; a variable reachable
    by two paths keeps the key outside the optimizer.
    """
    try:
        from tensorflow.core.protobuf import trackable_object_graph_pb2

        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except Exception:  # an old or foreign checkpoint: keys only
        return {}
    names: dict[str, str] = {}
    for node in graph.nodes:
        for attribute in node.attributes:
            key, name = attribute.checkpoint_key, attribute.full_name
            if not name or key not in shapes:
                continue
            if name not in names or "optimizer" in names[name]:
                names[name] = key
    return names


def _is_slot(key: str) -> bool:
    # Optimizer state (moments, iteration counts), not a model variable.
    return (
        "optimizer/_variables/" in key
        or ".OPTIMIZER_SLOT" in key
        or key.startswith("save_counter")
        or "/_iterations/" in key
        or "/_learning_rate/" in key
    )


def _find_variable(
    shapes: dict[str, list[int]],
    names: dict[str, str],
    variable: str | None,
    prefix: str,
) -> str:
    by_key = {k: n for n, k in names.items()}
    tables = sorted({k for k, s in shapes.items() if len(s) == 2 and not _is_slot(k)})
    shown = sorted(by_key.get(k, k) for k in tables)
    if variable is None:
        if len(tables) != 1:
            raise DataError(
                f"{prefix!r} holds {len(tables)} 2-D model variables; name one with "
                f"variable=NAME (--variable NAME): {_listing(shown)}."
            )
        return tables[0]
    wanted = variable.strip("/")
    for candidate in (wanted, wanted + _SUFFIX):
        if candidate in names:
            return names[candidate]
        if candidate in shapes:
            return candidate
    matches = sorted(
        {
            key
            for name, key in [*names.items(), *((k, k) for k in shapes)]
            if name.endswith("/" + wanted) or name.endswith("/" + wanted + _SUFFIX)
        }
    )
    if not matches:
        # A layer's name: its one 2-D variable (an Embedding's table).
        matches = [k for k in tables if by_key.get(k, "").startswith(wanted + "/")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DataError(
            f"variable={variable!r} matches {len(matches)} variables of {prefix!r}; "
            f"give more of the name: {_listing([by_key.get(k, k) for k in matches])}."
        )
    raise DataError(
        f"variable must name a variable of {prefix!r}; got variable={variable!r}. "
        f"2-D model variables: {_listing(shown)}."
    )


def _listing(keys: list[str]) -> str:
    shown = [k[: -len(_SUFFIX)] if k.endswith(_SUFFIX) else k for k in keys[:12]]
    more = f" and {len(keys) - 12} more" if len(keys) > 12 else ""
    return (", ".join(shown) or "none") + more


def _tensorflow():
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - TensorFlow is required
        raise DependencyError(
            "reading TensorFlow checkpoints needs TensorFlow; install embvar with "
            "`pip install embvar[cpu]`."
        ) from exc
    return tf
