"""Spectral comparisons of two runs: eigenspace overlap, PIP loss, instability.

These compare the column spaces (or Gram matrices) of two tables. All of
them are computed from ``dim x dim`` products, so they cost ``O(n dim^2)``
and never build an ``n x n`` matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embvar.checks import check_float
from embvar.errors import ShapeMismatchError
from embvar.metrics._inputs import (
    check_pair,
    check_table,
    one_blas_thread,
    single_threaded_blas,
)

__all__ = ["eigenspace_overlap", "pip_loss", "eigenspace_instability"]


@one_blas_thread
def eigenspace_overlap(X: Any, Y: Any) -> float:
    """Return the eigenspace overlap score of two runs.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs; dimensions may differ.

    Returns
    -------
    score : float
        In [0, 1]; 1 when the two tables span the same column space (for
        instance, ``Y = X A`` with ``A`` invertible).

    Notes
    -----
    With ``U`` and ``V`` orthonormal bases of the column spaces of ``X``
    and ``Y`` (left singular vectors of non-zero singular values),

    ``E(X, Y) = ||U^T V||_F^2 / max(rank X, rank Y)``.

    For tables of full column rank this is the score of May et al.
    Uncentred. Symmetric; invariant to any invertible linear map of either
    table's columns.

    References
    ----------
    May, Zhang, Dao & Ré (2019), "On the downstream performance of
    compressed word embeddings", NeurIPS, definition 1.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> A = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
    >>> round(eigenspace_overlap(X, X @ A), 6)
    1.0
    """
    X, Y = check_pair(X, Y, same_dim=False)
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    return overlap_from_products(X.T @ X, Y.T @ Y, X.T @ Y)


@one_blas_thread
def pip_loss(X: Any, Y: Any) -> float:
    """Return the pairwise inner product (PIP) loss between two runs.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs; dimensions may differ.

    Returns
    -------
    loss : float
        In [0, inf), in squared units of the coordinates; 0 when one table
        is a rotated copy of the other.

    Notes
    -----
    ``PIP(X, Y) = ||X X^T - Y Y^T||_F``, computed through

    ``||X X^T - Y Y^T||_F^2 = ||X^T X||_F^2 + ||Y^T Y||_F^2
    - 2 ||X^T Y||_F^2``,

    from ``dim x dim`` products. Uncentred. Symmetric; invariant to
    orthogonal transforms of either table, not to scaling or translation.
    The subtraction loses about half the digits when the loss is tiny
    compared with ``||X^T X||_F``.

    References
    ----------
    Yin & Shen (2018), "On the dimensionality of word embedding", NeurIPS.
    """
    X, Y = check_pair(X, Y, same_dim=False)
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    return pip_from_products(X.T @ X, Y.T @ Y, X.T @ Y)


def eigenspace_instability(
    X: Any,
    Y: Any,
    X_ref: Any,
    Y_ref: Any,
    *,
    alpha: float = 3.0,
) -> float:
    """Return the eigenspace instability measure of two runs.

    Parameters
    ----------
    X, Y : array-like of shape (n_entities, dim)
        The same entities, row for row, in two runs; dimensions may differ.
    X_ref, Y_ref : array-like of shape (n_entities, ref_dim)
        Reference embeddings of the same entities, usually trained at a
        higher dimension (``ref_dim >= dim``), that stand for the downstream
        task's view of the data, e.g. the two runs trained at the largest
        dimension of a sweep.
    alpha : float, default=3.0
        Exponent that weights the reference's directions by their singular
        values.

    Returns
    -------
    instability : float
        In [0, 1]; 0 when ``X`` and ``Y`` span the same column space.

    Notes
    -----
    With ``U`` and ``V`` orthonormal bases of the column spaces of ``X``
    and ``Y``, and ``Sigma = (E E^T)^alpha + (F F^T)^alpha`` for the
    references ``E`` and ``F``,

    ``EI(X, Y) = tr((U U^T - V V^T)^2 Sigma) / tr(Sigma)``

    ``= [tr(U U^T Sigma) + tr(V V^T Sigma) - 2 tr(V V^T U U^T Sigma)]
    / tr(Sigma)``.

    Each trace is a sum of squared ``dim x ref_dim`` products, so nothing of
    size ``n x n`` is formed. Symmetric in the runs; invariant to any
    invertible linear map of ``X`` or ``Y`` and to orthogonal maps of the
    references. The authors found ``alpha = 3`` to track downstream
    disagreement best.

    References
    ----------
    Leszczynski, May, Zhang, Wu, Aberger & Ré (2020), "Understanding the
    downstream instability of word embeddings", MLSys, definition 1.
    """
    X, Y = check_pair(X, Y, same_dim=False)
    X_ref, Y_ref = check_pair(X_ref, Y_ref, names=("X_ref", "Y_ref"), same_dim=False)
    if X_ref.shape[0] != X.shape[0]:
        raise ShapeMismatchError(
            "X_ref must have one row per entity of X; got "
            f"{X_ref.shape[0]} and {X.shape[0]} rows."
        )
    alpha = check_float("alpha", alpha, 0.0, low_inclusive=False)

    # Orthonormal bases of the runs, and the references' singular pairs.
    U = _basis(X)
    V = _basis(Y)
    traces = []
    for E in (X_ref, Y_ref):
        P, s, _ = np.linalg.svd(np.asarray(E, np.float64), full_matrices=False)
        weights = s**alpha
        UP = (U.T @ P) * weights
        VP = (V.T @ P) * weights
        UV = U.T @ V

        # tr(UU^T S), tr(VV^T S) and tr(VV^T UU^T S) for S = P diag(s^2a) P^T.
        traces.append(
            (
                float(np.sum(UP**2)),
                float(np.sum(VP**2)),
                float(np.sum((UV @ VP) * UP)),
                float(np.sum(weights**2)),
            )
        )
    uu, vv, uv, total = (sum(t[i] for t in traces) for i in range(4))
    if total == 0.0:
        return 0.0
    return float(np.clip((uu + vv - 2.0 * uv) / total, 0.0, 1.0))


def overlap_from_products(XtX: np.ndarray, YtY: np.ndarray, XtY: np.ndarray) -> float:
    """Eigenspace overlap score from the uncentred ``dim x dim`` products."""
    return overlap_from_bases(basis_coefficients(XtX), basis_coefficients(YtY), XtY)


def overlap_from_bases(Bx: np.ndarray, By: np.ndarray, XtY: np.ndarray) -> float:
    """Eigenspace overlap score from :func:`basis_coefficients` and ``X^T Y``."""
    rank = max(Bx.shape[1], By.shape[1])
    if rank == 0:
        return 0.0
    cross = Bx.T @ XtY @ By
    return float(np.clip(np.sum(cross**2) / rank, 0.0, 1.0))


def pip_from_products(XtX: np.ndarray, YtY: np.ndarray, XtY: np.ndarray) -> float:
    """PIP loss from the uncentred ``dim x dim`` products."""
    squared = np.sum(XtX**2) + np.sum(YtY**2) - 2.0 * np.sum(XtY**2)
    return float(np.sqrt(max(float(squared), 0.0)))


def basis_coefficients(XtX: np.ndarray) -> np.ndarray:
    """Return ``B`` with ``X B`` an orthonormal basis of X's column space.

    From ``X^T X = W diag(lambda) W^T``: ``B = W_r diag(lambda_r^-1/2)``
    over the eigenvalues above the rank tolerance of ``numpy.linalg``.
    """
    with single_threaded_blas():
        eigenvalues, W = np.linalg.eigh(XtX)
    largest = eigenvalues.max() if eigenvalues.size else 0.0
    keep = eigenvalues > largest * XtX.shape[0] * np.finfo(float).eps * 10
    return W[:, keep] / np.sqrt(eigenvalues[keep])


def _basis(X: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space (left singular vectors)."""
    X = check_table("X", X)
    P, s, _ = np.linalg.svd(np.asarray(X, np.float64), full_matrices=False)
    tol = s.max() * max(X.shape) * np.finfo(float).eps if s.size else 0.0
    return P[:, s > tol]
