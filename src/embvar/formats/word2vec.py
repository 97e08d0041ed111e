"""word2vec files, text and binary, read and written through gensim.

The text format is a header line ``n_words dim`` then one line per word,
``word v_1 ... v_dim``; without the header it is the GloVe layout, which
is read too. The binary format has the same header, then each word
followed by a space and ``dim`` little-endian float32 values. Both are
parsed by gensim's :meth:`~gensim.models.KeyedVectors.load_word2vec_format`,
which reads numbers and words only. gensim's own ``.model`` / ``.kv``
files are pickles and are refused.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from embvar.errors import DataError, DependencyError
from embvar.formats.embeddings import Embeddings, make_embeddings

__all__ = ["read_word2vec", "write_word2vec", "has_word2vec_header"]


def has_word2vec_header(first_line: bytes) -> bool:
    """Return whether a first line is a word2vec header ``n_words dim``.

    The two numbers are separated by spaces (a tab makes it a TSV row).
    """
    return re.fullmatch(rb" *\d+ +\d+ *\r?", first_line.rstrip(b"\n")) is not None


def read_word2vec(path: str | Path, *, binary: bool = False) -> Embeddings:
    """Read a word2vec text or binary file; the words are the ids.

    Parameters
    ----------
    path : str or Path
        The file.
    binary : bool, default=False
        The binary format (otherwise text, with or without a header).

    Returns
    -------
    Embeddings
        Rows in the file's order.

    Raises
    ------
    DataError
        If gensim cannot parse the file.
    """
    KeyedVectors = _keyed_vectors()
    path = Path(path)
    no_header = False
    if not binary:
        try:
            with open(path, "rb") as handle:
                no_header = not has_word2vec_header(handle.readline())
        except OSError as exc:
            raise DataError(f"cannot read {str(path)!r}: {exc}.") from exc
    try:
        kv = KeyedVectors.load_word2vec_format(
            str(path), binary=binary, no_header=no_header
        )
    except (ValueError, EOFError, UnicodeDecodeError, IndexError) as exc:
        kind = "binary" if binary else "text"
        raise DataError(
            f"{str(path)!r} is not a valid word2vec {kind} file: {exc}; if it is in "
            "another format, name it with --format."
        ) from exc
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc}.") from exc
    return make_embeddings(
        kv.vectors,
        np.array(kv.index_to_key, dtype=str),
        source=str(path),
        format="word2vec-binary" if binary else "word2vec",
    )


def write_word2vec(
    path: str | Path, embeddings: Embeddings, *, binary: bool = False
) -> None:
    """Write ``embeddings`` in the word2vec format, text or binary.

    Raises
    ------
    DataError
        If an id holds whitespace, which the format cannot represent.
    """
    bad = [i for i in embeddings.ids.tolist() if not i or any(c.isspace() for c in i)]
    if bad:
        raise DataError(
            f"word2vec files cannot store ids that are empty or hold whitespace; "
            f"got {len(bad)} such ids, e.g. {bad[:3]}. Use the npz format instead."
        )
    KeyedVectors = _keyed_vectors()
    kv = KeyedVectors(embeddings.dim, dtype=np.float32)
    kv.add_vectors(embeddings.ids.tolist(), embeddings.vectors)
    kv.save_word2vec_format(str(path), binary=binary)


def _keyed_vectors():
    try:
        from gensim.models import KeyedVectors
    except ImportError as exc:  # pragma: no cover - gensim is a dependency
        raise DependencyError(
            "reading word2vec files needs gensim; install it with `pip install gensim`."
        ) from exc
    return KeyedVectors
