"""Centred kernel alignment between two runs' tables."""

from __future__ import annotations

from typing import Any

import numpy as np

from embvar.metrics._inputs import centered, check_pair, one_blas_thread

__all__ = ["linear_cka"]


@one_blas_thread
def linear_cka(X: Any, Y: Any) -> float:
    """Return the linear centred kernel alignment of two runs.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs; the dimensions may
        differ.

    Returns
    -------
    cka : float
        In [0, 1]; 1 when one table is a rotated, translated and scaled
        copy of the other. A table whose columns are all constant has no
        variance to align; its CKA is defined as 0.

    Notes
    -----
    With ``X`` and ``Y`` column-centred,

    ``CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)``,

    which equals HSIC of the linear Gram matrices ``X X^T`` and ``Y Y^T``
    normalised, but costs ``O(n dim^2)`` time and ``O(dim^2)`` memory
    instead of ``O(n^2)``. Symmetric; invariant to orthogonal transforms,
    isotropic scaling and translation of either table; not to a general
    invertible linear map.

    References
    ----------
    Kornblith, Norouzi, Lee & Hinton (2019), "Similarity of neural network
    representations revisited", ICML, eq. (5).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 4))
    >>> round(linear_cka(X, -3.0 * X + 1.0), 6)
    1.0
    """
    X, Y = check_pair(X, Y, same_dim=False)
    X, Y = centered(X), centered(Y)
    return cka_from_products(X.T @ X, Y.T @ Y, X.T @ Y)


def cka_from_products(XtX: np.ndarray, YtY: np.ndarray, XtY: np.ndarray) -> float:
    """Return linear CKA from the centred ``dim x dim`` products."""
    denominator = float(np.linalg.norm(XtX) * np.linalg.norm(YtY))
    if denominator == 0.0:
        return 0.0
    value = float(np.linalg.norm(XtY) ** 2) / denominator
    return float(min(max(value, 0.0), 1.0))
