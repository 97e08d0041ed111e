"""Keras model files: a layer's weights from ``.keras`` or ``.weights.h5``.

The weights are read straight from the HDF5 file, without building the
model: no layer class is imported and no code in the file runs, so a model
with custom layers reads as well as a plain one.

A ``.keras`` file is a zip archive holding ``config.json`` and
``model.weights.h5``. Keras stores a layer's variables under a path made
of class names, not layer names (``layers/embedding_1/vars/0`` for the
second ``Embedding`` of a functional model); the path of a named layer is
worked out from ``config.json`` the way Keras's saver walks the model, and
checked against the shape the config gives. A ``.weights.h5`` file has no
config, so its layer is named by that path.

The rows of an embedding layer are its input indices, so the ids are the
row numbers unless an ids file sits next to the model file
(``<stem>.ids.txt``) or is given.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embvar.errors import DataError, DependencyError
from embvar.formats.embeddings import Embeddings, make_embeddings, resolve_ids

__all__ = ["read_keras", "keras_layer_paths"]


def read_keras(
    path: str | Path,
    *,
    layer: str | None = None,
    ids: str | Path | Sequence[Any] | None = None,
) -> Embeddings:
    """Read one layer's weight table from a Keras model or weights file.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` file or a ``.weights.h5`` file.
    layer : str, optional
        The layer's name (as in ``model.get_layer(name)``), a nested layer as
        ``outer/inner``, or the weights file's own path for it. Default: the
        model's only ``Embedding`` layer.
    ids : path, sequence or "rows", optional
        The ids; default a sibling ``<stem>.ids.txt`` or the row numbers.

    Returns
    -------
    Embeddings
        The layer's first weight (an ``Embedding``'s table), float32.

    Raises
    ------
    DataError
        If the file is not a Keras file, the layer is not found or is
        ambiguous, or its weight is not 2-D.
    """
    path = Path(path)
    h5py = _h5py()
    config = None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if "model.weights.h5" not in names or "config.json" not in names:
                    raise DataError(
                        f"{str(path)!r} is a zip archive but not a Keras model file "
                        f"(it has no model.weights.h5 and config.json); got "
                        f"{names[:5]}."
                    )
                config = json.loads(archive.read("config.json"))
                weights = io.BytesIO(archive.read("model.weights.h5"))
        else:
            weights = io.BytesIO(path.read_bytes())
        with h5py.File(weights, "r") as h5:
            group, name = _find_layer(h5, config, layer, path)
            table = np.asarray(h5[f"{group}/vars/0"])
    except (OSError, zipfile.BadZipFile, json.JSONDecodeError, KeyError) as exc:
        raise DataError(f"cannot read {str(path)!r} as a Keras file: {exc}.") from exc
    if table.ndim != 2:
        raise DataError(
            f"layer {name!r} of {str(path)!r} must hold a 2-D table; its first "
            f"weight has shape {table.shape}."
        )
    found, origin = resolve_ids(path, table.shape[0], ids, rows_by_default=True)
    return make_embeddings(
        table,
        found,
        source=f"{path}:{name}",
        format="keras",
        table=name,
        ids_from=origin,
    )


def keras_layer_paths(config: dict[str, Any]) -> dict[str, tuple[str, dict]]:
    """Return, for each layer in a model config, its group in the weights file.

    Keys are layer names, nested layers as ``outer/inner``; values are
    ``(h5_group, layer_config)``. The walk follows Keras's saver: the layers
    of a functional or sequential model in order (a sequential model's input
    layer left out), each under its class name in snake case, numbered
    ``_1``, ``_2`` ... when a class repeats within one model.
    """
    out: dict[str, tuple[str, dict]] = {}

    def walk(model: dict[str, Any], prefix: str, outer: str) -> None:
        layers = list(model.get("config", {}).get("layers", []))
        if model.get("class_name") == "Sequential" and layers:
            if layers[0].get("class_name") == "InputLayer":
                layers = layers[1:]
        used: dict[str, int] = {}
        for child in layers:
            snake = _snake_case(child.get("class_name", ""))
            group = f"{prefix}/{_unique(snake, used)}"
            name = str(child.get("config", {}).get("name", group))
            full = f"{outer}/{name}" if outer else name
            out[full] = (group, child)
            if child.get("config", {}).get("layers") is not None:
                walk(child, f"{group}/layers", full)

    walk(config, "layers", "")
    return out


def _find_layer(
    h5: Any, config: dict | None, layer: str | None, path: Path
) -> tuple[str, str]:
    tables = _weight_groups(h5)
    if config is not None:
        paths = keras_layer_paths(config)
        if layer is None:
            embeddings = [
                n for n, (_, c) in paths.items() if c.get("class_name") == "Embedding"
            ]
            if len(embeddings) != 1:
                raise DataError(
                    f"{str(path)!r} has {len(embeddings)} Embedding layers "
                    f"({', '.join(embeddings) or 'none'}); name one with layer=NAME "
                    "(--layer NAME)."
                )
            layer = embeddings[0]
        # A nested layer may be named without its outer model if unambiguous.
        matches = [n for n in paths if n == layer or n.endswith("/" + layer)]
        if layer in paths:
            matches = [layer]
        if len(matches) == 1:
            group, child = paths[matches[0]]
            _check_shape(h5, group, child, matches[0], path)
            return group, matches[0]
        if len(matches) > 1:
            raise DataError(
                f"layer={layer!r} matches {len(matches)} layers of {str(path)!r} "
                f"({', '.join(matches)}); name one as outer/inner."
            )
    if layer is not None:
        key = layer.strip("/")
        key = key[: -len("/vars/0")] if key.endswith("/vars/0") else key
        if key in tables:
            return key, layer
        listed = (
            [n for n, (g, _) in keras_layer_paths(config).items() if g in tables]
            if config is not None
            else tables
        )
        raise DataError(
            f"layer must name a layer of {str(path)!r}; got layer={layer!r}. "
            f"Layers with weights: {', '.join(listed[:20]) or 'none'}."
        )
    two_d = [g for g in tables if len(h5[f"{g}/vars/0"].shape) == 2]
    if len(two_d) != 1:
        raise DataError(
            f"{str(path)!r} has {len(two_d)} layers with a 2-D first weight "
            f"({', '.join(two_d[:20]) or 'none'}); name one with layer=PATH."
        )
    return two_d[0], two_d[0]


def _check_shape(h5: Any, group: str, child: dict, layer: str, path: Path) -> None:
    if f"{group}/vars/0" not in h5:
        raise DataError(
            f"layer {layer!r} of {str(path)!r} has no saved weights (looked for "
            f"{group}/vars/0); it may be a layer without variables."
        )
    cfg = child.get("config", {})
    if child.get("class_name") == "Embedding":
        expected = (cfg.get("input_dim"), cfg.get("output_dim"))
        got = tuple(h5[f"{group}/vars/0"].shape)
        if got != expected:
            raise DataError(
                f"layer {layer!r} of {str(path)!r}: the weights at {group} have shape "
                f"{got}, not the {expected} its config gives; name the weights path "
                "itself with layer=PATH."
            )


def _weight_groups(h5: Any) -> list[str]:
    groups: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if name.endswith("/vars/0") and not name.startswith("optimizer"):
            groups.append(name[: -len("/vars/0")])

    h5.visititems(visit)
    return groups


def _snake_case(name: str) -> str:
    # The same rule as Keras's keras.src.utils.naming.to_snake_case.
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique(name: str, used: dict[str, int]) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - Keras depends on h5py
        raise DependencyError(
            "reading Keras files needs h5py; install it with `pip install h5py`."
        ) from exc
    return h5py
