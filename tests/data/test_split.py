"""Held-out users: a disjoint part of the data, for pre-training."""

import numpy as np
import pytest

from embvar.config import DataSpec
from embvar.data.interactions import Interactions
from embvar.data.prepared import data_key
from embvar.data.split import hold_out_users, split_interactions
from embvar.errors import ConfigError


def _interactions(n_users=50, per_user=6, n_items=30, seed=0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user).astype(np.int32)
    items = rng.integers(0, n_items, users.size).astype(np.int32)
    return Interactions(
        users=users,
        items=items,
        ratings=np.ones(users.size, np.float32),
        timestamps=None,
        user_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
    )


def test_hold_out_users_disjoint_and_complete():
    data = _interactions()
    split = split_interactions(data, 0.2, seed=1)
    kept, held = hold_out_users(data, split, 0.6, seed=1)
    held_users = set(data.users[held].tolist())
    kept_users = set(data.users[kept.train].tolist()) | set(
        data.users[kept.test].tolist()
    )
    assert len(held_users) == 30 and not held_users & kept_users
    # Every interaction is either held out or still in the split.
    assert len(held) + len(kept.train) + len(kept.test) == len(data)


def test_hold_out_users_pure_function_of_seed():
    data = _interactions()
    split = split_interactions(data, 0.2, seed=1)
    a = hold_out_users(data, split, 0.5, seed=4)[1]
    b = hold_out_users(data, split, 0.5, seed=4)[1]
    c = hold_out_users(data, split, 0.5, seed=5)[1]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_hold_out_users_share_out_of_range_rejected():
    data = _interactions()
    split = split_interactions(data, 0.2, seed=1)
    with pytest.raises(ConfigError, match="data.holdout_users must be a finite number"):
        hold_out_users(data, split, 0.95, seed=1)


def test_holdout_default_leaves_data_key_unchanged():
    # Studies written before the option existed keep their data and run ids.
    assert "holdout_users" not in DataSpec().model_dump()
    assert data_key(DataSpec(), 1) != data_key(DataSpec(holdout_users=0.5), 1)
