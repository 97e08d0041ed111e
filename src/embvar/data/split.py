"""Seeded train/test splits, identical for every run of a study."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embvar.checks import check_float
from embvar.data.interactions import Interactions

__all__ = ["Split", "split_interactions", "subsample_train", "hold_out_users"]


@dataclass(frozen=True, eq=False)
class Split:
    """Row indices of the training and test interactions, both sorted."""

    train: np.ndarray
    test: np.ndarray


def split_interactions(data: Interactions, test_fraction: float, seed: int) -> Split:
    """Return a random split of the interactions, a pure function of ``seed``.

    Each interaction goes to the test set with probability close to
    ``test_fraction``: exactly ``round(test_fraction * n)`` rows, drawn
    without replacement from a ``numpy.random.Generator`` seeded with
    ``seed``.
    """
    check_float("test_fraction", test_fraction, 0.0, 0.9)
    n = len(data)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n_test = int(round(test_fraction * n))
    perm = rng.permutation(n)
    test = np.sort(perm[:n_test])
    train = np.sort(perm[n_test:])
    return Split(train=train.astype(np.int64), test=test.astype(np.int64))


def subsample_train(split: Split, fraction: float, seed: int) -> Split:
    """Return ``split`` with only a seeded ``fraction`` of its training rows.

    The test rows are unchanged, so accuracy stays comparable across data
    fractions.
    """
    check_float("data fraction", fraction, 0.0, 1.0, low_inclusive=False)
    if fraction == 1.0:
        return split
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    keep = int(round(fraction * len(split.train)))
    train = np.sort(rng.choice(split.train, size=keep, replace=False))
    return Split(train=train, test=split.test)


def hold_out_users(
    data: Interactions, split: Split, share: float, seed: int
) -> tuple[Split, np.ndarray]:
    """Remove a seeded share of users from ``split``; return it and their rows.

    Parameters
    ----------
    data : Interactions
        The interactions ``split`` indexes.
    split : Split
        The study's train/test split.
    share : float
        Share of users to hold out, in [0, 0.9]; ``round(share * n_users)``
        users are drawn without replacement.
    seed : int
        The split seed (the users are drawn from their own stream of it).

    Returns
    -------
    split : Split
        ``split`` without any interaction of a held-out user.
    held : ndarray of shape (n_held_interactions,), int64
        Sorted rows of every interaction (train or test) of the held-out
        users: a disjoint part of the data, e.g. for pre-training.
    """
    check_float("data.holdout_users", share, 0.0, 0.9)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    n_held = int(round(share * data.n_users))
    is_held = np.zeros(data.n_users, dtype=bool)
    is_held[rng.permutation(data.n_users)[:n_held]] = True
    row_held = is_held[data.users]
    kept = Split(
        train=split.train[~row_held[split.train]],
        test=split.test[~row_held[split.test]],
    )
    return kept, np.flatnonzero(row_held).astype(np.int64)
