"""The hook a training function reports its state to, for the determinism audit.

A training function the audit can run takes a :class:`Recorder` and a seed::

    def train(recorder, seed):
        keras.utils.set_random_seed(seed)
        model = build_model()                      # a fresh model every call
        model.compile(optimizer="adam", loss="mse")
        recorder.entity_ids("item_embedding", vocabulary)   # optional
        model.fit(x, y, epochs=5, shuffle=False, callbacks=[recorder.callback()])

``recorder.callback()`` is a Keras callback that records every variable of
the model and of its optimizer before training (epoch 0), after every epoch
and, when the audit asks for it, after every step of one epoch. A custom
training loop calls :meth:`Recorder.start`, :meth:`Recorder.end_step` and
:meth:`Recorder.end_epoch` itself with the model (or a dict of arrays).

What is recorded, per variable: a SHA-256 of its bytes at each epoch (and
step), and its values at each epoch, in ``arrays/epoch_NNNN.npz``; steps are
saved as ``arrays/step_NNNN.npz`` as the audit asks. ``record.json`` holds
the digests, shapes, kinds (``embedding``, ``weight``, ``optimizer``,
``rng``), the entity ids' digests, the training time and, if the training
function raised, the error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from embvar.determinism.bitwise import array_digest
from embvar.errors import StoreError, TrainingError

__all__ = ["Recorder", "RunRecord", "collect_state", "load_record", "RECORD_NAME"]

RECORD_NAME = "record.json"

# Bytes of step snapshots one run may save before it saves digests only.
DEFAULT_STEP_BUDGET = 512 * 2**20


def collect_state(state: Any) -> dict[str, tuple[str, np.ndarray]]:
    """Return ``{path: (kind, values)}`` for a Keras model or a dict of arrays.

    Parameters
    ----------
    state : keras.Model or mapping of str to array-like
        A model: every variable of the model (``model.variables``, which
        includes random-generator states) and of its optimizer once built.
        A mapping: its arrays, kind ``embedding`` where the name contains
        "embedding", else ``weight``.

    Returns
    -------
    dict of str to (str, ndarray)
        In a stable order; values are copies.
    """
    out: dict[str, tuple[str, np.ndarray]] = {}
    if isinstance(state, Mapping):
        for name, value in state.items():
            kind = "embedding" if "embedding" in str(name).lower() else "weight"
            out[str(name)] = (kind, _to_numpy(value))
        return out
    import keras

    if not isinstance(state, keras.Model):
        raise TrainingError(
            "the recorder's state must be a keras.Model or a dict of arrays; "
            f"got {type(state).__name__}."
        )
    embedding_ids = {
        id(v)
        for layer in _layers(state)
        if isinstance(layer, keras.layers.Embedding)
        for v in layer.weights
    }
    for variable in state.variables:
        if id(variable) in embedding_ids:
            kind = "embedding"
        elif "seed_generator" in variable.path:
            kind = "rng"
        else:
            kind = "weight"
        _put(out, variable.path, kind, _to_numpy(variable))
    optimizer = getattr(state, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        for variable in optimizer.variables:
            _put(out, variable.path, "optimizer", _to_numpy(variable))
    return out


class Recorder:
    """Records a run's variables at each epoch (and step) for the audit.

    Parameters
    ----------
    directory : str or Path
        Where the run's ``record.json`` and ``arrays/`` go.
    step_epoch : int, optional
        Record every step of this epoch (1-based; epoch 0 is the initial
        state, so steps exist for epochs >= 1).
    save_steps : {"all", "first_difference", "none"}
        Which step snapshots to save as arrays: every one (up to
        ``step_budget`` bytes), only the first whose digests differ from
        ``reference``, or none (digests only).
    reference : dict, optional
        ``{step: {path: digest}}`` of another run's ``step_epoch``.
    step_budget : int
        Bytes of step arrays to save at most with ``save_steps="all"``.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        step_epoch: int | None = None,
        save_steps: str = "all",
        reference: dict[int, dict[str, str]] | None = None,
        step_budget: int = DEFAULT_STEP_BUDGET,
    ):
        self.directory = Path(directory)
        self.step_epoch = step_epoch
        self.save_steps = save_steps
        self.reference = reference or {}
        self.step_budget = step_budget
        self.variables: dict[str, dict[str, Any]] = {}
        self.epochs: dict[int, dict[str, str]] = {}
        self.steps: dict[int, dict[str, str]] = {}
        self.saved_steps: list[int] = []
        self.ids: dict[str, dict[str, Any]] = {}
        self.trace: dict[str, Any] | None = None
        self.started = False
        self.epoch = 0  # epochs completed
        self.step = 0  # steps completed in the current epoch
        self.record_seconds = 0.0
        self._step_bytes = 0
        (self.directory / "arrays").mkdir(parents=True, exist_ok=True)

    # -- what a training function calls ------------------------------------

    def callback(self):
        """Return a Keras callback that records through this recorder."""
        return _make_callback(self)

    def start(self, state: Any) -> None:
        """Record the state before training: epoch 0. Later calls do nothing."""
        if self.started:
            return
        self.started = True
        self._snapshot(state, "epoch", 0)

    def end_step(self, state: Any) -> None:
        """Record the state after one training step, if this epoch is audited."""
        self._check_started("end_step")
        if self.step_epoch == self.epoch + 1:
            self._snapshot(state, "step", self.step)
        self.step += 1

    def end_epoch(self, state: Any) -> None:
        """Record the state after an epoch."""
        self._check_started("end_epoch")
        self.epoch += 1
        self.step = 0
        self._snapshot(state, "epoch", self.epoch)

    def record_snapshots(self, snapshots: Mapping[int, Mapping[str, Any]]) -> None:
        """Record ``{epoch: {name: array}}`` snapshots taken by the run itself.

        For training that no callback can see (a model outside Keras): the
        epochs are recorded in order, epoch 0 first, without steps.
        """
        for epoch in sorted(snapshots):
            if epoch == 0:
                self.start(dict(snapshots[epoch]))
            elif self.started:
                self.epoch = epoch - 1
                self.end_epoch(dict(snapshots[epoch]))

    def _check_started(self, call: str) -> None:
        if not self.started:
            raise TrainingError(
                f"recorder.{call}() was called before recorder.start(model); call "
                "start with the model before the first training step, so that "
                "epoch 0 holds the initial values."
            )

    def entity_ids(self, table: str, ids: Any) -> None:
        """Record which entity each row of ``table`` holds, as digests.

        Two processes that map entities to rows differently (a vocabulary
        built from a set, say) are told apart by these digests: ``order``
        changes with the order of the rows, ``members`` only with the set.
        """
        values = [str(v) for v in np.asarray(ids).reshape(-1).tolist()]
        joined = "\x1f".join(values).encode()
        members = "\x1f".join(sorted(values)).encode()
        import hashlib

        self.ids[str(table)] = {
            "n": len(values),
            "order": hashlib.sha256(joined).hexdigest(),
            "members": hashlib.sha256(members).hexdigest(),
            "first": values[:5],
        }

    # -- what the audit calls ------------------------------------------------

    def close(
        self,
        seconds: float,
        *,
        error: str | None = None,
        manifest: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write ``record.json``; return its path."""
        record = {
            "variables": self.variables,
            "epochs": {str(k): v for k, v in self.epochs.items()},
            "step_epoch": self.step_epoch,
            "steps": {str(k): v for k, v in self.steps.items()},
            "saved_steps": self.saved_steps,
            "ids": self.ids,
            "seconds": max(0.0, seconds - self.record_seconds),
            "record_seconds": self.record_seconds,
            "error": error,
            "manifest": manifest,
            "trace": self.trace,
            **(extra or {}),
        }
        path = self.directory / RECORD_NAME
        tmp = self.directory / f".tmp-{RECORD_NAME}"
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
        tmp.replace(path)
        return path

    def _snapshot(self, state: Any, what: str, index: int) -> None:
        t0 = time.perf_counter()
        values = collect_state(state)
        digests = {}
        for path, (kind, array) in values.items():
            if path not in self.variables:
                self.variables[path] = {
                    "kind": kind,
                    "shape": list(array.shape),
                    "dtype": array.dtype.str,
                }
            digests[path] = array_digest(array)
        if what == "epoch":
            self.epochs[index] = digests
            self._save(f"epoch_{index:04d}.npz", values)
        else:
            self.steps[index] = digests
            if self._want_step(index, digests, values):
                self._save(f"step_{index:04d}.npz", values)
                self.saved_steps.append(index)
        self.record_seconds += time.perf_counter() - t0

    def _want_step(self, index: int, digests: dict, values: dict) -> bool:
        if self.save_steps == "all":
            size = sum(a.nbytes for _, a in values.values())
            if self._step_bytes + size > self.step_budget:
                return False
            self._step_bytes += size
            return True
        if self.save_steps == "first_difference":
            if self.saved_steps or index not in self.reference:
                return False
            return self.reference[index] != digests
        return False

    def _save(self, name: str, values: dict[str, tuple[str, np.ndarray]]) -> None:
        keys = list(self.variables)
        arrays = {f"v{keys.index(p)}": a for p, (_, a) in values.items()}
        path = self.directory / "arrays" / name
        with open(path, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]


class RunRecord:
    """One recorded run, read back: digests, and arrays on demand.

    Attributes
    ----------
    directory : Path
    data : dict
        The parsed ``record.json``.
    """

    def __init__(self, directory: Path, data: dict[str, Any]):
        self.directory = directory
        self.data = data
        self.variables: dict[str, dict[str, Any]] = data["variables"]
        self.epochs = {int(k): v for k, v in data["epochs"].items()}
        self.steps = {int(k): v for k, v in data.get("steps", {}).items()}

    @property
    def error(self) -> str | None:
        return self.data.get("error")

    @property
    def seconds(self) -> float:
        return float(self.data.get("seconds", 0.0))

    @property
    def manifest(self) -> dict[str, Any]:
        return self.data.get("manifest") or {}

    def arrays(self, what: str, index: int) -> dict[str, np.ndarray] | None:
        """Return ``{path: values}`` saved for an epoch or step, or None."""
        path = self.directory / "arrays" / f"{what}_{index:04d}.npz"
        if not path.is_file():
            return None
        keys = list(self.variables)
        with np.load(path, allow_pickle=False) as npz:
            return {keys[int(k[1:])]: npz[k] for k in npz.files}


def load_record(directory: str | Path) -> RunRecord:
    """Return the run recorded in ``directory``.

    Raises
    ------
    StoreError
        If ``record.json`` is missing or unreadable (the worker died before
        writing it).
    """
    directory = Path(directory)
    path = directory / RECORD_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"no readable run record in {str(directory)!r} ({exc}); the worker "
            "process ended before writing it."
        ) from exc
    return RunRecord(directory, data)


def _put(out: dict, path: str, kind: str, values: np.ndarray) -> None:
    key, k = path, 1
    while key in out:
        k += 1
        key = f"{path}#{k}"
    out[key] = (kind, values)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "numpy"):
        return np.array(value.numpy())
    try:
        import keras

        return np.array(keras.ops.convert_to_numpy(value))
    except (ImportError, TypeError, ValueError):
        return np.array(value)


def _layers(model: Any) -> list[Any]:
    out, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        out.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
    return out


def _make_callback(recorder: Recorder):
    import keras

    class _RecorderCallback(keras.callbacks.Callback):
        """Hands the model to the recorder before training and after each step."""

        def on_train_begin(self, logs=None):
            recorder.start(self.model)

        def on_train_batch_end(self, batch, logs=None):
            recorder.end_step(self.model)

        def on_epoch_end(self, epoch, logs=None):
            recorder.end_epoch(self.model)

    return _RecorderCallback()
