"""Builders and a training hook the custom-model tests name in study files.

Importable as ``embvar_test_builders`` because pytest puts this folder on
``sys.path``.
"""

from __future__ import annotations

import keras

CALLS: list[dict] = []


def build_recommender(params):
    """Factorization with dropout on the user vector: a user's own model."""
    CALLS.append(dict(params))
    users = keras.Input((), dtype="int32")
    items = keras.Input((), dtype="int32")
    u = keras.layers.Embedding(params["n_users"], params["dim"], name="users")(users)
    v = keras.layers.Embedding(params["n_items"], params["dim"], name="items")(items)
    u = keras.layers.Dropout(params["dropout"])(u)
    score = keras.layers.Dot(axes=1)([u, v])
    out = keras.layers.Lambda(lambda s: s[:, 0] + params["mu"], name="plus_mu")(score)
    return keras.Model([users, items], out), ["items", "users"]


def fit_counting(model, epoch):
    """A training hook: the runner's rows, one pass, counted."""
    CALLS.append({"hook_epoch": epoch.epoch, "rows": len(epoch.targets)})
    history = model.fit(
        epoch.inputs,
        epoch.targets,
        batch_size=epoch.batch_size,
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    return history.history["loss"][-1]


def build_wrong(params):
    return "not a model"


def build_unnamed_table(params):
    model, _ = build_recommender(params)
    return model, ["nope"]
