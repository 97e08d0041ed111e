"""Small training functions for the determinism audit's tests: one clean, one
per planted pitfall, one with a data order that changes at a known step.

Each is ``train(recorder, seed)``: a dot-product model of two embedding
tables (30 users, 40 items, dimension 4) on 256 fixed synthetic ratings,
3 epochs of 8 batches of 32, ``fit(shuffle=False)`` on an order drawn per
epoch from ``default_rng(seed)``. The workers import this module by name
(its folder is on ``sys.path`` under pytest, and the audit passes that on).
"""

from __future__ import annotations

import os

import keras
import numpy as np

N_USERS, N_ITEMS, DIM = 30, 40, 4
ROWS, BATCH, EPOCHS = 256, 32, 3
# The planted order change: epoch 2 (1-based), batch 3 (0-based).
PLANTED_EPOCH, PLANTED_STEP = 2, 3

_fixed = np.random.default_rng(np.random.SeedSequence(2024))
USERS = _fixed.integers(0, N_USERS, ROWS).astype("int32")
ITEMS = _fixed.integers(0, N_ITEMS, ROWS).astype("int32")
RATINGS = _fixed.normal(3.5, 1.0, ROWS).astype("float32")
WORDS = [f"item-{i:02d}" for i in range(N_ITEMS)]

_CACHE: dict[str, keras.Model] = {}


def build(user_init="uniform", item_init="uniform") -> keras.Model:
    """Return a compiled dot-product model."""
    user = keras.Input(shape=(), dtype="int32", name="user")
    item = keras.Input(shape=(), dtype="int32", name="item")
    u = keras.layers.Embedding(
        N_USERS, DIM, embeddings_initializer=user_init, name="user_embedding"
    )(user)
    v = keras.layers.Embedding(
        N_ITEMS, DIM, embeddings_initializer=item_init, name="item_embedding"
    )(item)
    score = keras.layers.Dot(axes=1)([u, v])
    model = keras.Model([user, item], score)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def fit(model, recorder, seed, *, order=None, users=USERS, items=ITEMS) -> None:
    """Train EPOCHS epochs, one fit() per epoch on a seeded order."""
    order = order or np.random.default_rng(seed)
    callbacks = [recorder.callback()]
    for _ in range(EPOCHS):
        perm = order.permutation(ROWS)
        model.fit(
            [users[perm], items[perm]],
            RATINGS[perm],
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )


def train_clean(recorder, seed):
    """Every source seeded, a fresh model: reproducible."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build()
    recorder.entity_ids("item_embedding", WORDS)
    fit(model, recorder, seed)


def train_planted_order(recorder, seed):
    """Clean, except that epoch 2's batch 3 is replaced by rows that an
    unseeded generator picks, so each process trains on other rows there."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build()
    order = np.random.default_rng(seed)
    callbacks = [recorder.callback()]
    entropy = np.random.default_rng()  # the planted non-determinism
    for epoch in range(1, EPOCHS + 1):
        perm = order.permutation(ROWS)
        if epoch == PLANTED_EPOCH:
            lo = PLANTED_STEP * BATCH
            perm[lo : lo + BATCH] = entropy.choice(ROWS, size=BATCH)
        model.fit(
            [USERS[perm], ITEMS[perm]],
            RATINGS[perm],
            batch_size=BATCH,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )


def train_reused(recorder, seed):
    """Pitfall: one model object, built once, trained again by every run."""
    keras.utils.set_random_seed(seed)
    if "model" not in _CACHE:
        _CACHE["model"] = build()
    fit(_CACHE["model"], recorder, seed)


def train_seed_after_build(recorder, seed):
    """Pitfall: the model is built first, the seed set afterwards."""
    keras.backend.clear_session()
    model = build()
    keras.utils.set_random_seed(seed)
    fit(model, recorder, seed)


def train_unseeded(recorder, seed):
    """Pitfall: nothing seeds Python's random, so Keras's initializer seeds
    come from fresh entropy; the data order alone is seeded."""
    keras.backend.clear_session()
    model = build()
    fit(model, recorder, seed)


def train_vocab_from_set(recorder, seed):
    """Pitfall: item rows follow the iteration order of a set of strings."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    vocabulary = list(set(WORDS))
    row = {word: r for r, word in enumerate(vocabulary)}
    items = np.array([row[WORDS[i]] for i in ITEMS], dtype="int32")
    recorder.entity_ids("item_embedding", vocabulary)
    model = build()
    fit(model, recorder, seed, items=items)


def train_shared_initializer(recorder, seed):
    """Pitfall: one initializer instance for both tables."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomUniform(-0.05, 0.05)
    model = build(user_init=init, item_init=init)
    fit(model, recorder, seed)


def train_unseeded_shuffle(recorder, seed):
    """Pitfall: seeded model, but the epochs' order comes from an unseeded
    generator."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = build()
    fit(model, recorder, seed, order=np.random.default_rng())


def hash_seed() -> str | None:
    """This process's PYTHONHASHSEED, for the tests' own checks."""
    return os.environ.get("PYTHONHASHSEED")


def build_custom(params):
    """A study builder (``model.kind = "audit_plants:build_custom"``)."""
    user = keras.Input(shape=(), dtype="int32", name="user")
    item = keras.Input(shape=(), dtype="int32", name="item")
    u = keras.layers.Embedding(params["n_users"], params["dim"], name="user_embedding")
    v = keras.layers.Embedding(params["n_items"], params["dim"], name="item_embedding")
    score = keras.layers.Dot(axes=1)([u(user), v(item)])
    return keras.Model([user, item], score), ["user_embedding", "item_embedding"]
