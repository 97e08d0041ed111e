"""Embedding files users already have: read them with their ids, write them.

One module per family: :mod:`~embvar.formats.npy` (``.npy`` + ids file,
``.npz``), :mod:`~embvar.formats.word2vec` (text and binary, via gensim),
:mod:`~embvar.formats.projector` (Embedding Projector TSVs),
:mod:`~embvar.formats.keras_file` (``.keras`` and ``.weights.h5``) and
:mod:`~embvar.formats.checkpoint` (TensorFlow checkpoints).
:func:`read_embeddings` detects the format from the content
(:func:`detect_format`) unless told. Nothing is ever unpickled.
"""

from embvar.formats.detect import FORMAT_NAMES, detect_format
from embvar.formats.embeddings import Embeddings, make_embeddings, read_ids_file
from embvar.formats.registry import FORMATS, read_embeddings, write_embeddings

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "Embeddings",
    "detect_format",
    "make_embeddings",
    "read_embeddings",
    "read_ids_file",
    "write_embeddings",
]
