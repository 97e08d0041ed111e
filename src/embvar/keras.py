"""Record your own Keras training as embvar runs: :class:`EmbeddingRecorder`.

Add the callback to your own ``model.fit`` (or to every ``fit`` of your own
training loop), once per training run, and each run becomes a run of a
study in an embvar store: its embedding tables at the epochs you choose,
its loss per epoch, its seeds and settings. Then one call compares the
runs with the whole metric suite::

    import keras
    import embvar
    from embvar.keras import EmbeddingRecorder
    from embvar.seeds import source_seeds

    for r in range(3):
        seeds = source_seeds(0, {"init": r, "order": r, "noise": r})
        keras.utils.set_random_seed(seeds["init"])    # before the build
        model = build_my_model()                      # a fresh model per run
        model.compile(optimizer="adam", loss="mse")
        keras.utils.set_random_seed(seeds["noise"])   # after the build
        recorder = EmbeddingRecorder(
            "runs/mine", layers=["item_embedding"], seeds=seeds,
            settings={"lr": 1e-3, "dim": 32}, ids={"item_embedding": item_ids},
        )
        model.fit(x, y, epochs=5, callbacks=[recorder])

    embvar.compare(["runs/mine"])        # writes runs/mine/report.json (+ .html)

Runs whose ``settings`` are equal are seed replicates of one group; the
report compares the runs within each group. A run's id is a hash of its
settings, seeds, layers and name, so training the same run again replaces
it rather than adding a copy; a recorder given no seeds gets a fresh id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from embvar.errors import ConfigError, StoreError

__all__ = ["EmbeddingRecorder", "RecordedRun"]

logger = logging.getLogger(__name__)


@dataclass
class RecordedRun:
    """A recorded run as the store indexes it (the spec is plain JSON)."""

    run_id: str
    group_key: str
    spec: dict[str, Any]
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    status: str = "done"
    diverged: dict[str, int] | None = None
    seconds: float = 0.0

    def model_dump_json(self) -> str:
        return json.dumps(self.spec, sort_keys=True, default=str)


class EmbeddingRecorder(keras.callbacks.Callback):
    """Snapshot named embedding layers at chosen epochs into an embvar store.

    Parameters
    ----------
    directory : str or Path
        The store (created if missing). It may hold recorded runs only, not
        a study's.
    layers : str or sequence of str
        Names of the layers to record (``model.get_layer(name)``); each
        layer's first weight, which for an ``Embedding`` is its table, of
        shape (n_entities, dim).
    epochs : iterable of int, optional
        The epochs to snapshot, counted from 1 across every ``fit`` the
        recorder sees, 0 being the values before training. Default: every
        epoch, 0 included.
    ids : sequence or mapping of str to sequence, optional
        The entity id of each row, per layer (a bare sequence if one layer
        is recorded). Default: row numbers.
    seeds : mapping of str to int, or int, optional
        The run's seeds, as you set them (e.g. ``{"init": 1, "order": 1,
        "noise": 1}``); an int is recorded as ``{"seed": n}``.
    settings : mapping, optional
        Hyperparameters and anything else that defines the run (JSON
        values); runs with equal settings are seed replicates.
    name : str, optional
        A label for the run.
    study : str, default="recorded"
        Name of the study the runs belong to.

    Notes
    -----
    Tables are kept in memory until the end of each ``fit`` and then
    written (atomically, with checksums) with the loss of every epoch, so
    a run recorded in a loop of ``fit`` calls is stored after each one.
    Recording does not touch any random generator: it changes nothing in
    the training it watches.
    """

    def __init__(
        self,
        directory: str | Path,
        layers: str | Sequence[str],
        *,
        epochs: Iterable[int] | None = None,
        ids: Sequence[Any] | Mapping[str, Sequence[Any]] | None = None,
        seeds: Mapping[str, int] | int | None = None,
        settings: Mapping[str, Any] | None = None,
        name: str | None = None,
        study: str = "recorded",
    ):
        super().__init__()
        self.directory = Path(directory)
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        if not self.layers or not all(isinstance(n, str) for n in self.layers):
            raise ConfigError(
                f"layers must name at least one layer; got layers={layers!r}."
            )
        self.epochs = None if epochs is None else {int(e) for e in epochs}
        if self.epochs is not None and any(e < 0 for e in self.epochs):
            raise ConfigError(
                f"epochs must be integers >= 0; got epochs={sorted(self.epochs)}."
            )
        self.ids = _ids_per_layer(ids, self.layers)
        self.seeds = _seeds(seeds)
        self.settings = _json_values("settings", dict(settings or {}))
        self.name = name
        self.study = study
        self.epoch = 0
        self._run: RecordedRun | None = None
        self._started = 0.0
        self._epoch_start = 0.0

    # -- what the run is ---------------------------------------------------------

    def _new_run(self) -> RecordedRun:
        identity = {
            "study": self.study,
            "settings": self.settings,
            "layers": self.layers,
            "seeds": self.seeds,
            "name": self.name,
        }
        if self.seeds is None:
            identity["unseeded"] = uuid.uuid4().hex
            logger.warning(
                "EmbeddingRecorder got no seeds: the run gets a fresh id, and "
                "nothing says how to train it again"
            )
        blob = json.dumps(identity, sort_keys=True, default=str)
        run_id = hashlib.sha256(blob.encode()).hexdigest()[:16]
        group = {k: identity[k] for k in ("study", "settings", "layers")}
        group_blob = json.dumps(group, sort_keys=True, default=str)
        spec = {
            "study": self.study,
            "kind": "recorded",
            "name": self.name,
            "designs": ["recorded"],
            "factors": dict(self.settings),
            "settings": dict(self.settings),
            "seeds": dict(self.seeds or {}),
            "levels": {},
            "perturb": 0,
            "layers": list(self.layers),
            "keras": _keras_settings(self.model, self.params),
        }
        return RecordedRun(
            run_id, hashlib.sha256(group_blob.encode()).hexdigest()[:12], spec
        )

    # -- Keras hooks -------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._run is None:
            self._check_layers()
            self._run = self._new_run()
            self._started = time.perf_counter()
            self._open_store().close()  # fail now, not after training
            self._snapshot(0, float("nan"), 0.0)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch += 1
        loss = (logs or {}).get("loss")
        loss = float(loss) if loss is not None else float("nan")
        self._snapshot(self.epoch, loss, time.perf_counter() - self._epoch_start)
        if logs:
            self._active().spec.setdefault("logs", []).append(
                {"epoch": self.epoch, **_json_values("logs", dict(logs))}
            )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._run is None:
            return
        self._run.seconds = time.perf_counter() - self._started
        self._save()

    # -- recording ---------------------------------------------------------------

    @property
    def run_id(self) -> str | None:
        """The id of the run being recorded (None before training starts)."""
        return None if self._run is None else self._run.run_id

    def _check_layers(self) -> None:
        for name in self.layers:
            try:
                layer = self.model.get_layer(name)
            except ValueError:
                names = [layer.name for layer in self.model.layers]
                raise ConfigError(
                    f"layers must name layers of the model; got {name!r}, and the "
                    f"model's layers are {names}."
                ) from None
            if not layer.weights or len(layer.weights[0].shape) != 2:
                raise ConfigError(
                    f"layer {name!r} must have a 2-D first weight (an embedding "
                    f"table); it has weights {[tuple(w.shape) for w in layer.weights]}."
                )
            rows = int(layer.weights[0].shape[0])
            if name in self.ids and len(self.ids[name]) != rows:
                raise ConfigError(
                    f"ids for layer {name!r} must give one id per row ({rows}); "
                    f"got {len(self.ids[name])}."
                )

    def _active(self) -> RecordedRun:
        if self._run is None:
            raise RuntimeError("the recorder has not seen on_train_begin yet")
        return self._run

    def _snapshot(self, epoch: int, loss: float, seconds: float) -> None:
        run = self._active()
        tables = {
            name: np.array(
                keras.ops.convert_to_numpy(self.model.get_layer(name).weights[0]),
                dtype=np.float32,
            )
            for name in self.layers
        }
        finite = all(np.isfinite(t).all() for t in tables.values())
        if self.epochs is None or epoch in self.epochs or not finite:
            run.snapshots[epoch] = tables
        run.history.append(
            {
                "epoch": epoch,
                "loss": loss,
                "train_rmse": None,
                "test_rmse": None,
                "seconds": seconds,
            }
        )
        if (not finite or not math.isfinite(loss)) and epoch > 0:
            run.status = "diverged"
            run.diverged = run.diverged or {"epoch": epoch, "step": -1}

    def _open_store(self):
        from embvar.store import Store

        store = Store(self.directory)
        kind = store.get_meta("kind")
        if store.get_meta("study_name") is not None and kind != "recorded":
            store.close()
            raise StoreError(
                f"{str(self.directory)!r} holds the study "
                f"{store.get_meta('study_name')!r}; record your runs into another "
                "directory."
            )
        return store

    def _save(self) -> None:
        from embvar.store import save_array

        run = self._active()
        store = self._open_store()
        try:
            store.set_meta("kind", "recorded")
            store.set_meta("study_name", self.study)
            refs = {}
            for name, ids in self.ids.items():
                path = store.root / "ids" / run.run_id / f"{name}.npy"
                digest = save_array(path, np.asarray(ids).astype(str))
                refs[name] = {
                    "path": str(path.relative_to(store.root)),
                    "sha256": digest,
                }
            run.spec["ids"] = refs
            run.spec["epochs"] = self.epoch
            store.register([run])
            store.save_run(run)
        finally:
            store.close()
        logger.info(
            "recorded run %s (%d snapshots) into %s",
            run.run_id,
            len(run.snapshots),
            self.directory,
        )


def _ids_per_layer(ids: Any, layers: list[str]) -> dict[str, list[str]]:
    if ids is None:
        return {}
    if isinstance(ids, Mapping):
        unknown = set(ids) - set(layers)
        if unknown:
            raise ConfigError(
                f"ids must be keyed by recorded layers ({', '.join(layers)}); got "
                f"ids for {sorted(unknown)}."
            )
        return {k: [str(i) for i in np.asarray(v).tolist()] for k, v in ids.items()}
    if len(layers) != 1:
        raise ConfigError(
            f"ids must be a mapping of layer name to ids when {len(layers)} layers "
            "are recorded; got a single sequence."
        )
    return {layers[0]: [str(i) for i in np.asarray(ids).tolist()]}


def _seeds(seeds: Any) -> dict[str, int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return {"seed": int(seeds)}
    if isinstance(seeds, Mapping) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool)
        for v in seeds.values()
    ):
        return {str(k): int(v) for k, v in seeds.items()}
    raise ConfigError(
        f"seeds must be an int or a mapping of source name to int; got seeds={seeds!r}."
    )


def _json_values(name: str, values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        try:
            json.dumps(value)
        except TypeError:
            value = repr(value)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[str(key)] = value
    return out


def _keras_settings(model: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """The optimizer and fit parameters Keras knows about, for the record."""
    out: dict[str, Any] = {"fit": _json_values("params", dict(params or {}))}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        try:
            config = optimizer.get_config()
        except Exception:  # an optimizer without a config: its class is enough
            config = {}
        out["optimizer"] = {
            "class": type(optimizer).__name__,
            **_json_values("optimizer", config),
        }
    return out
