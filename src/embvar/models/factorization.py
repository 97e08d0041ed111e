"""The built-in matrix-factorization model, in Keras 3.

A rating is predicted as

    r_hat(u, i) = U[u] . V[i] + b_u[u] + b_i[i] + mu

with user table ``U`` (n_users, dim), item table ``V`` (n_items, dim),
optional biases and the training mean ``mu`` (a constant). The loss is the
mean squared error plus an optional L2 penalty on the rows of the batch,
``l2 * mean(|U[u]|^2 + |V[i]|^2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from embvar.config import ModelSpec, TrainingSpec
from embvar.errors import ConfigError

__all__ = [
    "FactorizationScore",
    "build_factorization",
    "make_initializer",
    "draw_table",
    "make_optimizer",
    "EMBEDDING_LAYERS",
    "TABLES",
    "Pretrained",
]

# The layers whose weights are the embeddings of a factorization model.
EMBEDDING_LAYERS = ("user_embedding", "item_embedding")
# Every table a snapshot records (embeddings, then biases when present).
TABLES = ("user_embedding", "item_embedding", "user_bias", "item_bias")


@dataclass(frozen=True, eq=False)
class Pretrained:
    """Initial tables for some rows, from a file or another study's run.

    ``user`` / ``item`` hold one row per entity of *this* study (rows that
    the source does not cover are NaN and get the fallback initializer).
    """

    user: np.ndarray | None
    item: np.ndarray | None


@keras.saving.register_keras_serializable(package="embvar")
class FactorizationScore(keras.layers.Layer):
    """Dot product plus biases plus a constant mean; adds the L2 penalty."""

    def __init__(self, mu: float = 0.0, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mu = float(mu)
        self.l2 = float(l2)

    def call(self, u, v, bu=None, bi=None):
        score = ops.sum(u * v, axis=-1) + self.mu
        if bu is not None:
            score = score + ops.squeeze(bu, -1) + ops.squeeze(bi, -1)
        if self.l2 > 0:
            penalty = ops.mean(ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))
            self.add_loss(self.l2 * penalty)
        return score

    def get_config(self):
        return {**super().get_config(), "mu": self.mu, "l2": self.l2}


def draw_table(initializer: Any, shape: tuple[int, int]) -> np.ndarray:
    """Return an initializer's values for a table of ``shape``, float32.

    What a Keras ``Embedding`` draws when it is built with ``initializer``:
    the replica trainers draw their initial tables so, without a model.
    """
    values = keras.ops.convert_to_numpy(initializer(shape, dtype="float32"))
    return np.array(values, dtype=np.float32)


def make_initializer(spec: ModelSpec, table: np.ndarray | None = None):
    """Return the Keras initializer for an embedding table.

    The initializers are left unseeded on purpose: Keras 3 draws their seed
    from Python's ``random`` module, which the runner seeds with the run's
    ``init`` seed immediately before the build.
    """
    fallback = spec.initializer if spec.initializer != "pretrained" else "uniform"
    if fallback == "uniform":
        # Keras's own default for Embedding: RandomUniform(-0.05, 0.05).
        base = keras.initializers.RandomUniform(-0.05, 0.05)
    elif fallback == "glorot_uniform":
        base = keras.initializers.GlorotUniform()
    else:
        base = keras.initializers.RandomNormal(stddev=spec.init_stddev)
    if table is None:
        return base

    def pretrained(shape, dtype=None):
        drawn = keras.ops.convert_to_numpy(base(shape, dtype="float32"))
        known = ~np.isnan(table).any(axis=1)
        drawn[known] = table[known]
        return keras.ops.convert_to_tensor(drawn, dtype=dtype or "float32")

    return pretrained


def build_factorization(
    n_users: int,
    n_items: int,
    spec: ModelSpec,
    *,
    mu: float = 0.0,
    pretrained: Pretrained | None = None,
) -> keras.Model:
    """Return an uncompiled Keras model ``[user_rows, item_rows] -> rating``.

    Parameters
    ----------
    n_users, n_items : int
        Rows of the user and item tables.
    spec : ModelSpec
        Dimension, initializer, biases, L2 penalty.
    mu : float
        The training mean, added as a constant.
    pretrained : Pretrained, optional
        Initial values for rows a pretrained source covers.
    """
    if spec.initializer == "pretrained" and pretrained is None:
        raise ConfigError(
            "model.initializer = 'pretrained' needs the pretrained tables; "
            "got none (set model.pretrained)."
        )
    pre_u = pretrained.user if pretrained is not None else None
    pre_i = pretrained.item if pretrained is not None else None
    user_in = keras.Input(shape=(), dtype="int32", name="user")
    item_in = keras.Input(shape=(), dtype="int32", name="item")
    u = keras.layers.Embedding(
        n_users,
        spec.dim,
        embeddings_initializer=make_initializer(spec, pre_u),
        name="user_embedding",
    )(user_in)
    v = keras.layers.Embedding(
        n_items,
        spec.dim,
        embeddings_initializer=make_initializer(spec, pre_i),
        name="item_embedding",
    )(item_in)
    bu = bi = None
    if spec.use_bias:
        bu = keras.layers.Embedding(
            n_users, 1, embeddings_initializer="zeros", name="user_bias"
        )(user_in)
        bi = keras.layers.Embedding(
            n_items, 1, embeddings_initializer="zeros", name="item_bias"
        )(item_in)
    out = FactorizationScore(mu=mu, l2=spec.l2, name="score")(u, v, bu, bi)
    return keras.Model([user_in, item_in], out, name="factorization")


def make_optimizer(spec: TrainingSpec) -> keras.optimizers.Optimizer:
    """Return a fresh Keras optimizer for ``spec``."""
    kwargs = {"learning_rate": spec.learning_rate}
    if spec.weight_decay > 0:
        kwargs["weight_decay"] = spec.weight_decay
    if spec.optimizer == "sgd":
        return keras.optimizers.SGD(**kwargs)
    if spec.optimizer == "adam":
        return keras.optimizers.Adam(**kwargs)
    if spec.optimizer == "adamw":
        kwargs.setdefault("weight_decay", 0.004)
        return keras.optimizers.AdamW(**kwargs)
    if spec.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(**kwargs)
    return keras.optimizers.Adagrad(**kwargs)
