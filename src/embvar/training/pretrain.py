"""Pre-train item embeddings on users a study leaves out of its own data.

The reference article claims that initializing from embeddings pre-trained
on a related, larger data set makes runs more alike. To test that inside
one study without an outside file, a study sets ``data.holdout_users`` (a
share of users removed from its training and test data) and
``model.pretrained = "holdout"``: before a run is built, a factorization
model is trained on every rating of the held-out users, and its item table
initializes the run's item table. The two parts share no user and no
rating; they share the catalogue of items.

The pre-training is a fixed artifact of the study, not of the run: its
recipe (:data:`PRETRAIN_RECIPE`) and its seeds (every source takes the
study's ``split`` seed) do not depend on the run's own settings or seeds,
so every run of a study starts from the same pre-trained item rows. Items
no held-out user rated keep the run's fallback (uniform) initial values,
and the user table is always drawn from the run's ``init`` seed.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from embvar.config import DataSpec, ModelSpec, RunSpec, TrainingSpec
from embvar.data.prepared import PreparedData
from embvar.data.split import Split
from embvar.errors import ConfigError
from embvar.models.factorization import Pretrained

__all__ = ["HOLDOUT", "PRETRAIN_RECIPE", "pretrain_holdout"]

logger = logging.getLogger(__name__)

#: The ``model.pretrained`` value that asks for pre-training on held-out users.
HOLDOUT = "holdout"

#: How the held-out users' model is trained: Adam at the learning rate that
#: gave the lowest test RMSE after 10 epochs on MovieLens (README, "Claims").
PRETRAIN_RECIPE: dict[str, Any] = {
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 1024,
    "epochs": 10,
}

# One pre-trained table per (data, model shape, seed) in this process.
_CACHE: dict[tuple[str, str, int], Pretrained] = {}


def pretrain_holdout(data: PreparedData, model: ModelSpec, seed: int) -> Pretrained:
    """Return item rows pre-trained on the users ``data`` held out.

    Parameters
    ----------
    data : PreparedData
        A run's data, prepared with ``holdout_users > 0``.
    model : ModelSpec
        The run's model: the pre-trained model has its dimension, biases
        and L2 penalty, with uniform initial values.
    seed : int
        Seed of every source of the pre-training (the study's split seed).

    Returns
    -------
    Pretrained
        ``item`` of shape (n_items, dim), NaN for items no held-out user
        rated; ``user`` None (the held-out users are not the study's).

    Raises
    ------
    ConfigError
        If ``data`` holds no held-out users.
    """
    if data.holdout is None or len(data.holdout) == 0:
        raise ConfigError(
            "model.pretrained = 'holdout' needs held-out users; set "
            "data.holdout_users to a share in (0, 0.9]; got none held out."
        )
    shape = ModelSpec(dim=model.dim, use_bias=model.use_bias, l2=model.l2)
    key = (data.key, shape.model_dump_json(), int(seed))
    if key not in _CACHE:
        _CACHE[key] = _train(data, shape, int(seed))
    return _CACHE[key]


def _train(data: PreparedData, model: ModelSpec, seed: int) -> Pretrained:
    from embvar.training.fit import train_run

    held = np.asarray(data.holdout, dtype=np.int64)
    source = PreparedData(
        data.interactions, Split(train=held, test=held), data.key + "-holdout"
    )
    epochs = PRETRAIN_RECIPE["epochs"]
    spec = RunSpec(
        study="pretrain",
        designs=("pretrain",),
        data=DataSpec(),
        model=model,
        training=TrainingSpec(**PRETRAIN_RECIPE),
        levels={"init": 0, "order": 0, "noise": 0, "split": 0},
        seeds={"init": seed, "order": seed, "noise": seed, "split": seed},
        factors={},
    )
    result = train_run(spec, source, snapshot_epochs={epochs})
    last = max(result.snapshots)
    item = result.snapshots[last]["item_embedding"].astype(np.float32).copy()
    rated = np.zeros(data.interactions.n_items, dtype=bool)
    rated[data.interactions.items[held]] = True
    item[~rated] = np.nan
    logger.info(
        "pre-trained %d item rows on %d ratings of held-out users (RMSE %.4f)",
        int(rated.sum()),
        len(held),
        result.history[-1]["train_rmse"],
    )
    return Pretrained(user=None, item=item)
