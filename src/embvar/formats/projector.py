"""TSV files as TensorFlow's Embedding Projector reads them.

The projector takes two files: the vectors, one row per line with the
values separated by tabs and no header, and the metadata, one line per
row. A metadata file with one column has no header; with more than one,
its first line names the columns. The ids are the metadata's first column,
or the column named by ``id_column``.

The metadata file is found next to the vectors file: ``vectors.tsv`` pairs
with ``metadata.tsv``, ``X_vectors.tsv`` (or ``X_tensors.tsv``) with
``X_metadata.tsv``, and any ``X.tsv`` with ``X_metadata.tsv``,
``X.metadata.tsv`` or a ``metadata.tsv`` in the same folder.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from embvar.errors import DataError
from embvar.formats.embeddings import Embeddings, make_embeddings

__all__ = [
    "read_projector",
    "write_projector",
    "metadata_path",
    "looks_like_vectors_tsv",
]


def looks_like_vectors_tsv(head: str) -> bool:
    """Return whether the first lines of a file are tab-separated numbers."""
    lines = [line for line in head.split("\n")[:-1] if line.strip()]
    if not lines:
        return False
    for line in lines[:20]:
        cells = line.rstrip("\r").split("\t")
        try:
            [float(c) for c in cells]
        except ValueError:
            return False
    return True


def metadata_path(path: str | Path) -> Path | None:
    """Return the metadata file that goes with a vectors TSV, or None."""
    path = Path(path)
    stem = path.name[: -len(".tsv")] if path.name.endswith(".tsv") else path.name
    names = []
    for word in ("vectors", "tensors", "tensor"):
        if stem == word:
            names.append("metadata.tsv")
        elif stem.endswith(word):
            names.append(stem[: -len(word)] + "metadata.tsv")
    names += [f"{stem}_metadata.tsv", f"{stem}.metadata.tsv", "metadata.tsv"]
    for name in names:
        candidate = path.with_name(name)
        if candidate.is_file() and candidate != path:
            return candidate
    return None


def read_projector(
    path: str | Path,
    *,
    metadata: str | Path | None = None,
    id_column: str | int = 0,
) -> Embeddings:
    """Read an Embedding Projector vectors TSV and its metadata TSV.

    Parameters
    ----------
    path : str or Path
        The vectors file.
    metadata : str or Path, optional
        The metadata file; default: found next to ``path`` (see the module
        docstring).
    id_column : str or int, default=0
        The metadata column that holds the ids, by header name or position.

    Returns
    -------
    Embeddings

    Raises
    ------
    DataError
        If a line does not parse, the row counts differ, or no metadata is
        found.
    """
    path = Path(path)
    X = _read_vectors(path)
    meta = Path(metadata) if metadata is not None else metadata_path(path)
    if meta is None:
        raise DataError(
            f"{str(path)!r} is a projector vectors TSV, and its ids come from a "
            f"metadata TSV next to it; none was found (looked for "
            f"{str(path.with_name(path.stem + '_metadata.tsv'))!r} and "
            "'metadata.tsv'); pass metadata=PATH."
        )
    ids = _read_metadata_column(meta, X.shape[0], id_column)
    return make_embeddings(
        X, ids, source=str(path), format="projector", ids_from=str(meta)
    )


def write_projector(
    path: str | Path, embeddings: Embeddings, *, metadata: str | Path | None = None
) -> Path:
    """Write the vectors TSV and a one-column metadata TSV; return the latter.

    The metadata goes to ``metadata`` or, by default, to the name
    :func:`metadata_path` would look for first.
    """
    path = Path(path)
    bad = [i for i in embeddings.ids.tolist() if "\t" in i or "\n" in i or "\r" in i]
    if bad:
        raise DataError(
            f"projector metadata cannot hold ids with tabs or line breaks; got "
            f"{len(bad)} such ids, e.g. {bad[:3]}."
        )
    buffer = io.StringIO()
    np.savetxt(buffer, embeddings.vectors, delimiter="\t", fmt="%.9g")
    path.write_text(buffer.getvalue(), encoding="utf-8")
    if metadata is None:
        stem = path.name[: -len(".tsv")] if path.name.endswith(".tsv") else path.name
        if stem.endswith("vectors"):
            name = stem[: -len("vectors")] + "metadata.tsv"
        else:
            name = f"{stem}_metadata.tsv"
        metadata = path.with_name(name)
    metadata = Path(metadata)
    metadata.write_text(
        "".join(f"{i}\n" for i in embeddings.ids.tolist()), encoding="utf-8"
    )
    return metadata


def _read_vectors(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {str(path)!r} as text: {exc}.") from exc
    rows = []
    width = None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split("\t")]
        except ValueError:
            raise DataError(
                f"{str(path)!r} line {number} must hold tab-separated numbers; got "
                f"{line[:60]!r}."
            ) from None
        if width is None:
            width = len(values)
        elif len(values) != width:
            raise DataError(
                f"{str(path)!r} line {number} must hold {width} values like the "
                f"first line; got {len(values)}."
            )
        rows.append(values)
    if not rows:
        raise DataError(f"{str(path)!r} holds no vectors.")
    return np.array(rows, dtype=np.float64)


def _read_metadata_column(meta: Path, n_rows: int, id_column: str | int) -> np.ndarray:
    try:
        text = meta.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the metadata file {str(meta)!r}: {exc}.") from exc
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    columns = max((line.count("\t") + 1 for line in lines), default=1)
    if columns > 1:
        # More than one column: the first line is a header (projector rule).
        header, lines = lines[0].split("\t"), lines[1:]
        if isinstance(id_column, str):
            if id_column not in header:
                raise DataError(
                    f"id_column must name a column of {str(meta)!r} "
                    f"({', '.join(header)}); got id_column={id_column!r}."
                )
            index = header.index(id_column)
        else:
            index = int(id_column)
        ids = [line.split("\t")[index] if line else "" for line in lines]
    else:
        ids = lines
    if len(ids) != n_rows:
        raise DataError(
            f"the metadata file {str(meta)!r} must have one line per vector "
            f"({n_rows}{' plus a header' if columns > 1 else ''}); got {len(ids)}."
        )
    return np.array(ids, dtype=str)
