"""Tell an embeddings file's format from its content, not its name.

Extensions lie (``.txt`` and ``.bin`` mean anything; a ``.npy`` may hold a
pickle), so the first bytes decide:

==================  ==================================================
format              recognised by
==================  ==================================================
``npy``             the NumPy magic ``\\x93NUMPY``
``npz``             a zip archive of ``.npy`` members
``keras``           a zip archive with ``config.json`` and
                    ``model.weights.h5``, or an HDF5 file (weights)
``checkpoint``      a TensorFlow checkpoint prefix, ``.index`` or folder
``word2vec-binary`` a header ``n dim``, then bytes that are not text
``word2vec``        a header ``n dim`` then text, or ``word v1 v2 ...``
                    lines (GloVe)
``projector``       lines of tab-separated numbers (vectors TSV)
==================  ==================================================

A Python pickle is recognised too, and refused.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from embvar.errors import DataError
from embvar.formats.checkpoint import is_checkpoint
from embvar.formats.projector import looks_like_vectors_tsv
from embvar.formats.word2vec import has_word2vec_header

__all__ = ["detect_format", "FORMAT_NAMES"]

#: Every format name :func:`detect_format` returns, and ``--format`` accepts.
FORMAT_NAMES = (
    "npy",
    "npz",
    "word2vec",
    "word2vec-binary",
    "projector",
    "keras",
    "checkpoint",
)

_HEAD = 1 << 16


def detect_format(path: str | Path) -> str:
    """Return the format of an embeddings file, read from its content.

    Parameters
    ----------
    path : str or Path
        A file, a checkpoint prefix, or a checkpoint folder.

    Returns
    -------
    str
        One of :data:`FORMAT_NAMES`.

    Raises
    ------
    DataError
        If the path does not exist, holds a pickle, or matches no format.
    """
    path = Path(path)
    if is_checkpoint(path):
        return "checkpoint"
    if not path.is_file():
        raise DataError(f"no embeddings file at {str(path)!r}.")
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD)
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}.") from exc

    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise DataError(
            f"{str(path)!r} is a Python pickle, and embvar never unpickles files, "
            "which could run code; export the vectors with np.save or as word2vec."
        )
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "keras"
    if head.startswith(b"PK\x03\x04"):
        return _zip_format(path)
    return _text_format(path, head)


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise DataError(f"{str(path)!r} is a damaged zip archive: {exc}.") from exc
    if "config.json" in names and "model.weights.h5" in names:
        return "keras"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    raise DataError(
        f"{str(path)!r} is a zip archive but neither a .npz of arrays nor a Keras "
        f"model file; it holds {names[:5]}."
    )


def _text_format(path: Path, head: bytes) -> str:
    first, _, rest = head.partition(b"\n")
    if has_word2vec_header(first):
        return "word2vec" if _is_text(rest) else "word2vec-binary"
    if not _is_text(head):
        raise DataError(
            f"cannot tell the format of {str(path)!r} from its content; name it with "
            f"format=... (--format), one of {', '.join(FORMAT_NAMES)}."
        )
    text = head.decode("utf-8", errors="replace")
    if len(head) == _HEAD:
        text = text[: text.rfind("\n") + 1]  # whole lines only
    elif not text.endswith("\n"):
        text += "\n"
    if looks_like_vectors_tsv(text):
        return "projector"
    line = text.split("\n", 1)[0].split()
    if len(line) >= 2 and all(_is_number(v) for v in line[1:]):
        return "word2vec"
    raise DataError(
        f"cannot tell the format of {str(path)!r} from its content (a text file that "
        "is neither word2vec nor a projector TSV); name it with format=... "
        f"(--format), one of {', '.join(FORMAT_NAMES)}."
    )


def _is_text(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(sample) - 3
    return True


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
