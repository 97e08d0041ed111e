"""Seeded train/test splits, identical for every run of a study."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embvar.checks import check_float
from embvar.data.interactions import Interactions

__all__ = ["Split", "split_interactions", "subsample_train"]


@dataclass(frozen=True, eq=False)
class Split:
    """Row indices of the training and test interactions, both sorted."""

    train: np.ndarray
    test: np.ndarray


def split_interactions(
    data: Interactions, test_fraction: float, seed: int
) -> Split:
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
