"""Function-level differences of two runs of a factorization recommender.

A dot-product model predicts ``r(u, i) = mu + b_u + b_i + U_u . V_i``. Two
runs whose factors differ by any invertible map (``U -> U A``,
``V -> V A^-T``) predict exactly the same, so these metrics compare what
the model does: its predicted ratings and the items it would recommend.

Seen items are passed as ``exclude``: either a SciPy sparse matrix of shape
(n_users, n_items) whose non-zero entries mark each user's training items,
or a pair ``(users, items)`` of equal-length integer arrays.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from embvar.checks import check_choice, check_int
from embvar.errors import DataError, ShapeMismatchError
from embvar.metrics._inputs import check_pair, check_table
from embvar.metrics.neighbors import KINDS, neighbor_overlap

__all__ = [
    "topk_items",
    "topk_overlap",
    "churn_top1",
    "prediction_disagreement",
]

# Scores held at once (users x items, float64): 128 MB.
_BLOCK_SCORES = 2**24


def topk_items(
    U: Any,
    V: Any,
    k: int = 10,
    *,
    item_bias: Any = None,
    exclude: Any = None,
) -> np.ndarray:
    """Return each user's k highest-scoring items.

    Parameters
    ----------
    U : array-like of shape (n_users, dim)
        User factors.
    V : array-like of shape (n_items, dim)
        Item factors.
    k : int, default=10
        Items per user, at most the number of items a user has not seen.
    item_bias : array-like of shape (n_items,), optional
        Added to every user's scores. User and global biases do not change
        a user's ranking and are not needed.
    exclude : sparse matrix of shape (n_users, n_items) or (users, items)
        Items never to recommend to a user (their training items).

    Returns
    -------
    items : ndarray of shape (n_users, k), dtype int64
        Best item first. Ties are broken arbitrarily.

    Raises
    ------
    ConfigError
        If ``k`` is out of range.
    DataError
        If a user has fewer than ``k`` items left after ``exclude``.
    """
    U = check_table("U", U)
    V = check_table("V", V, min_rows=1)
    if U.shape[1] != V.shape[1]:
        raise ShapeMismatchError(
            f"U and V must have the same dimension; got {U.shape[1]} and "
            f"{V.shape[1]} columns."
        )
    n_users, n_items = U.shape[0], V.shape[0]
    k = check_int("k", k, 1, n_items, context=f" (there are {n_items} items)")
    bias = _check_vector("item_bias", item_bias, n_items)
    seen = exclude_matrix(exclude, n_users, n_items)
    _check_enough_items(seen, n_items, k)

    out = np.empty((n_users, k), dtype=np.int64)
    Vt = np.asarray(V, np.float64).T
    block_users = max(1, _BLOCK_SCORES // n_items)
    for start in range(0, n_users, block_users):
        stop = min(start + block_users, n_users)

        # Scores of the block, with seen items pushed below every other.
        scores = np.asarray(U[start:stop], np.float64) @ Vt
        if bias is not None:
            scores += bias
        if seen is not None:
            block = seen[start:stop]
            rows = np.repeat(np.arange(stop - start), np.diff(block.indptr))
            scores[rows, block.indices] = -np.inf

        # The k best, sorted best first.
        best = np.argpartition(scores, n_items - k, axis=1)[:, n_items - k :]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
        out[start:stop] = np.take_along_axis(best, order, axis=1)
    return out


def topk_overlap(
    U1: Any,
    V1: Any,
    U2: Any,
    V2: Any,
    k: int = 10,
    *,
    exclude: Any = None,
    item_bias1: Any = None,
    item_bias2: Any = None,
    kind: Literal["overlap", "jaccard"] = "overlap",
) -> np.ndarray:
    """Return each user's overlap of top-k recommendations between two runs.

    Parameters
    ----------
    U1, V1 : array-like of shape (n_users, dim1) and (n_items, dim1)
        User and item factors of the first run.
    U2, V2 : array-like of shape (n_users, dim2) and (n_items, dim2)
        The same users and items, row for row, in the second run.
    k : int, default=10
        Recommendations per user.
    exclude : sparse matrix of shape (n_users, n_items) or (users, items)
        Training items, removed from both runs' recommendations.
    item_bias1, item_bias2 : array-like of shape (n_items,), optional
        Item biases of each run, added to the scores.
    kind : {"overlap", "jaccard"}, default="overlap"
        ``|A ∩ B| / k`` or ``|A ∩ B| / |A ∪ B|``.

    Returns
    -------
    overlap : ndarray of shape (n_users,)
        Values in [0, 1]; 1 for a user who gets the same k items from both
        runs (in any order).

    Notes
    -----
    ``overlap_u = |T_k^1(u) ∩ T_k^2(u)| / k`` where ``T_k(u)`` is the set
    of the k unseen items of largest ``U_u . V_i + b_i``. Symmetric;
    invariant to any transform of the factors that keeps the scores
    (``U -> U A``, ``V -> V A^-T``) and to user and global biases.

    References
    ----------
    Cormier, Milani Fard, Canini & Gupta (2016), "Launch and iterate:
    reducing prediction churn", NeurIPS (prediction churn between two
    models).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> U, V = rng.normal(size=(20, 4)), rng.normal(size=(30, 4))
    >>> A = rng.normal(size=(4, 4)) + 4 * np.eye(4)
    >>> float(topk_overlap(U, V, U @ A, V @ np.linalg.inv(A).T, k=5).mean())
    1.0
    """
    check_choice("kind", kind, KINDS)
    top1, top2 = _both_top_k(U1, V1, U2, V2, k, exclude, item_bias1, item_bias2)
    return neighbor_overlap(top1, top2, kind=kind)


def churn_top1(
    U1: Any,
    V1: Any,
    U2: Any,
    V2: Any,
    *,
    exclude: Any = None,
    item_bias1: Any = None,
    item_bias2: Any = None,
) -> float:
    """Return the share of users whose top recommendation changes.

    Parameters
    ----------
    U1, V1, U2, V2, exclude, item_bias1, item_bias2
        As in :func:`topk_overlap`.

    Returns
    -------
    churn : float
        In [0, 1]; 0 when every user's best unseen item is the same in both
        runs.

    Notes
    -----
    ``churn = mean_u [argmax_i s^1(u, i) != argmax_i s^2(u, i)]``.
    Symmetric; invariant like :func:`topk_overlap`.

    References
    ----------
    Cormier, Milani Fard, Canini & Gupta (2016), "Launch and iterate:
    reducing prediction churn", NeurIPS.
    """
    top1, top2 = _both_top_k(U1, V1, U2, V2, 1, exclude, item_bias1, item_bias2)
    return float(np.mean(top1[:, 0] != top2[:, 0]))


def prediction_disagreement(
    U1: Any,
    V1: Any,
    U2: Any,
    V2: Any,
    pairs: tuple[Any, Any] | None = None,
    *,
    user_bias1: Any = None,
    item_bias1: Any = None,
    global_bias1: float = 0.0,
    user_bias2: Any = None,
    item_bias2: Any = None,
    global_bias2: float = 0.0,
    n_pairs: int = 100_000,
    seed: int = 0,
) -> float:
    """Return the mean absolute difference of two runs' predicted scores.

    Parameters
    ----------
    U1, V1 : array-like of shape (n_users, dim1) and (n_items, dim1)
        User and item factors of the first run.
    U2, V2 : array-like of shape (n_users, dim2) and (n_items, dim2)
        The same users and items in the second run.
    pairs : tuple (users, items) of int arrays, optional
        User-item pairs to predict, e.g. the test ratings. Default: a
        seeded uniform sample of ``n_pairs`` pairs from all users x items.
    user_bias1, item_bias1, global_bias1 : optional
        Biases of the first run, of shape (n_users,), (n_items,) and a
        scalar.
    user_bias2, item_bias2, global_bias2 : optional
        Biases of the second run.
    n_pairs : int, default=100000
        Size of the sample when ``pairs`` is None.
    seed : int, default=0
        Seed of the sample.

    Returns
    -------
    disagreement : float
        In [0, inf), in rating units.

    Notes
    -----
    ``d = mean_{(u,i)} |r^1(u, i) - r^2(u, i)|`` with
    ``r(u, i) = mu + b_u + b_i + U_u . V_i``. Symmetric; invariant to any
    transform that keeps the predictions (``U -> U A``, ``V -> V A^-T``).

    Examples
    --------
    >>> import numpy as np
    >>> U, V = np.eye(2), np.eye(2)
    >>> prediction_disagreement(U, V, U, V, global_bias2=0.5)
    0.5
    """
    U1, U2 = check_pair(U1, U2, names=("U1", "U2"), same_dim=False)
    V1, V2 = check_pair(V1, V2, names=("V1", "V2"), same_dim=False)
    _check_factors("U1", U1, "V1", V1)
    _check_factors("U2", U2, "V2", V2)
    n_users, n_items = U1.shape[0], V1.shape[0]
    users, items = _check_pairs(pairs, n_users, n_items, n_pairs, seed)

    def predict(U, V, user_bias, item_bias, global_bias, run):
        r = np.einsum(
            "ij,ij->i", np.asarray(U, np.float64)[users], np.asarray(V)[items]
        )
        r += float(global_bias)
        bu = _check_vector(f"user_bias{run}", user_bias, n_users)
        bi = _check_vector(f"item_bias{run}", item_bias, n_items)
        if bu is not None:
            r += bu[users]
        if bi is not None:
            r += bi[items]
        return r

    r1 = predict(U1, V1, user_bias1, item_bias1, global_bias1, 1)
    r2 = predict(U2, V2, user_bias2, item_bias2, global_bias2, 2)
    return float(np.mean(np.abs(r1 - r2)))


def exclude_matrix(exclude: Any, n_users: int, n_items: int) -> sp.csr_matrix | None:
    """Return ``exclude`` as a CSR matrix of shape (n_users, n_items)."""
    if exclude is None:
        return None
    if sp.issparse(exclude):
        seen = sp.csr_matrix(exclude)
    elif isinstance(exclude, tuple) and len(exclude) == 2:
        users, items = _check_index_arrays(exclude, n_users, n_items, "exclude")
        data = np.ones(len(users), dtype=np.int8)
        seen = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items))
    else:
        raise DataError(
            "exclude must be a SciPy sparse matrix of shape (n_users, n_items) "
            "or a tuple (users, items) of integer arrays; got "
            f"{type(exclude).__name__}."
        )
    if seen.shape != (n_users, n_items):
        raise ShapeMismatchError(
            f"exclude must have shape (n_users, n_items) = ({n_users}, "
            f"{n_items}); got {seen.shape}."
        )
    seen.sum_duplicates()
    seen.eliminate_zeros()
    return seen


def _both_top_k(U1, V1, U2, V2, k, exclude, item_bias1, item_bias2):
    U1, U2 = check_pair(U1, U2, names=("U1", "U2"), same_dim=False)
    V1, V2 = check_pair(V1, V2, names=("V1", "V2"), same_dim=False)
    seen = exclude_matrix(exclude, U1.shape[0], V1.shape[0])
    top1 = topk_items(U1, V1, k, item_bias=item_bias1, exclude=seen)
    top2 = topk_items(U2, V2, k, item_bias=item_bias2, exclude=seen)
    return top1, top2


def _check_factors(name_u: str, U: np.ndarray, name_v: str, V: np.ndarray) -> None:
    if U.shape[1] != V.shape[1]:
        raise ShapeMismatchError(
            f"{name_u} and {name_v} must have the same dimension; got "
            f"{U.shape[1]} and {V.shape[1]} columns."
        )


def _check_vector(name: str, value: Any, n: int) -> np.ndarray | None:
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64).reshape(-1)
    if value.shape != (n,):
        raise ShapeMismatchError(
            f"{name} must have one value per row ({n}); got shape {value.shape}."
        )
    check_table(name, value[:, None])
    return value


def _check_enough_items(seen: sp.csr_matrix | None, n_items: int, k: int) -> None:
    if seen is None:
        return
    counts = np.diff(seen.indptr)
    worst = int(np.argmax(counts)) if len(counts) else 0
    if len(counts) and n_items - counts[worst] < k:
        raise DataError(
            f"k must be at most the number of unseen items of every user; "
            f"user {worst} has {n_items - counts[worst]} of {n_items} items "
            f"left after exclude; got k={k}."
        )


def _check_index_arrays(
    pairs: Any, n_users: int, n_items: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    users, items = (np.asarray(a).reshape(-1) for a in pairs)
    if users.shape != items.shape:
        raise ShapeMismatchError(
            f"{name} must be (users, items) arrays of equal length; got "
            f"{users.shape[0]} users and {items.shape[0]} items."
        )
    for label, ids, n in (("users", users, n_users), ("items", items, n_items)):
        if not np.issubdtype(ids.dtype, np.integer):
            raise DataError(
                f"{name} {label} must be integer row indices; got dtype {ids.dtype}."
            )
        if ids.size and (ids.min() < 0 or ids.max() >= n):
            raise DataError(
                f"{name} {label} must be row indices in [0, {n - 1}]; got "
                f"values from {ids.min()} to {ids.max()}."
            )
    return users.astype(np.int64), items.astype(np.int64)


def _check_pairs(
    pairs: Any, n_users: int, n_items: int, n_pairs: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if pairs is not None:
        if not (isinstance(pairs, tuple) and len(pairs) == 2):
            raise DataError(
                "pairs must be a tuple (users, items) of integer arrays; got "
                f"{type(pairs).__name__}."
            )
        users, items = _check_index_arrays(pairs, n_users, n_items, "pairs")
        if users.size == 0:
            raise DataError("pairs must hold at least one (user, item) pair.")
        return users, items
    n_pairs = check_int("n_pairs", n_pairs, 1)
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_users, n_pairs), rng.integers(0, n_items, n_pairs)
