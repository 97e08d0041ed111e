"""Agreement of two runs on the similarity of pairs of entities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr

from embvar.checks import check_int
from embvar.errors import ShapeMismatchError
from embvar.metrics._inputs import check_pair, check_table, parallel_map

__all__ = [
    "spearman_pairwise_similarity",
    "spearman_similarity_matrix",
    "sample_pairs",
]


def spearman_pairwise_similarity(
    X: Any, Y: Any, *, n_pairs: int = 100_000, seed: int = 0
) -> float:
    """Return the rank correlation of two runs' pairwise cosine similarities.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs; dimensions may differ.
    n_pairs : int, default=100000
        Number of distinct-entity pairs, drawn uniformly with replacement.
    seed : int, default=0
        Seed of the sample of pairs; the same seed gives the same pairs.

    Returns
    -------
    rho : float
        Spearman correlation in [-1, 1]; 1 when both runs order the sampled
        pairs' similarities the same way. NaN if a run gives every sampled
        pair the same similarity.

    Notes
    -----
    ``rho = spearman({cos(x_i, x_j)}, {cos(y_i, y_j)})`` over the sampled
    pairs ``i != j``. Zero rows have cosine 0 to every row. Symmetric;
    invariant to rotation and any rescaling of rows of either table, and
    to any monotone change of the similarities; not to translation.

    References
    ----------
    Antoniak & Mimno (2018), "Evaluating the stability of embedding-based
    word similarities", TACL 6.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(40, 5))
    >>> spearman_pairwise_similarity(X, 2 * X, n_pairs=200)
    1.0
    """
    X, Y = check_pair(X, Y, same_dim=False, min_rows=2)
    n_pairs = check_int("n_pairs", n_pairs, 1)
    i, j = sample_pairs(X.shape[0], n_pairs, seed)
    rho = spearmanr(_cosines(X, i, j), _cosines(Y, i, j)).statistic
    return float(rho)


def spearman_similarity_matrix(
    tables: Sequence[Any],
    *,
    n_pairs: int = 100_000,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Return :func:`spearman_pairwise_similarity` for every pair of K runs.

    Parameters
    ----------
    tables : sequence of array-like of shape (n_entities, dim)
        The same entities, row for row, in K runs.
    n_pairs, seed
        As in :func:`spearman_pairwise_similarity`; every run is scored on
        the same sampled pairs.
    names : sequence of str, optional
        Run names for error messages.

    Returns
    -------
    rho : ndarray of shape (K, K)
        Symmetric, 1 on the diagonal.

    Notes
    -----
    The similarities of each run are ranked once; the Spearman correlation
    of two runs is the Pearson correlation of their ranks, so K runs cost K
    rankings rather than K(K-1)/2.
    """
    if names is None:
        names = [f"tables[{i}]" for i in range(len(tables))]
    checked = [
        check_table(str(name), T, min_rows=2)
        for name, T in zip(names, tables, strict=True)
    ]
    if not checked or any(T.shape[0] != checked[0].shape[0] for T in checked):
        raise ShapeMismatchError(
            "tables must be one or more tables with one row per entity, in the "
            f"same order; got row counts {[T.shape[0] for T in checked]}."
        )
    n_pairs = check_int("n_pairs", n_pairs, 1)
    i, j = sample_pairs(checked[0].shape[0], n_pairs, seed)
    ranks = np.stack(parallel_map(lambda T: rankdata(_cosines(T, i, j)), checked))
    rho = np.atleast_2d(np.corrcoef(ranks))
    np.fill_diagonal(rho, 1.0)
    return rho


def sample_pairs(n: int, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n_pairs`` seeded pairs ``(i, j)`` of distinct rows of ``n``."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, n_pairs)
    # Shift j by 1..n-1 so that it never equals i, uniformly over the others.
    j = (i + rng.integers(1, n, n_pairs)) % n
    return i, j


def _cosines(X: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """``cos(x_i, x_j)`` for each sampled pair; 0 where a row is zero."""
    A = np.asarray(X[i], np.float64)
    B = np.asarray(X[j], np.float64)
    dots = np.einsum("ij,ij->i", A, B)
    scale = np.sqrt(np.einsum("ij,ij->i", A, A) * np.einsum("ij,ij->i", B, B))
    return np.divide(dots, scale, out=np.zeros_like(dots), where=scale > 0)
