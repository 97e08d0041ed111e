"""Initial tables from pre-trained embeddings, matched to this study's rows.

``model.pretrained`` names one of:

- a ``.npy`` file: the item table, already in this study's row order
  (shape ``(n_items, dim)``);
- a ``.npz`` file with ``item_embedding`` and/or ``user_embedding``, and
  optionally ``item_ids`` / ``user_ids`` to match rows on ids;
- ``STORE_DIR:RUN_ID``: the last snapshot of a run of another study, matched
  on the ids that study saved;
- ``holdout``: item rows pre-trained on the users the study's own data
  leaves out (``data.holdout_users``); see :mod:`embvar.training.pretrain`.

Rows the source does not cover keep the fallback (uniform) initializer.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from embvar.config import DataSpec, RunSpec
from embvar.data.interactions import Interactions
from embvar.data.prepared import PreparedData, data_key
from embvar.errors import ConfigError, DataError, ShapeMismatchError
from embvar.models.factorization import Pretrained
from embvar.store import Store, load_array

__all__ = ["load_pretrained", "align_rows", "pretrained_for"]


def align_rows(
    table: np.ndarray, source_ids: np.ndarray, target_ids: np.ndarray
) -> np.ndarray:
    """Return ``table`` reindexed to ``target_ids``; uncovered rows are NaN."""
    out = np.full((len(target_ids), table.shape[1]), np.nan, dtype=np.float32)
    source = {str(k): r for r, k in enumerate(np.asarray(source_ids).tolist())}
    for r, k in enumerate(np.asarray(target_ids).tolist()):
        j = source.get(str(k))
        if j is not None:
            out[r] = table[j]
    return out


def pretrained_for(spec: RunSpec, data: PreparedData) -> Pretrained | None:
    """Return the initial tables a run's ``model.pretrained`` names, or None.

    None unless ``spec.model.initializer == "pretrained"``. Every trainer
    (one run, or many as replicas) gets a run's pretrained tables here.
    """
    if spec.model.initializer != "pretrained":
        return None
    ref = spec.model.pretrained or ""
    if ref == "holdout":
        from embvar.training.pretrain import pretrain_holdout

        return pretrain_holdout(data, spec.model, seed=spec.seeds["split"])
    return load_pretrained(ref, data.interactions, spec.model.dim)


def load_pretrained(ref: str, data: Interactions, dim: int) -> Pretrained:
    """Return the pretrained tables ``ref`` names, aligned to ``data``'s rows."""
    if ":" in ref and not Path(ref).is_file():
        store_dir, run_id = ref.rsplit(":", 1)
        return _from_store(Path(store_dir), run_id, data, dim)
    path = Path(ref)
    if not path.is_file():
        raise ConfigError(
            f"model.pretrained must be a .npy/.npz file or 'STORE_DIR:RUN_ID'; "
            f"got model.pretrained={ref!r}, which does not exist."
        )
    if path.suffix not in (".npy", ".npz"):
        raise ConfigError(
            f"model.pretrained must be a .npy/.npz file or 'STORE_DIR:RUN_ID'; "
            f"got model.pretrained={ref!r}, a {path.suffix or 'suffix-less'} file."
        )
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                parts = {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(
                f"model.pretrained={ref!r} must be an .npz archive of plain arrays "
                f"(pickled objects are never loaded); got: {exc}."
            ) from exc
        user = _aligned(parts, "user", data.user_ids, dim, ref)
        item = _aligned(parts, "item", data.item_ids, dim, ref)
        return Pretrained(user=user, item=item)
    table = load_array(path)
    _check_shape(table, (data.n_items, dim), ref)
    return Pretrained(user=None, item=table.astype(np.float32))


def _aligned(
    parts: dict, role: str, ids: np.ndarray, dim: int, ref: str
) -> np.ndarray | None:
    table = parts.get(f"{role}_embedding")
    if table is None:
        return None
    if f"{role}_ids" in parts:
        _check_real(table, ref)
        if table.ndim != 2 or table.shape[1] != dim:
            raise ShapeMismatchError(
                f"{ref}: {role}_embedding must have {dim} columns (model.dim); "
                f"got shape {table.shape}."
            )
        return align_rows(table, parts[f"{role}_ids"], ids)
    _check_shape(table, (len(ids), dim), ref)
    return table.astype(np.float32)


def _from_store(root: Path, run_id: str, data: Interactions, dim: int) -> Pretrained:
    with Store(root, create=False) as store:
        record = {r.run_id: r for r in store.runs()}.get(run_id)
        if record is None or record.status != "done":
            raise ConfigError(
                f"model.pretrained names run {run_id!r} of {str(root)!r}, which "
                "is not a finished run there; see `embvar runs DIR`."
            )
        tables = store.load_snapshot(run_id)
        key = data_key(DataSpec(**record.spec["data"]), record.spec["seeds"]["split"])
    folder = root / "data" / key
    if not folder.is_dir():
        raise ConfigError(f"{str(root)!r} lacks the id mapping of run {run_id!r}.")
    user = align_rows(
        tables["user_embedding"], load_array(folder / "user_ids.npy"), data.user_ids
    )
    item = align_rows(
        tables["item_embedding"], load_array(folder / "item_ids.npy"), data.item_ids
    )
    for name, t in (("user", user), ("item", item)):
        if t.shape[1] != dim:
            raise ShapeMismatchError(
                f"model.pretrained run {run_id!r} has {name} dimension {t.shape[1]}; "
                f"model.dim is {dim}."
            )
    return Pretrained(user=user, item=item)


def _check_real(table: np.ndarray, ref: str) -> None:
    if not np.issubdtype(table.dtype, np.number) or np.issubdtype(
        table.dtype, np.complexfloating
    ):
        raise DataError(
            f"{ref}: the pretrained table must hold real numbers; got dtype "
            f"{table.dtype}."
        )


def _check_shape(table: np.ndarray, shape: tuple[int, int], ref: str) -> None:
    _check_real(table, ref)
    if table.shape != shape:
        raise ShapeMismatchError(
            f"{ref}: the pretrained table must have shape {shape} (rows of this "
            f"study, model.dim); got {table.shape}. Use an .npz with ids to match "
            "rows on ids."
        )
