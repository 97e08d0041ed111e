"""Pre-training item rows on held-out users, inside one study."""

import numpy as np
import pytest

from embvar.config import DataSpec, ModelSpec, parse_study, plan_runs
from embvar.data.interactions import Interactions
from embvar.data.prepared import PreparedData
from embvar.data.split import hold_out_users, split_interactions
from embvar.errors import ConfigError
from embvar.training.pretrain import pretrain_holdout


def _prepared(share=0.5):
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 25
    users = np.repeat(np.arange(n_users), 8).astype(np.int32)
    items = rng.integers(0, n_items - 3, users.size).astype(np.int32)  # 3 never rated
    data = Interactions(
        users=users,
        items=items,
        ratings=rng.integers(1, 6, users.size).astype(np.float32),
        timestamps=None,
        user_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
    )
    split = split_interactions(data, 0.2, seed=2)
    holdout = None
    if share:
        split, holdout = hold_out_users(data, split, share, seed=2)
    return PreparedData(data, split, f"test-{share}", holdout)


def test_pretrain_holdout_rows_rated_by_held_out_users_only():
    data = _prepared()
    pre = pretrain_holdout(data, ModelSpec(dim=4), seed=3)
    rated = np.zeros(25, bool)
    rated[data.interactions.items[data.holdout]] = True
    assert pre.user is None and pre.item.shape == (25, 4)
    assert np.isfinite(pre.item[rated]).all() and np.isnan(pre.item[~rated]).all()


def test_pretrain_holdout_same_seed_same_table():
    data = _prepared()
    a = pretrain_holdout(data, ModelSpec(dim=4), seed=3)
    b = pretrain_holdout(data, ModelSpec(dim=4, initializer="glorot_uniform"), seed=3)
    # The run's own initializer does not change the pre-trained artifact.
    assert a is b


def test_pretrain_holdout_without_held_out_users_rejected():
    with pytest.raises(
        ConfigError, match="model.pretrained = 'holdout' needs held-out"
    ):
        pretrain_holdout(_prepared(share=0), ModelSpec(dim=4), seed=3)


def test_study_holdout_without_share_rejected():
    raw = {"name": "x", "model": {"initializer": "pretrained", "pretrained": "holdout"}}
    with pytest.raises(ConfigError, match="model.pretrained = 'holdout' pre-trains"):
        parse_study(raw)


def test_study_holdout_plans():
    raw = {
        "name": "x",
        "data": {"holdout_users": 0.6},
        "model": {"initializer": "pretrained", "pretrained": "holdout"},
    }
    (spec,) = plan_runs(parse_study(raw))
    assert spec.data == DataSpec(holdout_users=0.6)
