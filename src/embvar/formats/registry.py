"""Read or write any supported embeddings file by format name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from embvar.checks import check_choice
from embvar.errors import ConfigError
from embvar.formats.detect import FORMAT_NAMES, detect_format
from embvar.formats.embeddings import Embeddings

__all__ = ["Format", "FORMATS", "read_embeddings", "write_embeddings"]

Format = Literal[
    "npy", "npz", "word2vec", "word2vec-binary", "projector", "keras", "checkpoint"
]

#: Each format and what a file of it holds.
FORMATS: dict[str, str] = {
    "npy": ".npy table of shape (n, dim), ids in a sibling <stem>.ids.txt/.ids.npy",
    "npz": ".npz with arrays 'embeddings' (n, dim) and 'ids' (n,)",
    "word2vec": "word2vec text (header 'n dim', then 'word v1 ... vdim'), or GloVe",
    "word2vec-binary": "word2vec binary (header, then word and float32 values)",
    "projector": "Embedding Projector vectors TSV with its metadata TSV",
    "keras": "Keras .keras model or .weights.h5 file; the layer by name",
    "checkpoint": "TensorFlow checkpoint (prefix, .index or folder); the variable",
}


def read_embeddings(
    path: str | Path,
    *,
    format: Format | None = None,
    layer: str | None = None,
    variable: str | None = None,
    ids: str | Path | Sequence[Any] | None = None,
    metadata: str | Path | None = None,
) -> Embeddings:
    """Read an embedding table and its ids from a file of any supported format.

    Parameters
    ----------
    path : str or Path
        The file (or checkpoint prefix or folder).
    format : str, optional
        One of :data:`FORMATS`; default: detected from the content.
    layer : str, optional
        For ``keras``: the layer whose weights to read.
    variable : str, optional
        For ``checkpoint``: the variable's key.
    ids : path, sequence or "rows", optional
        For formats without stored ids (``npy``, ``keras``, ``checkpoint``):
        an ids file, the ids, or ``"rows"`` (row numbers).
    metadata : str or Path, optional
        For ``projector``: the metadata TSV.

    Returns
    -------
    Embeddings

    Raises
    ------
    ConfigError
        If ``format`` is unknown, or an option does not apply to the format.
    DataError
        If the file cannot be read as that format.

    Examples
    --------
    >>> emb = read_embeddings("vectors.bin")  # doctest: +SKIP
    >>> emb.vectors.shape, emb.ids[:3]  # doctest: +SKIP
    """
    path = Path(path)
    fmt: str = detect_format(path) if format is None else format
    check_choice("format", fmt, FORMAT_NAMES)
    _check_option("layer", layer, fmt, ("keras",))
    _check_option("variable", variable, fmt, ("checkpoint",))
    _check_option("ids", ids, fmt, ("npy", "keras", "checkpoint"))
    _check_option("metadata", metadata, fmt, ("projector",))

    if fmt == "npy":
        from embvar.formats.npy import read_npy

        return read_npy(path, ids=ids)
    if fmt == "npz":
        from embvar.formats.npy import read_npz

        return read_npz(path)
    if fmt in ("word2vec", "word2vec-binary"):
        from embvar.formats.word2vec import read_word2vec

        return read_word2vec(path, binary=fmt == "word2vec-binary")
    if fmt == "projector":
        from embvar.formats.projector import read_projector

        return read_projector(path, metadata=metadata)
    if fmt == "keras":
        from embvar.formats.keras_file import read_keras

        return read_keras(path, layer=layer, ids=ids)
    from embvar.formats.checkpoint import read_checkpoint

    return read_checkpoint(path, variable=variable, ids=ids)


def write_embeddings(path: str | Path, embeddings: Embeddings, format: str) -> Path:
    """Write a table in ``format`` (npy, npz, word2vec, word2vec-binary, projector).

    Returns the path written; ``npy`` also writes ``<stem>.ids.txt`` and
    ``projector`` a metadata TSV next to it.
    """
    writable = ("npy", "npz", "word2vec", "word2vec-binary", "projector")
    check_choice("format", format, writable)
    path = Path(path)
    if format == "npy":
        from embvar.formats.npy import write_npy

        write_npy(path, embeddings)
    elif format == "npz":
        from embvar.formats.npy import write_npz

        write_npz(path, embeddings)
    elif format == "projector":
        from embvar.formats.projector import write_projector

        write_projector(path, embeddings)
    else:
        from embvar.formats.word2vec import write_word2vec

        write_word2vec(path, embeddings, binary=format == "word2vec-binary")
    return path


def _check_option(name: str, value: Any, format: str, applies: tuple[str, ...]) -> None:
    if value is not None and format not in applies:
        raise ConfigError(
            f"{name} applies to the {' and '.join(applies)} format(s), not to "
            f"{format!r}; got {name}={value!r}."
        )
