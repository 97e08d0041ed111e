"""NumPy files: ``.npy`` with a sibling ids file, ``.npz`` with ids inside.

A ``.npz`` holds two arrays, ``embeddings`` of shape (n, dim) and ``ids``
of shape (n,) (strings or integers). Both are read with
``allow_pickle=False``: an array of Python objects is rejected, never
unpickled.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embvar.errors import DataError
from embvar.formats.embeddings import (
    Embeddings,
    load_plain_npy,
    make_embeddings,
    resolve_ids,
)

__all__ = ["read_npy", "read_npz", "write_npy", "write_npz", "NPZ_KEYS"]

#: The arrays a ``.npz`` embeddings file holds.
NPZ_KEYS = ("embeddings", "ids")


def read_npy(
    path: str | Path, *, ids: str | Path | Sequence[Any] | None = None
) -> Embeddings:
    """Read a ``.npy`` table; its ids come from ``ids`` or a sibling file.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file of shape (n_entities, dim).
    ids : path, sequence or "rows", optional
        An ids file, the ids, or ``"rows"``; default: the sibling ids file
        (``<stem>.ids.txt`` or ``<stem>.ids.npy``), which must exist.

    Returns
    -------
    Embeddings

    Raises
    ------
    DataError
        If the file holds a pickle, is not 2-D numbers, or has no ids.
    """
    path = Path(path)
    X = load_plain_npy(path, "the embeddings file")
    found, origin = resolve_ids(path, _rows(X), ids, rows_by_default=False)
    return make_embeddings(X, found, source=str(path), format="npy", ids_from=origin)


def read_npz(path: str | Path) -> Embeddings:
    """Read a ``.npz`` holding ``embeddings`` and ``ids``.

    Raises
    ------
    DataError
        If an array is missing, holds Python objects, or the shapes differ.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"cannot read {str(path)!r} as a .npz file: it is not a zip archive."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise DataError(
                    f"{str(path)!r} must hold the arrays 'embeddings' and 'ids'; "
                    f"it holds {sorted(archive.files)}. Save it with "
                    "np.savez(path, embeddings=X, ids=ids)."
                )
            X = archive["embeddings"]
            found = archive["ids"]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(
                f"{str(path)!r} holds an array of Python objects (a pickle), and "
                "embvar never unpickles files, which could run code; save the ids "
                "as strings, e.g. ids=np.asarray(ids, dtype=str)."
            ) from None
        raise DataError(f"{str(path)!r} is not a valid .npz file: {exc}.") from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {str(path)!r} as a .npz file: {exc}.") from exc
    return make_embeddings(X, found, source=str(path), format="npz")


def write_npy(path: str | Path, embeddings: Embeddings) -> Path:
    """Write the vectors to ``path`` (``.npy``) and the ids beside it.

    The ids go to ``<stem>.ids.txt``, one per line; returns that path.
    """
    path = Path(path)
    np.save(path, embeddings.vectors, allow_pickle=False)
    ids_path = path.with_name(path.stem + ".ids.txt")
    if any("\n" in i or "\r" in i for i in embeddings.ids.tolist()):
        ids_path = path.with_name(path.stem + ".ids.npy")
        np.save(ids_path, embeddings.ids, allow_pickle=False)
    else:
        text = "".join(f"{i}\n" for i in embeddings.ids.tolist())
        ids_path.write_text(text, encoding="utf-8")
    return ids_path


def write_npz(path: str | Path, embeddings: Embeddings) -> None:
    """Write ``embeddings`` and ``ids`` to one ``.npz`` file."""
    with open(path, "wb") as handle:
        np.savez(handle, embeddings=embeddings.vectors, ids=embeddings.ids)


def _rows(X: np.ndarray) -> int:
    if X.ndim != 2:
        raise DataError(
            f"an embeddings array must be 2-D (n_entities, dim); got shape {X.shape}."
        )
    return int(X.shape[0])
