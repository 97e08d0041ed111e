"""The built-in skip-gram model with negative sampling, in Keras 3.

For a centre word ``w`` and a row of candidate contexts ``c_0 .. c_K`` (the
true context first, then ``K`` negative samples), the model returns the
logits

    s_j = W[w] . C[c_j],    j = 0 .. K

with the word table ``W`` (n_words, dim) and the context table ``C``
(n_words, dim), trained with the binary cross-entropy of
``sigmoid(s_j)`` against the labels ``(1, 0, ..., 0)``: the objective of
Mikolov et al. (2013), "Distributed representations of words and phrases
and their compositionality", NeurIPS, averaged over the ``1 + K`` terms.

``W`` starts from the study's initializer (Keras's default uniform, as for
the recommender) and ``C`` from zeros, as in word2vec. The word table is the
embedding the report analyses. The model is a plain functional model of two
``Embedding`` layers and one scoring layer: nothing in it depends on how it
is trained, so it can be fitted run by run or stacked into replicas.
"""

from __future__ import annotations

import keras
from keras import ops

from embvar.config import ModelSpec
from embvar.models.factorization import make_initializer

__all__ = ["SkipgramScore", "build_skipgram", "SKIPGRAM_TABLES", "skipgram_loss"]

#: The tables a skip-gram snapshot records: the word table first.
SKIPGRAM_TABLES = ("word_embedding", "context_embedding")


@keras.saving.register_keras_serializable(package="embvar")
class SkipgramScore(keras.layers.Layer):
    """Dot product of each centre word with each of its candidate contexts."""

    def call(self, word, contexts):
        # word: (batch, dim); contexts: (batch, 1 + K, dim) -> (batch, 1 + K)
        return ops.einsum("bd,bkd->bk", word, contexts)


def build_skipgram(n_words: int, spec: ModelSpec) -> keras.Model:
    """Return an uncompiled skip-gram model ``[targets, contexts] -> logits``.

    Parameters
    ----------
    n_words : int
        Rows of the word and context tables.
    spec : ModelSpec
        ``dim`` and ``initializer`` (of the word table).

    Returns
    -------
    keras.Model
        Inputs ``targets`` of shape (batch,) and ``contexts`` of shape
        (batch, 1 + negatives), int32; output the logits, (batch, 1 +
        negatives).
    """
    targets = keras.Input(shape=(), dtype="int32", name="targets")
    contexts = keras.Input(shape=(None,), dtype="int32", name="contexts")
    word = keras.layers.Embedding(
        n_words,
        spec.dim,
        embeddings_initializer=make_initializer(spec),
        name="word_embedding",
    )(targets)
    context = keras.layers.Embedding(
        n_words, spec.dim, embeddings_initializer="zeros", name="context_embedding"
    )(contexts)
    logits = SkipgramScore(name="score")(word, context)
    return keras.Model([targets, contexts], logits, name="skipgram")


def skipgram_loss() -> keras.losses.Loss:
    """The loss the runner compiles a skip-gram model with."""
    return keras.losses.BinaryCrossentropy(from_logits=True)
