"""Export a study's runs for TensorBoard's Embedding Projector.

The runs of one group are aligned to the first by orthogonal Procrustes
(after centring each table), so that the projector's views of different
runs can be compared directly: what still differs after the alignment is
real variation, not a rotation of the space. The output folder holds::

    projector_config.pbtxt     for TensorBoard (``tensorboard --logdir OUT``)
    projector_config.json      for the standalone projector (projector.tensorflow.org)
    metadata.tsv               one row per entity: id, labels, frequency, stability
    <run_id>.tsv               one aligned table per run (tab-separated floats)
    all_runs.tsv               every run's aligned table, stacked
    all_runs_metadata.tsv      the same metadata per stacked row, plus the run

Labels are written as text: tabs and line breaks in them become spaces.
The metadata comes from the store alone: a study's saved data (ids, item
labels, training frequencies), or, for runs an
:class:`~embvar.keras.EmbeddingRecorder` wrote, the ids it was given (row
numbers if none), with no labels or frequency column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embvar.errors import ConfigError, StoreError
from embvar.store import Store

__all__ = ["ProjectorExport", "export_projector", "CONFIG_NAME"]

CONFIG_NAME = "projector_config.pbtxt"


@dataclass
class ProjectorExport:
    """What :func:`export_projector` wrote."""

    directory: Path
    runs: list[str]
    table: str
    n_entities: int
    dim: int
    files: list[Path] = field(default_factory=list)


def _tsv_field(value: Any) -> str:
    return " ".join(str(value).replace("\t", " ").splitlines()).strip()


def _pbtxt_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write(path: Path, text: str, files: list[Path]) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot write {str(path)!r}: {exc.strerror or exc}.") from exc
    files.append(path)


def _matrix_tsv(X: np.ndarray) -> str:
    return "".join("\t".join(f"{v:.6g}" for v in row) + "\n" for row in X)


def align_to_first(tables: list[np.ndarray]) -> list[np.ndarray]:
    """Centre every table and rotate each onto the first (orthogonal Procrustes).

    Parameters
    ----------
    tables : list of ndarray of shape (n_entities, dim)

    Returns
    -------
    aligned : list of ndarray of shape (n_entities, dim), float64
        ``aligned[0]`` is the first table centred; ``aligned[i]`` is table
        ``i`` centred and multiplied by the orthogonal ``R`` minimising
        ``||aligned[0] - (T_i - mean) R||_F`` (Schönemann, 1966).
    """
    from embvar.metrics.procrustes import procrustes_rotation

    first = np.asarray(tables[0], np.float64)
    first = first - first.mean(axis=0)
    out = [first]
    for T in tables[1:]:
        T = np.asarray(T, np.float64)
        T = T - T.mean(axis=0)
        out.append(T @ procrustes_rotation(first, T, center=False))
    return out


def _select_runs(store: Store, group: str | None, runs: list[str] | None) -> list[Any]:
    from embvar.analysis.groups import group_runs

    records = store.runs()
    if runs:
        by_id = {r.run_id: r for r in records}
        missing = [r for r in runs if r not in by_id or by_id[r].status != "done"]
        if missing:
            raise ConfigError(
                f"runs must be finished runs of {str(store.root)!r}; "
                f"got {missing[0]!r}, which is not."
            )
        return [by_id[r] for r in runs]
    groups = group_runs(records)
    if not groups:
        raise StoreError(
            f"{str(store.root)!r} has no finished runs to export; run the study first."
        )
    if group is not None:
        if group not in groups:
            raise ConfigError(
                f"group must be one of {', '.join(groups)} (the group keys "
                f"in report.json); got group={group!r}."
            )
        return groups[group]
    return max(groups.values(), key=len)


def _row_metadata(
    root: Path, spec: dict[str, Any], table: str, n: int
) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
    """The ids, labels and training frequencies of a table's ``n`` rows.

    Read from what the store holds, never from the original data source: a
    study's prepared data under ``root/data/<key>/`` (ids, item labels,
    frequencies; text studies: words and their counts), or the ids an
    :class:`~embvar.keras.EmbeddingRecorder` saved with its run. A run with
    neither gets its row numbers as ids, and no labels or frequencies.
    """
    from embvar.store import load_array

    ref = (spec.get("ids") or {}).get(table)
    if ref is not None:  # a recorded run's own ids
        ids = load_array(root / ref["path"], ref["sha256"]).astype(str)
        if len(ids) == n:
            return ids, {}, None
    folder = _data_folder(root, spec)
    if folder is None:
        return np.arange(n).astype(str), {}, None
    if (folder / "words.npy").is_file():  # a text study
        ids = load_array(folder / "words.npy").astype(str)
        counts = folder / "counts.npy"
        freq = load_array(counts) if counts.is_file() else None
        if len(ids) == n:
            return ids, {}, freq
        return np.arange(n).astype(str), {}, None
    side = "item" if table.startswith("item") else "user"
    path = folder / f"{side}_ids.npy"
    if not path.is_file():
        return np.arange(n).astype(str), {}, None
    ids = load_array(path).astype(str)
    if len(ids) != n:
        return np.arange(n).astype(str), {}, None
    labels: dict[str, Any] = {}
    if side == "item" and (folder / "labels.json").is_file():
        try:
            saved = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{str(folder / 'labels.json')!r} must be the item labels embvar "
                f"wrote with the study's data; it cannot be read ({exc})."
            ) from exc
        labels = {k: v for k, v in saved.items() if len(v) == n}
    freq_path = folder / f"{side}_frequency.npy"
    freq = (
        load_array(freq_path) if freq_path.is_file() else _train_frequency(spec, side)
    )
    return ids, labels, freq if freq is None or len(freq) == n else None


def _data_folder(root: Path, spec: dict[str, Any]) -> Path | None:
    """The folder a study saved a run's prepared data in, if it has one."""
    from embvar.config import DataSpec
    from embvar.data.prepared import data_key

    if "data" not in spec or "seeds" not in spec:
        return None  # a recorded run
    folder = root / "data" / data_key(DataSpec(**spec["data"]), spec["seeds"]["split"])
    return folder if folder.is_dir() else None


def _train_frequency(spec: dict[str, Any], side: str) -> np.ndarray | None:
    """Training frequencies from the data source, for studies saved before
    embvar kept them with the prepared data; None if the source is gone."""
    from embvar.config import DataSpec
    from embvar.data.prepared import prepare_data
    from embvar.errors import EmbvarError

    try:
        data = prepare_data(DataSpec(**spec["data"]), spec["seeds"]["split"])
    except (EmbvarError, OSError):
        return None
    inter = data.interactions
    train = data.split.train
    return (
        inter.item_frequency(train) if side == "item" else inter.user_frequency(train)
    )


def export_projector(
    directory: str | Path,
    out: str | Path | None = None,
    *,
    group: str | None = None,
    runs: list[str] | None = None,
    table: str = "item_embedding",
    k: int = 10,
) -> ProjectorExport:
    """Write a group's aligned runs as Embedding Projector files.

    Parameters
    ----------
    directory : str or Path
        A study directory, or a store of runs recorded with
        :class:`~embvar.keras.EmbeddingRecorder`.
    out : str or Path, optional
        Output folder (default ``<directory>/projector``).
    group : str, optional
        The group key (``groups[i].group`` in report.json) to export;
        default the group with the most runs.
    runs : list of str, optional
        Export exactly these finished runs instead of a group.
    table : str, default="item_embedding"
        Which embedding table.
    k : int, default=10
        Neighbours for the metadata's ``stability`` column (each entity's
        k-NN overlap, averaged over all pairs of exported runs).

    Returns
    -------
    ProjectorExport

    Raises
    ------
    StoreError
        If the directory is not a study directory or has no finished runs.
    ConfigError
        If ``group`` or ``runs`` name nothing exportable, or ``table`` is not
        a table of the runs.
    """
    from embvar.metrics.neighbors import neighbor_sets

    directory = Path(directory)
    out = Path(out) if out is not None else directory / "projector"
    with Store(directory, create=False) as store:
        records = _select_runs(store, group, runs)
        snapshots = [store.load_snapshot(r.run_id) for r in records]
    if table not in snapshots[0]:
        raise ConfigError(
            f"table must be one of {', '.join(sorted(snapshots[0]))}; "
            f"got table={table!r}."
        )
    tables = [s[table] for s in snapshots]
    aligned = align_to_first(tables)
    n, dim = aligned[0].shape

    # Metadata: ids and labels of the rows, training frequency, stability.
    ids, labels, freq = _row_metadata(directory, records[0].spec, table, n)
    stability = np.full(n, np.nan)
    if len(tables) > 1 and n > k:
        neigh = neighbor_sets(tables, k, metric="cosine")
        pairs = [(a, b) for a in range(len(tables)) for b in range(a + 1, len(tables))]
        stability = sum(neigh.overlap(a, b) for a, b in pairs) / len(pairs)
    columns = ["id", *labels, *(["frequency"] if freq is not None else [])]
    columns.append(f"knn_overlap@{k}")
    rows = [
        [
            ids[i],
            *(labels[c][i] for c in labels),
            *([int(freq[i])] if freq is not None else []),
            f"{stability[i]:.3f}",
        ]
        for i in range(n)
    ]

    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    header = "\t".join(columns) + "\n"
    _write(
        out / "metadata.tsv",
        header + "".join("\t".join(map(_tsv_field, r)) + "\n" for r in rows),
        files,
    )
    names = []
    for rec, X in zip(records, aligned, strict=False):
        factors = ", ".join(f"{a}={b}" for a, b in rec.spec["factors"].items())
        names.append(f"{table} run {rec.run_id}" + (f" ({factors})" if factors else ""))
        _write(out / f"{rec.run_id}.tsv", _matrix_tsv(X), files)
    _write(out / "all_runs.tsv", "".join(_matrix_tsv(X) for X in aligned), files)
    _write(
        out / "all_runs_metadata.tsv",
        "\t".join(["run", *columns])
        + "\n"
        + "".join(
            "\t".join(map(_tsv_field, [rec.run_id, *r])) + "\n"
            for rec in records
            for r in rows
        ),
        files,
    )

    entries = [
        (name, f"{rec.run_id}.tsv", "metadata.tsv", n)
        for name, rec in zip(names, records, strict=False)
    ]
    entries.append(
        (
            f"{table}: all {len(records)} runs, aligned",
            "all_runs.tsv",
            "all_runs_metadata.tsv",
            n * len(records),
        )
    )
    pbtxt = "".join(
        "embeddings {\n"
        f"  tensor_name: {_pbtxt_string(name)}\n"
        f"  tensor_path: {_pbtxt_string(tensor)}\n"
        f"  metadata_path: {_pbtxt_string(meta)}\n"
        f"  tensor_shape: {rows_}\n"
        f"  tensor_shape: {dim}\n"
        "}\n"
        for name, tensor, meta, rows_ in entries
    )
    _write(out / CONFIG_NAME, pbtxt, files)
    _write(
        out / "projector_config.json",
        json.dumps(
            {
                "embeddings": [
                    {
                        "tensorName": name,
                        "tensorShape": [rows_, dim],
                        "tensorPath": tensor,
                        "metadataPath": meta,
                    }
                    for name, tensor, meta, rows_ in entries
                ]
            },
            indent=1,
        ),
        files,
    )
    return ProjectorExport(out, [r.run_id for r in records], table, n, dim, files)
