"""One embedding table read from a file: its vectors and the id of each row.

Every reader in :mod:`embvar.formats` returns an :class:`Embeddings`. Ids
are kept as strings, so a file whose ids are integers and one whose ids are
the same integers written as text match each other.

Formats that store no ids (``.npy``, Keras model files, TensorFlow
checkpoints) take them from a sibling ids file, found next to the data
file by name (:func:`sibling_ids_path`): ``<stem>.ids.txt`` (one id per
line, UTF-8) or ``<stem>.ids.npy`` (a 1-D array of strings or integers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embvar.checks import check_matrix
from embvar.errors import DataError

__all__ = [
    "Embeddings",
    "IDS_SUFFIXES",
    "make_embeddings",
    "check_ids",
    "read_ids_file",
    "sibling_ids_path",
    "resolve_ids",
    "load_plain_npy",
]

logger = logging.getLogger(__name__)

#: Suffixes tried, in order, after a data file's stem to find its ids file.
IDS_SUFFIXES = (".ids.txt", ".ids.npy", "_ids.txt", "_ids.npy")


@dataclass(frozen=True, eq=False)
class Embeddings:
    """An embedding table with the entity id of each row.

    Attributes
    ----------
    vectors : ndarray of shape (n_entities, dim), float32
        Finite values; row ``r`` is the entity ``ids[r]``.
    ids : ndarray of shape (n_entities,), str
        Distinct ids.
    source : str
        The file (and layer or variable) the table came from.
    format : str
        The format it was read as (see :data:`embvar.formats.FORMATS`).
    table : str
        The table's name: the layer or variable, or ``"embeddings"``.
    ids_from : str
        Where the ids came from: ``"file"`` (stored with the vectors), the
        path of an ids file, or ``"rows"`` (row numbers).
    """

    vectors: np.ndarray
    ids: np.ndarray
    source: str
    format: str
    table: str = "embeddings"
    ids_from: str = "file"

    @property
    def n_entities(self) -> int:
        """Number of rows."""
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        """Number of columns."""
        return int(self.vectors.shape[1])

    def describe(self) -> dict[str, Any]:
        """Return the table's provenance as plain JSON values."""
        return {
            "source": self.source,
            "format": self.format,
            "table": self.table,
            "n_entities": self.n_entities,
            "dim": self.dim,
            "ids_from": self.ids_from,
        }


def make_embeddings(
    vectors: Any,
    ids: Any,
    *,
    source: str,
    format: str,
    table: str = "embeddings",
    ids_from: str = "file",
) -> Embeddings:
    """Return checked :class:`Embeddings` (float32 vectors, distinct str ids)."""
    X = check_matrix(f"the vectors of {source}", np.asarray(vectors))
    ids = check_ids(f"the ids of {source}", ids, X.shape[0])
    return Embeddings(
        np.ascontiguousarray(X, dtype=np.float32), ids, source, format, table, ids_from
    )


def check_ids(name: str, ids: Any, n_rows: int) -> np.ndarray:
    """Return ``ids`` as a 1-D array of distinct strings, one per row.

    Raises
    ------
    DataError
        If the ids are not 1-D, do not number ``n_rows``, or repeat.
    """
    ids = np.asarray(ids)
    if ids.dtype == object:
        ids = np.array([str(i) for i in ids.tolist()], dtype=str)
    if ids.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of ids; got shape {ids.shape}.")
    if len(ids) != n_rows:
        raise DataError(
            f"{name} must give one id per row ({n_rows} rows); got {len(ids)} ids."
        )
    if ids.dtype.kind != "U":
        if ids.dtype.kind not in "iuS":
            raise DataError(
                f"{name} must be strings or integers; got dtype {ids.dtype}."
            )
        ids = ids.astype(str)
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        repeated = unique[counts > 1]
        raise DataError(
            f"{name} must be distinct; {len(repeated)} ids repeat, e.g. "
            f"{repeated[:3].tolist()}."
        )
    return ids


def load_plain_npy(path: Path, what: str) -> np.ndarray:
    """Load a ``.npy`` file without ever unpickling it.

    Raises
    ------
    DataError
        If the file holds Python objects (a pickle) or is not a ``.npy``.
    """
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError as exc:
        raise DataError(f"cannot read {what} {str(path)!r}: {exc}.") from exc
    # Checked outside the try below: DataError is a ValueError, which that
    # try would wrap in a second message. No --format advice: detection by
    # content sends only .npy files here, so a mismatch means the format
    # was named (or the file is an ids file).
    if magic != b"\x93NUMPY":
        raise DataError(
            f"{what} {str(path)!r} is not a .npy file: it does not start with "
            "the NumPy magic."
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(
                f"{what} {str(path)!r} holds Python objects (a pickle), and "
                "embvar never unpickles files, which could run code; save plain "
                "numbers or strings instead, e.g. np.save(path, np.asarray(x, "
                "dtype=str))."
            ) from None
        raise DataError(
            f"{what} {str(path)!r} is not a valid .npy file: {exc}."
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {what} {str(path)!r}: {exc}.") from exc


def read_ids_file(path: str | Path) -> np.ndarray:
    """Return the ids in an ids file: ``.npy`` (1-D) or text, one id a line.

    Text lines keep their inner spaces; only the line break is removed. A
    final empty line is ignored.
    """
    path = Path(path)
    if path.suffix == ".npy":
        ids = load_plain_npy(path, "the ids file")
        if ids.ndim != 1:
            raise DataError(
                f"the ids file {str(path)!r} must hold a 1-D array; got shape "
                f"{ids.shape}."
            )
        return ids
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the ids file {str(path)!r}: {exc}.") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return np.array([line.rstrip("\r") for line in lines], dtype=str)


def sibling_ids_path(path: str | Path) -> Path | None:
    """Return the ids file next to ``path`` (see :data:`IDS_SUFFIXES`), or None."""
    path = Path(path)
    stem = path.name
    for ext in (".npy", ".keras", ".h5", ".index"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    if stem.endswith(".weights"):
        stem = stem[: -len(".weights")]
    for suffix in IDS_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def resolve_ids(
    path: Path,
    n_rows: int,
    ids: str | Path | Sequence[Any] | None,
    *,
    rows_by_default: bool,
) -> tuple[np.ndarray, str]:
    """Return the ids of a table that has none stored with it, and their origin.

    Parameters
    ----------
    path : Path
        The data file; its sibling ids file is used if ``ids`` is None.
    n_rows : int
        Rows of the table.
    ids : path, sequence, "rows" or None
        An ids file, the ids themselves, or ``"rows"`` for row numbers.
    rows_by_default : bool
        With no ids given and no sibling file: use row numbers (True, for
        model files, whose rows are the layer's input indices) or raise
        (False).
    """
    if isinstance(ids, str) and ids == "rows":
        return np.arange(n_rows).astype(str), "rows"
    if isinstance(ids, (str, Path)):
        return read_ids_file(ids), str(ids)
    if ids is not None:
        return np.asarray(ids), "given"
    sibling = sibling_ids_path(path)
    if sibling is not None:
        return read_ids_file(sibling), str(sibling)
    if rows_by_default:
        return np.arange(n_rows).astype(str), "rows"
    tried = ", ".join(repr(path.stem + s) for s in IDS_SUFFIXES)
    raise DataError(
        f"{str(path)!r} stores no entity ids, and no ids file was found next to "
        f"it (looked for {tried}); write the id of each row, one per line, to "
        f"{str(path.with_name(path.stem + '.ids.txt'))!r}, or, if its rows are the "
        "same entities in the same order as the other files', pass --ids rows "
        "(ids='rows')."
    )
